//! [`Lots`]: the lots this garage guides drivers in, live. Each layout ([`crate::layouts`]: the
//! database, the lots directory) becomes a [`LiveLot`]: its frame reader (warp maps built once per
//! camera), its smoothed state, and a broadcast of every frame's counts and changes for the SSE
//! stream and the signs. The occupancy function moves a lot with the frames it reads; a process
//! without it (the query function on its own) follows the frames the history recorded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;
use valet_lot::{Counts, Layout, LotReader, LotState, SmoothedSpace, SmoothingConfig, SpaceId, StateChange, WarpMode};
use valet_occupancy::{OccupancyClassifier, SpaceState};
use valet_store::{LotFrameRecord, LotHistory, RecordedFrame, SpaceStateRecord};

/// Updates a slow subscriber may fall behind by before it skips to the newest.
const BACKLOG: usize = 64;

/// The lots, each live. Layouts come and go while Valet runs ([`crate::layouts`]), so the map
/// is behind a lock held only to look a lot up.
#[derive(Debug)]
pub struct Lots {
    by_id: RwLock<BTreeMap<String, Arc<LiveLot>>>,
    /// Every lot's availability after each frame (see [`Lots::subscribe_counts`]).
    counted: broadcast::Sender<Availability>,
}

#[derive(Debug)]
pub struct LiveLot {
    pub reader: LotReader,
    state: Mutex<Live>,
    updates: broadcast::Sender<LotUpdate>,
    counted: broadcast::Sender<Availability>,
    /// Each camera's latest frame (the JPEG as received) and when it was read: the dashboard's
    /// map shows it, and an operator's labels are cut from it.
    frames: Mutex<BTreeMap<String, (bytes::Bytes, DateTime<Utc>)>>,
}

#[derive(Debug)]
struct Live {
    state: LotState,
    at: Option<DateTime<Utc>>,
}

/// What one frame changed, as the stream and the signs see it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LotUpdate {
    pub lot: String,
    pub camera: String,
    pub at: DateTime<Utc>,
    pub counts: Counts,
    pub changes: Vec<ChangeView>,
    /// Every space of the lot as reported after this frame.
    pub spaces: Vec<SpaceStatus>,
}

