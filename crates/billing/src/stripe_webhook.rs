//! Stripe's webhooks: checking that a delivery came from Stripe, and reading it into a
//! [`ProviderNotice`] the garage acts on.
//!
//! A delivery is believed only if its `Stripe-Signature` header carries, as Stripe documents, a
//! timestamp `t` within [`SIGNATURE_TOLERANCE`] of now and a `v1` signature equal to
//! HMAC-SHA256(`t.body`) under the endpoint's secret. During a secret rotation Stripe signs with
//! both secrets, so any one `v1` that matches will do; signatures are compared in constant time.
//! The body is read only after the signature holds, so nothing unsigned is even parsed.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use valet_garage::{Currency, IdempotencyKey, Money};

/// How far a delivery's timestamp may be from now: Stripe's libraries' default. It bounds how
/// long a captured delivery can be replayed; the inbox catches replays within it.
pub const SIGNATURE_TOLERANCE: TimeDelta = TimeDelta::minutes(5);

/// The signing secret of one webhook endpoint (`whsec_…`). `Debug` shows only its kind.
#[derive(Clone, PartialEq, Eq)]
pub struct StripeWebhookSecret(String);

impl StripeWebhookSecret {
    pub fn parse(text: &str) -> Result<StripeWebhookSecret, WebhookError> {
        let text = text.trim();
        let looks_right = text.starts_with("whsec_")
            && text.len() > "whsec_".len()
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if looks_right { Ok(StripeWebhookSecret(text.to_owned())) } else { Err(WebhookError::Secret) }
    }

    /// `t=…,v1=…`, as Stripe would sign `payload` at `at`: for tests and stand-ins.
    pub fn sign(&self, payload: &[u8], at: DateTime<Utc>) -> String {
        let t = at.timestamp();
        format!("t={t},v1={}", hex::encode(self.mac(t, payload).finalize().into_bytes()))
    }

    fn mac(&self, t: i64, payload: &[u8]) -> Hmac<Sha256> {
        // Stripe keys the HMAC with the whole secret, prefix included.
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.as_bytes()).expect("HMAC takes a key of any length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        mac
    }
}

impl fmt::Debug for StripeWebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StripeWebhookSecret(whsec_…)")
    }
}

/// Why a delivery was refused. Each one is answered 400 and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Not echoed: this message may be logged.
    #[error("a Stripe webhook secret starts with whsec_ and holds only letters, digits and underscores")]
    Secret,
    #[error("the Stripe-Signature header is missing or malformed: {0}")]
    Header(&'static str),
    #[error("the delivery was signed {age_secs} s from now, more than the {} s allowed", SIGNATURE_TOLERANCE.num_seconds())]
    Stale { age_secs: i64 },
    #[error("no v1 signature matches the body under this endpoint's secret")]
    Signature,
    #[error("the event is not one Stripe sends: {0}")]
    Event(String),
}

/// Checks a delivery's `Stripe-Signature` header against its exact body, at `now`.
pub fn verify_signature(
    secret: &StripeWebhookSecret,
    payload: &[u8],
    header: &str,
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let (name, value) = item.trim().split_once('=').ok_or(WebhookError::Header("an item without '='"))?;
        match name {
            "t" if timestamp.is_none() => {
                timestamp = Some(value.parse::<i64>().map_err(|_| WebhookError::Header("t is not a number"))?);
            }
            "t" => return Err(WebhookError::Header("two timestamps")),
            // A signature that is not hex cannot match; it is skipped like an unknown scheme.
            "v1" => signatures.extend(hex::decode(value).ok()),
            // v0 (test mode's old scheme) and future schemes are not trusted.
            _ => {}
        }
    }
    let t = timestamp.ok_or(WebhookError::Header("no t"))?;
    if signatures.is_empty() {
        return Err(WebhookError::Header("no v1 signature"));
    }
    let age_secs = now.timestamp().saturating_sub(t);
    if age_secs.abs() > SIGNATURE_TOLERANCE.num_seconds() {
        return Err(WebhookError::Stale { age_secs });
    }
    let mac = secret.mac(t, payload);
    // `verify_slice` compares in constant time.
    if signatures.iter().any(|signature| mac.clone().verify_slice(signature).is_ok()) {
        Ok(())
    } else {
        Err(WebhookError::Signature)
    }
}

/// What a payment provider reports after the fact, in the garage's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderNotice {
    /// The provider's event id (`evt_…`): one notice is acted on once.
    pub id: String,
    /// The provider's event type, for logs and answers.
    pub kind: String,
    pub at: DateTime<Utc>,
    pub what: Notice,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A payment took the money.
    Paid(NoticedPayment),
    /// A payment cannot take the money without the driver: declined, or waiting for them to
    /// authenticate (SCA), which an off-session charge never can.
    NotPaid { payment: NoticedPayment, reason: String },
    /// The charge `reference` has refunds; which ones is asked of the provider
    /// ([`crate::PaymentGateway::refunds_of`]), since the event need not list them.
    Refunded { reference: String },
    /// An event the garage does not act on.
    Other,
}

