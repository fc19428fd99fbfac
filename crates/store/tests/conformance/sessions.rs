//! Sessions: reading back, closing exactly once under a race, versions, plates at rest, retention.

use std::sync::Arc;

use valet_garage::{ChargeRequest, IdempotencyKey, Payer, SessionEvent, SessionState};
use valet_store::{CloseOutcome, DEFAULT_RETENTION_DAYS, StoreError};

use super::{TestGarage, at, conformance, driver, exited, plate, session_id, unregistered_session};

conformance!(
    a_session_reads_back_as_it_was_opened_and_closed,
    an_exit_read_finds_open_sessions_by_a_confusable_spelling_only,
    of_two_workers_handling_the_same_exit_exactly_one_closes_and_charges,
    a_save_against_a_stale_version_changes_nothing,
    the_plain_plate_never_reaches_the_sessions_table,
    retention_erases_only_old_settled_sessions_plates,
);

async fn a_session_reads_back_as_it_was_opened_and_closed(garage: TestGarage) {
    let store = &garage.store;
    let session = unregistered_session(1, "AB0123", at(2, 8, 0));
    store.open_session(&session).await.unwrap();
    let stored = store.session(session.id).await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(stored.to_session().unwrap(), Some(session.clone()));

    let closed = exited(&session, at(2, 9, 30));
    assert_eq!(store.close_session(&closed).await.unwrap(), CloseOutcome::Closed { version: 2 });
    let stored = store.session(session.id).await.unwrap().unwrap();
    assert!(matches!(stored.state, SessionState::Closed { ref exit } if exit.price.total.minor == 600));
    assert_eq!(stored.to_session().unwrap(), Some(closed));
    assert!(store.session(session_id(99)).await.unwrap().is_none());
}

async fn an_exit_read_finds_open_sessions_by_a_confusable_spelling_only(garage: TestGarage) {
    let store = &garage.store;
    store.open_session(&unregistered_session(1, "AB0123", at(2, 8, 0))).await.unwrap();
    store.open_session(&unregistered_session(2, "XY99", at(2, 8, 5))).await.unwrap();
    let left = unregistered_session(3, "AB0123", at(1, 8, 0));
    store.open_session(&left).await.unwrap();
    store.close_session(&exited(&left, at(1, 10, 0))).await.unwrap();

    let found = store.open_sessions_by_plate(&plate("ABO123")).await.unwrap();
    assert_eq!(
        found.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![session_id(1)],
        "closed sessions are not candidates"
    );
    assert_eq!(found[0].plate, Some(plate("AB0123")), "the stored spelling, not the read's");
    assert!(store.open_sessions_by_plate(&plate("AB0124")).await.unwrap().is_empty());
}

/// The race: two gate workers receive the same exit read at once. Repeated over several
/// sessions so that the two really overlap on the database at least some of the time.
async fn of_two_workers_handling_the_same_exit_exactly_one_closes_and_charges(garage: TestGarage) {
    let store = Arc::new(garage.store.clone());
    let payer = driver(7, &["CAR7"]);
    store.register_driver(&payer, at(1, 0, 0)).await.unwrap();
    for n in 1..=12u8 {
        let raw = format!("RACE{n}");
        let mut session = unregistered_session(n, &raw, at(2, 8, 0));
        session.payer = Payer::Registered(payer.id);
        store.open_session(&session).await.unwrap();

        let worker = |store: Arc<valet_store::GarageStore>, raw: String| async move {
            let open = store.open_sessions_by_plate(&plate(&raw)).await.unwrap();
            let Some(found) = open.first() else { return false };
            let closed = exited(&found.to_session().unwrap().unwrap(), at(2, 10, 0));
            match store.close_session(&closed).await.unwrap() {
                CloseOutcome::AlreadyClosed => false,
                CloseOutcome::Closed { .. } => {
                    let request = ChargeRequest {
                        idempotency_key: IdempotencyKey::for_session(closed.id, 1),
                        session: closed.id,
                        driver: payer.id,
                        amount: closed.state().exit().unwrap().price.total,
                    };
                    store.record_charge_request(&request, at(2, 10, 0)).await.unwrap();
                    true
                }
            }
        };
        let (a, b) = tokio::join!(
            tokio::spawn(worker(store.clone(), raw.clone())),
            tokio::spawn(worker(store.clone(), raw.clone()))
        );
        let winners = [a.unwrap(), b.unwrap()].iter().filter(|won| **won).count();
        assert_eq!(winners, 1, "session {n}: exactly one worker closes it");
        assert_eq!(store.charges_for_session(session.id).await.unwrap().len(), 1, "session {n}: one charge");
        assert!(store.open_sessions_by_plate(&plate(&raw)).await.unwrap().is_empty());
    }
}

