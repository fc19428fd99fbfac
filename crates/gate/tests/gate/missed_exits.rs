//! Missed exits on both databases: a stay open past the limit is raised for review once and closed
//! by an operator at the daily maximum (charged) or free; a car entering again closes its own
//! stale stay under the garage's policy, audited as the gate, and is charged for it once; a
//! look-alike of another account keeps its stay.

use std::sync::Arc;

use chrono::TimeDelta;
use valet_garage::{
    AuditAction, ChargeState, Direction, EntryOutcome, ExitOutcome, MissedExitPolicy, OperatorId, PaymentMethodToken,
    Reason, ReviewReason, SessionId, SessionState,
};
use valet_gate::{ConfiguredGateway, DeskError, FixedClock, GATE, GateService, MissedExits, StoreLedger};

use crate::support::{TestStore, at, config, on_both_databases, plate, read, tariff};

on_both_databases!(
    a_stay_open_past_the_limit_is_raised_once_and_closed_at_the_daily_maximum_and_charged,
    a_missed_exit_closed_free_owes_nothing_and_a_stay_left_open_is_not_raised_again,
    a_car_entering_again_closes_its_own_stale_stay_under_the_policy_and_a_look_alike_keeps_its_own,
);

fn desk(
    store: &valet_store::GarageStore,
    policy: MissedExitPolicy,
) -> (GateService<ConfiguredGateway>, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(at(8, 0)));
    let ledger = ConfiguredGateway::Ledger(StoreLedger::new(store.clone()));
    let rules = MissedExits { flag_after: Some(TimeDelta::hours(72)), policy };
    (GateService::new(store.clone(), ledger, tariff(), config(), clock.clone()).with_missed_exits(rules), clock)
}

fn days_later(days: i64, hour: u32) -> chrono::DateTime<chrono::Utc> {
    at(hour, 0) + TimeDelta::days(days)
}

fn alice() -> OperatorId {
    OperatorId("alice".into())
}

fn why(text: &str) -> Reason {
    Reason::parse(text).unwrap()
}

async fn enter(gate: &GateService<ConfiguredGateway>, text: &str, at: chrono::DateTime<chrono::Utc>) -> SessionId {
    let entry = gate.handle_entry(&read(text, Direction::Entry, at)).await.unwrap();
    let EntryOutcome::Opened(session) = entry.decision.outcome else { panic!("{:?}", entry.decision) };
    session.id
}

async fn state(gate: &GateService<ConfiguredGateway>, id: SessionId) -> SessionState {
    gate.store().session(id).await.unwrap().unwrap().to_session().unwrap().unwrap().state().clone()
}

async fn a_stay_open_past_the_limit_is_raised_once_and_closed_at_the_daily_maximum_and_charged(db: TestStore) {
    let (gate, clock) = desk(&db.store, MissedExitPolicy::DailyMaximum);
    let method = PaymentMethodToken::parse("pm_card_visa").unwrap();
    gate.sign_up(vec![plate("MX100AA")], method, None).await.unwrap();
    let stay = enter(&gate, "MX100AA", at(8, 0)).await;

    clock.set(days_later(2, 23));
    assert!(gate.flag_missed_exits().await.unwrap().is_empty(), "71 hours is within the limit");
    clock.set(days_later(3, 9));
    let [item] = gate.flag_missed_exits().await.unwrap()[..] else { panic!("one stay is past the limit") };
    assert!(gate.flag_missed_exits().await.unwrap().is_empty(), "raised once");
    let raised = gate.store().review_item(item).await.unwrap().unwrap();
    assert_eq!(raised.item.reason, ReviewReason::MissedExit { open_since: at(8, 0) });
    assert_eq!(raised.item.session, Some(stay));

    let (decided, closed) =
        gate.decide_missed_exit(item, MissedExitPolicy::DailyMaximum, alice(), why("camera 2 was down")).await.unwrap();
    assert!(decided.resolved.is_some());
    let closed = closed.expect("the stay was open");
    let charge = closed.charge.expect("a signed-up driver is charged");
    assert!(matches!(charge.state(), ChargeState::Succeeded { .. }), "{charge:?}");
    assert_eq!(charge.amount.minor, 2000, "the daily maximum, once, not three days of it");
    assert!(matches!(state(&gate, stay).await, SessionState::Paid { .. }));
    let again = gate.decide_missed_exit(item, MissedExitPolicy::Free, alice(), why("again")).await.unwrap_err();
    assert!(matches!(again, DeskError::AlreadyDecided(_)), "{again:?}");
    assert_eq!(gate.store().charges_for_session(stay).await.unwrap().len(), 1);

    let audit = gate.store().audit_events(at(0, 0)).await.unwrap();
    let closes: Vec<_> = audit.iter().filter(|e| matches!(e.what, AuditAction::MissedExitClosed { .. })).collect();
    assert_eq!(closes.len(), 1, "{audit:?}");
    assert_eq!(closes[0].who, alice());
    assert!(
        matches!(&closes[0].what, AuditAction::MissedExitClosed { session, policy: MissedExitPolicy::DailyMaximum, price } if *session == stay && price.minor == 2000)
    );
}