/// A payment a notice is about: the provider's reference, and the key Valet charged it under when
/// Valet made it (Stripe's `metadata.valet_charge`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticedPayment {
    pub reference: String,
    pub key: Option<IdempotencyKey>,
    pub amount: Money,
}

/// Reads a verified delivery's body. An event of a type the garage does not act on is
/// [`Notice::Other`], not an error: Stripe must not retry it.
pub fn read_event(payload: &[u8]) -> Result<ProviderNotice, WebhookError> {
    let event: Value = serde_json::from_slice(payload).map_err(|e| WebhookError::Event(e.to_string()))?;
    let field = |name: &str| event[name].as_str().ok_or_else(|| WebhookError::Event(format!("no {name}")));
    let id = field("id")?.to_owned();
    let kind = field("type")?.to_owned();
    let created = event["created"].as_i64().ok_or_else(|| WebhookError::Event("no created".into()))?;
    let at =
        DateTime::from_timestamp(created, 0).ok_or_else(|| WebhookError::Event("created is out of range".into()))?;
    let object = &event["data"]["object"];
    let what = match kind.as_str() {
        "payment_intent.succeeded" => Notice::Paid(payment(object)?),
        "payment_intent.payment_failed" => {
            let error = &object["last_payment_error"];
            let code = error["decline_code"].as_str().or(error["code"].as_str()).unwrap_or("payment_failed");
            let message = error["message"].as_str().unwrap_or("the payment failed");
            Notice::NotPaid { payment: payment(object)?, reason: format!("declined ({code}): {message}") }
        }
        "payment_intent.requires_action" => Notice::NotPaid {
            payment: payment(object)?,
            reason: "declined (authentication_required): the bank asks the driver to authenticate".into(),
        },
        "charge.refunded" => {
            let reference =
                object["payment_intent"].as_str().ok_or_else(|| WebhookError::Event("no payment_intent".into()))?;
            Notice::Refunded { reference: reference.to_owned() }
        }
        _ => Notice::Other,
    };
    Ok(ProviderNotice { id, kind, at, what })
}

