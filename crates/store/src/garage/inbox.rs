//! The functions' inbox: which CloudEvents each function has taken on. Knative delivers at least
//! once (a broker retries on an error or a timeout, and two replicas may each be handed the same
//! event), so a function that changes the garage claims the event's id here first: the first
//! claim acts, a redelivery after it finished gets the recorded reply, and a redelivery while it
//! is still running is told to come back. A claim older than its lease belonged to a worker that
//! died, and the next delivery takes it over.

use chrono::{DateTime, TimeDelta, Utc};

use super::{GarageStore, with_pool};
use crate::StoreError;

/// The inbox's name for events a broker dead-lettered.
const DEAD_LETTER: &str = "dead-letter";

/// What [`GarageStore::claim_event`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventClaim {
    /// This worker acts on the event and then calls [`GarageStore::finish_event`] (or
    /// [`GarageStore::release_event`] when it failed, so that the broker's retry runs it again).
    Claimed,
    /// The event was handled already; `reply` is what the first handling answered.
    Handled { reply: Option<String> },
    /// Another worker holds a live claim on it.
    InProgress,
}

impl GarageStore {
    /// Claims `event_id` for `function` at `now`. A claim is a single conditional insert (or,
    /// for a stale claim, a conditional update), so of several workers exactly one gets
    /// [`EventClaim::Claimed`].
    pub async fn claim_event(
        &self,
        function: &str,
        event_id: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<EventClaim, StoreError> {
        let inserted = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO handled_events (function, event_id, claimed_at) VALUES ($1, $2, $3)
                 ON CONFLICT (function, event_id) DO NOTHING",
            )
            .bind(function)
            .bind(event_id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if inserted == 1 {
            return Ok(EventClaim::Claimed);
        }
        let taken_over = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE handled_events SET claimed_at = $3
                 WHERE function = $1 AND event_id = $2 AND finished_at IS NULL AND claimed_at < $4",
            )
            .bind(function)
            .bind(event_id)
            .bind(now)
            .bind(now - lease)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if taken_over == 1 {
            tracing::warn!(function, event_id, "took over a stale claim: its worker stopped before finishing");
            return Ok(EventClaim::Claimed);
        }
        let row: Option<(Option<DateTime<Utc>>, Option<String>)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT finished_at, reply FROM handled_events WHERE function = $1 AND event_id = $2")
                .bind(function)
                .bind(event_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(match row {
            Some((Some(_), reply)) => EventClaim::Handled { reply },
            // Released between the two statements: the caller's retry will claim it.
            Some((None, _)) | None => EventClaim::InProgress,
        })
    }

    /// Marks a claimed event handled, with the reply a redelivery gets.
    pub async fn finish_event(
        &self,
        function: &str,
        event_id: &str,
        reply: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE handled_events SET finished_at = $3, reply = $4 WHERE function = $1 AND event_id = $2")
                .bind(function)
                .bind(event_id)
                .bind(now)
                .bind(reply)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Gives up a claim whose handling failed, so the broker's next delivery runs it at once.
    pub async fn release_event(&self, function: &str, event_id: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM handled_events WHERE function = $1 AND event_id = $2 AND finished_at IS NULL")
                .bind(function)
                .bind(event_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Events each function has claimed and not finished, by function: being handled now, or left
    /// by a worker that died until the next delivery takes them over.
    pub async fn events_in_progress(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT function, COUNT(*) FROM handled_events WHERE finished_at IS NULL AND function <> $1
                 GROUP BY function ORDER BY function",
            )
            .bind(DEAD_LETTER)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Keeps an event the broker gave up on (its dead-letter sink's delivery), for operators.
    /// The same event dead-lettered twice is kept once.
    pub async fn record_dead_letter(&self, event_id: &str, event: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO handled_events (function, event_id, claimed_at, finished_at, reply)
                 VALUES ($1, $2, $3, $3, $4) ON CONFLICT (function, event_id) DO NOTHING",
            )
            .bind(DEAD_LETTER)
            .bind(event_id)
            .bind(now)
            .bind(event)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// The dead letters, newest first: (when, the event as recorded).
    pub async fn dead_letters(&self, limit: u32) -> Result<Vec<(DateTime<Utc>, String)>, StoreError> {
        let rows: Vec<(DateTime<Utc>, Option<String>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT claimed_at, reply FROM handled_events WHERE function = $1 ORDER BY claimed_at DESC LIMIT $2",
            )
            .bind(DEAD_LETTER)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(at, event)| (at, event.unwrap_or_default())).collect())
    }

    /// Forgets events handled before `before` (a broker gives up redelivering long before);
    /// dead letters stay until an operator's retention removes them.
    pub async fn forget_handled_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let forgotten = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM handled_events WHERE finished_at < $1 AND function <> 'dead-letter'")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(forgotten)
    }
}
