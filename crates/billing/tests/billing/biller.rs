//! The Biller's crash safety: a crash between "gateway charged" and "result recorded" (a failed
//! write, or the process dying mid-future) leaves the charge pending, and `resume_pending` settles
//! it with the same idempotency key: one charge, neither lost nor doubled.

use std::sync::Mutex;
use std::time::Duration;

use valet_billing::{
    Biller, BillerError, ChargeLog, ChargeLogError, LedgerGateway, LoggedCharge, MemoryChargeLog, Settlement,
};
use valet_garage::{Charge, ChargeState, Currency};

use crate::helpers::{at, driver, exit_charge, ledger_account, stripe_card, usd};
use crate::stripe_standin::StripeStandin;

/// How the next `record_result` goes wrong.
#[derive(Debug, Clone, Copy)]
enum Crash {
    /// The write fails: the database went away after the provider charged.
    WriteFails,
    /// The write never finishes: the process dies there, and its future is dropped.
    ProcessDies,
}

/// A [`MemoryChargeLog`] that crashes once, on the first result it is asked to record.
#[derive(Debug)]
struct CrashingLog {
    log: MemoryChargeLog,
    crash: Mutex<Option<Crash>>,
}

impl CrashingLog {
    fn new(crash: Crash) -> CrashingLog {
        CrashingLog { log: MemoryChargeLog::new(), crash: Mutex::new(Some(crash)) }
    }
}

impl ChargeLog for CrashingLog {
    async fn record_requested(&self, logged: LoggedCharge) -> Result<LoggedCharge, ChargeLogError> {
        self.log.record_requested(logged).await
    }

    async fn record_result(&self, charge: &Charge) -> Result<(), ChargeLogError> {
        let crash = self.crash.lock().unwrap().take();
        match crash {
            Some(Crash::WriteFails) => Err(ChargeLogError::new("database connection lost")),
            Some(Crash::ProcessDies) => std::future::pending().await,
            None => self.log.record_result(charge).await,
        }
    }

    async fn pending(&self) -> Result<Vec<LoggedCharge>, ChargeLogError> {
        self.log.pending().await
    }
}

fn succeeded(settlement: &Settlement) -> bool {
    matches!(settlement, Settlement::Recorded(charge) if matches!(charge.state(), ChargeState::Succeeded { .. }))
}

#[tokio::test]
async fn a_crash_between_charging_and_recording_is_reconciled_by_asking_the_provider_and_charged_once() {
    let stripe = StripeStandin::start().await;
    let biller = Biller::new(stripe.gateway(), CrashingLog::new(Crash::WriteFails));
    let request = exit_charge(10, 1, 600);

    let crashed = biller.settle(&request, &stripe_card("pm_card_visa"), at(0)).await;
    assert!(matches!(crashed, Err(BillerError::Log(_))), "{crashed:?}");
    assert_eq!(biller.log().pending().await.unwrap().len(), 1, "charged but unrecorded must stay pending");

    let resumed = biller.resume_pending(at(5)).await.unwrap();

    assert!(matches!(&resumed[..], [settlement] if succeeded(settlement)), "{resumed:?}");
    assert!(biller.log().pending().await.unwrap().is_empty());
    assert_eq!(stripe.succeeded_payment_intents().len(), 1, "neither lost nor doubled");
    // Stripe is asked what it holds under the key and answers with the payment: no resend.
    assert_eq!(stripe.received_at("/v1/payment_intents").len(), 1);
    let [asked] = &stripe.received_at("/v1/payment_intents/search")[..] else { panic!("{:?}", stripe.received()) };
    assert!(asked.field("query").unwrap().contains(request.idempotency_key.as_str()), "{asked:?}");
}

