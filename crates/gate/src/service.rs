//! [`GateService`]: look up → decide → store → charge, for one plate read at a time. Several
//! services (one per lane, or one per replica) may share a database; the store's conditional
//! writes decide which of them acts on a session.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, TimeDelta, Utc};
use valet_billing::{Biller, BillerError, ChargeLog, PaymentGateway, Settlement};
use valet_garage::{
    AuditAction, AuditEvent, Barrier, CameraId, Charge, ChargeRequest, ChargeState, DriverId, EntryContext,
    EntryDecision, EntryOutcome, Exit, ExitContext, ExitDecision, ExitDisplay, ExitMessage, ExitOutcome, GateConfig,
    IllegalTransition, LinkToken, OperatorId, ParkingSession, Payer, PermitOccupancy, Plate, PlateRead, Reason,
    Receipt, ReceiptError, ReviewItem, ReviewReason, SessionEvent, SessionId, SessionState, Tariff, decide_entry,
    decide_exit, pool,
};
use valet_store::{CloseOutcome, GarageStore, Lane, ReviewItemId, StoreError};

use crate::charge_log::StoreChargeLog;
use crate::clock::{Clock, IdSource, RandomIds};
use crate::missed_exits::MissedExits;

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Billing(#[from] BillerError),
    /// A stored session refused the event the decision implies: a bug, or a row edited by hand.
    #[error(transparent)]
    Session(#[from] IllegalTransition),
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    #[error("session {0} is charged to driver {1}, who is not registered")]
    UnknownDriver(SessionId, DriverId),
    #[error("charge for session {0}, which is not stored")]
    UnknownSession(SessionId),
}

/// An entry read, decided and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct HandledEntry {
    pub decision: EntryDecision,
    /// Where the decision's review item went in the queue.
    pub review: Option<ReviewItemId>,
}

/// An exit read, decided, stored and (where it owes) charged.
#[derive(Debug, Clone, PartialEq)]
pub struct HandledExit {
    pub decision: ExitDecision,
    /// Another worker closed the session first; `decision` is then the car being let out, and
    /// `charge` and `receipt` are that worker's, as far as it had got.
    pub closed_by_another_worker: bool,
    /// The session's charge; still [`ChargeState::Requested`] when the provider could not be
    /// reached (a retry settles it) or another worker is still waiting for it.
    pub charge: Option<Charge>,
    pub receipt: Option<Receipt>,
    /// Review items this read raised: the decision's own, and a declined charge's.
    pub review: Vec<ReviewItemId>,
}

impl HandledExit {
    /// A session settled before this read: the car is let out, with what is on record.
    pub(crate) fn already_settled(session: SessionId, charge: Option<Charge>, receipt: Option<Receipt>) -> HandledExit {
        let decision = ExitDecision {
            barrier: Barrier::Lift,
            display: ExitDisplay { message: ExitMessage::Goodbye, fee: None },
            outcome: ExitOutcome::AlreadyClosed { session },
            review: None,
        };
        HandledExit { decision, closed_by_another_worker: false, charge, receipt, review: Vec::new() }
    }
}

/// A charge sent and, where the provider answered, its outcome recorded on the session.
#[derive(Debug, Clone, PartialEq)]
pub struct SettledCharge {
    /// Still [`ChargeState::Requested`] when the provider could not be reached.
    pub charge: Charge,
    /// Written when the charge succeeded.
    pub receipt: Option<Receipt>,
    /// Queued when the charge was declined.
    pub review: Option<ReviewItemId>,
}

/// An exit read decided and stored, its charge (if it owes one) not yet sent.
#[derive(Debug, Clone, PartialEq)]
pub struct DecidedExit {
    pub handled: HandledExit,
    to_charge: Option<ChargeRequest>,
}

impl DecidedExit {
    /// Whether [`GateService::settle_exit`] has a charge to send.
    pub fn owes(&self) -> bool {
        self.to_charge.is_some()
    }

    /// The charge [`GateService::settle_exit`] would send.
    pub fn charge_request(&self) -> Option<&ChargeRequest> {
        self.to_charge.as_ref()
    }
}

/// The gate's service layer over a [`GarageStore`] and a [`Biller`].
#[derive(Debug)]
pub struct GateService<G, L = StoreChargeLog> {
    store: GarageStore,
    biller: Biller<G, L>,
    /// Swapped whole by [`GateService::set_tariff`]; each exit prices with the one it read.
    tariff: RwLock<Arc<Tariff>>,
    config: GateConfig,
    pub(crate) missed_exits: MissedExits,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdSource>,
}