async fn a_save_against_a_stale_version_changes_nothing(garage: TestGarage) {
    let store = &garage.store;
    let session = unregistered_session(1, "AB0123", at(2, 8, 0));
    store.open_session(&session).await.unwrap();
    let closed = exited(&session, at(2, 9, 0));
    let CloseOutcome::Closed { version } = store.close_session(&closed).await.unwrap() else { panic!() };

    let mut paid = closed.clone();
    paid.apply(SessionEvent::PaymentSucceeded { at: at(2, 9, 1) }).unwrap();
    let mut failed = closed.clone();
    failed.apply(SessionEvent::PaymentFailed { at: at(2, 9, 1) }).unwrap();
    assert_eq!(store.save_session(&paid, version).await.unwrap(), Some(version + 1));
    assert_eq!(store.save_session(&failed, version).await.unwrap(), None, "a stale writer must read again");
    assert!(matches!(store.session(session.id).await.unwrap().unwrap().state, SessionState::Paid { .. }));

    let err = store.close_session(&session).await.unwrap_err();
    assert!(matches!(err, StoreError::StillOpen(id) if id == session.id), "{err}");
    assert_eq!(store.close_session(&closed).await.unwrap(), CloseOutcome::AlreadyClosed);
}

async fn the_plain_plate_never_reaches_the_sessions_table(garage: TestGarage) {
    let store = &garage.store;
    let session = unregistered_session(1, "QZ8512", at(2, 8, 0));
    store.open_session(&session).await.unwrap();
    store.close_session(&exited(&session, at(2, 9, 0))).await.unwrap();

    let matching_key = session.plate.matching_key();
    for needle in ["QZ8512", matching_key.as_str()] {
        assert_eq!(garage.raw_rows_containing("sessions", needle).await, 0, "{needle} is in sessions");
    }
    let digest = store.plate_digest(&session.plate);
    assert_eq!(garage.raw_rows_containing("sessions", digest.as_str()).await, 1);
    assert_eq!(garage.raw_rows_containing("session_plates", "QZ8512").await, 1, "kept apart for people");
}

async fn retention_erases_only_old_settled_sessions_plates(garage: TestGarage) {
    let store = &garage.store;
    let now = at(28, 12, 0);
    // (plate, entry day, settle by paying?) — one paid long ago, one paid recently, one owed long
    // ago, one still open from long ago.
    let old_paid = unregistered_session(1, "OLD1", at(1, 8, 0));
    let new_paid = unregistered_session(2, "NEW2", at(27, 8, 0));
    let old_owed = unregistered_session(3, "OWE3", at(1, 8, 0));
    let old_open = unregistered_session(4, "OPEN4", at(1, 8, 0));
    for session in [&old_paid, &new_paid, &old_owed, &old_open] {
        store.open_session(session).await.unwrap();
    }
    for (session, pays) in [(&old_paid, true), (&new_paid, true), (&old_owed, false)] {
        let mut closed = exited(session, session.entry + chrono::Duration::hours(2));
        let CloseOutcome::Closed { version } = store.close_session(&closed).await.unwrap() else { panic!() };
        let at = session.entry + chrono::Duration::hours(3);
        let event = if pays { SessionEvent::PaymentSucceeded { at } } else { SessionEvent::PaymentFailed { at } };
        closed.apply(event).unwrap();
        store.save_session(&closed, version).await.unwrap().unwrap();
    }

    // The recent one was settled a day ago; with 30 days' retention nothing is old enough yet.
    assert_eq!(store.erase_settled_plates(now, DEFAULT_RETENTION_DAYS).await.unwrap(), 0);
    assert_eq!(store.erase_settled_plates(now, 7).await.unwrap(), 1);
    assert_eq!(store.erase_settled_plates(now, 7).await.unwrap(), 0, "erasing twice finds nothing more");

    let erased = store.session(old_paid.id).await.unwrap().unwrap();
    assert_eq!(erased.plate, None);
    assert_eq!(erased.to_session().unwrap(), None);
    assert!(matches!(erased.state, SessionState::Paid { .. }), "the stay and its price are kept");
    assert_eq!(garage.raw_rows_containing("session_plates", "OLD1").await, 0);
    for kept in [&new_paid, &old_owed, &old_open] {
        assert_eq!(store.session(kept.id).await.unwrap().unwrap().plate.as_ref(), Some(&kept.plate), "{}", kept.plate);
    }
    assert_eq!(store.open_sessions_by_plate(&plate("OPEN4")).await.unwrap().len(), 1);
}
