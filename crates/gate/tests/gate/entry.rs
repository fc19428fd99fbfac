//! Entry reads: refused, opened for a known driver, opened as unregistered with a link.

use valet_garage::{Barrier, Direction, EntryOutcome, Payer, ReviewReason};
use valet_store::ListKind;

use crate::support::{TestStore, at, gate, on_both_databases, plate, read, sign_up};

on_both_databases!(
    a_deny_listed_plate_is_refused_and_queued_for_review,
    an_unknown_plate_opens_an_unregistered_session_with_a_link_token,
    a_registered_driver_entering_opens_a_session_they_will_pay_for,
    the_same_car_read_twice_at_the_entry_opens_one_session,
    the_same_car_read_by_two_replicas_at_once_opens_one_session,
    a_plate_lock_dropped_unreleased_is_not_leaked,
);

/// A gate whose request is cancelled (or that panics) while it holds a car's lock must not leave
/// that car locked out of the garage.
async fn a_plate_lock_dropped_unreleased_is_not_leaked(db: TestStore) {
    let car = plate("LCK001");
    let held = db.store.lock_plate(&car).await.unwrap();
    // Held: another taker waits.
    let waiting = tokio::time::timeout(std::time::Duration::from_millis(200), db.store.lock_plate(&car)).await;
    assert!(waiting.is_err(), "the lock did not hold");
    drop(held);
    let again = tokio::time::timeout(std::time::Duration::from_secs(5), db.store.lock_plate(&car)).await;
    again.expect("the dropped lock was leaked").unwrap().release().await.unwrap();
    // Another plate was never blocked, and released locks are taken again at once.
    for _ in 0..3 {
        db.store.lock_plate(&plate("LCK002")).await.unwrap().release().await.unwrap();
    }
}

/// Two replicas pulling one camera send the same car at the same instant under two event ids
/// (the minute turned between their first frames), each to its own gate replica on the one
/// database: the second waits for the first and is answered with its session.
async fn the_same_car_read_by_two_replicas_at_once_opens_one_session(db: TestStore) {
    let replicas = [std::sync::Arc::new(gate(&db.store).0), std::sync::Arc::new(gate(&db.store).0)];
    for round in 0..20u32 {
        let text = format!("RACE{round:03}");
        let racers: Vec<_> = ["", " "]
            .into_iter()
            .zip(&replicas)
            .map(|(gap, gate)| {
                let (gate, spelled) = (std::sync::Arc::clone(gate), text.replacen("E", &format!("E{gap}"), 1));
                tokio::spawn(async move { gate.handle_entry(&read(&spelled, Direction::Entry, at(9, 0))).await })
            })
            .collect();
        for racer in racers {
            racer.await.unwrap().unwrap();
        }
        assert_eq!(db.store.open_sessions_by_plate(&plate(&text)).await.unwrap().len(), 1, "round {round}");
    }
}

async fn the_same_car_read_twice_at_the_entry_opens_one_session(db: TestStore) {
    let (gate, _clock) = gate(&db.store);
    let first = gate.handle_entry(&read("TWO 222", Direction::Entry, at(9, 0))).await.unwrap();
    // A second camera frame a few seconds later, and the same event delivered again.
    let second = gate.handle_entry(&read("TWO222", Direction::Entry, at(9, 1))).await.unwrap();
    let again = gate.handle_entry(&read("TWO 222", Direction::Entry, at(9, 0))).await.unwrap();
    assert_eq!(second.decision, first.decision);
    assert_eq!(again.decision, first.decision);
    assert_eq!(db.store.open_sessions_by_plate(&plate("TWO222")).await.unwrap().len(), 1);
    // A day later the old session is no repeat: the car is let in on a session of its own (the
    // stale one is left to the exit's matching and the review queue).
    let next_day = gate.handle_entry(&read("TWO222", Direction::Entry, at(9, 0) + chrono::TimeDelta::days(1))).await;
    let EntryOutcome::Opened(session) = next_day.unwrap().decision.outcome else { panic!("not opened") };
    let EntryOutcome::Opened(first_session) = &first.decision.outcome else { panic!("not opened") };
    assert_ne!(session.id, first_session.id);
}

async fn a_deny_listed_plate_is_refused_and_queued_for_review(db: TestStore) {
    let (gate, _clock) = gate(&db.store);
    db.store.list_plate(&plate("BAD 666"), ListKind::Deny, at(7, 0)).await.unwrap();

    let entry = gate.handle_entry(&read("BAD666", Direction::Entry, at(9, 0))).await.unwrap();

    assert_eq!(entry.decision.barrier, Barrier::Hold);
    assert_eq!(entry.decision.outcome, EntryOutcome::Refused { plate: plate("BAD666") });
    let queue = db.store.open_review_items().await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(Some(queue[0].id), entry.review);
    assert_eq!(queue[0].item.reason, ReviewReason::DeniedPlate);
    assert!(db.store.open_sessions_by_plate(&plate("BAD666")).await.unwrap().is_empty());
}

async fn an_unknown_plate_opens_an_unregistered_session_with_a_link_token(db: TestStore) {
    let (gate, _clock) = gate(&db.store);

    let entry = gate.handle_entry(&read("NEW 123", Direction::Entry, at(9, 0))).await.unwrap();

    assert_eq!(entry.decision.barrier, Barrier::Lift);
    let EntryOutcome::Opened(session) = &entry.decision.outcome else { panic!("{:?}", entry.decision) };
    let Payer::Unregistered { link } = session.payer else { panic!("{:?}", session.payer) };
    let stored = db.store.open_sessions_by_plate(&plate("NEW123")).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, session.id);
    assert_eq!(stored[0].payer, Payer::Unregistered { link });
    assert_eq!(entry.review, None, "a confident read of an unknown plate needs no person");
}

async fn a_registered_driver_entering_opens_a_session_they_will_pay_for(db: TestStore) {
    let (gate, _clock) = gate(&db.store);
    let driver = sign_up(&gate, 1, &["AB 123 CD"]).await;

    let entry = gate.handle_entry(&read("AB123CD", Direction::Entry, at(9, 0))).await.unwrap();

    let EntryOutcome::Opened(session) = &entry.decision.outcome else { panic!("{:?}", entry.decision) };
    assert_eq!(session.payer, Payer::Registered(driver.id));
    assert_eq!(db.store.open_sessions_by_plate(&plate("AB123CD")).await.unwrap().len(), 1);
}