#[tokio::test]
async fn a_process_that_dies_before_recording_is_resumed_without_a_second_receivable() {
    let ledger = LedgerGateway::new();
    let method = ledger_account(&ledger, driver(1)).await;
    let biller = Biller::new(ledger, CrashingLog::new(Crash::ProcessDies));
    let request = exit_charge(10, 1, 600);

    let died = tokio::time::timeout(Duration::from_millis(100), biller.settle(&request, &method, at(0))).await;
    assert!(died.is_err(), "the settle future should have been dropped mid-write: {died:?}");

    let resumed = biller.resume_pending(at(5)).await.unwrap();

    assert!(matches!(&resumed[..], [settlement] if succeeded(settlement)), "{resumed:?}");
    assert_eq!(biller.gateway().charge_count(), 1);
    assert_eq!(biller.gateway().statement(driver(1)).balance(Currency::USD), usd(600));
}

#[tokio::test]
async fn a_crash_before_the_provider_was_asked_is_charged_once_on_resume() {
    let ledger = LedgerGateway::new();
    let method = ledger_account(&ledger, driver(1)).await;
    let log = MemoryChargeLog::new();
    let request = exit_charge(10, 1, 600);
    let requested = LoggedCharge { request: request.clone(), method, charge: Charge::requested(&request, at(0)) };
    log.record_requested(requested).await.unwrap();
    let biller = Biller::new(ledger, log);

    let resumed = biller.resume_pending(at(5)).await.unwrap();

    assert!(matches!(&resumed[..], [settlement] if succeeded(settlement)), "{resumed:?}");
    assert_eq!(biller.gateway().charge_count(), 1);
}

#[tokio::test]
async fn a_settled_charge_is_answered_from_the_log_without_asking_the_provider_again() {
    let stripe = StripeStandin::start().await;
    let biller = Biller::new(stripe.gateway(), MemoryChargeLog::new());
    let request = exit_charge(10, 1, 600);
    let card = stripe_card("pm_card_visa");

    let first = biller.settle(&request, &card, at(0)).await.unwrap();
    let again = biller.settle(&request, &card, at(1)).await.unwrap();

    assert!(succeeded(&first), "{first:?}");
    assert_eq!(first, again);
    assert_eq!(stripe.received_at("/v1/payment_intents").len(), 1);
}

#[tokio::test]
async fn a_decline_is_recorded_as_failed_and_never_resumed() {
    let stripe = StripeStandin::start().await;
    stripe.decline("pm_card_visa_chargeDeclined", "generic_decline");
    let biller = Biller::new(stripe.gateway(), MemoryChargeLog::new());
    let request = exit_charge(10, 1, 600);

    let settlement = biller.settle(&request, &stripe_card("pm_card_visa_chargeDeclined"), at(0)).await.unwrap();

    let Settlement::Recorded(charge) = &settlement else { panic!("{settlement:?}") };
    assert!(matches!(charge.state(), ChargeState::Failed { reason, .. } if reason.contains("generic_decline")));
    assert!(biller.resume_pending(at(5)).await.unwrap().is_empty());
    assert_eq!(stripe.received_at("/v1/payment_intents").len(), 1);
}

#[tokio::test]
async fn a_transient_failure_leaves_the_charge_pending_until_a_resume_gets_through() {
    let stripe = StripeStandin::start().await;
    stripe.rate_limit_next(2);
    let biller = Biller::new(stripe.gateway(), MemoryChargeLog::new());
    let request = exit_charge(10, 1, 600);

    let first = biller.settle(&request, &stripe_card("pm_card_visa"), at(0)).await.unwrap();
    let second = biller.resume_pending(at(1)).await.unwrap();
    let third = biller.resume_pending(at(2)).await.unwrap();

    assert!(matches!(first, Settlement::StillPending { .. }), "{first:?}");
    assert!(matches!(&second[..], [Settlement::StillPending { .. }]), "{second:?}");
    assert!(matches!(&third[..], [settlement] if succeeded(settlement)), "{third:?}");
    assert_eq!(stripe.succeeded_payment_intents().len(), 1);
    let logged = biller.log().get(&request.idempotency_key).unwrap();
    assert!(!logged.is_pending());
}

