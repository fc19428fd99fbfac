//! Temporal smoothing of per-space probabilities: [`Smoother`] turns a stream of classifier
//! probabilities into stable [`SpaceState`]s and [`StateChange`]s.
//!
//! Pure and time-free: it counts frames, never seconds, so its behaviour is a table of inputs and
//! outputs. A car passing through a space, a shadow or one bad frame must not flip a sign.
//!
//! Per space it keeps an exponential moving average `p` of the occupied-probability. The state
//! flips to occupied only after `p ≥ occupied_above` for `confirm_frames` consecutive frames, and
//! back to free only after `p ≤ free_below` as long: two thresholds (hysteresis) and a streak.
//! The very first frame of a space decides its state outright (`p ≥ 0.5`), so a single frame
//! gives an answer.
//!
//! A space whose average stays near 0.5 (within `unsure_margin`: a tree in front of it, glare)
//! keeps its state but is marked unsure, and counts report it as unknown rather than as a
//! confident wrong answer.

use std::collections::HashMap;

use valet_occupancy::SpaceState;

use crate::layout::SpaceId;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmoothingConfig {
    /// Weight of the newest frame in the moving average, in `(0, 1]`; 1 disables averaging.
    pub alpha: f32,
    /// The average must reach this to turn a free space occupied.
    pub occupied_above: f32,
    /// The average must fall to this to turn an occupied space free.
    pub free_below: f32,
    /// Consecutive frames beyond the threshold before the state flips (at least 1).
    pub confirm_frames: u32,
    /// A space whose average is within this of 0.5 is unsure (0 turns this off). 0.2, i.e.
    /// 30–70 %: on PKLot-Padova the universal model's errors are twice as dense there; it holds
    /// 11 % of spaces and 38 of 71 errors (99 % of spaces and all 9 errors on CNRPark A are outside).
    pub unsure_margin: f32,
}

impl Default for SmoothingConfig {
    /// Cameras post every few seconds: two agreeing frames cost a few seconds of latency and
    /// remove single-frame flicker.
    fn default() -> Self {
        SmoothingConfig { alpha: 0.6, occupied_above: 0.6, free_below: 0.4, confirm_frames: 2, unsure_margin: 0.2 }
    }
}

impl SmoothingConfig {
    fn unsure(&self, p: f32) -> bool {
        (p - 0.5).abs() < self.unsure_margin
    }
}

/// A space's smoothed state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmoothedSpace {
    pub state: SpaceState,
    /// Moving average of the occupied-probability.
    pub p_occupied: f32,
    /// How much the average backs the current state: `p` when occupied, `1 - p` when free. Below
    /// 0.5 the evidence already points the other way and a flip is pending.
    pub confidence: f32,
    /// The average is too close to 0.5 to tell (see [`SmoothingConfig::unsure_margin`]).
    pub unsure: bool,
    /// Frames in a row beyond the opposite threshold.
    streak: u32,
}

impl SmoothedSpace {
    /// Why this space is reported unknown, when it is unsure.
    pub fn unsure_reason(&self) -> Option<String> {
        self.unsure.then(|| format!("weak evidence: {:.0} % occupied", self.p_occupied * 100.0))
    }
}

/// A space that changed state on this frame (or got its first state).
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub space: SpaceId,
    /// `None` the first time the space is seen.
    pub from: Option<SpaceState>,
    pub to: SpaceState,
    pub confidence: f32,
}

/// Per-space smoothing state for a lot.
#[derive(Debug, Clone, Default)]
pub struct Smoother {
    config: SmoothingConfig,
    spaces: HashMap<SpaceId, SmoothedSpace>,
}

impl Smoother {
    pub fn new(config: SmoothingConfig) -> Smoother {
        let mut config = config;
        config.alpha = config.alpha.clamp(f32::EPSILON, 1.0);
        config.confirm_frames = config.confirm_frames.max(1);
        Smoother { config, spaces: HashMap::new() }
    }

    pub fn config(&self) -> SmoothingConfig {
        self.config
    }

    /// The current state of a space; `None` before its first frame.
    pub fn get(&self, space: &SpaceId) -> Option<&SmoothedSpace> {
        self.spaces.get(space)
    }

    /// Feeds one frame's probability for one space; returns the change it caused, if any.
    pub fn observe(&mut self, space: &SpaceId, p_occupied: f32) -> Option<StateChange> {
        let c = self.config;
        let p_new = if p_occupied.is_finite() { p_occupied.clamp(0.0, 1.0) } else { 0.5 };
        let Some(track) = self.spaces.get_mut(space) else {
            let state = if p_new >= 0.5 { SpaceState::Occupied } else { SpaceState::Free };
            let first = SmoothedSpace {
                state,
                p_occupied: p_new,
                confidence: backing(state, p_new),
                unsure: c.unsure(p_new),
                streak: 0,
            };
            self.spaces.insert(space.clone(), first);
            return Some(StateChange { space: space.clone(), from: None, to: state, confidence: first.confidence });
        };
        let p = c.alpha * p_new + (1.0 - c.alpha) * track.p_occupied;
        let against = match track.state {
            SpaceState::Free => p >= c.occupied_above,
            SpaceState::Occupied => p <= c.free_below,
        };
        track.p_occupied = p;
        track.streak = if against { track.streak + 1 } else { 0 };
        let mut change = None;
        if track.streak >= c.confirm_frames {
            let from = track.state;
            track.state = match from {
                SpaceState::Free => SpaceState::Occupied,
                SpaceState::Occupied => SpaceState::Free,
            };
            track.streak = 0;
            change = Some((from, track.state));
        }
        track.confidence = backing(track.state, p);
        track.unsure = c.unsure(p);
        change.map(|(from, to)| StateChange {
            space: space.clone(),
            from: Some(from),
            to,
            confidence: track.confidence,
        })
    }

    /// Sets a space's state as it was recorded (after a restart): the state, and the moving
    /// average that `confidence` implies, with no flip pending. The next frame then continues
    /// from there instead of deciding the space outright as a first sighting would.
    pub fn restore(&mut self, space: &SpaceId, state: SpaceState, confidence: f32) {
        let confidence = if confidence.is_finite() { confidence.clamp(0.0, 1.0) } else { 0.5 };
        let p_occupied = match state {
            SpaceState::Occupied => confidence,
            SpaceState::Free => 1.0 - confidence,
        };
        let unsure = self.config.unsure(p_occupied);
        self.spaces.insert(space.clone(), SmoothedSpace { state, p_occupied, confidence, unsure, streak: 0 });
    }

    /// Every space seen so far.
    pub fn states(&self) -> impl Iterator<Item = (&SpaceId, &SmoothedSpace)> {
        self.spaces.iter()
    }
}

fn backing(state: SpaceState, p: f32) -> f32 {
    match state {
        SpaceState::Occupied => p,
        SpaceState::Free => 1.0 - p,
    }
}