impl<G: PaymentGateway> GateService<G, StoreChargeLog> {
    /// A service that logs charges in `store` itself and draws ids at random.
    pub fn new(
        store: GarageStore,
        gateway: G,
        tariff: Tariff,
        config: GateConfig,
        clock: Arc<dyn Clock>,
    ) -> GateService<G, StoreChargeLog> {
        let biller = Biller::new(gateway, StoreChargeLog::new(store.clone()));
        GateService::with_biller(store, biller, tariff, config, clock, Arc::new(RandomIds))
    }
}

impl<G: PaymentGateway, L: ChargeLog> GateService<G, L> {
    pub fn with_biller(
        store: GarageStore,
        biller: Biller<G, L>,
        tariff: Tariff,
        config: GateConfig,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
    ) -> GateService<G, L> {
        let tariff = RwLock::new(Arc::new(tariff));
        GateService { store, biller, tariff, config, missed_exits: MissedExits::default(), clock, ids }
    }

    /// The same service with `missed_exits` as its rules for stays whose exit was never read.
    pub fn with_missed_exits(mut self, missed_exits: MissedExits) -> GateService<G, L> {
        self.missed_exits = missed_exits;
        self
    }

    pub fn store(&self) -> &GarageStore {
        &self.store
    }

    pub fn biller(&self) -> &Biller<G, L> {
        &self.biller
    }

