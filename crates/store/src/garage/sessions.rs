//! Parking sessions: open, find the open ones for a plate, close exactly once, save later
//! transitions against a version, and erase old settled sessions' plates (retention).

use chrono::{DateTime, Duration, Utc};
use valet_garage::{Discount, DriverId, LinkToken, ParkingSession, Payer, PermitId, Plate, SessionId, SessionState};

use super::{BeginWrite, GarageStore, from_json, parse_column, to_json, with_pool};
use crate::StoreError;

/// Days a settled session keeps its plate before [`GarageStore::erase_settled_plates`] removes it.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// A session as stored. `plate` is `None` once retention erased it; such a session can no longer
/// be turned back into a [`ParkingSession`] (which always has a plate), and needs not be: it is
/// settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub plate: Option<Plate>,
    pub entry: DateTime<Utc>,
    pub payer: Payer,
    pub permit: Option<PermitId>,
    pub discounts: Vec<Discount>,
    pub state: SessionState,
    /// Raised by every write; [`GarageStore::save_session`] succeeds only against the version read.
    pub version: i64,
}

impl SessionRecord {
    /// The domain value, to apply the next event to; `None` after retention.
    pub fn to_session(&self) -> Result<Option<ParkingSession>, StoreError> {
        let Some(plate) = &self.plate else { return Ok(None) };
        // Through serde because the state machine keeps its state private: only `apply` moves
        // it, and a stored session is rebuilt as it was, not replayed.
        let value = serde_json::json!({
            "id": self.id,
            "plate": plate,
            "entry": self.entry,
            "payer": self.payer,
            "permit": self.permit,
            "discounts": self.discounts,
            "state": self.state,
        });
        serde_json::from_value(value).map(Some).map_err(|e| StoreError::Corrupt(format!("session {}: {e}", self.id)))
    }
}

/// What [`GarageStore::close_session`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOutcome {
    /// This call closed the session; it now has `version`.
    Closed { version: i64 },
    /// The session was no longer open: another worker handled the same exit first (or it does
    /// not exist). The caller must not charge.
    AlreadyClosed,
}

#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    id: String,
    plate_display: Option<String>,
    entry_at: DateTime<Utc>,
    state_detail: String,
    payer_driver_id: Option<String>,
    payer_link_token: Option<String>,
    permit_id: Option<String>,
    discounts: String,
    version: i64,
}

/// Sessions with their plate's spelling, where retention has not removed it.
pub(super) const SESSION_SELECT: &str = "SELECT s.id, p.plate_display, s.entry_at, s.state_detail, s.payer_driver_id, \
                              s.payer_link_token, s.permit_id, s.discounts, s.version \
                              FROM sessions s LEFT JOIN session_plates p ON p.session_id = s.id";

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;
    fn try_from(row: SessionRow) -> Result<SessionRecord, StoreError> {
        let payer = match (row.payer_driver_id, row.payer_link_token) {
            (Some(driver), _) => Payer::Registered(parse_column("payer", DriverId::parse(&driver))?),
            (None, Some(link)) => Payer::Unregistered { link: parse_column("link token", LinkToken::parse(&link))? },
            (None, None) => return Err(StoreError::Corrupt(format!("session {} has no payer", row.id))),
        };
        Ok(SessionRecord {
            id: parse_column("session id", SessionId::parse(&row.id))?,
            plate: row.plate_display.map(|p| parse_column("session plate", Plate::parse(&p))).transpose()?,
            entry: row.entry_at,
            payer,
            permit: row.permit_id.map(|p| parse_column("permit id", PermitId::parse(&p))).transpose()?,
            discounts: from_json("session discounts", &row.discounts)?,
            state: from_json("session state", &row.state_detail)?,
            version: row.version,
        })
    }
}

/// The columns that repeat a state for queries and constraints.
struct StateColumns {
    name: &'static str,
    detail: String,
    exit_at: Option<DateTime<Utc>>,
    price_minor: Option<i64>,
    currency: Option<String>,
    settled_at: Option<DateTime<Utc>>,
}

impl StateColumns {
    fn of(state: &SessionState) -> Result<StateColumns, StoreError> {
        let exit = state.exit();
        let (name, settled_at) = match state {
            SessionState::Open => ("open", None),
            SessionState::Closed { .. } => ("closed", None),
            SessionState::Paid { at, .. } => ("paid", Some(*at)),
            SessionState::Unpaid { .. } => ("unpaid", None),
            SessionState::InReview { .. } => ("in_review", None),
        };
        Ok(StateColumns {
            name,
            detail: to_json(state)?,
            exit_at: exit.map(|e| e.at),
            price_minor: exit.map(|e| e.price.total.minor),
            currency: exit.map(|e| e.price.total.currency.code().to_owned()),
            settled_at,
        })
    }
}

