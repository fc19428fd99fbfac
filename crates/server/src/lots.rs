//! [`Lots`]: the lots this garage guides drivers in, live. Each layout file in the lots directory
//! becomes a [`LiveLot`]: its frame reader (warp maps built once per camera), its smoothed state,
//! and a broadcast of every frame's counts and changes for the SSE stream and the signs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;
use valet_lot::{Counts, Layout, LotReader, LotState, SmoothingConfig, SpaceId, StateChange, WarpMode};
use valet_occupancy::{OccupancyClassifier, SpaceState};
use valet_store::{LotFrameRecord, LotHistory, SpaceStateRecord};

/// Updates a slow subscriber may fall behind by before it skips to the newest.
const BACKLOG: usize = 64;

#[derive(Debug, Default)]
pub struct Lots {
    by_id: BTreeMap<String, Arc<LiveLot>>,
}

#[derive(Debug)]
pub struct LiveLot {
    pub reader: LotReader,
    state: Mutex<Live>,
    updates: broadcast::Sender<LotUpdate>,
    /// Each camera's latest frame (the JPEG as received), for the dashboard's map.
    frames: Mutex<BTreeMap<String, bytes::Bytes>>,
}

#[derive(Debug)]
struct Live {
    state: LotState,
    at: Option<DateTime<Utc>>,
}

/// What one frame changed, as the stream and the signs see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LotUpdate {
    pub lot: String,
    pub camera: String,
    pub at: DateTime<Utc>,
    pub counts: Counts,
    pub changes: Vec<ChangeView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeView {
    pub space: String,
    pub from: Option<&'static str>,
    pub to: &'static str,
    pub confidence: f32,
}

/// `GET /v1/lots/{id}/availability`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Availability {
    pub lot: String,
    /// When the last frame was read; `None` before any (every space then counts as unknown).
    pub at: Option<DateTime<Utc>>,
    pub counts: Counts,
    /// The gates' count of cars inside, beside the bays', where both are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconciliation: Option<Reconciliation>,
}

/// Bay cameras and gates count the same cars two ways. Entry/exit counting drifts (a missed
/// read, a tailgater), so signs show the bays' count; the gap is reported for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// Occupied spaces the bay cameras see, over every lot of the garage: the gates guard them all,
    /// so one lot's bays alone would be compared with cars parked elsewhere.
    pub bays_occupied: u32,
    /// Sessions opened at an entry and not yet closed at an exit.
    pub gate_inside: u32,
    /// `gate_inside - bays_occupied`: positive when the gates think more cars are in.
    pub disagreement: i64,
}

impl Reconciliation {
    pub fn new(bays_occupied: u32, gate_inside: u32) -> Reconciliation {
        Reconciliation { bays_occupied, gate_inside, disagreement: i64::from(gate_inside) - i64::from(bays_occupied) }
    }
}

impl Lots {
    /// Every `*.toml` layout in `dir` (none when it does not exist). A layout that does not load
    /// stops the start-up with its file named: a garage must not guide by a half-read map.
    pub fn load(dir: &Path, classifier: &Arc<OccupancyClassifier>) -> anyhow::Result<Lots> {
        let mut lots = Lots::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(lots),
            Err(e) => return Err(e).with_context(|| format!("reading the lots directory {}", dir.display())),
        };
        let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let layout = Layout::from_toml(&text).with_context(|| format!("lot layout {}", path.display()))?;
            let id = layout.id.to_string();
            anyhow::ensure!(!lots.by_id.contains_key(&id), "lot {id:?} is defined twice (again in {})", path.display());
            tracing::info!(lot = %id, spaces = layout.spaces.len(), path = %path.display(), "lot layout loaded");
            lots.by_id.insert(id, Arc::new(LiveLot::new(layout, Arc::clone(classifier))));
        }
        Ok(lots)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<LiveLot>> {
        self.by_id.values()
    }

    pub fn get(&self, id: &str) -> Option<&Arc<LiveLot>> {
        self.by_id.get(id)
    }

    /// Occupied spaces over every lot, once each lot has read a frame: until then part of the
    /// garage is unseen, and there is no bay count to set beside the gates'.
    pub fn garage_bays_occupied(&self) -> Option<u32> {
        self.by_id.values().map(|lot| lot.availability()).map(|a| a.at.map(|_| a.counts.lot.occupied)).sum()
    }

    /// Resumes every lot from its history: each camera's last recorded frame sets its spaces'
    /// states, so a restart neither blanks the signs nor lets one frame flip a space the
    /// smoothing had settled.
    pub async fn restore(&self, history: &LotHistory) -> Result<(), valet_store::StoreError> {
        for lot in self.by_id.values() {
            let frames = history.latest_frame_per_camera(&lot.reader.layout().id.to_string()).await?;
            lot.restore(&frames);
        }
        Ok(())
    }

    pub fn insert(&mut self, layout: Layout, classifier: Arc<OccupancyClassifier>) {
        self.by_id.insert(layout.id.to_string(), Arc::new(LiveLot::new(layout, classifier)));
    }
}

impl LiveLot {
    fn new(layout: Layout, classifier: Arc<OccupancyClassifier>) -> LiveLot {
        let state = LotState::new(layout.clone(), SmoothingConfig::default());
        LiveLot {
            reader: LotReader::new(layout, classifier, WarpMode::default()),
            state: Mutex::new(Live { state, at: None }),
            updates: broadcast::channel(BACKLOG).0,
            frames: Mutex::new(BTreeMap::new()),
        }
    }

