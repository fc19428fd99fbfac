//! Receipts: only for paid sessions, only backed by the charge that paid them, plate masked.

use valet_garage::{
    Charge, ChargeRequest, Exit, IdempotencyKey, ParkingSession, Payer, Receipt, ReceiptError, SessionEvent, Stay,
};

use crate::helpers::{city_centre, driver_id, eur, minutes, monday, plate, session_id};

fn exited() -> ParkingSession {
    let mut session = ParkingSession::open(session_id(1), plate("AB12C34"), monday(), Payer::Registered(driver_id(1)));
    let at = monday() + minutes(120);
    let price = city_centre().price(&Stay::new(monday(), at));
    session.apply(SessionEvent::Exit(Exit { at, price })).unwrap();
    session
}

fn charge(session: u8, minor: i64, succeeded: bool) -> Charge {
    let request = ChargeRequest {
        idempotency_key: IdempotencyKey::for_session(session_id(session), 1),
        session: session_id(session),
        driver: driver_id(1),
        amount: eur(minor),
    };
    let mut charge = Charge::requested(&request, monday() + minutes(120));
    if succeeded {
        charge.succeed(monday() + minutes(121), "pi_123".into()).unwrap();
    }
    charge
}

fn paid() -> ParkingSession {
    let mut session = exited();
    session.apply(SessionEvent::PaymentSucceeded { at: monday() + minutes(121) }).unwrap();
    session
}

#[test]
fn a_paid_session_gets_a_receipt_with_the_plate_masked_and_the_charge_named() {
    let receipt = Receipt::for_session(&paid(), Some(&charge(1, 560, true))).unwrap();
    assert_eq!((receipt.plate.as_str(), receipt.total), ("AB•••34", eur(560)));
    let text = receipt.to_string();
    for expected in ["Plate AB•••34", "first hour: 4 × 15 min at €1.00", "€5.60", "pi_123"] {
        assert!(text.contains(expected), "{expected:?} missing from\n{text}");
    }
    assert!(!text.contains("AB12C34"), "{text}");
}

#[test]
fn a_receipt_the_payment_does_not_back_is_refused() {
    let table = [
        ("not paid yet", exited(), Some(charge(1, 560, true)), "NotPaid"),
        ("another session's charge", paid(), Some(charge(2, 560, true)), "OtherSession"),
        ("charge still pending", paid(), Some(charge(1, 560, false)), "NotSucceeded"),
        ("charge for another amount", paid(), Some(charge(1, 500, true)), "AmountMismatch"),
    ];
    for (case, session, charge, error) in table {
        let refused: ReceiptError = Receipt::for_session(&session, charge.as_ref()).unwrap_err();
        assert!(format!("{refused:?}").starts_with(error), "{case}: {refused:?}");
    }
}

#[test]
fn a_session_settled_without_a_charge_gets_a_receipt_without_one() {
    let receipt = Receipt::for_session(&paid(), None).unwrap();
    assert_eq!(receipt.paid_by, None);
}
