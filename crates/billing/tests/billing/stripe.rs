//! The Stripe adapter against the local stand-in: the documented form fields and headers, retries
//! on the same idempotency key, declines, refunds and saving a card.

use std::time::Duration;

use valet_billing::{
    GatewayError, Notice, PaymentGateway, RefundKey, RefundRequest, StripeGateway, StripeSecretKey,
    StripeWebhookSecret, read_event, verify_signature,
};

use valet_garage::Money;

use crate::helpers::{driver, exit_charge, stripe_card, usd};
use crate::stripe_standin::{SECRET_KEY, StripeStandin};

#[tokio::test]
async fn an_off_session_charge_sends_the_documented_form_fields_and_its_idempotency_key() {
    let stripe = StripeStandin::start().await;
    let request = exit_charge(10, 1, 600);

    let charge = stripe.gateway().charge(&request, &stripe_card("pm_card_visa")).await.unwrap();

    assert_eq!(charge.amount, usd(600));
    assert_eq!(stripe.succeeded_payment_intents(), [(charge.reference.clone(), 600)]);
    let [sent] = &stripe.received_at("/v1/payment_intents")[..] else { panic!("{:?}", stripe.received()) };
    assert_eq!(sent.idempotency_key.as_deref(), Some(request.idempotency_key.as_str()));
    assert_eq!(sent.authorization.as_deref(), Some(format!("Bearer {SECRET_KEY}").as_str()));
    assert_eq!(sent.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    for (name, value) in [
        ("amount", "600"),
        ("currency", "usd"),
        ("customer", "cus_standin1"),
        ("payment_method", "pm_card_visa"),
        ("off_session", "true"),
        ("confirm", "true"),
    ] {
        assert_eq!(sent.field(name), Some(value), "{name}");
    }
    assert_eq!(sent.field("metadata[valet_session]"), Some(request.session.to_string().as_str()));
}

#[tokio::test]
async fn a_charge_whose_answer_was_lost_is_retried_with_the_same_key_and_charged_once() {
    let stripe = StripeStandin::start().await;
    let gateway = stripe.gateway_with_timeout(Duration::from_millis(300));
    let request = exit_charge(10, 1, 600);
    let card = stripe_card("pm_card_visa");
    stripe.answer_late_next(Duration::from_secs(2));

    let lost = gateway.charge(&request, &card).await;
    assert!(matches!(lost, Err(GatewayError::Transient { .. })), "{lost:?}");
    let retried = gateway.charge(&request, &card).await.unwrap();

    assert_eq!(stripe.succeeded_payment_intents(), [(retried.reference, 600)]);
    let sent = stripe.received_at("/v1/payment_intents");
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|r| r.idempotency_key.as_deref() == Some(request.idempotency_key.as_str())));
    assert!(sent[1].replayed, "the retry must be answered from the first attempt");
}

#[tokio::test]
async fn a_rate_limited_charge_is_transient_and_the_retry_with_the_same_key_charges_once() {
    let stripe = StripeStandin::start().await;
    let gateway = stripe.gateway();
    let request = exit_charge(10, 1, 600);
    let card = stripe_card("pm_card_visa");
    stripe.rate_limit_next(2);

    for _ in 0..2 {
        let result = gateway.charge(&request, &card).await;
        assert!(matches!(result, Err(GatewayError::Transient { .. })), "{result:?}");
    }
    gateway.charge(&request, &card).await.unwrap();

    assert_eq!(stripe.succeeded_payment_intents().len(), 1);
}

#[tokio::test]
async fn a_declined_card_is_final_and_a_retry_replays_the_refusal() {
    let stripe = StripeStandin::start().await;
    let gateway = stripe.gateway();
    let request = exit_charge(10, 1, 600);
    let card = stripe_card("pm_card_chargeDeclinedInsufficientFunds");
    stripe.decline("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds");

    for _ in 0..2 {
        let error = gateway.charge(&request, &card).await.unwrap_err();
        assert!(error.is_final(), "{error:?}");
        assert_eq!(
            error,
            GatewayError::Declined {
                code: Some("insufficient_funds".into()),
                message: "Your card was declined.".into()
            }
        );
    }
    assert!(stripe.succeeded_payment_intents().is_empty());
    assert!(stripe.received_at("/v1/payment_intents")[1].replayed);
}

