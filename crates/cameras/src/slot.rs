//! The hand-over between a camera's source and its lane worker: one slot, the latest frame wins.
//!
//! A camera never waits for the reader and frames never queue: when the worker is busy, a new
//! frame replaces the one still waiting (and `put` says so, for the drop count). Memory per camera
//! is therefore at most one frame in the slot plus the one being read.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};

/// One JPEG as it came from the camera (RTSP is transcoded to MJPEG by ffmpeg, so every source
/// yields JPEG bytes) and when it arrived.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub jpeg: Vec<u8>,
    pub at: DateTime<Utc>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bytes themselves are noise in a log; their size is what matters.
        f.debug_struct("Frame").field("jpeg_bytes", &self.jpeg.len()).field("at", &self.at).finish()
    }
}

/// A single-frame mailbox shared by a source (`put`) and a lane worker (`take`). Clones share it.
#[derive(Debug, Clone)]
pub struct FrameSlot {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    frame: Mutex<Option<Frame>>,
    /// Wakes a waiting `take` when a frame is put or the slot closes.
    ready: Notify,
    closed: watch::Sender<bool>,
}

impl Default for FrameSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameSlot {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner { frame: Mutex::new(None), ready: Notify::new(), closed: watch::channel(false).0 }),
        }
    }

    /// Leaves `frame` for the worker. True when it replaced a frame nobody had taken (a drop).
    /// Once the slot is closed the frame is discarded and `false` returned.
    pub fn put(&self, frame: Frame) -> bool {
        if self.is_closed() {
            return false;
        }
        let replaced = self.inner.frame.lock().unwrap().replace(frame).is_some();
        self.inner.ready.notify_one();
        replaced
    }

    /// The latest frame, waiting for one if the slot is empty; `None` once the slot is closed
    /// (a frame left in a closed slot is not handed out: closing means stop).
    pub async fn take(&self) -> Option<Frame> {
        loop {
            let ready = self.inner.ready.notified();
            tokio::pin!(ready);
            // Registered before looking, so a `close` (notify_waiters) in between still wakes us.
            ready.as_mut().enable();
            if self.is_closed() {
                return None;
            }
            if let Some(frame) = self.inner.frame.lock().unwrap().take() {
                return Some(frame);
            }
            ready.await;
        }
    }

    /// The latest frame if there is one, without waiting.
    pub fn try_take(&self) -> Option<Frame> {
        if self.is_closed() {
            return None;
        }
        self.inner.frame.lock().unwrap().take()
    }

    /// Stops the hand-over: `take` answers `None`, `put` discards, and the camera's source stops.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
        self.inner.frame.lock().unwrap().take();
        self.inner.ready.notify_waiters();
    }

    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    /// Resolves once the slot is closed.
    pub async fn closed(&self) {
        let mut closed = self.inner.closed.subscribe();
        // The sender lives in `self.inner`, so `wait_for` cannot fail while we hold `self`.
        let _ = closed.wait_for(|closed| *closed).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(byte: u8) -> Frame {
        Frame { jpeg: vec![byte], at: Utc::now() }
    }

    #[tokio::test]
    async fn the_latest_frame_wins_and_a_replacement_is_a_drop() {
        let slot = FrameSlot::new();
        assert!(!slot.put(frame(1)));
        assert!(slot.put(frame(2)), "replacing an untaken frame is a drop");
        assert_eq!(slot.take().await.unwrap().jpeg, vec![2]);
        assert!(!slot.put(frame(3)), "the slot was empty again");
        assert_eq!(slot.try_take().unwrap().jpeg, vec![3]);
        assert!(slot.try_take().is_none());
    }

    #[tokio::test]
    async fn take_waits_for_a_frame_and_close_releases_it() {
        let slot = FrameSlot::new();
        let waiting = tokio::spawn({
            let slot = slot.clone();
            async move { slot.take().await }
        });
        tokio::task::yield_now().await;
        slot.put(frame(7));
        assert_eq!(waiting.await.unwrap().unwrap().jpeg, vec![7]);

        let waiting = tokio::spawn({
            let slot = slot.clone();
            async move { slot.take().await }
        });
        tokio::task::yield_now().await;
        slot.close();
        assert!(waiting.await.unwrap().is_none());
        assert!(!slot.put(frame(8)), "a closed slot takes nothing");
        assert!(slot.take().await.is_none());
        slot.closed().await;
    }
}
