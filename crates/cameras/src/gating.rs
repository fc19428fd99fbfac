//! Motion and presence gating: which of a lane's frames are worth the plate reader's ~40 ms.
//!
//! Every frame is looked at as a small grey thumbnail ([`Thumbnail`], decoded at 1/8 scale in the
//! DCT by `valet_imaging::decode_thumbnail`) and compared with a slowly updated picture of the
//! empty lane (*presence*: is something in the lane?) and with the previous frame (*motion*: is it
//! moving?). [`LaneGate::look`] says what it saw; [`LaneGate::should_read`] decides, knowing what
//! the lane tracker is waiting for ([`LaneState`]), whether this frame goes to the reader.
//!
//! Pure and time-passed-in: the frames' arrival times are the only clock, so tests are tables.

use chrono::{DateTime, TimeDelta, Utc};
use image::RgbImage;

/// Thumbnails are asked for with this longer side: a 1280×720 frame gives 160×90 (1/8 in the DCT,
/// the cheapest decode there is), enough pixels to see a car fill part of the lane.
pub const THUMBNAIL_SIDE: u32 = 160;

/// A thumbnail pixel has changed when its grey level moved by more than this. JPEG artefacts and
/// sensor noise on an 8×8-averaged pixel stay within a few levels; a car against tarmac differs
/// by tens.
pub const PIXEL_CHANGE: u8 = 20;

/// The lane holds something when at least this share of the thumbnail differs from the empty
/// lane. A car at a gate fills a fifth to a half of the picture; 2 % is a bumper entering the
/// frame, more than rain, leaves or a flicker of light.
pub const PRESENT_SHARE: f32 = 0.02;

/// Something moves when at least this share of the thumbnail changed since the previous frame: a
/// car creeping forward at a barrier moves a few percent of the picture a frame.
pub const MOVING_SHARE: f32 = 0.005;

/// On empty, still frames the background follows the light (clouds, dusk, headlights) by this
/// fraction a frame: about two seconds at 10 fps to catch up with a change.
pub const BACKGROUND_RATE: f32 = 0.05;

/// A scene that has not moved for this long *is* the lane now (a cone, a car still at the
/// barrier that could not be read, the picture of a car that left before it was learnt as
/// background), unless a passage has been decided; see [`DECIDED_SETTLE`].
pub const SETTLE: TimeDelta = TimeDelta::seconds(10);

/// A decided car may wait at the barrier for minutes (a payment problem, a conversation); the lane
/// keeps it as a car, so it is not read again as a new one when it finally leaves, for this long.
pub const DECIDED_SETTLE: TimeDelta = TimeDelta::minutes(5);

/// A car not yet read surely is read at every frame the reader can take while it moves, and for
/// this long after it stops: the lane tracker answers within `lane::DECIDE_WITHIN` of seeing the
/// plate, and each read in that window is evidence.
pub const STILL_EAGER: TimeDelta = TimeDelta::seconds(2);

/// A scene standing still longer than [`STILL_EAGER`] that was never read surely (a car whose
/// plate cannot be seen, a pedestrian, a cone) is read again at most this often: the same pixels
/// give the same read, but light and noise change a little.
pub const STILL_REREAD: TimeDelta = TimeDelta::seconds(1);

/// After a passage is decided, a moving lane is read again at most this often, only to notice a
/// second car right behind the first (a tailgater); the rest of the passage is absorbed unread.
pub const DECIDED_REREAD: TimeDelta = TimeDelta::milliseconds(500);

/// What the lane tracker is waiting for, which decides how eagerly frames are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneState {
    /// No car in the lane.
    Empty,
    /// A car is there and not read surely yet: read it.
    Undecided,
    /// The car has been read: absorb its frames, look only for a tailgater.
    Decided,
}

/// A frame as gating sees it: grey levels of a small decode.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    width: u32,
    height: u32,
    grey: Vec<u8>,
}

impl Thumbnail {
    /// The grey levels (ITU-R 601 luma, as JPEG stores it) of a small RGB decode.
    pub fn from_rgb(image: &RgbImage) -> Thumbnail {
        let grey = image
            .pixels()
            .map(|p| {
                let [r, g, b] = p.0.map(u32::from);
                ((299 * r + 587 * g + 114 * b + 500) / 1000) as u8
            })
            .collect();
        Thumbnail { width: image.width(), height: image.height(), grey }
    }

    pub fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }
}