#[tokio::test]
async fn a_key_reused_with_another_amount_is_refused_not_charged() {
    let stripe = StripeStandin::start().await;
    let gateway = stripe.gateway();
    let card = stripe_card("pm_card_visa");
    gateway.charge(&exit_charge(10, 1, 600), &card).await.unwrap();

    let result = gateway.charge(&exit_charge(10, 1, 900), &card).await;

    assert!(matches!(result, Err(GatewayError::Rejected { .. })), "{result:?}");
    assert_eq!(stripe.succeeded_payment_intents().len(), 1);
}

#[tokio::test]
async fn a_partial_refund_then_the_rest_sends_the_payment_intent_amount_and_key() {
    let stripe = StripeStandin::start().await;
    let gateway = stripe.gateway();
    let charge = gateway.charge(&exit_charge(10, 1, 600), &stripe_card("pm_card_visa")).await.unwrap();
    let refund = |key: &str, amount| RefundRequest {
        key: RefundKey(key.into()),
        charge_reference: charge.reference.clone(),
        amount,
    };

    let partial = gateway.refund(&refund("refund-1", Some(usd(250)))).await.unwrap();
    let rest = gateway.refund(&refund("refund-2", None)).await.unwrap();
    let too_much = gateway.refund(&refund("refund-3", Some(usd(1)))).await;

    assert_eq!((partial.amount, rest.amount), (usd(250), usd(350)));
    assert!(matches!(too_much, Err(GatewayError::Rejected { .. })), "{too_much:?}");
    let sent = stripe.received_at("/v1/refunds");
    assert_eq!(sent[0].field("payment_intent"), Some(charge.reference.as_str()));
    assert_eq!(sent[0].field("amount"), Some("250"));
    assert_eq!(sent[0].idempotency_key.as_deref(), Some("refund-1"));
    assert_eq!(sent[1].field("amount"), None, "no amount refunds the rest");
}

