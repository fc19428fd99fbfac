//! The desk: what people do, as opposed to cameras. Drivers sign up, manage their plates and pay
//! by plate; operators refund, decide review items and change tariffs, lists and permits. Every
//! operator action is appended to the audit log with who and why before it is answered.

use std::collections::BTreeSet;

use valet_billing::{CardSetup, ChargeLog, GatewayError, PaymentGateway, RefundKey, RefundRequest, Settlement};
use valet_garage::{
    AlreadyRegistered, AuditAction, AuditEvent, CameraId, ChargeRequest, ChargeState, Direction, Driver, DriverId,
    EmailAddress, ExitOutcome, IdempotencyKey, InvalidPermit, LinkToken, ListChange, Money, OperatorId, ParkingSession,
    Payer, PaymentMethodToken, Permit, PermitTerms, Plate, PlateChangeError, PlateRead, Reason, RecoveryCode,
    ReviewDecision, SessionEvent, SessionId, SessionState, Tariff, TariffError, TariffSpec,
};
use valet_store::{DriverToken, ListKind, RefundRecord, ReviewItemId, StoredReviewItem};

use crate::service::{GateError, GateService, HandledExit, SettledCharge};

/// Why a person's request was refused; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error(transparent)]
    Plates(#[from] PlateChangeError),
    #[error(transparent)]
    Registered(#[from] AlreadyRegistered),
    #[error(transparent)]
    Tariff(#[from] TariffError),
    #[error(transparent)]
    Permit(#[from] InvalidPermit),
    /// A plate that another account holds, in the same words as anything else that keeps a plate
    /// off a new account: a refusal must not tell a stranger that this car's driver signed up here.
    /// (That sign-ups of free plates succeed is unavoidable; saying whose plate it is, is not.)
    #[error(
        "this plate cannot be added to a new account here. If you signed up before, sign in with a plate on your account and your recovery code; otherwise ask the attendant"
    )]
    PlateUnavailable,
    /// A wrong plate, a wrong code, or both: one answer, so trying plates tells nothing.
    #[error("that plate and recovery code do not open an account; check both and try again")]
    SignInRefused,
    #[error("no session has this link; it may have been paid or signed up for already")]
    UnknownLink,
    #[error("session {0} is no longer open, so it cannot be taken over by a sign-up")]
    SessionNotOpen(SessionId),
    #[error("session {0} cannot be paid here: {1}")]
    NotPayable(SessionId, String),
    #[error("session {0} has no successful charge to refund")]
    NothingToRefund(SessionId),
    #[error("the payment provider has not saved a card: {0}")]
    CardNotSaved(GatewayError),
    #[error("refund not made: {0}")]
    RefundRefused(GatewayError),
    #[error("cannot refund {asked}: {left} is left to refund")]
    OverRefund { asked: Money, left: Money },
    #[error("this refund key was first used to refund {first}; send a new key to refund {asked}")]
    RefundKeyReused { first: Money, asked: Money },
    #[error("no review item {0}")]
    UnknownReviewItem(i64),
    #[error("review item {0} was already decided")]
    AlreadyDecided(i64),
    #[error("review item {0} concerns no session, so it can only be resolved, not decided")]
    NoSessionToDecide(i64),
    #[error("session {0} cannot be charged again: {1}")]
    NotRetryable(SessionId, &'static str),
    #[error("review item {0} is not a missed exit; only a missed exit's stay is closed at the daily maximum or free")]
    NotAMissedExit(i64),
    #[error("no session {0}")]
    UnknownSession(SessionId),
    #[error("session {0} is {1}; a review decision applies to a closed, unpaid or reviewed stay")]
    NotDecidable(SessionId, &'static str),
}

/// A session's successful charge, as far as refunds go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refundable {
    /// The charge's idempotency key, which refunds refer to.
    pub charge: IdempotencyKey,
    /// The provider's reference for the charge.
    pub reference: String,
    pub charged: Money,
    pub refunded: Money,
}

impl Refundable {
    pub fn left(&self) -> Money {
        Money::new((self.charged.minor - self.refunded.minor).max(0), self.charged.currency)
    }
}

impl From<valet_store::StoreError> for DeskError {
    fn from(error: valet_store::StoreError) -> DeskError {
        DeskError::Gate(GateError::Store(error))
    }
}

/// A new account: the driver, the token their app or browser uses from now on and the recovery
/// code that signs them in on another (both shown once), and the session the sign-up took over,
/// if it came with a link.
#[derive(Debug, Clone)]
pub struct SignedUp {
    pub driver: Driver,
    pub token: DriverToken,
    pub recovery_code: RecoveryCode,
    pub session: Option<SessionId>,
}

/// A refusal to put `plate` on an account because another holds it, told as [`DeskError::PlateUnavailable`].
fn plate_unavailable(error: valet_store::StoreError) -> DeskError {
    match error {
        valet_store::StoreError::PlateTaken(_) => DeskError::PlateUnavailable,
        other => other.into(),
    }
}

impl<G: PaymentGateway, L: ChargeLog> GateService<G, L> {
    /// Signs a driver up with their plates and a payment method. With `link` (shown at the entry
    /// to an unregistered car), the stay in progress is charged to the new account at the exit.
    pub async fn sign_up(
        &self,
        plates: Vec<Plate>,
        payment_method: PaymentMethodToken,
        link: Option<LinkToken>,
    ) -> Result<SignedUp, DeskError> {
        let mut driver = Driver::new(DriverId::from_bytes(self.ids.fresh()), payment_method);
        for plate in plates {
            driver.add_plate(plate)?;
        }
        // Checked before anything is written, so a stale link leaves no orphan account.
        let claimed = match link {
            Some(link) => Some(self.open_session_by_link(link).await?),
            None => None,
        };
        let now = self.clock.now();
        let recovery_code = RecoveryCode::from_bytes(self.ids.fresh());
        self.store().register_driver_with_recovery(&driver, &recovery_code, now).await.map_err(plate_unavailable)?;
        let session = match claimed {
            Some((mut session, mut version)) => {
                // The stay carries the camera's spelling (PH0NE1); the driver typed theirs (PHONE1).
                // Where the two are one plate, the driver's shows on their stays and receipts.
                let key = session.plate.matching_key();
                if let Some(typed) = driver.plates().find(|p| p.matching_key() == key && **p != session.plate) {
                    let respelled = self.store().correct_plate(session.id, typed, version).await?;
                    version = respelled.ok_or(DeskError::SessionNotOpen(session.id))?;
                    session.plate = typed.clone();
                }
                session.register(driver.id)?;
                if self.store().save_session(&session, version).await?.is_none() {
                    // The car left (or someone else signed up) between the read and the write.
                    return Err(DeskError::SessionNotOpen(session.id));
                }
                Some(session.id)
            }
            None => None,
        };
        let token = self.store().grant_driver_token(driver.id, now).await?;
        Ok(SignedUp { driver, token, recovery_code, session })
    }

    /// Starts saving a card in the payment provider's own form, before the account exists: the
    /// driver's browser completes the returned setup with the provider (card details never pass
    /// through Valet), then [`saved_card`](Self::saved_card) asks the provider what was saved.
    pub async fn begin_card_setup(&self) -> Result<CardSetup, DeskError> {
        let gateway = self.biller().gateway();
        // The customer carries a fresh id only to keep the provider's create idempotent per try;
        // the account is tied to the card by the token `saved_card` returns, not by this id.
        let customer =
            gateway.create_customer(DriverId::from_bytes(self.ids.fresh())).await.map_err(DeskError::CardNotSaved)?;
        gateway.start_card_setup(&customer).await.map_err(DeskError::CardNotSaved)
    }

    /// The payment method the driver saved in setup `setup_id`, as the provider reports it: a
    /// setup the driver has not completed is refused, whatever the browser claims.
    pub async fn saved_card(&self, setup_id: &str) -> Result<PaymentMethodToken, DeskError> {
        self.biller().gateway().saved_payment_method(setup_id).await.map_err(DeskError::CardNotSaved)
    }

    /// Adds a plate to a driver's account.
    pub async fn add_plate(&self, driver: &Driver, plate: Plate) -> Result<(), DeskError> {
        driver.clone().add_plate(plate.clone())?;
        self.store().add_driver_plate(driver.id, &plate, self.clock.now()).await.map_err(plate_unavailable)?;
        Ok(())
    }

    /// Sets the address the driver wants receipts and notices at, or removes it (`None`). Mail
    /// is owed for what happens from now on only.
    pub async fn set_email(&self, driver: &Driver, email: Option<&EmailAddress>) -> Result<(), DeskError> {
        self.store().set_driver_email(driver.id, email, self.clock.now()).await?;
        Ok(())
    }

    /// The driver pays their own unpaid stay from their account ("Pay now", the link in a
    /// failed-charge notice): charged again as an operator's retry is, to the card on the account
    /// now, and audited as the driver's. Another account's stay is [`DeskError::UnknownSession`],
    /// the same answer as no stay at all.
    pub async fn pay_now(&self, driver: &Driver, session: SessionId) -> Result<SettledCharge, DeskError> {
        let record = self.store().session(session).await?;
        if record.is_none_or(|r| r.payer != Payer::Registered(driver.id)) {
            return Err(DeskError::UnknownSession(session));
        }
        let why = Reason::parse("paid by the driver from their account").expect("not blank");
        self.retry_charge(session, OperatorId(format!("driver:{}", driver.id)), why).await
    }

    /// Takes a plate off a driver's account, unless its car is inside: a session in progress
    /// must stay chargeable to the account it entered under.
    pub async fn remove_plate(&self, driver: &Driver, plate: &Plate) -> Result<(), DeskError> {
        let inside: BTreeSet<Plate> = self
            .store()
            .open_sessions_by_plate(plate)
            .await?
            .into_iter()
            .filter(|record| record.payer == valet_garage::Payer::Registered(driver.id))
            .filter_map(|record| record.plate)
            .collect();
        driver.clone().remove_plate(plate, &inside)?;
        self.store().remove_driver_plate(driver.id, plate).await?;
        Ok(())
    }

    /// An unregistered driver pays for the stay behind `link` with `payment_method`, without an
    /// account: the method is kept on a plateless account for this stay's charge (and any
    /// refund), the session closes now, is charged like any exit, and the car may leave within
    /// the gate's leave window. Paying again after success answers with the first payment.
    pub async fn pay_by_link(
        &self,
        link: LinkToken,
        payment_method: PaymentMethodToken,
    ) -> Result<HandledExit, DeskError> {
        let record = self.store().session_by_link(link).await?.ok_or(DeskError::UnknownLink)?;
        let mut session = record.to_session()?.ok_or(DeskError::UnknownLink)?;
        if !session.is_open() {
            let (charge, receipt) = self.settled_so_far(session.id).await?;
            if !matches!(session.state(), SessionState::Paid { .. }) {
                return Err(DeskError::NotPayable(session.id, format!("it is {}", session.state().name())));
            }
            return Ok(HandledExit::already_settled(session.id, charge, receipt));
        }
        let payer = Driver::new(DriverId::from_bytes(self.ids.fresh()), payment_method);
        self.store().register_driver(&payer, self.clock.now()).await?;
        session.register(payer.id)?;
        if self.store().save_session(&session, record.version).await?.is_none() {
            return Err(DeskError::NotPayable(session.id, "it changed while paying; try again".into()));
        }
        // The payment is the exit, priced and charged by the same rules as a camera's read.
        let read = PlateRead {
            text: session.plate.display().to_owned(),
            confidence: 1.0,
            candidates: Vec::new(),
            camera: CameraId(PAY_BY_PLATE_CAMERA.to_owned()),
            direction: Direction::Exit,
            at: self.clock.now(),
        };
        let handled = self.handle_exit(&read).await?;
        let paid_here = matches!(
            handled.decision.outcome,
            ExitOutcome::Charge { .. } | ExitOutcome::NothingOwed { .. } | ExitOutcome::AlreadyClosed { .. }
        );
        if !paid_here {
            return Err(DeskError::NotPayable(session.id, "another stay matches this plate; ask an operator".into()));
        }
        Ok(handled)
    }

    /// Refunds `amount` (or all that is left) of a session's successful charge. `key` makes the
    /// request safe to repeat: the same key refunds once and answers with that refund.
    pub async fn refund(
        &self,
        session: SessionId,
        amount: Option<Money>,
        key: &str,
        who: OperatorId,
        why: Reason,
    ) -> Result<RefundRecord, DeskError> {
        let refund_key = format!("valet-refund-{session}-{key}");
        if let Some(done) = self.store().refunds_for_session(session).await?.into_iter().find(|r| r.key == refund_key) {
            // A retry gets the first refund; the same key for another amount is a mistake, as
            // Stripe treats it, not a second refund nor a silent replay.
            return match amount {
                Some(asked) if asked != done.amount => Err(DeskError::RefundKeyReused { first: done.amount, asked }),
                _ => Ok(done),
            };
        }
        let refundable = self.refundable(session).await?.ok_or(DeskError::NothingToRefund(session))?;
        let left = refundable.left();
        let asked = amount.unwrap_or(left);
        if left.is_zero() || asked.currency != left.currency || asked.minor > left.minor {
            return Err(DeskError::OverRefund { asked, left });
        }
        let request = RefundRequest {
            key: RefundKey(refund_key.clone()),
            charge_reference: refundable.reference,
            amount: Some(asked),
        };
        let refund = self.biller().gateway().refund(&request).await.map_err(DeskError::RefundRefused)?;
        let charge = refundable.charge;
        let now = self.clock.now();
        let record = RefundRecord {
            key: refund_key,
            session,
            charge: charge.clone(),
            amount: refund.amount,
            reference: refund.reference,
            by: who.0.clone(),
            reason: why.as_str().to_owned(),
            at: now,
        };
        self.store().record_refund(&record).await?;
        self.audit(who, AuditAction::Refund { charge, amount: record.amount }, why).await?;
        Ok(record)
    }

    /// Charges an unpaid stay again (its driver's bank said no, and the driver has since put money
    /// on the card or saved another): a new attempt under the next key, since the old key only
    /// replays the refusal, to the card the account holds now. Audited; paid, it gets its receipt.
    /// A stay nobody signed up for has no card to retry: it is paid by its link.
    pub async fn retry_charge(
        &self,
        session: SessionId,
        who: OperatorId,
        why: Reason,
    ) -> Result<SettledCharge, DeskError> {
        let record = self.store().session(session).await?.ok_or(DeskError::UnknownSession(session))?;
        let stay = record.to_session()?.ok_or(DeskError::NotRetryable(session, "retention erased it"))?;
        let SessionState::Unpaid { exit, .. } = stay.state() else {
            return Err(DeskError::NotRetryable(session, "only an unpaid stay is charged again"));
        };
        let Payer::Registered(driver) = stay.payer else {
            return Err(DeskError::NotRetryable(session, "nobody signed up for it: it is paid by its link"));
        };
        let attempt = u32::try_from(self.store().charges_for_session(session).await?.len()).unwrap_or(u32::MAX);
        let request = ChargeRequest {
            idempotency_key: IdempotencyKey::for_session(session, attempt.saturating_add(1)),
            session,
            driver,
            amount: exit.price.total,
        };
        self.audit(who, AuditAction::ChargeRetried { session, charge: request.idempotency_key.clone() }, why).await?;
        Ok(self.settle_charge(&request).await?)
    }

    /// The session's successful charge and how much of it has been refunded, if it was charged.
    pub async fn refundable(&self, session: SessionId) -> Result<Option<Refundable>, DeskError> {
        let charged =
            self.store().charges_for_session(session).await?.into_iter().rev().find_map(|record| {
                match record.charge.state() {
                    ChargeState::Succeeded { reference, .. } => {
                        Some((record.request.idempotency_key, reference.clone(), record.charge.amount))
                    }
                    _ => None,
                }
            });
        let Some((charge, reference, amount)) = charged else { return Ok(None) };
        let refunded = self
            .store()
            .refunds_for_session(session)
            .await?
            .iter()
            .filter(|r| r.charge == charge && r.amount.currency == amount.currency)
            .map(|r| r.amount.minor)
            .sum();
        Ok(Some(Refundable { charge, reference, charged: amount, refunded: Money::new(refunded, amount.currency) }))
    }

    /// Decides a review item: closes it with `resolution` and, with a `decision`, applies it to
    /// the item's session (paid in cash, written off, or repriced and charged again). Of two
    /// operators deciding one item at once, the second is told it is already decided.
    pub async fn decide_review(
        &self,
        id: ReviewItemId,
        decision: Option<ReviewDecision>,
        resolution: &str,
        who: OperatorId,
        why: Reason,
    ) -> Result<StoredReviewItem, DeskError> {
        let item = self.undecided_item(id).await?;
        let session = match (&decision, item.item.session) {
            (Some(_), None) => return Err(DeskError::NoSessionToDecide(id.0)),
            (Some(_), Some(session)) => Some(self.decidable(session).await?),
            (None, _) => None,
        };
        if !self.store().resolve_review_item(id, &who, resolution, self.clock.now()).await? {
            return Err(DeskError::AlreadyDecided(id.0));
        }
        match (decision, session) {
            (Some(decision), Some((mut session, version))) => {
                let reason = item.item.reason.clone();
                if !matches!(session.state(), SessionState::InReview { .. }) {
                    session.apply(SessionEvent::RaisedForReview { reason }).map_err(GateError::from)?;
                }
                let repriced = matches!(decision, ReviewDecision::Reprice { .. });
                session.apply(SessionEvent::Decided(decision.clone())).map_err(GateError::from)?;
                if self.store().save_session(&session, version).await?.is_none() {
                    return Err(DeskError::NotDecidable(session.id, "being changed by someone else"));
                }
                self.audit(who, AuditAction::ReviewDecision { session: session.id, decision }, why).await?;
                if repriced {
                    self.charge_repriced(&session).await?;
                }
            }
            _ => {
                let what = AuditAction::ReviewResolved { item: id.0, resolution: resolution.to_owned() };
                self.audit(who, what, why).await?;
            }
        }
        self.store().review_item(id).await?.ok_or(DeskError::UnknownReviewItem(id.0))
    }

    /// Corrects the plate of the open stay a review item was raised over (an entry misread: the
    /// operator reads the plate off the camera's image). The stay is looked up by the corrected
    /// plate from then on; if that plate is a signed-up driver's and the stay was nobody's, it
    /// becomes theirs, so they are charged at the exit like any stay of theirs. The item is
    /// resolved and the correction audited.
    pub async fn correct_plate(
        &self,
        id: ReviewItemId,
        plate: Plate,
        who: OperatorId,
        why: Reason,
    ) -> Result<StoredReviewItem, DeskError> {
        let item = self.undecided_item(id).await?;
        let session_id = item.item.session.ok_or(DeskError::NoSessionToDecide(id.0))?;
        let record = self.store().session(session_id).await?.ok_or(DeskError::UnknownSession(session_id))?;
        let Some(mut session) = record.to_session().map_err(GateError::from)? else {
            return Err(DeskError::NotDecidable(session_id, "erased"));
        };
        if !session.is_open() {
            return Err(DeskError::NotDecidable(session_id, "closed already: reprice it instead"));
        }
        let read =
            item.item.read.as_ref().map(|r| r.text.clone()).unwrap_or_else(|| session.plate.display().to_owned());
        let Some(mut version) = self.store().correct_plate(session_id, &plate, record.version).await? else {
            return Err(DeskError::NotDecidable(session_id, "being changed by someone else"));
        };
        if let (valet_garage::Payer::Unregistered { .. }, [driver]) =
            (&session.payer, self.store().drivers_by_plate(&plate).await?.as_slice())
        {
            session.plate = plate.clone();
            if session.register(driver.id).is_ok() {
                version = self
                    .store()
                    .save_session(&session, version)
                    .await?
                    .ok_or(DeskError::NotDecidable(session_id, "being changed by someone else"))?;
                tracing::info!(session = %session_id, version, "corrected stay now belongs to its driver");
            }
        }
        let resolution = format!("plate corrected from {read} to {}", plate.display());
        if !self.store().resolve_review_item(id, &who, &resolution, self.clock.now()).await? {
            return Err(DeskError::AlreadyDecided(id.0));
        }
        self.audit(who, AuditAction::PlateCorrected { item: id.0, session: session_id, read, plate }, why).await?;
        self.store().review_item(id).await?.ok_or(DeskError::UnknownReviewItem(id.0))
    }

    /// The review item `id`, if it is still to be decided.
    async fn undecided_item(&self, id: ReviewItemId) -> Result<StoredReviewItem, DeskError> {
        let item = self.store().review_item(id).await?.ok_or(DeskError::UnknownReviewItem(id.0))?;
        if item.resolved.is_some() {
            return Err(DeskError::AlreadyDecided(id.0));
        }
        Ok(item)
    }

    /// Stores `spec` as the active tariff, audits it, and prices every later exit with it.
    pub async fn change_tariff(&self, spec: TariffSpec, who: OperatorId, why: Reason) -> Result<i64, DeskError> {
        let tariff = Tariff::new(spec.clone())?;
        let version = self.store().activate_tariff(&tariff, self.clock.now()).await?;
        self.audit(who, AuditAction::TariffChange { tariff: spec }, why).await?;
        self.set_tariff(tariff);
        Ok(version)
    }

    /// Puts a plate on the allow or deny list (`Some`) or takes it off (`None`).
    pub async fn change_list(
        &self,
        plate: Plate,
        list: Option<ListKind>,
        who: OperatorId,
        why: Reason,
    ) -> Result<bool, DeskError> {
        let (changed, change) = match list {
            Some(kind) => {
                self.store().list_plate(&plate, kind, self.clock.now()).await?;
                let change = if kind == ListKind::Allow { ListChange::Allowed } else { ListChange::Denied };
                (true, change)
            }
            None => (self.store().unlist_plate(&plate).await?, ListChange::Removed),
        };
        if changed {
            self.audit(who, AuditAction::ListChange { plate, change }, why).await?;
        }
        Ok(changed)
    }

    /// Saves a new or changed monthly permit.
    pub async fn save_permit(&self, terms: PermitTerms, who: OperatorId, why: Reason) -> Result<Permit, DeskError> {
        let permit = Permit::new(terms)?;
        self.store().save_permit(&permit, self.clock.now()).await?;
        self.audit(who, AuditAction::PermitChange { permit: permit.id() }, why).await?;
        Ok(permit)
    }

    async fn audit(&self, who: OperatorId, what: AuditAction, why: Reason) -> Result<(), DeskError> {
        let event = AuditEvent { who, what, why, at: self.clock.now() };
        self.store().append_audit_event(&event).await?;
        Ok(())
    }

    async fn open_session_by_link(&self, link: LinkToken) -> Result<(ParkingSession, i64), DeskError> {
        let record = self.store().session_by_link(link).await?.ok_or(DeskError::UnknownLink)?;
        let session = record.to_session()?.ok_or(DeskError::UnknownLink)?;
        if !session.is_open() {
            return Err(DeskError::SessionNotOpen(session.id));
        }
        Ok((session, record.version))
    }

    async fn decidable(&self, id: SessionId) -> Result<(ParkingSession, i64), DeskError> {
        let record = self.store().session(id).await?.ok_or(DeskError::UnknownSession(id))?;
        let session = record.to_session()?.ok_or(DeskError::NotDecidable(id, "erased by retention"))?;
        match session.state() {
            SessionState::Closed { .. } | SessionState::Unpaid { .. } | SessionState::InReview { .. } => {
                Ok((session, record.version))
            }
            other => Err(DeskError::NotDecidable(id, other.name())),
        }
    }

    /// A repriced stay is charged again under a new attempt's key (the old key would replay the
    /// old amount), to the account it was charged to.
    async fn charge_repriced(&self, session: &ParkingSession) -> Result<(), DeskError> {
        let SessionState::Closed { exit } = session.state() else { return Ok(()) };
        let valet_garage::Payer::Registered(driver_id) = session.payer else { return Ok(()) };
        let attempts = self.store().charges_for_session(session.id).await?.len();
        let attempt = u32::try_from(attempts).unwrap_or(u32::MAX).saturating_add(1);
        let request = ChargeRequest {
            idempotency_key: IdempotencyKey::for_session(session.id, attempt),
            session: session.id,
            driver: driver_id,
            amount: exit.price.total,
        };
        let driver = self.store().driver(driver_id).await?;
        let driver = driver.ok_or(GateError::UnknownDriver(session.id, driver_id))?;
        let settled = self.biller().settle(&request, &driver.payment_method, self.clock.now()).await;
        if let Settlement::Recorded(charge) = settled.map_err(GateError::from)? {
            self.apply_outcome(&charge).await?;
        }
        Ok(())
    }
}

/// The camera name pay-by-plate exits are recorded under.
pub const PAY_BY_PLATE_CAMERA: &str = "pay-by-plate";
