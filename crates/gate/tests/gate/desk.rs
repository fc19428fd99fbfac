//! The desk on both databases, with the embedded `StoreLedger`: sign-up taking over a stay, plate
//! removal while inside, pay-by-plate, refunds within what was charged, review decisions once,
//! and every operator action in the audit log.

use std::sync::Arc;

use valet_garage::{
    AuditAction, Direction, ExitOutcome, LinkToken, Money, OperatorId, Payer, PaymentMethodToken, Price, Reason,
    ReviewDecision, SessionState,
};
use valet_gate::{ConfiguredGateway, DeskError, FixedClock, GateService, StoreLedger};
use valet_store::{ListKind, ReviewItemId};

use crate::support::{TestStore, at, config, on_both_databases, plate, read, tariff};

fn desk(store: &valet_store::GarageStore) -> (GateService<ConfiguredGateway>, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(at(8, 0)));
    let ledger = ConfiguredGateway::Ledger(StoreLedger::new(store.clone()));
    (GateService::new(store.clone(), ledger, tariff(), config(), clock.clone()), clock)
}

fn method(text: &str) -> PaymentMethodToken {
    PaymentMethodToken::parse(text).unwrap()
}

fn alice() -> OperatorId {
    OperatorId("alice".into())
}

fn why(text: &str) -> Reason {
    Reason::parse(text).unwrap()
}

fn link_of(outcome: &ExitOutcome) -> LinkToken {
    match outcome {
        ExitOutcome::PayByPlate { link, .. } => *link,
        other => panic!("expected pay by plate, got {other:?}"),
    }
}

on_both_databases!(
    a_sign_up_with_the_entry_link_pays_for_the_stay_in_progress,
    pay_by_plate_charges_once_and_lets_the_car_out,
    refunds_stay_within_the_charge_and_are_audited,
    a_review_is_decided_once_and_a_repriced_stay_stays_closed_at_its_new_price,
    a_misread_entry_corrected_from_the_image_is_charged_to_its_driver_at_the_exit,
);

async fn a_sign_up_with_the_entry_link_pays_for_the_stay_in_progress(db: TestStore) {
    let (gate, clock) = desk(&db.store);
    let entry = gate.handle_entry(&read("AB123CD", Direction::Entry, at(8, 0))).await.unwrap();
    let valet_garage::EntryOutcome::Opened(session) = entry.decision.outcome else { panic!("not opened") };
    let Payer::Unregistered { link } = session.payer else { panic!("a stranger is unregistered") };

    let signed = gate.sign_up(vec![plate("AB123CD")], method("pm_card_visa"), Some(link)).await.unwrap();
    assert_eq!(signed.session, Some(session.id));
    // The link is spent: a second sign-up with it finds no open stay.
    let again = gate.sign_up(vec![plate("ZZ999ZZ")], method("pm_x"), Some(link)).await.unwrap_err();
    assert!(matches!(again, DeskError::UnknownLink | DeskError::SessionNotOpen(_)), "{again:?}");

    // While the car is inside, its plate stays on the account.
    let err = gate.remove_plate(&signed.driver, &plate("AB123CD")).await.unwrap_err();
    assert!(matches!(err, DeskError::Plates(valet_garage::PlateChangeError::ActiveSession(_))), "{err:?}");

    clock.set(at(9, 30));
    let exit = gate.handle_exit(&read("AB123CD", Direction::Exit, at(9, 30))).await.unwrap();
    assert!(matches!(exit.decision.outcome, ExitOutcome::Charge { .. }), "{:?}", exit.decision);
    assert_eq!(exit.receipt.unwrap().total, Money::new(600, valet_garage::Currency::EUR));
    gate.remove_plate(&signed.driver, &plate("AB123CD")).await.unwrap();
    assert!(gate.store().driver_by_token(signed.token.expose()).await.unwrap().unwrap().plates().next().is_none());
}

async fn pay_by_plate_charges_once_and_lets_the_car_out(db: TestStore) {
    let (gate, clock) = desk(&db.store);
    gate.handle_entry(&read("KL555MN", Direction::Entry, at(8, 0))).await.unwrap();
    clock.set(at(8, 40));
    let held = gate.handle_exit(&read("KL555MN", Direction::Exit, at(8, 40))).await.unwrap();
    assert_eq!(held.decision.barrier, valet_garage::Barrier::Hold);
    let link = link_of(&held.decision.outcome);

    let paid = gate.pay_by_link(link, method("pm_card_mastercard")).await.unwrap();
    assert_eq!(paid.receipt.as_ref().unwrap().total.minor, 300);
    let again = gate.pay_by_link(link, method("pm_card_mastercard")).await.unwrap_err();
    assert!(matches!(again, DeskError::UnknownLink), "{again:?}");

    clock.set(at(8, 45));
    let out = gate.handle_exit(&read("KL555MN", Direction::Exit, at(8, 45))).await.unwrap();
    assert_eq!(out.decision.barrier, valet_garage::Barrier::Lift);
    let session = paid.receipt.unwrap().session;
    assert_eq!(gate.store().charges_for_session(session).await.unwrap().len(), 1);
}