/// What one look at the lane saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scene {
    /// Share of the picture that differs from the empty lane.
    pub presence: f32,
    /// Share of the picture that changed since the previous frame.
    pub motion: f32,
    /// Something is in the lane ([`PRESENT_SHARE`]).
    pub occupied: bool,
    /// Something is moving ([`MOVING_SHARE`]).
    pub moving: bool,
}

/// One lane's gate: its picture of the empty lane, its previous frame, and when it last read.
#[derive(Debug, Clone, Default)]
pub struct LaneGate {
    background: Option<Vec<f32>>,
    previous: Option<Thumbnail>,
    /// Since when nothing has moved.
    still_since: Option<DateTime<Utc>>,
    last_read: Option<DateTime<Utc>>,
}

impl LaneGate {
    pub fn new() -> LaneGate {
        LaneGate::default()
    }

    /// Compares `frame` with the empty lane and the previous frame, then learns from it. The first
    /// frame (or the first after the camera changed resolution) is taken as the empty lane: a car
    /// standing in it is seen once it moves, and its picture settles away when it has left.
    pub fn look(&mut self, frame: &Thumbnail, at: DateTime<Utc>, lane: LaneState) -> Scene {
        let same_size = self.previous.as_ref().is_some_and(|p| p.dimensions() == frame.dimensions());
        if !same_size {
            self.background = Some(frame.grey.iter().map(|&g| f32::from(g)).collect());
            self.previous = None;
            self.still_since = Some(at);
        }
        let pixels = frame.grey.len().max(1) as f32;
        let background = self.background.as_mut().expect("set above");
        let differing = frame.grey.iter().zip(background.iter()).filter(|&(&g, &b)| changed(f32::from(g), b)).count();
        let moved = match &self.previous {
            Some(previous) => {
                frame.grey.iter().zip(&previous.grey).filter(|&(&g, &p)| changed(f32::from(g), f32::from(p))).count()
            }
            None => 0,
        };
        let (presence, motion) = (differing as f32 / pixels, moved as f32 / pixels);
        let scene = Scene { presence, motion, occupied: presence >= PRESENT_SHARE, moving: motion >= MOVING_SHARE };

        let still_since = match (scene.moving, self.still_since) {
            (false, Some(since)) => since,
            _ => at,
        };
        self.still_since = Some(still_since);
        let settle = if lane == LaneState::Decided { DECIDED_SETTLE } else { SETTLE };
        if !scene.moving && at - still_since >= settle {
            // Still for long enough: whatever stands there is the lane now.
            for (b, &g) in background.iter_mut().zip(&frame.grey) {
                *b = f32::from(g);
            }
        } else if !scene.moving && !scene.occupied {
            for (b, &g) in background.iter_mut().zip(&frame.grey) {
                *b += BACKGROUND_RATE * (f32::from(g) - *b);
            }
        }
        self.previous = Some(frame.clone());
        scene
    }

    /// Whether the frame that showed `scene` goes to the plate reader: a car that arrives, moves or
    /// has just stopped, a car long still and never read surely (now and then), and after the read
    /// only a moving lane, now and then, in case a second car follows. An empty lane is never read.
    /// Counts the read.
    pub fn should_read(&mut self, scene: &Scene, lane: LaneState, at: DateTime<Utc>) -> bool {
        let since_read = |interval: TimeDelta| self.last_read.is_none_or(|last| at - last >= interval || at < last);
        let just_stopped = self.still_since.is_none_or(|since| at - since < STILL_EAGER);
        let read = scene.occupied
            && match lane {
                LaneState::Empty | LaneState::Undecided => scene.moving || just_stopped || since_read(STILL_REREAD),
                LaneState::Decided => scene.moving && since_read(DECIDED_REREAD),
            };
        if read {
            self.last_read = Some(at);
        }
        read
    }
}