async fn a_missed_exit_closed_free_owes_nothing_and_a_stay_left_open_is_not_raised_again(db: TestStore) {
    let (gate, clock) = desk(&db.store, MissedExitPolicy::DailyMaximum);
    let free = enter(&gate, "MX200BB", at(8, 0)).await;
    let kept = enter(&gate, "MX300CC", at(8, 5)).await;
    clock.set(days_later(4, 8));
    let items = gate.flag_missed_exits().await.unwrap();
    assert_eq!(items.len(), 2);

    let (_, closed) = gate
        .decide_missed_exit(items[0], MissedExitPolicy::Free, alice(), why("left with the tow truck"))
        .await
        .unwrap();
    assert!(closed.unwrap().charge.is_none(), "nothing is owed");
    assert!(matches!(state(&gate, free).await, SessionState::Paid { exit, .. } if exit.price.total.is_zero()));
    // The other one, an operator knows is in long-term storage: resolved, the stay left open.
    gate.decide_review(items[1], None, "in long-term storage", alice(), why("owner abroad")).await.unwrap();
    assert!(matches!(state(&gate, kept).await, SessionState::Open));
    clock.set(days_later(9, 8));
    assert!(gate.flag_missed_exits().await.unwrap().is_empty(), "an operator's answer stands");
    // A review item that is not a missed exit cannot close a stay.
    let exit = gate.handle_exit(&read("ZZ999ZZ", Direction::Exit, days_later(9, 8))).await.unwrap();
    let other = exit.review[0];
    let refused = gate.decide_missed_exit(other, MissedExitPolicy::Free, alice(), why("no")).await.unwrap_err();
    assert!(matches!(refused, DeskError::NotAMissedExit(_)), "{refused:?}");
}

async fn a_car_entering_again_closes_its_own_stale_stay_under_the_policy_and_a_look_alike_keeps_its_own(db: TestStore) {
    let (gate, clock) = desk(&db.store, MissedExitPolicy::DailyMaximum);
    let method = |text| PaymentMethodToken::parse(text).unwrap();
    gate.sign_up(vec![plate("AB0123")], method("pm_card_visa"), None).await.unwrap();
    gate.sign_up(vec![plate("ABO123")], method("pm_card_amex"), None).await.unwrap();
    let stale = enter(&gate, "AB0123", at(8, 0)).await;
    let look_alike = enter(&gate, "ABO123", at(8, 1)).await;

    // The next day the car enters again: its exit was never read.
    clock.set(days_later(1, 9));
    let fresh = enter(&gate, "AB0123", days_later(1, 9)).await;

    assert_ne!(fresh, stale);
    assert!(matches!(state(&gate, stale).await, SessionState::Paid { exit, .. } if exit.price.total.minor == 2000));
    assert!(matches!(state(&gate, look_alike).await, SessionState::Open), "another account's car keeps its stay");
    let charges = gate.store().charges_for_session(stale).await.unwrap();
    assert_eq!(charges.len(), 1);
    let audit = gate.store().audit_events(at(0, 0)).await.unwrap();
    let [close] =
        &audit.iter().filter(|e| matches!(e.what, AuditAction::MissedExitClosed { .. })).collect::<Vec<_>>()[..]
    else {
        panic!("{audit:?}")
    };
    assert_eq!(close.who, OperatorId(GATE.into()));
    assert!(close.why.as_str().contains("entered again"), "{:?}", close.why);

    // Its exit now matches one stay, the new one, priced by the tariff.
    clock.set(days_later(1, 11));
    let exit = gate.handle_exit(&read("AB0123", Direction::Exit, days_later(1, 11))).await.unwrap();
    assert!(
        matches!(exit.decision.outcome, ExitOutcome::Charge { session, .. } if session == fresh),
        "{:?}",
        exit.decision
    );
    assert_eq!(exit.receipt.unwrap().total.minor, 600);

    // Under a `free` policy the stale stay closes owing nothing.
    let (free_gate, free_clock) = desk(&db.store, MissedExitPolicy::Free);
    let first = enter(&free_gate, "FR123EE", days_later(2, 8)).await;
    free_clock.set(days_later(3, 8));
    enter(&free_gate, "FR123EE", days_later(3, 8)).await;
    assert!(matches!(state(&free_gate, first).await, SessionState::Paid { exit, .. } if exit.price.total.is_zero()));
}
