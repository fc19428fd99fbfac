//! The gate lanes Valet knows: each camera that has reported a read, with its direction and
//! when it was first and last seen. An operator lifts a barrier by hand only on a known lane.

use chrono::{DateTime, Utc};
use valet_garage::{CameraId, Direction};

use super::{GarageStore, with_pool};
use crate::StoreError;

/// A lane's camera as the gate has seen it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    pub camera: CameraId,
    pub direction: Direction,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

impl GarageStore {
    /// Notes that `camera` reported a read at `at`; a camera remounted the other way round
    /// takes its latest direction.
    pub async fn saw_lane(&self, camera: &CameraId, direction: Direction, at: DateTime<Utc>) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO gate_lanes (camera, direction, first_seen, last_seen) VALUES ($1, $2, $3, $3)
                 ON CONFLICT (camera) DO UPDATE SET direction = excluded.direction, last_seen = excluded.last_seen
                 WHERE gate_lanes.last_seen < excluded.last_seen",
            )
            .bind(&camera.0)
            .bind(direction_name(direction))
            .bind(at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Every known lane, by camera.
    pub async fn lanes(&self) -> Result<Vec<Lane>, StoreError> {
        let rows: Vec<(String, String, DateTime<Utc>, DateTime<Utc>)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT camera, direction, first_seen, last_seen FROM gate_lanes ORDER BY camera")
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(camera, direction, first_seen, last_seen)| {
                let direction = match direction.as_str() {
                    "entry" => Direction::Entry,
                    "exit" => Direction::Exit,
                    other => return Err(StoreError::Corrupt(format!("lane {camera:?} has direction {other:?}"))),
                };
                Ok(Lane { camera: CameraId(camera), direction, first_seen, last_seen })
            })
            .collect()
    }
}

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Entry => "entry",
        Direction::Exit => "exit",
    }
}