fn changed(a: f32, b: f32) -> bool {
    (a - b).abs() > f32::from(PIXEL_CHANGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap() + TimeDelta::milliseconds(ms)
    }

    /// A 40×30 lane of tarmac (grey 90 with a little noise) and, when `car_at` is given, a dark car
    /// 12 px wide whose left edge is there.
    fn lane(car_at: Option<u32>, noise_seed: u32, light: i32) -> Thumbnail {
        let mut image = RgbImage::new(40, 30);
        for (x, y, p) in image.enumerate_pixels_mut() {
            let noise = ((x * 7 + y * 13 + noise_seed * 31) % 7) as i32 - 3;
            let car = car_at.is_some_and(|c| (c..c + 12).contains(&x) && (8..24).contains(&y));
            let level = if car { 30 } else { 90 + light } + noise;
            p.0 = [level.clamp(0, 255) as u8; 3];
        }
        Thumbnail::from_rgb(&image)
    }

    #[test]
    fn an_empty_lane_with_noise_and_slow_light_is_never_read() {
        let mut gate = LaneGate::new();
        for i in 0..300 {
            // Dusk: the light falls 30 levels over 30 s.
            let frame = lane(None, i as u32, -(i / 10));
            let scene = gate.look(&frame, t(i64::from(i) * 100), LaneState::Empty);
            assert!(!scene.occupied && !scene.moving, "frame {i}: {scene:?}");
            assert!(!gate.should_read(&scene, LaneState::Empty, t(i64::from(i) * 100)));
        }
    }

    /// Rows of (lane state, the car's left edge per frame, which frames are read), 100 ms between
    /// frames. Positions: `.` no car, else the edge in base 36; reads: `r` read, `-` not.
    type Row = (LaneState, String, String);

    #[test]
    fn frames_are_read_as_the_table_says() {
        let table: &[Row] = &[
            // A car drives in and stops: read at every frame while it moves and for STILL_EAGER
            // after it stopped (frame 4, at 400 ms), then once a second.
            (
                LaneState::Undecided,
                format!("..048{}", "8".repeat(35)),
                format!("--rrr{}{}r{}", "r".repeat(19), "-".repeat(9), "-".repeat(6)),
            ),
            // Decided: a moving lane is looked at twice a second at most, a still car is absorbed.
            (LaneState::Decided, format!(".02468a{}", "a".repeat(7)), format!("-r----r{}", "-".repeat(7))),
        ];
        for (state, cars, expected) in table {
            let mut gate = LaneGate::new();
            // The gate's first look at the camera was an empty lane, long before this.
            gate.look(&lane(None, 99, 0), t(-60_000), LaneState::Empty);
            let reads: String = cars
                .chars()
                .enumerate()
                .map(|(i, car)| {
                    let at = t(i as i64 * 100);
                    let scene = gate.look(&lane(car.to_digit(36), i as u32, 0), at, *state);
                    if gate.should_read(&scene, *state, at) { 'r' } else { '-' }
                })
                .collect();
            assert_eq!(&reads, expected, "{state:?} {cars}");
        }
    }

    #[test]
    fn a_car_is_present_while_it_stands_and_settles_into_the_lane_only_when_undecided() {
        for (state, settles_after) in [(LaneState::Undecided, SETTLE), (LaneState::Decided, DECIDED_SETTLE)] {
            let mut gate = LaneGate::new();
            gate.look(&lane(None, 0, 0), t(0), LaneState::Empty);
            let arrived = gate.look(&lane(Some(10), 1, 0), t(100), state);
            assert!(arrived.occupied && arrived.moving && arrived.presence > 0.1, "{arrived:?}");
            let mut ms = 100;
            let mut last = arrived;
            while ms < 100 + settles_after.num_milliseconds() {
                ms += 100;
                last = gate.look(&lane(Some(10), (ms / 100) as u32, 0), t(ms), state);
                assert!(last.occupied && !last.moving, "{state:?} at {ms} ms: {last:?}");
            }
            // Learnt as the lane: the next frame of the same scene is empty.
            let next = gate.look(&lane(Some(10), 7, 0), t(ms + 100), state);
            assert!(!next.occupied, "{state:?}: {next:?} (last {last:?})");
            // And the car leaving shows as a change again.
            let left = gate.look(&lane(None, 8, 0), t(ms + 200), state);
            assert!(left.occupied && left.moving, "{left:?}");
        }
    }

    #[test]
    fn a_new_resolution_starts_the_lane_afresh() {
        let mut gate = LaneGate::new();
        gate.look(&lane(None, 0, 0), t(0), LaneState::Empty);
        let bigger = Thumbnail::from_rgb(&RgbImage::from_pixel(80, 60, image::Rgb([10, 10, 10])));
        let scene = gate.look(&bigger, t(100), LaneState::Empty);
        assert!(!scene.occupied && !scene.moving, "{scene:?}");
        let empty = Thumbnail::from_rgb(&RgbImage::new(0, 0));
        let scene = gate.look(&empty, t(200), LaneState::Empty);
        assert!(!scene.occupied && !gate.should_read(&scene, LaneState::Empty, t(200)));
    }
}