#[tokio::test]
async fn a_key_already_recorded_for_another_charge_is_refused_before_the_provider_is_asked() {
    let ledger = LedgerGateway::new();
    let method = ledger_account(&ledger, driver(1)).await;
    let biller = Biller::new(ledger, MemoryChargeLog::new());
    biller.settle(&exit_charge(10, 1, 600), &method, at(0)).await.unwrap();

    let result = biller.settle(&exit_charge(10, 1, 900), &method, at(1)).await;

    assert!(matches!(result, Err(BillerError::KeyReused(_))), "{result:?}");
    assert_eq!(biller.gateway().charge_count(), 1);
}

/// Stripe took the money and answered 500, then forgot the key (24 hours later): a resend would
/// be a second payment. Reconciling asks Stripe first, finds the payment by its key, and records it.
#[tokio::test]
async fn a_payment_whose_answer_was_lost_is_found_by_its_key_not_charged_again_after_stripe_forgot_the_key() {
    let stripe = StripeStandin::start().await;
    let biller = Biller::new(stripe.gateway(), MemoryChargeLog::new());
    let request = exit_charge(10, 1, 600);
    stripe.fail_after_running_next();

    let lost = biller.settle(&request, &stripe_card("pm_card_visa"), at(0)).await.unwrap();
    stripe.forget_idempotency_keys();
    let resumed = biller.resume_pending(at(1)).await.unwrap();

    assert!(matches!(lost, Settlement::StillPending { .. }), "{lost:?}");
    let [(intent, 600)] = &stripe.succeeded_payment_intents()[..] else { panic!("{:?}", stripe.payment_intents()) };
    let [Settlement::Recorded(charge)] = &resumed[..] else { panic!("{resumed:?}") };
    assert!(matches!(charge.state(), ChargeState::Succeeded { reference, .. } if reference == intent), "{charge:?}");
    assert_eq!(stripe.received_at("/v1/payment_intents").len(), 1, "sent once, never again");
    assert!(biller.resume_pending(at(2)).await.unwrap().is_empty(), "nothing is left pending");
}

/// The same for a decline whose answer was lost: found, and recorded as the failure it was.
#[tokio::test]
async fn a_decline_whose_answer_was_lost_is_found_and_recorded_failed() {
    let stripe = StripeStandin::start().await;
    stripe.decline("pm_card_chargeDeclined", "insufficient_funds");
    let biller = Biller::new(stripe.gateway(), MemoryChargeLog::new());
    let request = exit_charge(10, 1, 600);
    stripe.fail_after_running_next();

    biller.settle(&request, &stripe_card("pm_card_chargeDeclined"), at(0)).await.unwrap();
    stripe.forget_idempotency_keys();
    let resumed = biller.resume_pending(at(1)).await.unwrap();

    let [Settlement::Recorded(charge)] = &resumed[..] else { panic!("{resumed:?}") };
    assert!(matches!(charge.state(), ChargeState::Failed { reason, .. } if reason.contains("insufficient_funds")));
    assert_eq!(stripe.received_at("/v1/payment_intents").len(), 1);
}

/// A charge Stripe never saw (rate-limited before it ran) is not found, and is then sent.
#[tokio::test]
async fn a_charge_the_provider_never_saw_is_sent_again_once_and_only_once() {
    let stripe = StripeStandin::start().await;
    stripe.rate_limit_next(1);
    let biller = Biller::new(stripe.gateway(), MemoryChargeLog::new());
    let request = exit_charge(10, 1, 600);

    biller.settle(&request, &stripe_card("pm_card_visa"), at(0)).await.unwrap();
    stripe.forget_idempotency_keys();
    let resumed = biller.resume_pending(at(1)).await.unwrap();

    assert!(matches!(&resumed[..], [settlement] if succeeded(settlement)), "{resumed:?}");
    assert_eq!(stripe.received_at("/v1/payment_intents/search").len(), 1, "asked first");
    assert_eq!(stripe.succeeded_payment_intents().len(), 1);
}
