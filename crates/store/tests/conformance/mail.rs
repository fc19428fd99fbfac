//! The mail outbox: what is owed (once, only after the address was given), claimed one sender at
//! a time under a lease, and what became of it.

use chrono::{DateTime, TimeDelta, Utc};
use valet_garage::{EmailAddress, ParkingSession, Payer, Receipt, SessionEvent};
use valet_store::{CloseOutcome, GarageStore, MailKind, MailRetry};

use super::{TestGarage, at, conformance, driver, driver_id, exited, plate, session_id};

conformance!(
    mail_is_owed_once_for_what_happened_after_the_address_was_given,
    a_claimed_mail_is_one_senders_until_its_lease_ends_and_failures_are_retried_or_given_up,
);

fn email(text: &str) -> EmailAddress {
    EmailAddress::parse(text).unwrap()
}

/// A registered stay of driver `who` from `entry` to `exit`, paid (with its receipt written at
/// the exit) or left unpaid.
async fn stay(store: &GarageStore, n: u8, who: u8, entry: DateTime<Utc>, exit: DateTime<Utc>, pays: bool) {
    let session = ParkingSession::open(session_id(n), plate("AB0123"), entry, Payer::Registered(driver_id(who)));
    store.open_session(&session).await.unwrap();
    let mut closed = exited(&session, exit);
    let CloseOutcome::Closed { version } = store.close_session(&closed).await.unwrap() else { panic!() };
    let event =
        if pays { SessionEvent::PaymentSucceeded { at: exit } } else { SessionEvent::PaymentFailed { at: exit } };
    closed.apply(event).unwrap();
    store.save_session(&closed, version).await.unwrap().unwrap();
    if pays {
        store.write_receipt(&Receipt::for_session(&closed, None).unwrap(), exit).await.unwrap();
    }
}

async fn mail_is_owed_once_for_what_happened_after_the_address_was_given(garage: TestGarage) {
    let store = &garage.store;
    store.register_driver(&driver(1, &["AB0123"]), at(1, 8, 0)).await.unwrap();
    store.register_driver(&driver(2, &[]), at(1, 8, 0)).await.unwrap();
    // Paid before the address was given: no mail for it, ever.
    stay(store, 1, 1, at(1, 9, 0), at(1, 10, 0), true).await;
    assert!(store.set_driver_email(driver_id(1), Some(&email("Ana@Example.com")), at(2, 8, 0)).await.unwrap());
    assert!(!store.set_driver_email(driver_id(9), Some(&email("x@example.com")), at(2, 8, 0)).await.unwrap());
    assert_eq!(store.driver_email(driver_id(1)).await.unwrap(), Some(email("Ana@example.com")));
    assert_eq!(store.driver_email(driver_id(2)).await.unwrap(), None);

    stay(store, 2, 1, at(2, 9, 0), at(2, 10, 0), true).await; // paid: a receipt
    stay(store, 3, 1, at(2, 9, 0), at(2, 11, 0), false).await; // refused: a notice
    stay(store, 4, 2, at(2, 9, 0), at(2, 10, 0), true).await; // no address: nothing

    let now = at(2, 12, 0);
    assert_eq!(store.owe_mail(at(1, 0, 0), now).await.unwrap(), 2);
    assert_eq!(store.owe_mail(at(1, 0, 0), now).await.unwrap(), 0, "owing again adds nothing");
    // The receipt written again (a retried billing step) owes nothing more either.
    store.write_receipt(&store.receipt(session_id(2)).await.unwrap().unwrap(), at(2, 12, 1)).await.unwrap();
    assert_eq!(store.owe_mail(at(1, 0, 0), at(2, 12, 1)).await.unwrap(), 0);

    let mut owed: Vec<_> =
        store.mail_records(10).await.unwrap().into_iter().map(|m| (m.kind, m.session, m.outcome)).collect();
    owed.sort_by_key(|(kind, ..)| kind.as_str());
    assert_eq!(owed, [(MailKind::ChargeFailed, session_id(3), None), (MailKind::Receipt, session_id(2), None)]);
}

