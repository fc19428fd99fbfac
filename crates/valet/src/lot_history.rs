//! Recording a lot reading in the data directory's database (`valet occupancy --record-in DIR`):
//! `valet-lot`'s values mapped onto `valet-store`'s plain records.

use std::path::Path;

use chrono::{DateTime, Utc};
use valet_lot::{CameraId, FrameReading, Layout, LotState, StateChange};
use valet_store::{LotFrameRecord, SpaceChangeRecord, Store};

/// Stores the frame (the lot's counts after it, each space's state) and its changes; returns the
/// frame's id.
pub async fn record(
    data_dir: &Path,
    layout: &Layout,
    camera: &CameraId,
    reading: &FrameReading,
    lot: &LotState,
    changes: &[StateChange],
    at: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let store = Store::open(data_dir).await?;
    let counts = lot.counts();
    let spaces = valet_server::lots::space_records(reading, lot);
    let frame = LotFrameRecord {
        lot: layout.id.to_string(),
        camera: camera.to_string(),
        at,
        free: counts.lot.free,
        occupied: counts.lot.occupied,
        unknown: counts.lot.unknown,
        spaces,
        counts: serde_json::to_value(&counts)?,
    };
    let changes: Vec<SpaceChangeRecord> = changes
        .iter()
        .map(|c| SpaceChangeRecord {
            space: c.space.to_string(),
            from: c.from.map(|s| s.as_str().to_owned()),
            to: c.to.as_str().to_owned(),
            confidence: f64::from(c.confidence),
            at,
        })
        .collect();
    Ok(store.lot_history().record_frame(&frame, &changes).await?)
}
