//! A crash between "the provider charged" and "the outcome is recorded", injected by a charge
//! log that fails that one write: the charge stays pending, and `resume_pending` settles it with
//! the same key, so the driver is charged exactly once and still gets their receipt, mailed once
//! through a real SMTP server (aiosmtpd; that part is skipped with the reason when it is missing).

use std::sync::atomic::{AtomicBool, Ordering};

use valet_billing::{ChargeLog, ChargeLogError, LoggedCharge};
use valet_garage::EmailAddress;
use valet_garage::{Charge, ChargeState, Currency, Direction, ExitOutcome, Money, SessionState};
use valet_gate::{GateError, StoreChargeLog};
use valet_mail::testing::SmtpSink;
use valet_mail::{MailConfig, Mailer, Pass};

use crate::support::{TestStore, at, gate_with_log, on_both_databases, read, sign_up};

/// The store's log, except that the first outcome it is asked to record is lost, as if the
/// process died after the provider answered.
#[derive(Debug)]
struct CrashBeforeRecording {
    log: StoreChargeLog,
    crashed: AtomicBool,
}

impl ChargeLog for CrashBeforeRecording {
    async fn record_requested(&self, logged: LoggedCharge) -> Result<LoggedCharge, ChargeLogError> {
        self.log.record_requested(logged).await
    }

    async fn record_result(&self, charge: &Charge) -> Result<(), ChargeLogError> {
        if !self.crashed.swap(true, Ordering::SeqCst) {
            return Err(ChargeLogError::new("injected crash after the provider charged"));
        }
        self.log.record_result(charge).await
    }

    async fn pending(&self) -> Result<Vec<LoggedCharge>, ChargeLogError> {
        self.log.pending().await
    }
}

on_both_databases!(a_crash_between_charging_and_recording_is_settled_once_by_resume_pending);

async fn a_crash_between_charging_and_recording_is_settled_once_by_resume_pending(db: TestStore) {
    let log = CrashBeforeRecording { log: StoreChargeLog::new(db.store.clone()), crashed: AtomicBool::new(false) };
    let (gate, clock) = gate_with_log(&db.store, log);
    let driver = sign_up(&gate, 1, &["AB 123 CD"]).await;
    gate.set_email(&driver, Some(&EmailAddress::parse("ana@example.com").unwrap())).await.unwrap();
    let smtp = SmtpSink::start().map_err(|why| eprintln!("not checking mail: {why}")).ok();
    let mailer = smtp.as_ref().map(|sink| {
        let config = MailConfig { smtp_url: sink.url(), from: "Garage <garage@example.com>".into(), portal: None };
        Mailer::new(db.store.clone(), &config).unwrap()
    });
    gate.handle_entry(&read("AB123CD", Direction::Entry, at(9, 0))).await.unwrap();

    let crashed = gate.handle_exit(&read("AB123CD", Direction::Exit, at(9, 40))).await;
    assert!(matches!(crashed, Err(GateError::Billing(_))), "{crashed:?}");
    assert_eq!(gate.biller().gateway().charge_count(), 1, "the provider did charge");
    let pending = db.store.charges_awaiting_outcome().await.unwrap();
    assert_eq!(pending.len(), 1, "the charge is still in the outbox");
    let session = pending[0].request.session;
    let stored = db.store.session(session).await.unwrap().unwrap();
    assert!(matches!(stored.state, SessionState::Closed { .. }), "{:?}", stored.state);
    if let Some(mailer) = &mailer {
        assert_eq!(
            mailer.pass(at(9, 41)).await.unwrap(),
            Pass::default(),
            "nothing to mail before the outcome is known"
        );
    }

    clock.advance(chrono::TimeDelta::minutes(5));
    let settled = gate.resume_pending().await.unwrap();

    assert_eq!(settled.len(), 1);
    assert!(matches!(settled[0].state(), ChargeState::Succeeded { .. }));
    assert_eq!(gate.biller().gateway().charge_count(), 1, "the retry was answered from the first charge");
    assert_eq!(gate.biller().gateway().statement(driver.id).balance(Currency::EUR), Money::new(300, Currency::EUR));
    assert!(db.store.charges_awaiting_outcome().await.unwrap().is_empty());
    let stored = db.store.session(session).await.unwrap().unwrap();
    assert!(matches!(stored.state, SessionState::Paid { .. }), "{:?}", stored.state);
    assert_eq!(db.store.receipt(session).await.unwrap().unwrap().total, Money::new(300, Currency::EUR));
    assert!(gate.resume_pending().await.unwrap().is_empty(), "nothing is left to resume");
    if let (Some(mailer), Some(smtp)) = (&mailer, &smtp) {
        for now in [at(9, 50), at(9, 51), at(10, 30)] {
            mailer.pass(now).await.unwrap();
        }
        let mails = smtp.wait_for(1, std::time::Duration::from_secs(5)).await;
        assert_eq!(mails.len(), 1, "the receipt, mailed once: {mails:?}");
        assert!(mails[0].contains("Total") && mails[0].contains("€3.00"), "{}", mails[0]);
    }

    // The same car read again at the exit is let out and shown the settled charge, not charged.
    let again = gate.handle_exit(&read("AB123CD", Direction::Exit, at(9, 42))).await.unwrap();
    assert_eq!(again.decision.outcome, ExitOutcome::AlreadyClosed { session });
    assert_eq!(gate.biller().gateway().charge_count(), 1);
}
