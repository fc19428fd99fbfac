//! The functions' inbox: an event is claimed once, redeliveries get the first reply, a failed
//! handling is released for the retry, and a dead worker's claim is taken over after its lease.

use std::sync::Arc;

use chrono::TimeDelta;
use valet_store::EventClaim;

use super::{TestGarage, at, conformance};

conformance!(
    an_event_is_claimed_once_and_its_reply_is_replayed,
    of_many_workers_claiming_one_event_exactly_one_wins,
    a_released_claim_is_claimed_again_by_the_retry,
    a_claim_past_its_lease_is_taken_over,
    old_handled_events_are_forgotten,
    dead_letters_are_kept_once_and_listed_newest_first,
);

const LEASE: TimeDelta = TimeDelta::seconds(60);

async fn an_event_is_claimed_once_and_its_reply_is_replayed(garage: TestGarage) {
    let store = &garage.store;
    assert_eq!(store.claim_event("gate", "e1", at(1, 8, 0), LEASE).await.unwrap(), EventClaim::Claimed);
    assert_eq!(store.claim_event("gate", "e1", at(1, 8, 0), LEASE).await.unwrap(), EventClaim::InProgress);
    // Another function's claim on the same id is its own.
    assert_eq!(store.claim_event("billing", "e1", at(1, 8, 0), LEASE).await.unwrap(), EventClaim::Claimed);
    store.record_dead_letter("e9", "{}", at(1, 8, 0)).await.unwrap();
    let in_progress = store.events_in_progress().await.unwrap();
    assert_eq!(in_progress, [("billing".to_owned(), 1), ("gate".to_owned(), 1)], "dead letters are not in progress");
    store.finish_event("gate", "e1", Some("{\"next\":1}"), at(1, 8, 1)).await.unwrap();
    assert_eq!(store.events_in_progress().await.unwrap(), [("billing".to_owned(), 1)]);
    assert_eq!(
        store.claim_event("gate", "e1", at(1, 9, 0), LEASE).await.unwrap(),
        EventClaim::Handled { reply: Some("{\"next\":1}".to_owned()) }
    );
    // A finished claim is never taken over, however old.
    assert!(matches!(store.claim_event("gate", "e1", at(3, 9, 0), LEASE).await.unwrap(), EventClaim::Handled { .. }));
}

async fn of_many_workers_claiming_one_event_exactly_one_wins(garage: TestGarage) {
    let store = Arc::new(garage.store.clone());
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.claim_event("gate", "race", at(1, 8, 0), LEASE).await.unwrap() })
        })
        .collect();
    let mut claimed = 0;
    for worker in workers {
        match worker.await.unwrap() {
            EventClaim::Claimed => claimed += 1,
            EventClaim::InProgress => {}
            other => panic!("nothing finished it, yet {other:?}"),
        }
    }
    assert_eq!(claimed, 1);
}

async fn a_released_claim_is_claimed_again_by_the_retry(garage: TestGarage) {
    let store = &garage.store;
    assert_eq!(store.claim_event("gate", "e2", at(1, 8, 0), LEASE).await.unwrap(), EventClaim::Claimed);
    store.release_event("gate", "e2").await.unwrap();
    assert_eq!(store.claim_event("gate", "e2", at(1, 8, 0), LEASE).await.unwrap(), EventClaim::Claimed);
    // Releasing a finished event does not reopen it.
    store.finish_event("gate", "e2", None, at(1, 8, 1)).await.unwrap();
    store.release_event("gate", "e2").await.unwrap();
    assert_eq!(store.claim_event("gate", "e2", at(1, 8, 2), LEASE).await.unwrap(), EventClaim::Handled { reply: None });
}

async fn a_claim_past_its_lease_is_taken_over(garage: TestGarage) {
    let store = &garage.store;
    assert_eq!(store.claim_event("gate", "e3", at(1, 8, 0), LEASE).await.unwrap(), EventClaim::Claimed);
    let within = at(1, 8, 0) + TimeDelta::seconds(30);
    assert_eq!(store.claim_event("gate", "e3", within, LEASE).await.unwrap(), EventClaim::InProgress);
    let after = at(1, 8, 0) + TimeDelta::seconds(61);
    assert_eq!(store.claim_event("gate", "e3", after, LEASE).await.unwrap(), EventClaim::Claimed);
    // The new claim has a fresh lease.
    assert_eq!(store.claim_event("gate", "e3", after, LEASE).await.unwrap(), EventClaim::InProgress);
}

async fn old_handled_events_are_forgotten(garage: TestGarage) {
    let store = &garage.store;
    for (id, minute) in [("old", 0), ("new", 30)] {
        store.claim_event("gate", id, at(1, 8, minute), LEASE).await.unwrap();
        store.finish_event("gate", id, None, at(1, 8, minute)).await.unwrap();
    }
    store.claim_event("gate", "running", at(1, 8, 0), LEASE).await.unwrap();
    assert_eq!(store.forget_handled_events(at(1, 8, 15)).await.unwrap(), 1);
    assert_eq!(store.claim_event("gate", "old", at(1, 9, 0), LEASE).await.unwrap(), EventClaim::Claimed);
    assert!(matches!(store.claim_event("gate", "new", at(1, 9, 0), LEASE).await.unwrap(), EventClaim::Handled { .. }));
}

async fn dead_letters_are_kept_once_and_listed_newest_first(garage: TestGarage) {
    let store = &garage.store;
    store.record_dead_letter("d1", "{\"id\":\"d1\"}", at(1, 8, 0)).await.unwrap();
    store.record_dead_letter("d2", "{\"id\":\"d2\"}", at(1, 9, 0)).await.unwrap();
    store.record_dead_letter("d1", "{\"id\":\"d1\"}", at(1, 10, 0)).await.unwrap();
    let letters = store.dead_letters(10).await.unwrap();
    assert_eq!(letters, vec![(at(1, 9, 0), "{\"id\":\"d2\"}".to_owned()), (at(1, 8, 0), "{\"id\":\"d1\"}".to_owned())]);
    // Retention of handled events leaves them alone.
    store.forget_handled_events(at(2, 0, 0)).await.unwrap();
    assert_eq!(store.dead_letters(10).await.unwrap().len(), 2);
}
