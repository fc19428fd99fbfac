//! [`LotState`]: the smoothed state of every space of a lot, fed by [`FrameReading`]s from any
//! of its cameras, and the [`Counts`] per zone, level and lot that guidance shows.

use std::collections::HashMap;

use serde::Serialize;
use valet_occupancy::SpaceState;

use crate::layout::{Layout, LevelId, SpaceId, ZoneId};
use crate::pipeline::FrameReading;
use crate::smoothing::{SmoothedSpace, Smoother, SmoothingConfig, StateChange};

/// Spaces by state. `unknown` spaces have had no frame yet, or their evidence is too weak to
/// tell (`unsure` of them): a sign must not count them free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tally {
    pub free: u32,
    pub occupied: u32,
    pub unknown: u32,
    /// Of `unknown`, the spaces seen but unsure (see [`crate::SmoothingConfig::unsure_margin`]).
    pub unsure: u32,
}

/// What counts say of one space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    Unseen,
    Unsure,
    Known(SpaceState),
}

impl From<Option<SpaceState>> for Reported {
    fn from(state: Option<SpaceState>) -> Reported {
        state.map_or(Reported::Unseen, Reported::Known)
    }
}

impl Tally {
    fn add(&mut self, reported: Reported) {
        match reported {
            Reported::Known(SpaceState::Free) => self.free += 1,
            Reported::Known(SpaceState::Occupied) => self.occupied += 1,
            Reported::Unseen => self.unknown += 1,
            Reported::Unsure => {
                self.unknown += 1;
                self.unsure += 1;
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.free += other.free;
        self.occupied += other.occupied;
        self.unknown += other.unknown;
        self.unsure += other.unsure;
    }

    pub fn total(&self) -> u32 {
        self.free + self.occupied + self.unknown
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ZoneCount {
    pub zone: ZoneId,
    pub level: LevelId,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LevelCount {
    pub level: LevelId,
    #[serde(flatten)]
    pub tally: Tally,
}

/// Counts in layout order: zones, levels, and the whole lot.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub lot: Tally,
    pub levels: Vec<LevelCount>,
    pub zones: Vec<ZoneCount>,
}

/// Counts of `layout`'s spaces given what is reported of each (`Option<SpaceState>` converts:
/// `None` is not seen yet).
pub fn count<R: Into<Reported>>(layout: &Layout, report: impl Fn(&SpaceId) -> R) -> Counts {
    let mut per_zone: HashMap<&ZoneId, Tally> = HashMap::new();
    for space in &layout.spaces {
        per_zone.entry(&space.zone).or_default().add(report(&space.id).into());
    }
    let zones: Vec<ZoneCount> = layout
        .zones
        .iter()
        .map(|z| ZoneCount {
            zone: z.id.clone(),
            level: z.level.clone(),
            tally: per_zone.get(&z.id).copied().unwrap_or_default(),
        })
        .collect();
    let levels: Vec<LevelCount> = layout
        .levels
        .iter()
        .map(|l| {
            let mut tally = Tally::default();
            zones.iter().filter(|z| z.level == l.id).for_each(|z| tally.merge(z.tally));
            LevelCount { level: l.id.clone(), tally }
        })
        .collect();
    let mut lot = Tally::default();
    levels.iter().for_each(|l| lot.merge(l.tally));
    Counts { lot, levels, zones }
}

/// The lot as the smoothed frames so far show it.
#[derive(Debug, Clone)]
pub struct LotState {
    layout: Layout,
    smoother: Smoother,
}

impl LotState {
    pub fn new(layout: Layout, config: SmoothingConfig) -> LotState {
        LotState { layout, smoother: Smoother::new(config) }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Feeds one frame; returns the spaces whose state changed (or was first set).
    pub fn update(&mut self, reading: &FrameReading) -> Vec<StateChange> {
        reading.spaces.iter().filter_map(|s| self.smoother.observe(&s.space, s.p_occupied)).collect()
    }

    /// Sets a space's state as recorded before a restart (see [`Smoother::restore`]); a space not
    /// in the layout is ignored, since the layout may have changed since.
    pub fn restore(&mut self, id: &SpaceId, state: SpaceState, confidence: f32) {
        if self.layout.spaces.iter().any(|s| &s.id == id) {
            self.smoother.restore(id, state, confidence);
        }
    }

    pub fn space(&self, id: &SpaceId) -> Option<&SmoothedSpace> {
        self.smoother.get(id)
    }

    /// Counts, with unsure spaces as unknown.
    pub fn counts(&self) -> Counts {
        count(&self.layout, |id| match self.smoother.get(id) {
            None => Reported::Unseen,
            Some(s) if s.unsure => Reported::Unsure,
            Some(s) => Reported::Known(s.state),
        })
    }
}
