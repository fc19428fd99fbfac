//! Charges: idempotent requests, outcomes recorded once, and the outbox a retry worker resumes.

use std::sync::Arc;

use valet_garage::{ChargeRequest, ChargeState, Currency, IdempotencyKey, Money, Payer};
use valet_store::{RefundRecord, StoreError};

use super::{TestGarage, at, conformance, driver, unregistered_session};

conformance!(
    recording_the_same_charge_request_twice_keeps_one_charge,
    two_identical_charge_requests_at_once_make_one_charge_row,
    an_outcome_is_recorded_once_and_may_be_reported_again,
    charges_awaiting_an_outcome_are_the_outbox_a_retry_resumes,
    a_refund_is_recorded_once_by_its_key_and_once_by_the_providers_reference,
);

/// A registered driver's open session and the request to charge it €6.
async fn charge_setup(garage: &TestGarage, n: u8) -> ChargeRequest {
    let payer = driver(n, &[&format!("PAY{n}")]);
    garage.store.register_driver(&payer, at(1, 0, 0)).await.unwrap();
    let mut session = unregistered_session(n, &format!("PAY{n}"), at(2, 8, 0));
    session.payer = Payer::Registered(payer.id);
    garage.store.open_session(&session).await.unwrap();
    ChargeRequest {
        idempotency_key: IdempotencyKey::for_session(session.id, 1),
        session: session.id,
        driver: payer.id,
        amount: Money::new(600, Currency::EUR),
    }
}

async fn recording_the_same_charge_request_twice_keeps_one_charge(garage: TestGarage) {
    let store = &garage.store;
    let request = charge_setup(&garage, 1).await;
    let (first, created) = store.record_charge_request(&request, at(2, 10, 0)).await.unwrap();
    assert!(created);
    assert_eq!(first.request, request);
    assert_eq!(first.charge.state(), &ChargeState::Requested { at: at(2, 10, 0) });

    let (again, created) = store.record_charge_request(&request, at(2, 10, 5)).await.unwrap();
    assert!(!created, "a retry finds the first request");
    assert_eq!(again, first, "including its original time");
    assert_eq!(store.charges_for_session(request.session).await.unwrap().len(), 1);

    let other_amount = ChargeRequest { amount: Money::new(900, Currency::EUR), ..request.clone() };
    let err = store.record_charge_request(&other_amount, at(2, 10, 6)).await.unwrap_err();
    assert!(matches!(err, StoreError::ChargeKeyReused(ref key) if *key == request.idempotency_key), "{err}");
}

async fn two_identical_charge_requests_at_once_make_one_charge_row(garage: TestGarage) {
    let store = Arc::new(garage.store.clone());
    for n in 1..=8u8 {
        let request = charge_setup(&garage, n).await;
        let race = |store: Arc<valet_store::GarageStore>, request: ChargeRequest| async move {
            store.record_charge_request(&request, at(2, 10, 0)).await.unwrap()
        };
        let (a, b) = tokio::join!(
            tokio::spawn(race(store.clone(), request.clone())),
            tokio::spawn(race(store.clone(), request.clone()))
        );
        let ((a, a_created), (b, b_created)) = (a.unwrap(), b.unwrap());
        assert_eq!(a, b, "both callers see the same charge");
        assert!(a_created ^ b_created, "request {n}: exactly one call created the charge");
        assert_eq!(store.charges_for_session(request.session).await.unwrap().len(), 1);
    }
}