/// One space as the API reports it: `free`, `occupied`, or `unknown` with the reason (not seen
/// yet, or evidence too weak to tell: a sign must not count it free).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SpaceStatus {
    pub space: String,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl SpaceStatus {
    fn of(space: &SpaceId, smoothed: Option<&SmoothedSpace>) -> SpaceStatus {
        let (state, reason) = match smoothed {
            None => ("unknown", Some("no frame has shown it yet".to_owned())),
            Some(s) => match s.unsure_reason() {
                Some(reason) => ("unknown", Some(reason)),
                None => (s.state.as_str(), None),
            },
        };
        SpaceStatus { space: space.to_string(), state, reason }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChangeView {
    pub space: String,
    pub from: Option<&'static str>,
    pub to: &'static str,
    pub confidence: f32,
}

/// `GET /v1/lots/{id}/availability`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Availability {
    pub lot: String,
    /// When the last frame was read; `None` before any (every space then counts as unknown).
    pub at: Option<DateTime<Utc>>,
    pub counts: Counts,
    /// Each space's state; empty in the counts published to signs, which need only the counts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spaces: Vec<SpaceStatus>,
    /// The gates' count of cars inside, beside the bays', where both are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconciliation: Option<Reconciliation>,
}

/// Bay cameras and gates count the same cars two ways. Entry/exit counting drifts (a missed
/// read, a tailgater), so signs show the bays' count; the gap is reported for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

impl Default for Lots {
    fn default() -> Lots {
        Lots { by_id: RwLock::new(BTreeMap::new()), counted: broadcast::channel(BACKLOG).0 }
    }
}

impl Lots {
    /// Every lot now, by id (a snapshot: layouts may come and go while Valet runs).
    pub fn all(&self) -> Vec<Arc<LiveLot>> {
        self.read().values().cloned().collect()
    }

    pub fn get(&self, id: &str) -> Option<Arc<LiveLot>> {
        self.read().get(id).cloned()
    }

    pub fn ids(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Occupied spaces over every lot, once each lot has read a frame: until then part of the
    /// garage is unseen, and there is no bay count to set beside the gates'.
    pub fn garage_bays_occupied(&self) -> Option<u32> {
        self.all().iter().map(|lot| lot.availability()).map(|a| a.at.map(|_| a.counts.lot.occupied)).sum()
    }

    /// Resumes every lot from its history: each camera's last recorded frame sets its spaces'
    /// states, so a restart neither blanks the signs nor lets one frame flip a space the
    /// smoothing had settled.
    pub async fn restore(&self, history: &LotHistory) -> Result<(), valet_store::StoreError> {
        for lot in self.all() {
            lot.restore_from(history).await?;
        }
        Ok(())
    }

    /// Adds a lot (start-up and tests).
    pub fn insert(&mut self, layout: Layout, classifier: Arc<OccupancyClassifier>) {
        self.put(layout, classifier);
    }

    /// Puts `layout` in place of its lot's current one, or adds the lot. The new layout starts
    /// with no state (restore it from the history); whoever follows the lot's stream keeps
    /// following it.
    pub fn put(&self, layout: Layout, classifier: Arc<OccupancyClassifier>) -> Arc<LiveLot> {
        let id = layout.id.to_string();
        let mut by_id = self.by_id.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let updates = by_id.get(&id).map_or_else(|| broadcast::channel(BACKLOG).0, |old| old.updates.clone());
        let lot = Arc::new(LiveLot::new(layout, classifier, updates, self.counted.clone()));
        by_id.insert(id, Arc::clone(&lot));
        lot
    }

    /// Forgets a lot whose layout was removed; false when there was none.
    pub fn remove(&self, id: &str) -> bool {
        self.by_id.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id).is_some()
    }

    /// Each lot's availability after each of its frames, lots added later included (the signs).
    pub fn subscribe_counts(&self) -> broadcast::Receiver<Availability> {
        self.counted.subscribe()
    }

    /// Applies the frames other processes recorded after frame `after` (the query function,
    /// which reads no frame itself); returns the last frame seen.
    pub async fn catch_up(&self, history: &LotHistory, after: i64) -> Result<i64, valet_store::StoreError> {
        let mut last = after;
        loop {
            let frames = history.frames_after(last, FOLLOW_BATCH).await?;
            for recorded in &frames {
                if let Some(lot) = self.get(&recorded.frame.lot) {
                    lot.apply_recorded(recorded);
                }
                last = recorded.id;
            }
            if frames.len() < FOLLOW_BATCH as usize {
                return Ok(last);
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<LiveLot>>> {
        self.by_id.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How often a process that reads no frames itself looks for frames other processes recorded.
pub const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
const FOLLOW_BATCH: u32 = 500;

/// The query function without occupancy: every [`FOLLOW_EVERY`], the frames the occupancy
/// replicas recorded since `after` move this process's lots, so availability, the stream and
/// the dashboard's map follow them. A database error is logged and retried on the next tick.
pub fn spawn_follower(state: crate::AppState, after: i64) {
    tokio::spawn(async move {
        let history = state.store().lot_history();
        let mut after = after;
        let mut tick = tokio::time::interval(FOLLOW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match state.lots().catch_up(&history, after).await {
                Ok(last) => after = last,
                Err(e) => tracing::warn!(error = %e, "following the lot history failed; trying again"),
            }
        }
    });
}

impl LiveLot {
    fn new(
        layout: Layout,
        classifier: Arc<OccupancyClassifier>,
        updates: broadcast::Sender<LotUpdate>,
        counted: broadcast::Sender<Availability>,
    ) -> LiveLot {
        let state = LotState::new(layout.clone(), SmoothingConfig::default());
        LiveLot {
            reader: LotReader::new(layout, classifier, WarpMode::default()),
            state: Mutex::new(Live { state, at: None }),
            updates,
            counted,
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
            spaces: self.statuses(&live),
        };
        let spaces = space_records(reading, &live.state);
        self.tell(&live, &update);
        (update, spaces)
    }

    /// Folds a frame another process read and recorded into this lot: its spaces take the
    /// states recorded (already smoothed there), and subscribers hear of it as of a frame read here.
    pub fn apply_recorded(&self, recorded: &RecordedFrame) -> LotUpdate {
        let mut live = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        restore_spaces(&mut live, &recorded.frame);
        let update = LotUpdate {
            lot: self.reader.layout().id.to_string(),
            camera: recorded.frame.camera.clone(),
            at: recorded.frame.at,
            counts: live.state.counts(),
            changes: recorded
                .changes
                .iter()
                .filter_map(|c| {
                    Some(ChangeView {
                        space: c.space.clone(),
                        from: c.from.as_deref().and_then(state_name),
                        to: state_name(&c.to)?,
                        confidence: c.confidence as f32,
                    })
                })
                .collect(),
            spaces: self.statuses(&live),
        };
        self.tell(&live, &update);
        update
    }

    fn tell(&self, live: &Live, update: &LotUpdate) {
        // No subscriber is not an error: nobody is watching right now.
        let _ = self.updates.send(update.clone());
        let _ = self.counted.send(Availability {
            lot: update.lot.clone(),
            at: live.at,
            counts: update.counts.clone(),
            spaces: Vec::new(),
            reconciliation: None,
        });
    }

    fn statuses(&self, live: &Live) -> Vec<SpaceStatus> {
        self.reader.layout().spaces.iter().map(|s| SpaceStatus::of(&s.id, live.state.space(&s.id))).collect()
    }

    /// Restores the lot from each camera's latest recorded frame; see [`Lots::restore`].
    pub async fn restore_from(&self, history: &LotHistory) -> Result<(), valet_store::StoreError> {
        let frames = history.latest_frame_per_camera(&self.reader.layout().id.to_string()).await?;
        self.restore(&frames);
        Ok(())
    }

    /// Sets the spaces as `frames` (oldest first) recorded them; see [`Lots::restore`].
    pub fn restore(&self, frames: &[LotFrameRecord]) {
        let mut live = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for frame in frames {
            restore_spaces(&mut live, frame);
        }
        if !frames.is_empty() {
            tracing::info!(lot = %self.reader.layout().id, at = ?live.at, "lot state restored from its history");
        }
    }

    pub fn availability(&self) -> Availability {
        let live = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let counts = live.state.counts();
        let spaces = self.statuses(&live);
        Availability { lot: self.reader.layout().id.to_string(), at: live.at, counts, spaces, reconciliation: None }
    }

    /// Keeps `camera`'s latest frame, read at `at`, for the dashboard and for labels (one per
    /// camera, replaced each time).
    pub fn keep_frame(&self, camera: &str, jpeg: bytes::Bytes, at: DateTime<Utc>) {
        self.frames.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(camera.to_owned(), (jpeg, at));
    }

    pub fn latest_frame(&self, camera: &str) -> Option<bytes::Bytes> {
        self.latest_frame_at(camera).map(|(jpeg, _)| jpeg)
    }

    /// `camera`'s latest frame and when it was read.
    pub fn latest_frame_at(&self, camera: &str) -> Option<(bytes::Bytes, DateTime<Utc>)> {
        self.frames.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(camera).cloned()
    }

    /// Each space's state as reported now: `None` before its first frame, `unknown` while unsure.
    pub fn space_states(&self) -> Vec<(String, Option<&'static str>)> {
        let live = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.reader
            .layout()
            .spaces
            .iter()
            .map(|s| {
                let smoothed = live.state.space(&s.id);
                (s.id.to_string(), smoothed.map(|_| SpaceStatus::of(&s.id, smoothed).state))
            })
            .collect()
    }

    /// Each space of the layout (in its order) with its smoothed state, `None` before its first frame.
    pub fn smoothed(&self) -> Vec<(SpaceId, Option<SmoothedSpace>)> {
        let live = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.reader.layout().spaces.iter().map(|s| (s.id.clone(), live.state.space(&s.id).copied())).collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LotUpdate> {
        self.updates.subscribe()
    }
}

/// Sets each space `frame` recorded to its recorded state.
fn restore_spaces(live: &mut Live, frame: &LotFrameRecord) {
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

/// A recorded state's name as the stream spells it; `None` for one this build does not know.
fn state_name(state: &str) -> Option<&'static str> {
    [SpaceState::Free, SpaceState::Occupied].into_iter().map(SpaceState::as_str).find(|name| *name == state)
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
            spaces: layout
                .spaces
                .iter()
                .map(|s| SpaceReading { space: s.id.clone(), p_occupied, p_universal: None })
                .collect(),
            warnings: Vec::new(),
            warp_ms: 0.0,
            model_ms: 0.0,
            adapted: false,
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

    #[test]
    fn a_frame_recorded_elsewhere_moves_the_counts_and_reaches_the_stream_of_a_replaced_layout() {
        let classifier = Arc::new(OccupancyClassifier::bundled().unwrap());
        let lots = Lots::default();
        lots.put(lot("north", 2), Arc::clone(&classifier));
        let mut stream = lots.get("north").unwrap().subscribe();
        let mut signs = lots.subscribe_counts();
        // The layout changes (a third space): whoever followed the lot still does.
        let lot = lots.put(lot("north", 3), classifier);
        let space = |id: &str, state: &str| SpaceStateRecord {
            space: id.into(),
            state: state.into(),
            confidence: 0.9,
            p_occupied: if state == "occupied" { 0.9 } else { 0.1 },
        };
        let ids: Vec<String> = lot.reader.layout().spaces.iter().map(|s| s.id.to_string()).collect();
        let recorded = RecordedFrame {
            id: 7,
            frame: LotFrameRecord {
                lot: "north".into(),
                camera: lot.reader.layout().cameras[0].id.to_string(),
                at: Utc::now(),
                free: 1,
                occupied: 1,
                unknown: 1,
                spaces: vec![space(&ids[0], "occupied"), space(&ids[1], "free"), space("gone", "free")],
                counts: serde_json::Value::Null,
            },
            changes: vec![valet_store::SpaceChangeRecord {
                space: ids[0].clone(),
                from: Some("free".into()),
                to: "occupied".into(),
                confidence: 0.9,
                at: Utc::now(),
            }],
        };
        let update = lot.apply_recorded(&recorded);
        let lot_counts = &update.counts.lot;
        assert_eq!(
            (lot_counts.free, lot_counts.occupied, lot_counts.unknown),
            (1, 1, 1),
            "a space not in the layout is ignored"
        );
        assert_eq!(
            update.changes,
            vec![ChangeView { space: ids[0].clone(), from: Some("free"), to: "occupied", confidence: 0.9 }]
        );
        assert_eq!(stream.try_recv().unwrap(), update);
        assert_eq!(signs.try_recv().unwrap().counts, update.counts);
        assert_eq!(lots.get("north").unwrap().availability().at, Some(recorded.frame.at));
    }
}