fn payment(intent: &Value) -> Result<NoticedPayment, WebhookError> {
    let reference = intent["id"].as_str().ok_or_else(|| WebhookError::Event("the payment has no id".into()))?;
    let minor = intent["amount"].as_i64().ok_or_else(|| WebhookError::Event("the payment has no amount".into()))?;
    let currency =
        intent["currency"].as_str().ok_or_else(|| WebhookError::Event("the payment has no currency".into()))?;
    let currency = Currency::parse(currency).map_err(|e| WebhookError::Event(e.to_string()))?;
    // The key is read through serde, as the store reads one back: the domain makes keys only
    // from sessions.
    let key = intent["metadata"]["valet_charge"].as_str().and_then(|key| serde_json::from_value(Value::from(key)).ok());
    Ok(NoticedPayment { reference: reference.to_owned(), key, amount: Money::new(minor, currency) })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn secret() -> StripeWebhookSecret {
        StripeWebhookSecret::parse("whsec_test_secret").unwrap()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn a_secret_is_checked_and_never_shown() {
        assert_eq!(format!("{:?}", secret()), "StripeWebhookSecret(whsec_…)");
        for bad in ["", "whsec_", "sk_test_1", "whsec_a b", "whsec_\"x"] {
            let error = StripeWebhookSecret::parse(bad).unwrap_err().to_string();
            assert!(!error.contains("test_1"), "{error}");
        }
    }

    /// The signature an independent HMAC-SHA256 gives for `t.body` (computed with `openssl dgst
    /// -sha256 -hmac whsec_test_secret` over `1700000000.{"id":"evt_1"}`), so `sign` is checked
    /// against more than itself.
    #[test]
    fn the_signature_is_hmac_sha256_of_the_timestamp_and_body() {
        let header = secret().sign(br#"{"id":"evt_1"}"#, at(0));
        assert_eq!(header, "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a");
    }

    /// Each row: a header for the body `{}` and whether it is believed at `at(0)`.
    #[test]
    fn only_a_fresh_matching_v1_signature_is_believed() {
        let body = b"{}";
        let good = secret().sign(body, at(0));
        let good_v1 = good.split_once(",v1=").unwrap().1.to_owned();
        let other = StripeWebhookSecret::parse("whsec_other").unwrap().sign(body, at(0));
        let other_v1 = other.split_once(",v1=").unwrap().1.to_owned();
        let table: Vec<(String, Result<(), WebhookError>)> = vec![
            (good.clone(), Ok(())),
            // Rotation: the old secret's signature and the new one's, in either order.
            (format!("t=1700000000,v1={other_v1},v1={good_v1}"), Ok(())),
            (format!("t=1700000000,v1={good_v1},v1={other_v1}"), Ok(())),
            (format!("t=1700000000,v0=abc,v1={good_v1}"), Ok(())),
            (other, Err(WebhookError::Signature)),
            (format!("t=1700000000,v0={good_v1}"), Err(WebhookError::Header("no v1 signature"))),
            (format!("t=1700000001,v1={good_v1}"), Err(WebhookError::Signature)),
            (format!("t=1699999000,v1={good_v1}"), Err(WebhookError::Stale { age_secs: 1000 })),
            (secret().sign(body, at(-301)), Err(WebhookError::Stale { age_secs: 301 })),
            (secret().sign(body, at(301)), Err(WebhookError::Stale { age_secs: -301 })),
            (format!("v1={good_v1}"), Err(WebhookError::Header("no t"))),
            (format!("t=soon,v1={good_v1}"), Err(WebhookError::Header("t is not a number"))),
            (format!("t=1,t=1700000000,v1={good_v1}"), Err(WebhookError::Header("two timestamps"))),
            ("".into(), Err(WebhookError::Header("an item without '='"))),
            (format!("t=1700000000,v1={}", &good_v1[..10]), Err(WebhookError::Signature)),
            (format!("t=1700000000,v1=zz{}", &good_v1[2..]), Err(WebhookError::Header("no v1 signature"))),
        ];
        for (header, expected) in table {
            assert_eq!(verify_signature(&secret(), body, &header, at(0)), expected, "{header}");
        }
        // Within the tolerance either way is fine: clocks drift.
        assert_eq!(verify_signature(&secret(), body, &secret().sign(body, at(-300)), at(0)), Ok(()));
        // One byte of the body changed.
        assert_eq!(verify_signature(&secret(), b"{ }", &good, at(0)), Err(WebhookError::Signature));
    }

    #[test]
    fn the_four_events_the_garage_acts_on_are_read_and_others_are_left_alone() {
        let intent = json!({"id": "pi_1", "amount": 300, "currency": "eur",
            "metadata": {"valet_charge": "valet-session-x-1", "valet_session": "x"},
            "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card has insufficient funds."}});
        let event = |kind: &str, object: &Value| {
            serde_json::to_vec(
                &json!({"id": "evt_1", "type": kind, "created": 1_700_000_000, "data": {"object": object}}),
            )
            .unwrap()
        };
        let key: IdempotencyKey = serde_json::from_value(json!("valet-session-x-1")).unwrap();
        let payment = NoticedPayment {
            reference: "pi_1".into(),
            key: Some(key),
            amount: Money::new(300, Currency::parse("EUR").unwrap()),
        };

        let paid = read_event(&event("payment_intent.succeeded", &intent)).unwrap();
        assert_eq!((paid.id.as_str(), paid.at, &paid.what), ("evt_1", at(0), &Notice::Paid(payment.clone())));
        let failed = read_event(&event("payment_intent.payment_failed", &intent)).unwrap().what;
        let Notice::NotPaid { payment: p, reason } = failed else { panic!("{failed:?}") };
        assert_eq!(
            (p, reason.as_str()),
            (payment.clone(), "declined (insufficient_funds): Your card has insufficient funds.")
        );
        let sca = read_event(&event("payment_intent.requires_action", &intent)).unwrap().what;
        assert!(
            matches!(&sca, Notice::NotPaid { reason, .. } if reason.contains("authentication_required")),
            "{sca:?}"
        );
        let refunded = read_event(&event("charge.refunded", &json!({"id": "ch_1", "payment_intent": "pi_1"}))).unwrap();
        assert_eq!(refunded.what, Notice::Refunded { reference: "pi_1".into() });
        assert_eq!(read_event(&event("customer.created", &json!({"id": "cus_1"}))).unwrap().what, Notice::Other);

        // A payment Valet did not make has no key; it is still read.
        let theirs =
            read_event(&event("payment_intent.succeeded", &json!({"id": "pi_2", "amount": 5, "currency": "usd"})))
                .unwrap();
        assert!(matches!(theirs.what, Notice::Paid(NoticedPayment { key: None, .. })));
        for broken in [
            &b"not json"[..],
            br#"{"id":"evt_1"}"#,
            br#"{"id":"evt_1","type":"payment_intent.succeeded","created":1,"data":{"object":{}}}"#,
        ] {
            assert!(matches!(read_event(broken), Err(WebhookError::Event(_))), "{}", String::from_utf8_lossy(broken));
        }
    }
}
