//! Shared test values: charge requests, fixed times, and drivers signed up with the ledger.

use chrono::{DateTime, TimeZone, Utc};
use valet_billing::{LedgerGateway, PaymentGateway};
use valet_garage::{ChargeRequest, Currency, DriverId, IdempotencyKey, Money, PaymentMethodToken, SessionId};

pub fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 18, minute, 0).unwrap()
}

pub fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD)
}

pub fn driver(n: u8) -> DriverId {
    DriverId::from_bytes([n; 16])
}

/// The exit charge (attempt 1) of session `session` for `driver`.
pub fn exit_charge(session: u8, driver_n: u8, minor: i64) -> ChargeRequest {
    let session = SessionId::from_bytes([session; 16]);
    ChargeRequest {
        idempotency_key: IdempotencyKey::for_session(session, 1),
        session,
        driver: driver(driver_n),
        amount: usd(minor),
    }
}

/// Signs `driver` up with the ledger as the portal would, returning their payment method.
pub async fn ledger_account(ledger: &LedgerGateway, driver: DriverId) -> PaymentMethodToken {
    let customer = ledger.create_customer(driver).await.unwrap();
    let setup = ledger.start_card_setup(&customer).await.unwrap();
    ledger.saved_payment_method(&setup.id).await.unwrap()
}

/// The token the Stripe adapter gives a customer with a saved card.
pub fn stripe_card(payment_method: &str) -> PaymentMethodToken {
    PaymentMethodToken::parse(&format!("cus_standin1/{payment_method}")).unwrap()
}