#[tokio::test]
async fn saving_a_card_goes_through_a_setup_intent_and_gives_a_customer_and_payment_method_token() {
    let stripe = StripeStandin::start().await;
    let gateway = stripe.gateway();

    let customer = gateway.create_customer(driver(1)).await.unwrap();
    let setup = gateway.start_card_setup(&customer).await.unwrap();
    let not_yet = gateway.saved_payment_method(&setup.id).await;
    stripe.complete_card_setup(&setup.id, "pm_card_visa");
    let token = gateway.saved_payment_method(&setup.id).await.unwrap();

    assert!(matches!(not_yet, Err(GatewayError::Declined { .. })), "{not_yet:?}");
    assert!(setup.client_secret.is_some());
    assert_eq!(token.as_str(), format!("{}/pm_card_visa", customer.0));
    let [created] = &stripe.received_at("/v1/customers")[..] else { panic!() };
    assert_eq!(created.idempotency_key, Some(format!("valet-customer-{}", driver(1))));
    let [sent] = &stripe.received_at("/v1/setup_intents")[..] else { panic!() };
    assert_eq!(sent.field("customer"), Some(customer.0.as_str()));
    assert_eq!(sent.field("payment_method_types[]"), Some("card"));
    assert_eq!(sent.field("usage"), Some("off_session"));
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused_and_never_retried_as_transient() {
    let stripe = StripeStandin::start().await;
    let mut config = stripe.config();
    config.secret_key = StripeSecretKey::parse("sk_test_wrong").unwrap();
    let gateway = StripeGateway::new(config).unwrap();

    let result = gateway.charge(&exit_charge(10, 1, 600), &stripe_card("pm_card_visa")).await;

    assert!(matches!(result, Err(GatewayError::Rejected { .. })), "{result:?}");
    assert!(!result.unwrap_err().to_string().contains("sk_test_wrong"));
}

#[tokio::test]
async fn an_unreachable_stripe_is_transient() {
    let stripe = StripeStandin::start().await;
    let mut config = stripe.config();
    // A port nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    config.api_base = format!("https://{closed}");
    let gateway = StripeGateway::new(config).unwrap();

    let result = gateway.charge(&exit_charge(10, 1, 600), &stripe_card("pm_card_visa")).await;

    assert!(matches!(result, Err(GatewayError::Transient { .. })), "{result:?}");
    assert!(stripe.received().is_empty());
}

/// The adapter checks Stripe's certificate: a server whose CA it does not trust is never sent the
/// key or the charge, and the charge stays retryable rather than failed.
#[tokio::test]
async fn a_server_with_an_untrusted_certificate_is_never_sent_the_charge() {
    let stripe = StripeStandin::start().await;
    let mut config = stripe.config();
    config.extra_roots_pem = None;
    let gateway = StripeGateway::new(config).unwrap();

    let result = gateway.charge(&exit_charge(10, 1, 600), &stripe_card("pm_card_visa")).await;

    assert!(matches!(&result, Err(GatewayError::Transient { message }) if message.contains("reached")), "{result:?}");
    assert!(stripe.received().is_empty(), "{:?}", stripe.received());
}

/// Plain http to the stand-in's TLS port reaches nothing: the handshake is all it will speak.
#[tokio::test]
async fn plain_http_to_a_tls_stripe_is_transient_and_sends_nothing() {
    let stripe = StripeStandin::start().await;
    let mut config = stripe.config();
    config.api_base = stripe.base.replace("https://", "http://");
    let gateway = StripeGateway::new(config).unwrap();

    let result = gateway.charge(&exit_charge(10, 1, 600), &stripe_card("pm_card_visa")).await;

    assert!(matches!(result, Err(GatewayError::Transient { .. })), "{result:?}");
    assert!(stripe.received().is_empty());
}

/// `refunds_of` lists what Stripe holds, whoever refunded: Valet's refund and one made in Stripe's
/// dashboard, oldest first.
#[tokio::test]
async fn refunds_made_by_valet_and_in_stripes_dashboard_are_listed_oldest_first() {
    let stripe = StripeStandin::start().await;
    let gateway = stripe.gateway();
    let charge = gateway.charge(&exit_charge(10, 1, 600), &stripe_card("pm_card_visa")).await.unwrap();
    let by_valet = RefundRequest {
        key: RefundKey("valet-refund-1".into()),
        charge_reference: charge.reference.clone(),
        amount: Some(usd(100)),
    };
    let made = gateway.refund(&by_valet).await.unwrap();
    let outside = stripe.refund_in_dashboard(&charge.reference, 250);

    let listed = gateway.refunds_of(&charge.reference).await.unwrap();

    let listed: Vec<(String, Money)> = listed.into_iter().map(|r| (r.reference, r.amount)).collect();
    assert_eq!(listed, [(made.reference, usd(100)), (outside, usd(250))]);
    assert!(gateway.refunds_of("pi_nosuch").await.is_err());
    assert!(gateway.refunds_of("pi_../x").await.is_err(), "not a Stripe id: never part of a URL");
}

/// Stripe took the money and answered 500: the charge is transient for Valet, and Stripe's
/// `payment_intent.succeeded` event, signed and read back, names the charge by Valet's key.
#[tokio::test]
async fn a_payment_whose_answer_was_lost_is_named_by_its_key_in_stripes_event() {
    let stripe = StripeStandin::start().await;
    let request = exit_charge(10, 1, 600);
    stripe.fail_after_running_next();
    let lost = stripe.gateway().charge(&request, &stripe_card("pm_card_visa")).await;
    assert!(matches!(lost, Err(GatewayError::Transient { .. })), "{lost:?}");
    let [(intent, "succeeded")] = &stripe.payment_intents()[..] else { panic!("{:?}", stripe.payment_intents()) };

    let body = stripe.event("evt_1", "payment_intent.succeeded", intent);
    let secret = StripeWebhookSecret::parse("whsec_billing_test").unwrap();
    verify_signature(&secret, &body, &secret.sign(&body, chrono::Utc::now()), chrono::Utc::now()).unwrap();
    let notice = read_event(&body).unwrap();

    let Notice::Paid(payment) = notice.what else { panic!("{notice:?}") };
    assert_eq!(
        (payment.reference.as_str(), payment.key, payment.amount),
        (intent.as_str(), Some(request.idempotency_key), usd(600))
    );
}

/// A declined card stays declined under its key; once the bank says yes, a new key charges it.
#[tokio::test]
async fn a_card_declined_then_topped_up_is_charged_under_a_new_key() {
    let stripe = StripeStandin::start().await;
    stripe.decline("pm_card_chargeDeclined", "insufficient_funds");
    let gateway = stripe.gateway();
    let card = stripe_card("pm_card_chargeDeclined");
    let first = exit_charge(10, 1, 600);
    assert!(matches!(gateway.charge(&first, &card).await, Err(GatewayError::Declined { .. })));

    stripe.allow("pm_card_chargeDeclined");
    let replayed = gateway.charge(&first, &card).await;
    let mut second = exit_charge(10, 1, 600);
    second.idempotency_key = valet_garage::IdempotencyKey::for_session(second.session, 2);
    let charged = gateway.charge(&second, &card).await.unwrap();

    assert!(matches!(replayed, Err(GatewayError::Declined { .. })), "the first key replays its refusal");
    assert_eq!(stripe.succeeded_payment_intents(), [(charged.reference, 600)]);
}
