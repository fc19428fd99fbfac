//! [`LotHistory`]: what the bay cameras saw, frame by frame: each read frame's counts and space
//! states, and every space's state changes, on SQLite or PostgreSQL.
//!
//! Plain strings and numbers, not `valet-lot`'s types: the store does not depend on vision.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BeginWrite, Pool, from_json, to_json, with_pool};
use crate::StoreError;

/// The lot history on one database; cheap to clone. From [`crate::Store::lot_history`] or
/// [`super::GarageStore::lot_history`].
#[derive(Debug, Clone)]
pub struct LotHistory {
    pub(super) pool: Pool,
}

/// One space's smoothed state after a frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpaceStateRecord {
    pub space: String,
    /// `free` or `occupied`.
    pub state: String,
    pub confidence: f64,
    pub p_occupied: f64,
}

/// One camera frame of a lot, read: the lot's totals after it and every space it showed.
#[derive(Debug, Clone, PartialEq)]
pub struct LotFrameRecord {
    pub lot: String,
    pub camera: String,
    pub at: DateTime<Utc>,
    pub free: u32,
    pub occupied: u32,
    pub unknown: u32,
    pub spaces: Vec<SpaceStateRecord>,
    /// Per zone and level counts, as the caller shapes them (kept as JSON).
    pub counts: serde_json::Value,
}

/// A space whose state changed (or was first seen: `from` is `None`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpaceChangeRecord {
    pub space: String,
    pub from: Option<String>,
    pub to: String,
    pub confidence: f64,
    pub at: DateTime<Utc>,
}

/// A frame as the history holds it: its row id (increasing) and the changes it caused. What a
/// process that does not read the frames itself follows ([`LotHistory::frames_after`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedFrame {
    pub id: i64,
    pub frame: LotFrameRecord,
    pub changes: Vec<SpaceChangeRecord>,
}

#[derive(sqlx::FromRow)]
struct FrameRow {
    id: i64,
    lot_id: String,
    camera_id: String,
    observed_at: DateTime<Utc>,
    free: i64,
    occupied: i64,
    unknown: i64,
    spaces: String,
    counts: String,
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    frame_id: i64,
    space_id: String,
    from_state: Option<String>,
    to_state: String,
    confidence: f64,
    changed_at: DateTime<Utc>,
}

impl LotHistory {
    pub(crate) fn on_pool(pool: super::Pool) -> LotHistory {
        LotHistory { pool }
    }

    /// Records a frame and the changes it caused, together; returns the frame's id.
    pub async fn record_frame(&self, frame: &LotFrameRecord, changes: &[SpaceChangeRecord]) -> Result<i64, StoreError> {
        let spaces = to_json(&frame.spaces)?;
        let counts = to_json(&frame.counts)?;
        let id = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO lot_frames (lot_id, camera_id, observed_at, free, occupied, unknown, spaces, counts)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(&frame.lot)
            .bind(&frame.camera)
            .bind(frame.at)
            .bind(i64::from(frame.free))
            .bind(i64::from(frame.occupied))
            .bind(i64::from(frame.unknown))
            .bind(&spaces)
            .bind(&counts)
            .fetch_one(&mut *tx)
            .await?;
            for change in changes {
                sqlx::query(
                    "INSERT INTO lot_space_changes (frame_id, lot_id, space_id, from_state, to_state, confidence, changed_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(id)
                .bind(&frame.lot)
                .bind(&change.space)
                .bind(&change.from)
                .bind(&change.to)
                .bind(change.confidence)
                .bind(change.at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// The lot's most recently observed frame (of any camera), if any.
    pub async fn latest_frame(&self, lot: &str) -> Result<Option<(i64, LotFrameRecord)>, StoreError> {
        let row: Option<FrameRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, lot_id, camera_id, observed_at, free, occupied, unknown, spaces, counts FROM lot_frames
                 WHERE lot_id = $1 ORDER BY observed_at DESC, id DESC LIMIT 1",
            )
            .bind(lot)
            .fetch_optional(pool)
            .await?
        });
        row.map(|row| Ok((row.id, frame_record(row)?))).transpose()
    }

    /// Each camera's most recent frame of the lot: what a restarted server resumes from.
    pub async fn latest_frame_per_camera(&self, lot: &str) -> Result<Vec<LotFrameRecord>, StoreError> {
        let rows: Vec<FrameRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, lot_id, camera_id, observed_at, free, occupied, unknown, spaces, counts FROM lot_frames
                 WHERE id IN (SELECT MAX(id) FROM lot_frames WHERE lot_id = $1 GROUP BY camera_id)
                 ORDER BY observed_at, id",
            )
            .bind(lot)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(frame_record).collect()
    }

