//! [`Receipt`]: what a driver is sent for a settled session. It shows the plate masked, because
//! receipts are forwarded and printed, and the full spelling is not needed to recognise one's car.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::charge::{Charge, ChargeState, IdempotencyKey};
use crate::id::SessionId;
use crate::money::Money;
use crate::session::{ParkingSession, SessionState};
use crate::tariff::PriceLine;

/// The payment behind a receipt: our key and the provider's reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaidBy {
    pub charge: IdempotencyKey,
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Receipt {
    pub session: SessionId,
    pub plate: String,
    pub entry: DateTime<Utc>,
    pub exit: DateTime<Utc>,
    pub lines: Vec<PriceLine>,
    pub total: Money,
    /// Absent when nothing was charged: a free stay, or one an operator marked paid.
    pub paid_by: Option<PaidBy>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("session {0} is {1}; a receipt is for a paid session")]
    NotPaid(SessionId, &'static str),
    #[error("charge {0} is not for session {1}")]
    OtherSession(IdempotencyKey, SessionId),
    #[error("charge {0} has not succeeded")]
    NotSucceeded(IdempotencyKey),
    #[error("charge {0} was for {1}, but the session cost {2}")]
    AmountMismatch(IdempotencyKey, Money, Money),
}

impl Receipt {
    /// The receipt for a paid session and the charge that paid it, if one did. Refuses anything
    /// that would print a receipt the payment does not back.
    pub fn for_session(session: &ParkingSession, charge: Option<&Charge>) -> Result<Receipt, ReceiptError> {
        let SessionState::Paid { exit, .. } = session.state() else {
            return Err(ReceiptError::NotPaid(session.id, session.state().name()));
        };
        let paid_by = match charge {
            None => None,
            Some(charge) => {
                let key = || charge.idempotency_key.clone();
                if charge.session != session.id {
                    return Err(ReceiptError::OtherSession(key(), session.id));
                }
                let ChargeState::Succeeded { reference, .. } = charge.state() else {
                    return Err(ReceiptError::NotSucceeded(key()));
                };
                if charge.amount != exit.price.total {
                    return Err(ReceiptError::AmountMismatch(key(), charge.amount, exit.price.total));
                }
                Some(PaidBy { charge: key(), reference: reference.clone() })
            }
        };
        Ok(Receipt {
            session: session.id,
            plate: session.plate.masked(),
            entry: session.entry,
            exit: exit.at,
            lines: exit.price.lines.clone(),
            total: exit.price.total,
            paid_by,
        })
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Plate {}", self.plate)?;
        writeln!(f, "In  {}", self.entry.format("%Y-%m-%d %H:%M UTC"))?;
        writeln!(f, "Out {}", self.exit.format("%Y-%m-%d %H:%M UTC"))?;
        for line in &self.lines {
            writeln!(f, "  {:<48} {:>12}", line.item.to_string(), line.amount.to_string())?;
        }
        writeln!(f, "  {:<48} {:>12}", "Total", self.total.to_string())?;
        if let Some(paid_by) = &self.paid_by {
            writeln!(f, "Charge {} ({})", paid_by.charge, paid_by.reference)?;
        }
        Ok(())
    }
}