async fn an_outcome_is_recorded_once_and_may_be_reported_again(garage: TestGarage) {
    let store = &garage.store;
    let paid = charge_setup(&garage, 1).await;
    let refused = charge_setup(&garage, 2).await;
    for request in [&paid, &refused] {
        store.record_charge_request(request, at(2, 10, 0)).await.unwrap();
    }

    let key = &paid.idempotency_key;
    let done = store.record_charge_succeeded(key, at(2, 10, 1), "pi_1").await.unwrap();
    assert_eq!(done.charge.state(), &ChargeState::Succeeded { at: at(2, 10, 1), reference: "pi_1".into() });
    let again = store.record_charge_succeeded(key, at(2, 10, 9), "pi_1").await.unwrap();
    assert_eq!(again, done, "the same success reported again changes nothing");
    assert!(matches!(store.record_charge_succeeded(key, at(2, 11, 0), "pi_2").await, Err(StoreError::Charge(_))));
    assert!(matches!(store.record_charge_failed(key, at(2, 11, 0), "declined").await, Err(StoreError::Charge(_))));

    let key = &refused.idempotency_key;
    store.record_charge_failed(key, at(2, 10, 1), "card declined").await.unwrap();
    store.record_charge_failed(key, at(2, 10, 2), "card declined").await.unwrap();
    assert!(matches!(store.record_charge_succeeded(key, at(2, 11, 0), "pi_3").await, Err(StoreError::Charge(_))));
    let stored = store.charge(key).await.unwrap().unwrap();
    assert_eq!(stored.charge.state(), &ChargeState::Failed { at: at(2, 10, 1), reason: "card declined".into() });

    let unknown = IdempotencyKey::for_session(super::session_id(77), 1);
    assert!(matches!(store.record_charge_failed(&unknown, at(2, 12, 0), "x").await, Err(StoreError::UnknownCharge(_))));
}

/// A crash between "charge requested" and "outcome recorded" leaves the charge in the outbox; the
/// retry worker finds it with its original key and amount.
async fn charges_awaiting_an_outcome_are_the_outbox_a_retry_resumes(garage: TestGarage) {
    let store = &garage.store;
    let settled = charge_setup(&garage, 1).await;
    let crashed = charge_setup(&garage, 2).await;
    store.record_charge_request(&crashed, at(2, 10, 0)).await.unwrap();
    store.record_charge_request(&settled, at(2, 10, 1)).await.unwrap();
    store.record_charge_succeeded(&settled.idempotency_key, at(2, 10, 2), "pi_1").await.unwrap();

    let outbox = store.charges_awaiting_outcome().await.unwrap();
    assert_eq!(outbox.iter().map(|c| &c.request).collect::<Vec<_>>(), vec![&crashed]);

    store.record_charge_succeeded(&crashed.idempotency_key, at(2, 10, 30), "pi_2").await.unwrap();
    assert!(store.charges_awaiting_outcome().await.unwrap().is_empty());
}

/// The desk records a refund it made under its key; a webhook may hear of the same refund first
/// and record it under another: the provider's reference keeps it one refund.
async fn a_refund_is_recorded_once_by_its_key_and_once_by_the_providers_reference(garage: TestGarage) {
    let store = &garage.store;
    let request = charge_setup(&garage, 5).await;
    store.record_charge_request(&request, at(2, 10, 0)).await.unwrap();
    store.record_charge_succeeded(&request.idempotency_key, at(2, 10, 1), "pi_5").await.unwrap();
    let refund = |key: &str, reference: &str| RefundRecord {
        key: key.to_owned(),
        session: request.session,
        charge: request.idempotency_key.clone(),
        amount: Money::new(100, Currency::EUR),
        reference: reference.to_owned(),
        by: "test".to_owned(),
        reason: "test".to_owned(),
        at: at(2, 11, 0),
    };
    assert!(store.record_refund(&refund("provider-re_1", "re_1")).await.unwrap());
    assert!(!store.record_refund(&refund("provider-re_1", "re_1")).await.unwrap(), "the same key");
    assert!(!store.record_refund(&refund("valet-refund-desk", "re_1")).await.unwrap(), "the same reference");
    assert!(store.record_refund(&refund("valet-refund-other", "re_2")).await.unwrap());
    let recorded: Vec<String> =
        store.refunds_for_session(request.session).await.unwrap().into_iter().map(|r| r.key).collect();
    assert_eq!(recorded, ["provider-re_1", "valet-refund-other"]);
}
