//! The hand-over between a camera's source and its lane worker: one [`FrameSlot`], latest frame
//! wins. (i18-passages' minimal version, written to the contract so the pull compiles before the
//! merge; i18-sources' `slot.rs` replaces it.)

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

/// One JPEG as it came from the camera, and when it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub jpeg: Vec<u8>,
    pub at: DateTime<Utc>,
}

/// Holds at most one frame: a reader that falls behind sees the newest frame, never a queue.
#[derive(Debug, Clone, Default)]
pub struct FrameSlot {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<(Option<Frame>, bool)>,
    ready: Notify,
}

impl FrameSlot {
    pub fn new() -> FrameSlot {
        FrameSlot::default()
    }

    /// Puts the newest frame; true when it replaced one nobody had taken (a dropped frame).
    pub fn put(&self, frame: Frame) -> bool {
        let mut state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = state.0.replace(frame).is_some();
        drop(state);
        self.inner.ready.notify_one();
        dropped
    }

    /// The newest frame, waiting for one; `None` once the slot is closed.
    pub async fn take(&self) -> Option<Frame> {
        loop {
            let notified = self.inner.ready.notified();
            {
                let mut state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(frame) = state.0.take() {
                    return Some(frame);
                }
                if state.1 {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// No more frames: a waiting `take` answers `None`.
    pub fn close(&self) {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.inner.ready.notify_waiters();
        self.inner.ready.notify_one();
    }
}
