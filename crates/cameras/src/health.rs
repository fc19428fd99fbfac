//! A camera's [`Health`] as its source and lane worker record it. (i18-passages' minimal version,
//! written to the contract so the pull compiles before the merge; i18-sources' `health.rs`
//! replaces it.)

use std::collections::VecDeque;
use std::fmt::Display;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

use crate::Health;

/// fps is counted over this window.
const FPS_WINDOW: TimeDelta = TimeDelta::seconds(5);

#[derive(Debug, Clone, Default)]
pub struct HealthRecorder {
    inner: Arc<Mutex<(Health, VecDeque<DateTime<Utc>>)>>,
}

impl HealthRecorder {
    pub fn new() -> HealthRecorder {
        HealthRecorder::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Health, &mut VecDeque<DateTime<Utc>>) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (health, arrivals) = &mut *guard;
        f(health, arrivals)
    }

    pub fn frame(&self, at: DateTime<Utc>) {
        self.with(|h, arrivals| {
            h.frames += 1;
            h.last_frame_at = Some(at);
            arrivals.push_back(at);
            while arrivals.front().is_some_and(|first| at - *first > FPS_WINDOW) {
                arrivals.pop_front();
            }
            let span = arrivals.back().zip(arrivals.front()).map_or(0.0, |(l, f)| (*l - *f).as_seconds_f32());
            h.fps = if span > 0.0 { (arrivals.len() - 1) as f32 / span } else { 0.0 };
        })
    }
    pub fn connected(&self, connected: bool) {
        self.with(|h, _| h.connected = connected)
    }
    pub fn error(&self, error: impl Display) {
        self.with(|h, _| {
            h.errors += 1;
            h.last_error = Some(error.to_string());
        })
    }
    pub fn reconnect(&self) {
        self.with(|h, _| h.reconnects += 1)
    }
    pub fn read(&self) {
        self.with(|h, _| h.frames_read += 1)
    }
    pub fn dropped(&self) {
        self.with(|h, _| h.frames_dropped += 1)
    }
    pub fn passage(&self) {
        self.with(|h, _| h.passages += 1)
    }
    pub fn snapshot(&self) -> Health {
        self.with(|h, _| h.clone())
    }
}
