//! Fuzz target: a Stripe webhook delivery, `verify_signature` on an arbitrary `Stripe-Signature`
//! header and body at an arbitrary `now`, and `read_event` on the body.
//!
//! The input is three parts: the header's line, `now` (Unix seconds) on the second line, the body.
//! In the header, `{sig}` stands for Stripe's own signature of the body at `now`.
//!
//! Invariants: neither panics; a header made without the secret never verifies; `{sig}` alone
//! always does; a verified body with one byte more does not; an event that was read displays its
//! amount.

#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use valet_billing::{Notice, StripeWebhookSecret, WebhookError, read_event, verify_signature};

fn line(input: &[u8]) -> (&[u8], &[u8]) {
    match input.iter().position(|b| *b == b'\n') {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (input, &[]),
    }
}

fuzz_target!(|input: &[u8]| {
    let (header, rest) = line(input);
    let (now, body) = line(rest);
    let Ok(header) = std::str::from_utf8(header) else { return };
    let now = std::str::from_utf8(now).ok().and_then(|n| n.trim().parse::<i64>().ok()).unwrap_or(1_780_000_000);
    let now = DateTime::from_timestamp(now, 0).unwrap_or_else(Utc::now);
    let secret = StripeWebhookSecret::parse("whsec_fuzz").expect("a valid secret");

    // Forging an HMAC-SHA256 without the secret is beyond a fuzzer, so a header it wrote is refused.
    assert!(verify_signature(&secret, body, header, now).is_err(), "a header not made with the secret verified");

    let signed = header.replace("{sig}", &secret.sign(body, now));
    let verdict = verify_signature(&secret, body, &signed, now);
    if header == "{sig}" {
        assert_eq!(verdict, Ok(()), "Stripe's own signature {signed:?} at {now}");
    }
    if verdict.is_ok() {
        let longer = [body, b"\n"].concat();
        assert_eq!(verify_signature(&secret, &longer, &signed, now), Err(WebhookError::Signature));
    }

    if let Ok(notice) = read_event(body) {
        match &notice.what {
            Notice::Paid(payment) | Notice::NotPaid { payment, .. } => {
                let _ = payment.amount.to_string();
            }
            Notice::Refunded { .. } | Notice::Other => {}
        }
    }
});