async fn refunds_stay_within_the_charge_and_are_audited(db: TestStore) {
    let (gate, clock) = desk(&db.store);
    gate.sign_up(vec![plate("XY987ZW")], method("pm_card_visa"), None).await.unwrap();
    gate.handle_entry(&read("XY987ZW", Direction::Entry, at(8, 0))).await.unwrap();
    clock.set(at(10, 0));
    let exit = gate.handle_exit(&read("XY987ZW", Direction::Exit, at(10, 0))).await.unwrap();
    let session = exit.receipt.unwrap().session;
    let eur = |minor| Some(Money::new(minor, valet_garage::Currency::EUR));

    let first = gate.refund(session, eur(200), "k1", alice(), why("bumped")).await.unwrap();
    let repeat = gate.refund(session, eur(200), "k1", alice(), why("bumped")).await.unwrap();
    assert_eq!(first, repeat, "the same key refunds once");
    // Refused here, before the provider is asked, with what is left.
    let too_much = gate.refund(session, eur(500), "k2", alice(), why("greedy")).await.unwrap_err();
    assert!(matches!(too_much, DeskError::OverRefund { left, .. } if left.minor == 400), "{too_much:?}");
    // The same key again for another amount is refused, not answered with the first refund.
    let reused = gate.refund(session, eur(100), "k1", alice(), why("bumped")).await.unwrap_err();
    assert!(matches!(reused, DeskError::RefundKeyReused { first, .. } if first.minor == 200), "{reused:?}");
    let rest = gate.refund(session, None, "k3", alice(), why("goodwill")).await.unwrap();
    assert_eq!(rest.amount.minor, 400, "600 charged, 200 refunded before");
    assert_eq!(gate.store().refunds_for_session(session).await.unwrap().len(), 2);
    let nothing_left = gate.refund(session, None, "k4", alice(), why("again")).await.unwrap_err();
    assert!(matches!(nothing_left, DeskError::OverRefund { left, .. } if left.minor == 0), "{nothing_left:?}");

    let audit = gate.store().audit_events(at(0, 0)).await.unwrap();
    let refunds = audit.iter().filter(|e| matches!(e.what, AuditAction::Refund { .. })).count();
    assert_eq!(refunds, 2, "{audit:?}");
}

async fn a_review_is_decided_once_and_a_repriced_stay_stays_closed_at_its_new_price(db: TestStore) {
    let (gate, clock) = desk(&db.store);
    gate.sign_up(vec![plate("RP100QA")], method("pm_card_visa"), None).await.unwrap();
    gate.handle_entry(&read("RP100QA", Direction::Entry, at(8, 0))).await.unwrap();
    clock.set(at(11, 0));
    let exit = gate.handle_exit(&read("RP100QA", Direction::Exit, at(11, 0))).await.unwrap();
    let session = exit.receipt.unwrap().session;
    // The driver disputes the price; the operator reprices it as unpaid-then-charged-again.
    let item = valet_garage::ReviewItem {
        reason: valet_garage::ReviewReason::Disputed { note: "I was only here an hour".into() },
        session: Some(session),
        read: None,
        at: at(11, 5),
    };
    let id: ReviewItemId = gate.store().add_review_item(&item).await.unwrap();
    // A paid session cannot be repriced: the refund is the tool for that.
    let paid = gate
        .decide_review(id, Some(ReviewDecision::MarkUnpaid { at: at(11, 6) }), "x", alice(), why("x"))
        .await
        .unwrap_err();
    assert!(matches!(paid, DeskError::NotDecidable(_, "paid")), "{paid:?}");

    // Resolved without touching the session; then no one can decide it again.
    let resolved = gate.decide_review(id, None, "refund instead", alice(), why("policy")).await.unwrap();
    assert!(resolved.resolved.is_some());
    let twice = gate.decide_review(id, None, "again", alice(), why("again")).await.unwrap_err();
    assert!(matches!(twice, DeskError::AlreadyDecided(_)), "{twice:?}");

    // A stay closed at the tariff's price (an exit nobody could match, closed by hand here) is
    // repriced: it stays closed, at the new price, for pay-by-plate to collect.
    gate.handle_entry(&read("NP404XX", Direction::Entry, at(12, 0))).await.unwrap();
    clock.set(at(13, 0));
    let held = gate.handle_exit(&read("NP404XX", Direction::Exit, at(13, 0))).await.unwrap();
    let link = link_of(&held.decision.outcome);
    let record = gate.store().session_by_link(link).await.unwrap().unwrap();
    let mut closed = record.to_session().unwrap().unwrap();
    let price = tariff().price(&closed.stay(at(13, 0)));
    closed.apply(valet_garage::SessionEvent::Exit(valet_garage::Exit { at: at(13, 0), price })).unwrap();
    gate.store().close_session(&closed).await.unwrap();
    let reason = valet_garage::ReviewReason::NoOpenSession;
    let item = valet_garage::ReviewItem { reason, session: Some(closed.id), read: None, at: at(13, 1) };
    let id = gate.store().add_review_item(&item).await.unwrap();
    let price = Price { total: Money::new(100, valet_garage::Currency::EUR), lines: Vec::new() };
    gate.decide_review(
        id,
        Some(ReviewDecision::Reprice { price, at: at(13, 2) }),
        "repriced",
        alice(),
        why("short stay"),
    )
    .await
    .unwrap();
    let after = gate.store().session(closed.id).await.unwrap().unwrap();
    assert!(
        matches!(&after.state, SessionState::Closed { exit } if exit.price.total.minor == 100),
        "{:?}",
        after.state
    );

    assert!(gate.change_list(plate("RP100QA"), Some(ListKind::Allow), alice(), why("staff car")).await.unwrap());
    let actions: Vec<_> = gate.store().audit_events(at(0, 0)).await.unwrap().into_iter().map(|e| e.what).collect();
    assert!(actions.iter().any(|a| matches!(a, AuditAction::ReviewResolved { .. })), "{actions:?}");
    assert!(actions.iter().any(|a| matches!(a, AuditAction::ReviewDecision { .. })), "{actions:?}");
    assert!(actions.iter().any(|a| matches!(a, AuditAction::ListChange { .. })), "{actions:?}");
}