    /// The tariff exits are priced with now.
    pub fn tariff(&self) -> Arc<Tariff> {
        Arc::clone(&self.tariff.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Prices every later exit with `tariff`; an exit already being priced keeps the old one.
    /// Storing and auditing the change is the caller's (see [`GateService::change_tariff`]).
    pub(crate) fn set_tariff(&self, tariff: Tariff) {
        *self.tariff.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(tariff);
    }

    pub fn config(&self) -> &GateConfig {
        &self.config
    }

    /// Decides an entry read and stores what it opened and what it wants reviewed.
    pub async fn handle_entry(&self, read: &PlateRead) -> Result<HandledEntry, GateError> {
        self.saw_lane(read).await?;
        let pooled = pool(read);
        let lists = self.store.plate_lists().await?;
        let mut drivers = Vec::new();
        for plate in read_plates(read) {
            drivers.extend(self.store.drivers_by_plate(&plate).await?);
        }
        let mut permits = Vec::new();
        for permit in self.store.permits_valid_at(read.at).await? {
            // A permit names exact spellings, so every spelling of the read is asked about.
            if pooled.spellings().any(|plate| permit.covers(plate, read.at)) {
                let inside = self.store.open_sessions_under_permit(permit.id()).await?;
                permits.push(PermitOccupancy { permit, inside });
            }
        }
        let ctx = EntryContext {
            config: &self.config,
            lists: &lists,
            drivers: &drivers,
            permits: &permits,
            session_id: SessionId::from_bytes(self.ids.fresh()),
            link: LinkToken::from_bytes(self.ids.fresh()),
        };
        let decision = decide_entry(read, &ctx);
        if let EntryOutcome::Opened(session) = &decision.outcome {
            // One car at a time across every gate on the database: two reads of it arriving
            // together must not both find no stay and both open one.
            let lock = self.store.lock_plate(&session.plate).await?;
            let mut stale = Vec::new();
            let repeat = match self.repeated_entry(session, read).await {
                Ok(None) => match self.close_stale_stays(session, read).await {
                    Ok(closed) => {
                        stale = closed;
                        self.store.open_session(session).await.map(|_| None).map_err(GateError::from)
                    }
                    Err(error) => Err(error),
                },
                other => other,
            };
            lock.release().await?;
            if let Some(repeat) = repeat? {
                return Ok(repeat);
            }
            // Charged once the car's lock is let go: a provider's answer must not hold other reads.
            for closed in stale {
                self.charge_missed_exit(closed).await?;
            }
        }
        let review = match &decision.review {
            Some(item) => Some(self.store.add_review_item(item).await?),
            None => None,
        };
        Ok(HandledEntry { decision, review })
    }

    /// The same car read again at the entry (a camera's second read, a redelivered event, a
    /// second replica's passage of the same car): a session opened within the leave window either
    /// side of this read for the same payer and plate as this read would open: the same account
    /// and its spelling, or, unregistered, the same matching key (two frames of one car may
    /// spell it `ABO123` and `AB0123`). It is answered with that session, as first decided, and
    /// opens nothing. A confusable plate of another account opens its own session.
    async fn repeated_entry(
        &self,
        would_open: &ParkingSession,
        read: &PlateRead,
    ) -> Result<Option<HandledEntry>, GateError> {
        let window = TimeDelta::minutes(i64::from(self.config.leave_within_minutes));
        for record in self.store.open_sessions_by_plate(&would_open.plate).await? {
            if (record.entry - read.at).abs() <= window
                && let Some(session) = record.to_session()?
                && same_car(&session, would_open)
            {
                let decision = EntryDecision {
                    barrier: Barrier::Lift,
                    outcome: EntryOutcome::Opened(Box::new(session)),
                    review: None,
                };
                return Ok(Some(HandledEntry { decision, review: None }));
            }
        }
        Ok(None)
    }

    /// Decides an exit read, closes the session it matched and charges it. Of several workers
    /// handling the same read, the one whose close succeeds charges; the others report its work.
    /// The two halves are [`GateService::decide_exit`] and [`GateService::settle_exit`].
    pub async fn handle_exit(&self, read: &PlateRead) -> Result<HandledExit, GateError> {
        let decided = self.decide_exit(read).await?;
        self.settle_exit(decided).await
    }

    /// The exit's decision, stored: look up, decide, close the matched session (exactly once
    /// across workers), queue any review item. What the barrier does is known here; a lane may
    /// lift it now and leave [`GateService::settle_exit`] to charge.
    pub async fn decide_exit(&self, read: &PlateRead) -> Result<DecidedExit, GateError> {
        self.saw_lane(read).await?;
        let lists = self.store.plate_lists().await?;
        let window = TimeDelta::minutes(i64::from(self.config.leave_within_minutes));
        let mut sessions: Vec<ParkingSession> = Vec::new();
        for plate in read_plates(read) {
            for record in self.store.exit_candidates_by_plate(&plate, read.at - window).await? {
                // `None`: retention erased its plate, so it is long settled and matches nothing.
                if let Some(session) = record.to_session()?
                    && sessions.iter().all(|s| s.id != session.id)
                {
                    sessions.push(session);
                }
            }
        }
        let tariff = self.tariff();
        let ctx = ExitContext { config: &self.config, tariff: &tariff, lists: &lists, sessions: &sessions };
        let decision = decide_exit(read, &ctx);

        let mut handled =
            HandledExit { decision, closed_by_another_worker: false, charge: None, receipt: None, review: Vec::new() };
        let mut to_charge = None;
        match handled.decision.outcome.clone() {
            ExitOutcome::Charge { session, exit, charge } => {
                if self.close(&sessions, session, exit).await?.is_none() {
                    return Ok(DecidedExit { handled: self.closed_by_another_worker(session).await?, to_charge });
                }
                to_charge = Some(charge);
            }
            ExitOutcome::NothingOwed { session, exit } => {
                let Some(closed) = self.close(&sessions, session, exit).await? else {
                    return Ok(DecidedExit { handled: self.closed_by_another_worker(session).await?, to_charge });
                };
                // A free stay is paid as it closes: its receipt says so, with no charge.
                let receipt = Receipt::for_session(&closed, None)?;
                self.store.write_receipt(&receipt, self.clock.now()).await?;
                handled.receipt = Some(receipt);
            }
            ExitOutcome::AlreadyClosed { session } => {
                (handled.charge, handled.receipt) = self.settled_so_far(session).await?;
            }
            ExitOutcome::PayByPlate { .. }
            | ExitOutcome::Exempt { .. }
            | ExitOutcome::Ambiguous { .. }
            | ExitOutcome::NoOpenSession
            | ExitOutcome::Unreadable => {}
        }
        // After the close, so that of two workers only the one that closed queues it.
        if let Some(item) = &handled.decision.review {
            handled.review.push(self.store.add_review_item(item).await?);
        }
        Ok(DecidedExit { handled, to_charge })
    }

    /// Charges a decided exit that owes (a no-op for the others) and records the outcome: paid
    /// with a receipt, or unpaid and queued for review. A provider that does not answer leaves
    /// the charge pending for [`GateService::resume_pending`]; the car has left either way.
    pub async fn settle_exit(&self, decided: DecidedExit) -> Result<HandledExit, GateError> {
        let DecidedExit { mut handled, to_charge } = decided;
        let Some(request) = to_charge else { return Ok(handled) };
        let settled = self.settle_charge(&request).await?;
        handled.receipt = settled.receipt;
        handled.review.extend(settled.review);
        handled.charge = Some(settled.charge);
        Ok(handled)
    }

    /// Charges `request` (the billing function's whole job) and records the outcome. Safe to
    /// repeat, from any worker: the key is settled once, a settled one is answered from the log.
    pub async fn settle_charge(&self, request: &ChargeRequest) -> Result<SettledCharge, GateError> {
        let driver = self.store.driver(request.driver).await?;
        let driver = driver.ok_or(GateError::UnknownDriver(request.session, request.driver))?;
        Ok(match self.biller.settle(request, &driver.payment_method, self.clock.now()).await? {
            Settlement::Recorded(charge) => {
                let (receipt, review) = self.apply_outcome(&charge).await?;
                SettledCharge { charge, receipt, review }
            }
            Settlement::StillPending { charge, .. } => SettledCharge { charge, receipt: None, review: None },
        })
    }

    /// The charge a closed session still owes: its first charge, rebuilt from the stored
    /// session, while the session is closed and no outcome is recorded. A redelivered exit read
    /// finds its session closed already; this is how it still reaches billing when the worker
    /// that closed it stopped before passing the charge on.
    pub async fn charge_due(&self, id: SessionId) -> Result<Option<ChargeRequest>, GateError> {
        let Some(record) = self.store.session(id).await? else { return Ok(None) };
        let Some(session) = record.to_session()? else { return Ok(None) };
        let (SessionState::Closed { exit }, valet_garage::Payer::Registered(driver)) =
            (session.state(), &session.payer)
        else {
            return Ok(None);
        };
        if exit.price.total.is_zero() {
            return Ok(None);
        }
        Ok(Some(ChargeRequest {
            idempotency_key: valet_garage::IdempotencyKey::for_session(id, 1),
            session: id,
            driver: *driver,
            amount: exit.price.total,
        }))
    }

    /// Sends every charge a crash (or an unreachable provider) left pending again, under its own
    /// key, and brings each settled one's session up to date. Run at start-up and periodically.
    /// Returns the charges whose outcome is now recorded.
    pub async fn resume_pending(&self) -> Result<Vec<Charge>, GateError> {
        let mut settled = Vec::new();
        for settlement in self.biller.resume_pending(self.clock.now()).await? {
            if let Settlement::Recorded(charge) = settlement {
                self.apply_outcome(&charge).await?;
                settled.push(charge);
            }
        }
        Ok(settled)
    }

    /// The lanes whose cameras have reported reads: the only barriers an operator may lift by hand.
    pub async fn lanes(&self) -> Result<Vec<Lane>, GateError> {
        Ok(self.store.lanes().await?)
    }

    /// Audits a barrier an operator lifted by hand (the intercom, a jammed reader), with who and
    /// why, since it lets a car out without a decision. The caller has checked the lane against
    /// [`GateService::lanes`] and sent the command: the log records what happened, never an
    /// intention.
    pub async fn record_manual_lift(&self, camera: CameraId, who: OperatorId, why: Reason) -> Result<(), GateError> {
        let event = AuditEvent { who, what: AuditAction::ManualBarrierOpen { camera }, why, at: self.clock.now() };
        self.store.append_audit_event(&event).await?;
        Ok(())
    }

    /// Remembers the read's camera as a lane; the pay-by-plate page's pseudo-camera is none.
    async fn saw_lane(&self, read: &PlateRead) -> Result<(), GateError> {
        if read.camera.0 != crate::PAY_BY_PLATE_CAMERA {
            self.store.saw_lane(&read.camera, read.direction, self.clock.now()).await?;
        }
        Ok(())
    }

    /// Applies the exit to the matched session and stores it if it is still open: `None` means
    /// another worker closed it first and this one must not charge.
    async fn close(
        &self,
        sessions: &[ParkingSession],
        id: SessionId,
        exit: Exit,
    ) -> Result<Option<ParkingSession>, GateError> {
        // The decision chose from `sessions`, so the session is there.
        let mut session = sessions.iter().find(|s| s.id == id).cloned().ok_or(GateError::UnknownSession(id))?;
        session.apply(SessionEvent::Exit(exit))?;
        Ok(match self.store.close_session(&session).await? {
            CloseOutcome::Closed { .. } => Some(session),
            CloseOutcome::AlreadyClosed => None,
        })
    }

    /// The losing worker's answer: the car is let out, and the winner's charge and receipt are
    /// reported as far as the winner has got.
    async fn closed_by_another_worker(&self, session: SessionId) -> Result<HandledExit, GateError> {
        let (charge, receipt) = self.settled_so_far(session).await?;
        let mut handled = HandledExit::already_settled(session, charge, receipt);
        handled.closed_by_another_worker = true;
        Ok(handled)
    }

    pub(crate) async fn settled_so_far(
        &self,
        session: SessionId,
    ) -> Result<(Option<Charge>, Option<Receipt>), GateError> {
        let charge = self.store.charges_for_session(session).await?.pop().map(|record| record.charge);
        let receipt = self.store.receipt(session).await?;
        Ok((charge, receipt))
    }

    /// Moves the charged session to paid (and writes its receipt) or unpaid (and queues it for
    /// review). Safe to repeat: the exit and a resumed retry may both get here, and a state
    /// already reached is neither saved nor reviewed again.
    pub(crate) async fn apply_outcome(
        &self,
        charge: &Charge,
    ) -> Result<(Option<Receipt>, Option<ReviewItemId>), GateError> {
        let (event, failure) = match charge.state() {
            ChargeState::Requested { .. } => return Ok((None, None)),
            ChargeState::Succeeded { at, .. } => (SessionEvent::PaymentSucceeded { at: *at }, None),
            ChargeState::Failed { at, reason } => (SessionEvent::PaymentFailed { at: *at }, Some((*at, reason))),
        };
        loop {
            let id = charge.session;
            let record = self.store.session(id).await?.ok_or(GateError::UnknownSession(id))?;
            let Some(mut session) = record.to_session()? else { return Ok((None, None)) };
            // An operator took it over (review, repricing): their decision stands.
            if !matches!(
                session.state(),
                SessionState::Closed { .. } | SessionState::Paid { .. } | SessionState::Unpaid { .. }
            ) {
                return Ok((None, None));
            }
            let before = session.state().clone();
            session.apply(event.clone())?;
            let changed = *session.state() != before;
            // Someone wrote the session since it was read: read it again rather than overwrite.
            if changed && self.store.save_session(&session, record.version).await?.is_none() {
                continue;
            }
            return match (session.state(), failure) {
                (SessionState::Paid { .. }, _) => {
                    let receipt = Receipt::for_session(&session, Some(charge))?;
                    self.store.write_receipt(&receipt, self.clock.now()).await?;
                    Ok((Some(receipt), None))
                }
                (SessionState::Unpaid { .. }, Some((at, reason))) if changed => {
                    let item = declined(id, at, reason);
                    Ok((None, Some(self.store.add_review_item(&item).await?)))
                }
                _ => Ok((None, None)),
            };
        }
    }
}

/// Whether `open` is a stay of the car `would_open` is for: the same account and spelling, or,
/// unregistered, the same matching key. A confusable plate of another account is another car.
pub(crate) fn same_car(open: &ParkingSession, would_open: &ParkingSession) -> bool {
    match (&open.payer, &would_open.payer) {
        (Payer::Registered(a), Payer::Registered(b)) => a == b && open.plate == would_open.plate,
        (Payer::Unregistered { .. }, Payer::Unregistered { .. }) => {
            open.plate.matching_key() == would_open.plate.matching_key()
        }
        _ => false,
    }
}

/// A refused charge goes to the review queue: the driver left, and a person decides what next.
fn declined(session: SessionId, at: DateTime<Utc>, reason: &str) -> ReviewItem {
    ReviewItem {
        reason: ReviewReason::ChargeFailed { reason: reason.to_owned() },
        session: Some(session),
        read: None,
        at,
    }
}

/// Every plate the read could show (its text and each candidate that parses), one per matching
/// key, since the store looks plates up by the digest of that key.
fn read_plates(read: &PlateRead) -> Vec<Plate> {
    let mut plates: Vec<Plate> = Vec::new();
    let texts = std::iter::once(&read.text).chain(read.candidates.iter().map(|c| &c.text));
    for plate in texts.filter_map(|text| Plate::parse(text).ok()) {
        if plates.iter().all(|p| p.matching_key() != plate.matching_key()) {
            plates.push(plate);
        }
    }
    plates
}
