//! Matching against who signed up (issue 18), through the store: spellings of one key pooled into
//! one sure charge, a look-alike nobody signed up never charged to the account it resembles, and
//! the same car read twice at the entry (two frames, two replicas' passages) opening one session.

use chrono::TimeDelta;
use valet_garage::{Candidate, Direction, EntryOutcome, ExitOutcome, Payer, PlateRead};

use crate::support::{TestStore, at, gate, on_both_databases, plate, read, sign_up};

on_both_databases!(
    the_issues_example_is_charged_to_its_driver_with_no_review,
    a_look_alike_nobody_signed_up_is_not_charged_to_the_account_it_resembles,
    two_reads_of_one_car_spelled_apart_open_one_session,
    a_confusable_plate_of_another_account_opens_its_own_session,
);

fn with(text: &str, confidence: f32, candidates: &[(&str, f32)], direction: Direction, minute: u32) -> PlateRead {
    let mut read = read(text, direction, at(9, minute));
    read.confidence = confidence;
    read.candidates = candidates.iter().map(|&(t, c)| Candidate { text: t.into(), confidence: c }).collect();
    read
}

/// The read the issue measured: its text the lower-scored spelling of the driver's key.
fn issue_read(direction: Direction, minute: u32) -> PlateRead {
    with("WAS6660", 0.47, &[("WAS6660", 0.47), ("WA56660", 0.94), ("WA5666O", 0.47)], direction, minute)
}

async fn the_issues_example_is_charged_to_its_driver_with_no_review(db: TestStore) {
    let (gate, _clock) = gate(&db.store);
    let driver = sign_up(&gate, 1, &["WA56660"]).await;

    let entry = gate.handle_entry(&issue_read(Direction::Entry, 0)).await.unwrap();
    let EntryOutcome::Opened(session) = &entry.decision.outcome else { panic!("{:?}", entry.decision) };
    assert_eq!((session.payer, session.plate.clone()), (Payer::Registered(driver.id), plate("WA56660")));
    let exit = gate.handle_exit(&issue_read(Direction::Exit, 1)).await.unwrap();

    let ExitOutcome::Charge { charge, .. } = &exit.decision.outcome else { panic!("{:?}", exit.decision) };
    assert_eq!(charge.driver, driver.id);
    assert!(exit.receipt.is_some());
    assert_eq!((entry.review, exit.review.as_slice()), (None, &[][..]));
    assert!(db.store.open_review_items().await.unwrap().is_empty());
}

async fn a_look_alike_nobody_signed_up_is_not_charged_to_the_account_it_resembles(db: TestStore) {
    let (gate, _clock) = gate(&db.store);
    let driver = sign_up(&gate, 1, &["AB 123 CD"]).await;
    // AB128CD (8 for 3: they fold apart) nobody signed up; the reader also considered the driver's.
    let look_alike =
        |direction, minute| with("AB128CD", 0.8, &[("AB128CD", 0.8), ("AB123CD", 0.15)], direction, minute);

    let entry = gate.handle_entry(&look_alike(Direction::Entry, 0)).await.unwrap();
    let EntryOutcome::Opened(session) = &entry.decision.outcome else { panic!("{:?}", entry.decision) };
    assert!(matches!(session.payer, Payer::Unregistered { .. }), "{:?}", session.payer);
    assert_eq!(session.plate, plate("AB128CD"));
    let exit = gate.handle_exit(&look_alike(Direction::Exit, 30)).await.unwrap();

    assert!(matches!(exit.decision.outcome, ExitOutcome::PayByPlate { .. }), "{:?}", exit.decision);
    assert_eq!(gate.biller().gateway().charge_count(), 0);
    assert!(gate.biller().gateway().statement(driver.id).balance(valet_garage::Currency::EUR).is_zero());
}

async fn two_reads_of_one_car_spelled_apart_open_one_session(db: TestStore) {
    let (gate, _clock) = gate(&db.store);
    let driver = sign_up(&gate, 1, &["WA56660"]).await;
    // A driver's car: two frames of it (or two replicas' passages), read in two spellings.
    let first = gate.handle_entry(&issue_read(Direction::Entry, 0)).await.unwrap();
    let second = gate.handle_entry(&with("WA5666O", 0.9, &[], Direction::Entry, 0)).await.unwrap();
    assert_eq!(second.decision, first.decision);
    // A car nobody signed up, read `ABO123` and then `AB0123` a few seconds apart.
    let stranger = gate.handle_entry(&with("ABO123", 0.9, &[("AB0123", 0.2)], Direction::Entry, 0)).await.unwrap();
    let again = gate.handle_entry(&with("AB0123", 0.8, &[("ABO123", 0.3)], Direction::Entry, 1)).await.unwrap();
    assert_eq!(again.decision, stranger.decision);

    assert_eq!(db.store.open_sessions_by_plate(&plate("WA56660")).await.unwrap().len(), 1);
    assert_eq!(db.store.open_sessions_by_plate(&plate("AB0123")).await.unwrap().len(), 1);
    let EntryOutcome::Opened(session) = &first.decision.outcome else { panic!("{:?}", first.decision) };
    assert_eq!(session.payer, Payer::Registered(driver.id));
    // Past the leave window it is another visit.
    let later = with("WA56660", 0.9, &[], Direction::Entry, 0);
    let later = PlateRead { at: later.at + TimeDelta::hours(5), ..later };
    assert_ne!(gate.handle_entry(&later).await.unwrap().decision, first.decision);
}

async fn a_confusable_plate_of_another_account_opens_its_own_session(db: TestStore) {
    let (gate, _clock) = gate(&db.store);
    let one = sign_up(&gate, 1, &["MN0101"]).await;
    let two = sign_up(&gate, 2, &["MNO1O1"]).await;
    let first = gate.handle_entry(&with("MN0101", 0.95, &[], Direction::Entry, 0)).await.unwrap();
    let second = gate.handle_entry(&with("MNO1O1", 0.95, &[], Direction::Entry, 0)).await.unwrap();
    let payer = |entry: &valet_gate::HandledEntry| match &entry.decision.outcome {
        EntryOutcome::Opened(session) => session.payer,
        other => panic!("{other:?}"),
    };
    assert_eq!((payer(&first), payer(&second)), (Payer::Registered(one.id), Payer::Registered(two.id)));
    assert_eq!(db.store.open_sessions_by_plate(&plate("MN0101")).await.unwrap().len(), 2);
}
