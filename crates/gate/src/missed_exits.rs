//! Stays whose exit was never read. Housekeeping raises every stay open longer than
//! [`MissedExits::flag_after`] for review ([`GateService::flag_missed_exits`]), once; an operator
//! closes it at the daily maximum or free ([`GateService::decide_missed_exit`]). A car entering
//! while a stay of its own is still open cannot be inside twice: the gate closes the stale stay
//! under [`MissedExits::policy`] before opening the new one. Every close is audited and charged
//! like an exit (a signed-up driver's card, under the stay's own idempotency key).

use chrono::{DateTime, TimeDelta, Utc};
use valet_billing::{ChargeLog, PaymentGateway};
use valet_garage::{
    AuditAction, AuditEvent, Charge, MissedExitPolicy, OperatorId, ParkingSession, PlateRead, Reason, ReviewItem,
    ReviewReason, SessionEvent, SessionId,
};
use valet_store::{CloseOutcome, ReviewItemId, StoredReviewItem};

use crate::desk::DeskError;
use crate::service::{GateError, GateService, same_car};

/// Who the audit log names for a stale stay the gate closed on the car's next entry.
pub const GATE: &str = "gate";

/// How many stays one housekeeping pass raises: the rest wait for the next pass.
const FLAG_AT_MOST: u32 = 500;

/// The garage's rules for stays whose exit was never read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissedExits {
    /// Stays open longer than this are raised for review; `None` raises none.
    pub flag_after: Option<TimeDelta>,
    /// How the gate closes a stale stay when the same car enters again.
    pub policy: MissedExitPolicy,
}

impl Default for MissedExits {
    /// Three days, then the daily maximum: a weekend away is not a missed exit.
    fn default() -> MissedExits {
        MissedExits { flag_after: Some(TimeDelta::hours(72)), policy: MissedExitPolicy::DailyMaximum }
    }
}

/// A missed-exit stay, closed, and its charge if it owed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissedExitClosed {
    pub session: ParkingSession,
    pub charge: Option<Charge>,
}

impl<G: PaymentGateway, L: ChargeLog> GateService<G, L> {
    /// Raises each stay open longer than the limit for review, once (an operator who leaves one
    /// open is not asked again). Returns the items raised.
    pub async fn flag_missed_exits(&self) -> Result<Vec<ReviewItemId>, GateError> {
        let Some(limit) = self.missed_exits.flag_after else { return Ok(Vec::new()) };
        let now = self.clock.now();
        let mut raised = Vec::new();
        for record in self.store().open_sessions_unflagged_since(now - limit, FLAG_AT_MOST).await? {
            let item = ReviewItem {
                reason: ReviewReason::MissedExit { open_since: record.entry },
                session: Some(record.id),
                read: None,
                at: now,
            };
            raised.push(self.store().add_review_item(&item).await?);
        }
        if !raised.is_empty() {
            tracing::info!(count = raised.len(), "stays open too long raised for review as missed exits");
        }
        Ok(raised)
    }

    /// Decides a missed-exit review item: its stay is closed under `policy` and charged, and the
    /// item resolved, once. A stay that has left meanwhile (its exit was read late) only resolves
    /// the item.
    pub async fn decide_missed_exit(
        &self,
        item: ReviewItemId,
        policy: MissedExitPolicy,
        who: OperatorId,
        why: Reason,
    ) -> Result<(StoredReviewItem, Option<MissedExitClosed>), DeskError> {
        let stored = self.store().review_item(item).await?.ok_or(DeskError::UnknownReviewItem(item.0))?;
        let (ReviewReason::MissedExit { .. }, Some(session)) = (&stored.item.reason, stored.item.session) else {
            return Err(DeskError::NotAMissedExit(item.0));
        };
        if stored.resolved.is_some() {
            return Err(DeskError::AlreadyDecided(item.0));
        }
        let resolution = format!("missed exit closed: {policy}");
        if !self.store().resolve_review_item(item, &who, &resolution, self.clock.now()).await? {
            return Err(DeskError::AlreadyDecided(item.0));
        }
        let closed = match self.close_missed_exit(session, policy, self.clock.now(), who, why).await? {
            Some(session) => Some(self.charge_missed_exit(session).await?),
            None => None,
        };
        let stored = self.store().review_item(item).await?.ok_or(DeskError::UnknownReviewItem(item.0))?;
        Ok((stored, closed))
    }

    /// Closes the open stays of the car `would_open` is for that it must have left unseen: it is
    /// entering again, outside the window of a repeated read. Called under the car's plate lock;
    /// the caller charges what this closed once the lock is released.
    pub(crate) async fn close_stale_stays(
        &self,
        would_open: &ParkingSession,
        read: &PlateRead,
    ) -> Result<Vec<ParkingSession>, GateError> {
        let mut closed = Vec::new();
        for record in self.store().open_sessions_by_plate(&would_open.plate).await? {
            let Some(stale) = record.to_session()? else { continue };
            if stale.entry < read.at && same_car(&stale, would_open) {
                let why = Reason::parse(&format!("the same car entered again at {}", read.camera.0))
                    .expect("the reason is not blank");
                let who = OperatorId(GATE.to_owned());
                closed.extend(self.close_missed_exit(stale.id, self.missed_exits.policy, read.at, who, why).await?);
            }
        }
        Ok(closed)
    }

    /// Closes the open stay `id` under `policy` at `at`, and audits it. `None` when it is not
    /// open any more (its exit was read, or another worker closed it first).
    async fn close_missed_exit(
        &self,
        id: SessionId,
        policy: MissedExitPolicy,
        at: DateTime<Utc>,
        who: OperatorId,
        why: Reason,
    ) -> Result<Option<ParkingSession>, GateError> {
        let Some(record) = self.store().session(id).await? else { return Ok(None) };
        let Some(mut session) = record.to_session()? else { return Ok(None) };
        if !session.is_open() {
            return Ok(None);
        }
        let exit = policy.exit(&self.tariff(), at);
        let price = exit.price.total;
        session.apply(SessionEvent::Exit(exit))?;
        if let CloseOutcome::AlreadyClosed = self.store().close_session(&session).await? {
            return Ok(None);
        }
        let what = AuditAction::MissedExitClosed { session: id, policy, price };
        self.store().append_audit_event(&AuditEvent { who, what, why, at: self.clock.now() }).await?;
        tracing::info!(session = %id, %policy, %price, "a stay whose exit was never read was closed");
        Ok(Some(session))
    }

    /// Charges a closed missed-exit stay as an exit is charged: a signed-up driver's card, under
    /// the stay's own key. A free stay, or a stay nobody signed up for (a debt for the review
    /// queue's pay-by-link), is not charged.
    pub(crate) async fn charge_missed_exit(&self, session: ParkingSession) -> Result<MissedExitClosed, GateError> {
        let charge = match self.charge_due(session.id).await? {
            Some(request) => Some(self.settle_charge(&request).await?.charge),
            None => None,
        };
        Ok(MissedExitClosed { session, charge })
    }
}