async fn a_misread_entry_corrected_from_the_image_is_charged_to_its_driver_at_the_exit(db: TestStore) {
    let (gate, clock) = desk(&db.store);
    gate.sign_up(vec![plate("ZH927LC")], method("pm_card_visa"), None).await.unwrap();
    // The entry camera misread the last letter, unsurely: a stranger's stay, queued for review.
    let mut misread = read("ZH927LG", Direction::Entry, at(8, 0));
    misread.confidence = 0.15;
    let entry = gate.handle_entry(&misread).await.unwrap();
    let id = entry.review.expect("an unsure read is reviewed");
    let valet_garage::EntryOutcome::Opened(session) = entry.decision.outcome else { panic!("not opened") };
    assert!(matches!(session.payer, Payer::Unregistered { .. }));

    // The operator reads ZH927LC off the image: the stay is the driver's now.
    let item = gate.correct_plate(id, plate("ZH927LC"), alice(), why("legible in the frame")).await.unwrap();
    assert_eq!(item.resolved.unwrap().1, "plate corrected from ZH927LG to ZH927LC");
    let twice = gate.correct_plate(id, plate("ZH927LC"), alice(), why("again")).await.unwrap_err();
    assert!(matches!(twice, DeskError::AlreadyDecided(_)), "{twice:?}");
    let record = gate.store().session(session.id).await.unwrap().unwrap();
    assert_eq!(record.plate.as_ref().map(|p| p.display()), Some("ZH927LC"));
    assert!(matches!(record.payer, Payer::Registered(_)), "{:?}", record.payer);

    // The exit reads the plate right and charges the driver; the misspelling finds nothing.
    clock.set(at(10, 0));
    assert!(gate.store().open_sessions_by_plate(&plate("ZH927LG")).await.unwrap().is_empty());
    let exit = gate.handle_exit(&read("ZH927LC", Direction::Exit, at(10, 0))).await.unwrap();
    assert!(matches!(exit.decision.outcome, ExitOutcome::Charge { .. }), "{:?}", exit.decision.outcome);
    assert!(exit.receipt.is_some());
    let audit = gate.store().audit_events(at(0, 0)).await.unwrap();
    assert!(audit.iter().any(|e| matches!(&e.what, AuditAction::PlateCorrected { read, .. } if read == "ZH927LG")));

    // A stay already closed (a driver's, charged at the exit) is not re-plated: repricing is
    // the tool there.
    gate.sign_up(vec![plate("QQ111QQ")], method("pm_card_visa"), None).await.unwrap();
    let mut late = read("QQ111QQ", Direction::Entry, at(10, 0));
    // No confidence at all: reviewed even though the key is an account's (issue 18: an unsure read
    // of one account's key alone is that account, with no review).
    late.confidence = 0.0;
    let late_id = gate.handle_entry(&late).await.unwrap().review.unwrap();
    clock.set(at(10, 30));
    let left = gate.handle_exit(&read("QQ111QQ", Direction::Exit, at(10, 30))).await.unwrap();
    assert!(matches!(left.decision.outcome, ExitOutcome::Charge { .. }), "{:?}", left.decision.outcome);
    let closed = gate.correct_plate(late_id, plate("QQ111QO"), alice(), why("x")).await.unwrap_err();
    assert!(matches!(closed, DeskError::NotDecidable(_, _)), "{closed:?}");
}
