//! One camera's running tally: what its source and lane worker record, what `GET /v1/cameras`
//! and the dashboard show ([`Health`]).

use std::collections::VecDeque;
use std::fmt::Display;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

use crate::Health;

/// The window `fps` is measured over.
const FPS_WINDOW: TimeDelta = TimeDelta::seconds(5);
/// Arrival times kept for `fps`: enough for 100 fps over the window, and no more whatever the
/// camera sends.
const FPS_SAMPLES: usize = 512;
/// `last_error` is for people; a camera's error text (ffmpeg's stderr, say) is cut to this.
const MAX_ERROR_CHARS: usize = 600;

/// Records one camera's health from its tasks. Clones share one tally.
#[derive(Debug, Clone, Default)]
pub struct HealthRecorder {
    inner: Arc<Mutex<Tally>>,
}

#[derive(Debug, Default)]
struct Tally {
    health: Health,
    arrivals: VecDeque<DateTime<Utc>>,
}

impl HealthRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A frame arrived at `at`.
    pub fn frame(&self, at: DateTime<Utc>) {
        let mut tally = self.inner.lock().unwrap();
        tally.health.frames += 1;
        tally.health.last_frame_at = Some(tally.health.last_frame_at.map_or(at, |last| last.max(at)));
        if tally.arrivals.len() == FPS_SAMPLES {
            tally.arrivals.pop_front();
        }
        tally.arrivals.push_back(at);
    }

    /// The camera answers (frames flow), or not any more.
    pub fn connected(&self, connected: bool) {
        self.inner.lock().unwrap().health.connected = connected;
    }

    /// Something went wrong: counted, and kept as `last_error`.
    pub fn error(&self, error: impl Display) {
        let mut text = error.to_string();
        if let Some((cut, _)) = text.char_indices().nth(MAX_ERROR_CHARS) {
            text.truncate(cut);
            text.push('…');
        }
        let mut tally = self.inner.lock().unwrap();
        tally.health.errors += 1;
        tally.health.last_error = Some(text);
    }

    /// The source is connecting again after a failure.
    pub fn reconnect(&self) {
        self.inner.lock().unwrap().health.reconnects += 1;
    }

    /// A frame went to the plate reader.
    pub fn read(&self) {
        self.inner.lock().unwrap().health.frames_read += 1;
    }

    /// A frame was dropped because the reader was busy.
    pub fn dropped(&self) {
        self.inner.lock().unwrap().health.frames_dropped += 1;
    }

    /// A passage (one car, one read) was sent.
    pub fn passage(&self) {
        self.inner.lock().unwrap().health.passages += 1;
    }

    /// The health as of now; `fps` over the frames of the last few seconds.
    pub fn snapshot(&self) -> Health {
        self.snapshot_at(Utc::now())
    }

    fn snapshot_at(&self, now: DateTime<Utc>) -> Health {
        let mut tally = self.inner.lock().unwrap();
        while tally.arrivals.front().is_some_and(|&at| now - at > FPS_WINDOW) {
            tally.arrivals.pop_front();
        }
        let fps = match (tally.arrivals.front(), tally.arrivals.back()) {
            (Some(first), Some(last)) if tally.arrivals.len() > 1 && last > first => {
                (tally.arrivals.len() - 1) as f32 / (*last - *first).as_seconds_f32()
            }
            // One frame in the window: a slow snapshot camera, about one frame per window.
            (Some(_), _) => 1.0 / FPS_WINDOW.as_seconds_f32(),
            _ => 0.0,
        };
        Health { fps, ..tally.health.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fps_counts_the_last_few_seconds_only() {
        let health = HealthRecorder::new();
        let start = Utc::now();
        for i in 0..50 {
            health.frame(start + TimeDelta::milliseconds(100 * i));
        }
        let now = start + TimeDelta::milliseconds(4_950);
        let snapshot = health.snapshot_at(now);
        assert!((snapshot.fps - 10.0).abs() < 0.01, "{}", snapshot.fps);
        assert_eq!(snapshot.frames, 50);
        assert_eq!(snapshot.last_frame_at, Some(start + TimeDelta::milliseconds(4_900)));
        assert_eq!(health.snapshot_at(now + TimeDelta::seconds(10)).fps, 0.0, "a silent camera has no fps");
        assert_eq!(health.snapshot_at(now + TimeDelta::seconds(10)).frames, 50);
    }

    #[test]
    fn arrivals_stay_bounded_whatever_the_rate() {
        let health = HealthRecorder::new();
        let start = Utc::now();
        for i in 0..10_000 {
            health.frame(start + TimeDelta::microseconds(i));
        }
        assert_eq!(health.inner.lock().unwrap().arrivals.len(), FPS_SAMPLES);
        assert_eq!(health.snapshot_at(start).frames, 10_000);
    }

    #[test]
    fn errors_are_counted_and_the_last_kept_short() {
        let health = HealthRecorder::new();
        health.error("first");
        health.error("x".repeat(5_000));
        health.reconnect();
        health.connected(true);
        health.read();
        health.dropped();
        health.passage();
        let snapshot = health.snapshot();
        assert_eq!((snapshot.errors, snapshot.reconnects), (2, 1));
        assert_eq!(snapshot.last_error.unwrap().chars().count(), MAX_ERROR_CHARS + 1);
        assert!(snapshot.connected);
        assert_eq!((snapshot.frames_read, snapshot.frames_dropped, snapshot.passages), (1, 1, 1));
    }
}
