//! What the payment provider reports on its own ([`ProviderNotice`], from Stripe's webhooks),
//! applied to the garage: a charge whose outcome Valet never heard (a crash, a lost answer) is
//! settled as the provider says, and its session brought up to date (paid with a receipt, or
//! unpaid and queued for operators); refunds made in the provider's own dashboard are recorded and
//! audited. Every notice may arrive more than once, so each step is repeat-safe: a recorded
//! outcome is not recorded again, and a refund is recorded once by its reference.

use chrono::DateTime;
use chrono::Utc;
use valet_billing::{ChargeLog, GatewayError, Notice, NoticedPayment, PaymentGateway, ProviderNotice};
use valet_garage::{AuditAction, AuditEvent, Charge, ChargeState, OperatorId, Reason};
use valet_store::RefundRecord;

use crate::service::{GateError, GateService};

/// Who the audit log names for a refund made at the payment provider.
pub const PAYMENT_PROVIDER: &str = "payment-provider";

/// What a notice changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeTaken {
    /// A charge whose outcome was unknown is settled, and its session updated.
    Settled(Charge),
    /// Refunds made outside Valet, now recorded and audited (never empty: none new is
    /// [`NoticeTaken::AlreadyKnown`]).
    Refunds(Vec<RefundRecord>),
    /// Valet had recorded this outcome already: nothing changed.
    AlreadyKnown,
    /// No charge of Valet's: a payment made some other way on the same provider account.
    NotOurs,
    /// The provider contradicts what Valet recorded (another outcome or amount): nothing changed,
    /// and the error log says so, for a person to look.
    Contradicts(String),
    /// An event the garage does not act on.
    Ignored,
}

/// The provider could not be asked (listing refunds): the notice is worth delivering again.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error("asking the payment provider: {0}")]
    Provider(#[source] GatewayError),
}

impl<G: PaymentGateway, L: ChargeLog> GateService<G, L> {
    pub async fn take_notice(&self, notice: &ProviderNotice) -> Result<NoticeTaken, NoticeError> {
        Ok(match &notice.what {
            Notice::Paid(payment) => self.settle_noticed(payment, None, notice.at).await?,
            Notice::NotPaid { payment, reason } => self.settle_noticed(payment, Some(reason), notice.at).await?,
            Notice::Refunded { reference } => self.record_outside_refunds(reference, notice).await?,
            Notice::Other => NoticeTaken::Ignored,
        })
    }

    /// Records `payment`'s outcome (`failure` is `None` when it took the money) on the charge it
    /// settles, found by the key Valet sent with it, else by the provider's reference.
    async fn settle_noticed(
        &self,
        payment: &NoticedPayment,
        failure: Option<&String>,
        at: DateTime<Utc>,
    ) -> Result<NoticeTaken, GateError> {
        let store = self.store();
        let by_key = match &payment.key {
            Some(key) => store.charge(key).await?,
            None => None,
        };
        let record = match by_key {
            Some(record) => record,
            None => match store.charge_by_reference(&payment.reference).await? {
                Some(record) => record,
                None => return Ok(NoticeTaken::NotOurs),
            },
        };
        let key = &record.request.idempotency_key;
        if record.request.amount != payment.amount {
            let why = format!("charge {key} is {}, the provider's payment {}", record.request.amount, payment.amount);
            tracing::error!(reference = payment.reference, "{why}");
            return Ok(NoticeTaken::Contradicts(why));
        }
        let mut charge = record.charge;
        match (charge.state(), failure) {
            (ChargeState::Requested { .. }, None) => charge.succeed(at, payment.reference.clone()),
            (ChargeState::Requested { .. }, Some(reason)) => charge.fail(at, reason.clone()),
            (ChargeState::Succeeded { .. }, None) | (ChargeState::Failed { .. }, Some(_)) => {
                return Ok(NoticeTaken::AlreadyKnown);
            }
            (recorded, _) => {
                let said = if failure.is_some() { "failed" } else { "succeeded" };
                let why =
                    format!("charge {key} is recorded {recorded:?}; the provider says {} {said}", payment.reference);
                tracing::error!("{why}");
                return Ok(NoticeTaken::Contradicts(why));
            }
        }
        .map_err(valet_billing::BillerError::from)?;
        self.biller().log().record_result(&charge).await.map_err(valet_billing::BillerError::from)?;
        self.apply_outcome(&charge).await?;
        tracing::info!(%key, reference = payment.reference, "the provider's notice settled a charge");
        Ok(NoticeTaken::Settled(charge))
    }

    /// Records the refunds of the charge `reference` that the provider holds and Valet does not:
    /// made in the provider's dashboard, or made by Valet and not recorded yet (then the desk's
    /// own record, under the same reference, finds it there and adds nothing).
    async fn record_outside_refunds(
        &self,
        reference: &str,
        notice: &ProviderNotice,
    ) -> Result<NoticeTaken, NoticeError> {
        let store = self.store();
        let Some(record) = store.charge_by_reference(reference).await.map_err(GateError::from)? else {
            return Ok(NoticeTaken::NotOurs);
        };
        let session = record.request.session;
        let listed = self.biller().gateway().refunds_of(reference).await.map_err(NoticeError::Provider)?;
        let known = store.refunds_for_session(session).await.map_err(GateError::from)?;
        let mut recorded = Vec::new();
        for refund in listed.into_iter().filter(|r| known.iter().all(|k| k.reference != r.reference)) {
            let why = format!("refunded at the payment provider, outside Valet (event {})", notice.id);
            let outside = RefundRecord {
                key: format!("provider-{}", refund.reference),
                session,
                charge: record.request.idempotency_key.clone(),
                amount: refund.amount,
                reference: refund.reference,
                by: PAYMENT_PROVIDER.to_owned(),
                reason: why.clone(),
                at: notice.at,
            };
            if store.record_refund(&outside).await.map_err(GateError::from)? {
                let event = AuditEvent {
                    who: OperatorId(PAYMENT_PROVIDER.to_owned()),
                    what: AuditAction::Refund { charge: outside.charge.clone(), amount: outside.amount },
                    why: Reason::parse(&why).expect("the reason is not blank"),
                    at: notice.at,
                };
                store.append_audit_event(&event).await.map_err(GateError::from)?;
                recorded.push(outside);
            }
        }
        Ok(if recorded.is_empty() { NoticeTaken::AlreadyKnown } else { NoticeTaken::Refunds(recorded) })
    }
}