fn payer_columns(payer: &Payer) -> (Option<String>, Option<String>) {
    match payer {
        Payer::Registered(driver) => (Some(driver.to_string()), None),
        Payer::Unregistered { link } => (None, Some(link.to_string())),
    }
}

/// Which stored session a write may replace.
enum Guard {
    StillOpen,
    Version(i64),
}

impl GarageStore {
    /// Stores a new session (normally open, as the entry gate made it): the digest with the
    /// session, the spelling apart, both or neither.
    pub async fn open_session(&self, session: &ParkingSession) -> Result<(), StoreError> {
        let state = StateColumns::of(session.state())?;
        let (driver, link) = payer_columns(&session.payer);
        let discounts = to_json(&session.discounts)?;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO sessions (id, plate_hmac, entry_at, exit_at, state, state_detail, price_minor, currency,
                                       settled_at, payer_driver_id, payer_link_token, permit_id, discounts, version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1)",
            )
            .bind(session.id.to_string())
            .bind(self.plate_digest(&session.plate).as_str())
            .bind(session.entry)
            .bind(state.exit_at)
            .bind(state.name)
            .bind(&state.detail)
            .bind(state.price_minor)
            .bind(&state.currency)
            .bind(state.settled_at)
            .bind(&driver)
            .bind(&link)
            .bind(session.permit.map(|p| p.to_string()))
            .bind(&discounts)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO session_plates (session_id, plate_display) VALUES ($1, $2)")
                .bind(session.id.to_string())
                .bind(session.plate.display())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn session(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!("{SESSION_SELECT} WHERE s.id = $1");
        let row: Option<SessionRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(id.to_string()).fetch_optional(pool).await?);
        row.map(SessionRecord::try_from).transpose()
    }

    /// Open sessions whose plate has `plate`'s matching key (the exact spelling or a confusable
    /// one), oldest first: the exit gate's candidates.
    pub async fn open_sessions_by_plate(&self, plate: &Plate) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!("{SESSION_SELECT} WHERE s.plate_hmac = $1 AND s.state = 'open' ORDER BY s.entry_at, s.id");
        let digest = self.plate_digest(plate);
        let rows: Vec<SessionRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).bind(digest.as_str()).fetch_all(pool).await?);
        rows.into_iter().map(SessionRecord::try_from).collect()
    }

    /// Open sessions entered before `entered_before` that have never been raised as a missed exit
    /// (an operator who left one open keeps it open), oldest first, at most `limit`.
    pub async fn open_sessions_unflagged_since(
        &self,
        entered_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "{SESSION_SELECT} WHERE s.state = 'open' AND s.entry_at < $1 AND NOT EXISTS (
                 SELECT 1 FROM review_items r WHERE r.session_id = s.id AND r.reason = 'missed_exit')
             ORDER BY s.entry_at, s.id LIMIT $2"
        );
        let rows: Vec<SessionRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(entered_before).bind(i64::from(limit)).fetch_all(pool).await?
        });
        rows.into_iter().map(SessionRecord::try_from).collect()
    }

    /// Sessions whose plate has `plate`'s matching key that are open, or closed at or after
    /// `exited_since`, oldest first: what the exit gate matches a read against, including a car
    /// read twice or one whose driver just paid by plate.
    pub async fn exit_candidates_by_plate(
        &self,
        plate: &Plate,
        exited_since: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "{SESSION_SELECT} WHERE s.plate_hmac = $1 AND (s.state = 'open' OR s.exit_at >= $2)
             ORDER BY s.entry_at, s.id"
        );
        let digest = self.plate_digest(plate);
        let rows: Vec<SessionRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(digest.as_str()).bind(exited_since).fetch_all(pool).await?
        });
        rows.into_iter().map(SessionRecord::try_from).collect()
    }

    /// How many cars are inside under `permit` (its open sessions): what its concurrent-vehicle
    /// limit is checked against.
    pub async fn open_sessions_under_permit(&self, permit: PermitId) -> Result<u32, StoreError> {
        let count: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE permit_id = $1 AND state = 'open'")
                .bind(permit.to_string())
                .fetch_one(pool)
                .await?
        });
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// Saves `session`, already moved past open by its exit event, only if the stored session is
    /// still open. Of any number of workers handling the same exit read at once, exactly one gets
    /// [`CloseOutcome::Closed`]; only that one may charge.
    pub async fn close_session(&self, session: &ParkingSession) -> Result<CloseOutcome, StoreError> {
        if session.is_open() {
            return Err(StoreError::StillOpen(session.id));
        }
        Ok(match self.write_session(session, Guard::StillOpen).await? {
            Some(version) => CloseOutcome::Closed { version },
            None => CloseOutcome::AlreadyClosed,
        })
    }

    /// Gives an open session the plate a person read off the camera's image (a misread at the
    /// entry), or the spelling its driver typed at sign-up: its digest and its spelling, if the
    /// session is still open at `expected_version`.
    /// Returns the new version, or `None` when the session changed or closed meanwhile.
    pub async fn correct_plate(
        &self,
        id: SessionId,
        plate: &Plate,
        expected_version: i64,
    ) -> Result<Option<i64>, StoreError> {
        let digest = self.plate_digest(plate);
        let version: Option<i64> = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let version: Option<i64> = sqlx::query_scalar(
                "UPDATE sessions SET plate_hmac = $2, version = version + 1
                 WHERE id = $1 AND version = $3 AND state = 'open' RETURNING version",
            )
            .bind(id.to_string())
            .bind(digest.as_str())
            .bind(expected_version)
            .fetch_optional(&mut *tx)
            .await?;
            if version.is_some() {
                sqlx::query("UPDATE session_plates SET plate_display = $2 WHERE session_id = $1")
                    .bind(id.to_string())
                    .bind(plate.display())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            version
        });
        Ok(version)
    }

    /// Saves a later transition (paid, unpaid, in review, a driver registered) if the stored
    /// session still has `expected_version`; returns the new version, or `None` when someone
    /// else wrote first and the caller must read again.
    pub async fn save_session(
        &self,
        session: &ParkingSession,
        expected_version: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.write_session(session, Guard::Version(expected_version)).await
    }

    async fn write_session(&self, session: &ParkingSession, guard: Guard) -> Result<Option<i64>, StoreError> {
        let state = StateColumns::of(session.state())?;
        let (driver, link) = payer_columns(&session.payer);
        let discounts = to_json(&session.discounts)?;
        let condition = match guard {
            Guard::StillOpen => "state = 'open'",
            Guard::Version(_) => "version = $11",
        };
        // One statement: PostgreSQL locks the row, and a second writer re-checks the condition
        // after the first commits, so it finds the session no longer open and changes nothing.
        let sql = format!(
            "UPDATE sessions SET state = $2, state_detail = $3, exit_at = $4, price_minor = $5, currency = $6,
                                 settled_at = $7, payer_driver_id = $8, payer_link_token = $9, discounts = $10,
                                 version = version + 1
             WHERE id = $1 AND {condition} RETURNING version"
        );
        let version: Option<i64> = with_pool!(self, |pool| {
            let query = sqlx::query_scalar(&sql)
                .bind(session.id.to_string())
                .bind(state.name)
                .bind(&state.detail)
                .bind(state.exit_at)
                .bind(state.price_minor)
                .bind(&state.currency)
                .bind(state.settled_at)
                .bind(&driver)
                .bind(&link)
                .bind(&discounts);
            let query = match guard {
                Guard::StillOpen => query,
                Guard::Version(expected) => query.bind(expected),
            };
            query.fetch_optional(pool).await?
        });
        Ok(version)
    }

    /// Retention: forgets the plate (spelling and digest) of every paid session settled more than
    /// `retention_days` before `now`. Unsettled sessions keep theirs: a debt must stay
    /// collectable and a review decidable. Returns how many sessions were erased.
    pub async fn erase_settled_plates(&self, now: DateTime<Utc>, retention_days: u32) -> Result<u64, StoreError> {
        let cutoff = now - Duration::days(i64::from(retention_days));
        let erased = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "DELETE FROM session_plates WHERE session_id IN
                     (SELECT id FROM sessions WHERE state = 'paid' AND settled_at < $1)",
            )
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
            let erased = sqlx::query(
                "UPDATE sessions SET plate_hmac = NULL, version = version + 1
                 WHERE state = 'paid' AND settled_at < $1 AND plate_hmac IS NOT NULL",
            )
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            erased
        });
        Ok(erased)
    }
}