    /// Folds one frame's reading into the lot's smoothed state and tells every subscriber.
    /// Returns the update and each read space's smoothed state, for the history.
    pub fn apply(
        &self,
        camera: &str,
        reading: &valet_lot::FrameReading,
        at: DateTime<Utc>,
    ) -> (LotUpdate, Vec<SpaceStateRecord>) {
        let mut live = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let changes = live.state.update(reading);
        live.at = Some(at);
        let update = LotUpdate {
            lot: self.reader.layout().id.to_string(),
            camera: camera.to_owned(),
            at,
            counts: live.state.counts(),
            changes: changes.iter().map(change_view).collect(),
        };
        let spaces = space_records(reading, &live.state);
        // No subscriber is not an error: nobody is watching the stream right now.
        let _ = self.updates.send(update.clone());
        (update, spaces)
    }

    /// Sets the spaces as `frames` (oldest first) recorded them; see [`Lots::restore`].
    pub fn restore(&self, frames: &[LotFrameRecord]) {
        let mut live = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for frame in frames {
            for space in &frame.spaces {
                let state = match space.state.as_str() {
                    "occupied" => SpaceState::Occupied,
                    "free" => SpaceState::Free,
                    _ => continue,
                };
                live.state.restore(&SpaceId::new(space.space.clone()), state, space.confidence as f32);
            }
            live.at = live.at.max(Some(frame.at));
        }
        if !frames.is_empty() {
            tracing::info!(lot = %self.reader.layout().id, at = ?live.at, "lot state restored from its history");
        }
    }

    pub fn availability(&self) -> Availability {
        let live = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let counts = live.state.counts();
        Availability { lot: self.reader.layout().id.to_string(), at: live.at, counts, reconciliation: None }
    }

    /// Keeps `camera`'s latest frame for the dashboard (one per camera, replaced each time).
    pub fn keep_frame(&self, camera: &str, jpeg: bytes::Bytes) {
        self.frames.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(camera.to_owned(), jpeg);
    }

    pub fn latest_frame(&self, camera: &str) -> Option<bytes::Bytes> {
        self.frames.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(camera).cloned()
    }

    /// Each space's smoothed state now (`None` before its first frame).
    pub fn space_states(&self) -> Vec<(String, Option<&'static str>)> {
        let live = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.reader
            .layout()
            .spaces
            .iter()
            .map(|s| (s.id.to_string(), live.state.space(&s.id).map(|t| t.state.as_str())))
            .collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LotUpdate> {
        self.updates.subscribe()
    }
}

/// Each read space's smoothed state, as the history stores it.
pub fn space_records(reading: &valet_lot::FrameReading, state: &LotState) -> Vec<SpaceStateRecord> {
    reading
        .spaces
        .iter()
        .filter_map(|r| {
            let s = state.space(&r.space)?;
            Some(SpaceStateRecord {
                space: r.space.to_string(),
                state: s.state.as_str().to_owned(),
                confidence: f64::from(s.confidence),
                p_occupied: f64::from(r.p_occupied),
            })
        })
        .collect()
}

fn change_view(change: &StateChange) -> ChangeView {
    ChangeView {
        space: change.space.to_string(),
        from: change.from.map(|s| s.as_str()),
        to: change.to.as_str(),
        confidence: change.confidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use valet_lot::{FrameReading, LotId, SpaceReading};

    fn lot(id: &str, spaces: usize) -> Layout {
        let mut layout = valet_lot::synthetic::grid_layout(spaces, 640, 480);
        layout.id = LotId::new(id);
        layout
    }

    /// Every space of `lot` read with the same probability.
    fn read(lots: &Lots, id: &str, p_occupied: f32) {
        let lot = lots.get(id).unwrap();
        let layout = lot.reader.layout();
        let reading = FrameReading {
            camera: layout.cameras[0].id.clone(),
            spaces: layout.spaces.iter().map(|s| SpaceReading { space: s.id.clone(), p_occupied }).collect(),
            warnings: Vec::new(),
            warp_ms: 0.0,
            model_ms: 0.0,
        };
        lot.apply(layout.cameras[0].id.as_str(), &reading, Utc::now());
    }

    #[test]
    fn the_garage_bay_count_waits_for_every_lot_and_then_adds_them_up() {
        let classifier = Arc::new(OccupancyClassifier::bundled().unwrap());
        let mut lots = Lots::default();
        lots.insert(lot("level-1", 6), Arc::clone(&classifier));
        lots.insert(lot("level-2", 4), classifier);
        assert_eq!(lots.garage_bays_occupied(), None, "no lot read yet");
        read(&lots, "level-1", 0.99);
        assert_eq!(lots.garage_bays_occupied(), None, "level 2 is still unseen");
        read(&lots, "level-2", 0.99);
        assert_eq!(lots.garage_bays_occupied(), Some(10));
        read(&lots, "level-2", 0.01);
        read(&lots, "level-2", 0.01);
        read(&lots, "level-2", 0.01);
        assert_eq!(lots.garage_bays_occupied(), Some(6), "level 2 emptied (after the smoothing)");
    }
}