    /// The newest frame's id (of any lot), where a follower starts; `None` before any frame.
    pub async fn last_frame_id(&self) -> Result<Option<i64>, StoreError> {
        let id: Option<i64> =
            with_pool!(self, |pool| { sqlx::query_scalar("SELECT MAX(id) FROM lot_frames").fetch_one(pool).await? });
        Ok(id)
    }

    /// Frames of every lot recorded after frame `after`, in id order, at most `limit`, each with
    /// its changes. Ids are handed out in insertion order; a frame whose transaction commits
    /// after a later one's can be passed over, which costs a follower nothing lasting: the
    /// camera's next frame carries every space it shows.
    pub async fn frames_after(&self, after: i64, limit: u32) -> Result<Vec<RecordedFrame>, StoreError> {
        let rows: Vec<FrameRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, lot_id, camera_id, observed_at, free, occupied, unknown, spaces, counts FROM lot_frames
                 WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        let Some(last) = rows.last().map(|r| r.id) else { return Ok(Vec::new()) };
        let changes: Vec<ChangeRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT frame_id, space_id, from_state, to_state, confidence, changed_at FROM lot_space_changes
                 WHERE frame_id > $1 AND frame_id <= $2 ORDER BY id",
            )
            .bind(after)
            .bind(last)
            .fetch_all(pool)
            .await?
        });
        let mut frames = rows
            .into_iter()
            .map(|row| Ok(RecordedFrame { id: row.id, frame: frame_record(row)?, changes: Vec::new() }))
            .collect::<Result<Vec<_>, StoreError>>()?;
        for change in changes {
            if let Ok(i) = frames.binary_search_by_key(&change.frame_id, |f| f.id) {
                frames[i].changes.push(change_record(change));
            }
        }
        Ok(frames)
    }

    /// Forgets frames and changes observed before `before` (retention); returns the frames removed.
    pub async fn forget_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let forgotten = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "DELETE FROM lot_space_changes WHERE frame_id IN (SELECT id FROM lot_frames WHERE observed_at < $1)",
            )
            .bind(before)
            .execute(&mut *tx)
            .await?;
            let frames = sqlx::query("DELETE FROM lot_frames WHERE observed_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            frames
        });
        Ok(forgotten)
    }

    /// The lot's state changes at or after `since`, oldest first, at most `limit`.
    pub async fn changes_since(
        &self,
        lot: &str,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SpaceChangeRecord>, StoreError> {
        let rows: Vec<ChangeRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT frame_id, space_id, from_state, to_state, confidence, changed_at FROM lot_space_changes
                 WHERE lot_id = $1 AND changed_at >= $2 ORDER BY changed_at, id LIMIT $3",
            )
            .bind(lot)
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(change_record).collect())
    }
}

fn change_record(r: ChangeRow) -> SpaceChangeRecord {
    SpaceChangeRecord {
        space: r.space_id,
        from: r.from_state,
        to: r.to_state,
        confidence: r.confidence,
        at: r.changed_at,
    }
}

fn count(what: &str, n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("lot frame {what} count {n}")))
}

fn frame_record(row: FrameRow) -> Result<LotFrameRecord, StoreError> {
    Ok(LotFrameRecord {
        lot: row.lot_id,
        camera: row.camera_id,
        at: row.observed_at,
        free: count("free", row.free)?,
        occupied: count("occupied", row.occupied)?,
        unknown: count("unknown", row.unknown)?,
        spaces: from_json("lot frame spaces", &row.spaces)?,
        counts: from_json("lot frame counts", &row.counts)?,
    })
}