async fn a_claimed_mail_is_one_senders_until_its_lease_ends_and_failures_are_retried_or_given_up(garage: TestGarage) {
    let store = &garage.store;
    store.register_driver(&driver(1, &["AB0123"]), at(1, 8, 0)).await.unwrap();
    store.set_driver_email(driver_id(1), Some(&email("ana@example.com")), at(1, 8, 0)).await.unwrap();
    for n in 1..=4 {
        stay(store, n, 1, at(2, 9, 0), at(2, 10, u32::from(n)), true).await;
    }
    let now = at(2, 12, 0);
    store.owe_mail(at(1, 0, 0), now).await.unwrap();
    let lease = TimeDelta::minutes(1);

    // Two senders claim at once: each mail goes to one of them.
    let (a, b) = tokio::join!(store.claim_due_mail(now, lease, 10), store.claim_due_mail(now, lease, 10));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut ids: Vec<_> = a.iter().chain(&b).map(|m| m.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((ids.len(), a.len() + b.len()), (4, 4), "{a:?} {b:?}");
    assert!(a.iter().chain(&b).all(|m| m.recipient == Some(email("ana@example.com")) && m.attempts == 1));
    assert!(store.claim_due_mail(now + TimeDelta::seconds(30), lease, 10).await.unwrap().is_empty(), "leased");

    let mut claimed: Vec<_> = a.into_iter().chain(b).collect();
    claimed.sort_by(|x, y| x.id.cmp(&y.id));
    let [one, two, three, four] = &claimed[..] else { panic!("{claimed:?}") };
    let recipient = email("ana@example.com");
    store.mail_sent(&one.id, Some(&recipient), now).await.unwrap();
    store.mail_failed(&two.id, "421 try later", MailRetry::At(now + TimeDelta::minutes(5)), now).await.unwrap();
    store.mail_failed(&three.id, "550 no such user", MailRetry::GiveUp, now).await.unwrap();
    // `four`'s sender died: due again once its lease ends, tried a second time (by a sender with
    // a longer lease, so that it is not due yet below).
    let again = store.claim_due_mail(now + TimeDelta::minutes(2), TimeDelta::minutes(10), 10).await.unwrap();
    assert_eq!(again.iter().map(|m| (m.id.as_str(), m.attempts)).collect::<Vec<_>>(), [(four.id.as_str(), 2)]);
    // Without an address, a claimed mail comes with no recipient.
    store.set_driver_email(driver_id(1), None, now).await.unwrap();
    let retried = store.claim_due_mail(now + TimeDelta::minutes(5), lease, 10).await.unwrap();
    assert_eq!(
        retried.iter().map(|m| (m.id.as_str(), m.recipient.clone())).collect::<Vec<_>>(),
        [(two.id.as_str(), None)]
    );
    store.mail_sent(&two.id, None, now).await.unwrap();

    let records = store.mail_records(10).await.unwrap();
    let outcome = |id: &str| records.iter().find(|r| r.id == id).map(|r| (r.outcome.clone(), r.last_error.clone()));
    assert_eq!(outcome(&one.id), Some((Some("sent".into()), None)));
    assert_eq!(outcome(&two.id), Some((Some("skipped".into()), None)));
    assert_eq!(outcome(&three.id), Some((Some("given_up".into()), Some("550 no such user".into()))));
    assert_eq!(outcome(&four.id), Some((None, None)));
    // A done mail is never claimed again, nor its record changed.
    store.mail_sent(&three.id, Some(&recipient), now).await.unwrap();
    assert_eq!(store.mail_records(10).await.unwrap().iter().filter(|r| r.outcome.is_some()).count(), 3);
    assert_eq!(
        store
            .claim_due_mail(now + TimeDelta::days(1), lease, 10)
            .await
            .unwrap()
            .iter()
            .map(|m| &m.id)
            .collect::<Vec<_>>(),
        [&four.id]
    );
}
