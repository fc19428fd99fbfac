//! The dashboard's charges, against a real `valet serve` charging through Stripe (valet-billing's
//! TLS stand-in): a refused card leaves a stay in "Unpaid" with the bank's reason, and Stripe's
//! lost answer leaves a charge in "Outcome unknown". The operator asks Stripe now (the charge is
//! found, not sent again) and, once the driver has topped the card up, charges the stay again.

use super::*;

#[path = "../../../billing/tests/billing/stripe_standin.rs"]
#[allow(dead_code)]
mod stripe_standin;

use stripe_standin::{SECRET_KEY, StripeStandin};

/// Signs `plate` up with a card saved at the stand-in as `card`.
async fn sign_up_with_stripe(garage: &Garage, stripe: &StripeStandin, plate: &str, card: &str) {
    let client = reqwest::Client::new();
    let setup: Value =
        client.post(format!("{}/v1/card-setups", garage.url)).send().await.unwrap().json().await.unwrap();
    let setup = setup["card_setup"].as_str().unwrap_or_else(|| panic!("{setup}")).to_owned();
    stripe.complete_card_setup(&setup, card);
    let signed = client
        .post(format!("{}/v1/drivers", garage.url))
        .json(&json!({ "plates": [plate], "card_setup": setup }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_asks_stripe_about_an_unknown_charge_and_charges_a_refused_stay_again() {
    let stripe = StripeStandin::start().await;
    stripe.decline("pm_card_chargeDeclined", "insufficient_funds");
    let env = [
        ("VALET_PAYMENT_GATEWAY", "stripe".to_owned()),
        ("VALET_STRIPE_SECRET_KEY", SECRET_KEY.to_owned()),
        ("VALET_STRIPE_API_BASE", stripe.base.clone()),
        ("VALET_STRIPE_CA_FILE", stripe.ca_file.display().to_string()),
        ("VALET_STRIPE_PUBLISHABLE_KEY", "pk_test_standin".to_owned()),
    ];
    in_browser_with("charges", &env, |browser, garage| async move {
        sign_up_with_stripe(&garage, &stripe, "DC100AA", "pm_card_chargeDeclined").await;
        sign_up_with_stripe(&garage, &stripe, "LA200BB", "pm_card_visa").await;
        garage.plate_read("lane-entry", "entry", "DC100AA", 0.98).await;
        garage.plate_read("lane-entry", "entry", "LA200BB", 0.98).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        garage.plate_read("lane-exit", "exit", "DC100AA", 0.98).await;
        stripe.fail_after_running_next();
        garage.plate_read("lane-exit", "exit", "LA200BB", 0.98).await;

        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        assert_eq!(browser.text("#pending-count").await, "1");
        assert_eq!(browser.text("#unpaid-count").await, "1");
        let refused = browser.text("#unpaid-stays").await;
        assert!(refused.contains("DC100AA") && refused.contains("insufficient_funds"), "{refused}");
        document(&browser, "charges.png").await;

        // Stripe took LA200BB's money and its answer was lost: asking finds it.
        browser.click("form.reconcile button").await;
        assert_eq!(browser.wait_text("#pending-count", |t| t == "0").await, "0");
        assert_eq!(stripe.received_at("/v1/payment_intents").len(), 2, "one per stay: nothing sent again");

        // Charged again while the card still has no money: refused, and the page says so.
        browser.fill("form.retry input[name=why]", "the driver says the card is fine").await;
        browser.click("form.retry button").await;
        let refused_again = browser.wait_text("p.error", |t| t.contains("Refused again")).await;
        assert!(refused_again.contains("insufficient_funds"), "{refused_again}");

        stripe.allow("pm_card_chargeDeclined");
        browser.goto(&format!("{}/ops", garage.url)).await;
        browser.fill("form.retry input[name=why]", "the driver topped the card up").await;
        browser.click("form.retry button").await;
        assert_eq!(browser.wait_text("#unpaid-count", |t| t == "0").await, "0");
        let paid: Vec<i64> = stripe.succeeded_payment_intents().into_iter().map(|(_, minor)| minor).collect();
        assert_eq!(paid, [75, 75], "each stay paid once");
        let audit = garage.audit().await;
        let retries = audit.as_array().unwrap().iter().filter(|e| e.to_string().contains("charge_retried")).count();
        assert_eq!(retries, 2, "{audit}");
    })
    .await;
}
