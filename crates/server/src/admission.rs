//! Admission to the image work (decoding and the models). At most `decode_concurrency` images are
//! worked on at once, since a 162 MP photo costs about 100 MB while it decodes; and only so many
//! may wait for a turn. Past that a request is refused at once with 503 and `Retry-After`
//! ([`ApiError::Overloaded`]) instead of joining an unbounded line in which every waiter holds
//! its body in memory and all of them time out together.
//!
//! Gate frames wait in a line four times longer than bay frames and uploads to classify: a car
//! at a barrier is worth more than a sign's count, which the next frame refreshes anyway. A gate
//! frame refused all the same is not lost: the 503 tells the camera (and `valet send`) to send it
//! again, a pulled camera keeps its latest frame for the next turn, and a camera that reads plates
//! itself reports the read as text (`POST /v1/plate-reads`), which never enters this line.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::ApiError;

/// What a request wants the image workers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// A gate camera's frame: a car at a barrier.
    Gate,
    /// A bay camera's frame, an upload to classify, a calibration fit.
    Bulk,
}

/// How many gate frames may wait for each bulk image that may.
const GATE_QUEUE_FACTOR: usize = 4;

#[derive(Debug)]
pub struct Admission {
    workers: Semaphore,
    queue: usize,
    waiting_gate: AtomicUsize,
    waiting_bulk: AtomicUsize,
}

impl Admission {
    /// `concurrency` images at once, and `queue` bulk images (four times as many gate frames)
    /// waiting.
    pub fn new(concurrency: usize, queue: usize) -> Admission {
        Admission {
            workers: Semaphore::new(concurrency.max(1)),
            queue,
            waiting_gate: AtomicUsize::new(0),
            waiting_bulk: AtomicUsize::new(0),
        }
    }

    /// A turn at the image workers, held until the permit drops; or 503 at once when the line
    /// for `work` is full.
    pub async fn admit(&self, work: Work) -> Result<SemaphorePermit<'_>, ApiError> {
        if let Ok(permit) = self.workers.try_acquire() {
            return Ok(permit);
        }
        let (waiting, limit) = match work {
            Work::Gate => (&self.waiting_gate, self.queue.saturating_mul(GATE_QUEUE_FACTOR)),
            Work::Bulk => (&self.waiting_bulk, self.queue),
        };
        if waiting.fetch_add(1, Ordering::SeqCst) >= limit {
            waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::Overloaded(match work {
                Work::Gate => "every image worker is busy and the line for gate frames is full",
                Work::Bulk => "every image worker is busy and the line for images is full",
            }));
        }
        // Leaves the line whether the turn comes or the request is dropped while waiting.
        let _in_line = InLine(waiting);
        self.workers.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))
    }
}

struct InLine<'a>(&'a AtomicUsize);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn past_the_workers_and_the_line_a_request_is_refused_at_once_and_gates_wait_longer() {
        let admission = Admission::new(1, 1);
        let busy = admission.admit(Work::Bulk).await.unwrap();
        // One bulk image may wait; the next is refused without waiting.
        let waiting = admission.admit(Work::Bulk);
        tokio::pin!(waiting);
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut waiting).await.is_err(), "it waits its turn");
        let refused = tokio::time::timeout(Duration::from_millis(20), admission.admit(Work::Bulk)).await;
        assert!(matches!(refused, Ok(Err(ApiError::Overloaded(_)))), "{refused:?}");
        // Gate frames have their own, longer line.
        let mut gates = Vec::new();
        for _ in 0..GATE_QUEUE_FACTOR {
            let mut gate = Box::pin(admission.admit(Work::Gate));
            assert!(tokio::time::timeout(Duration::from_millis(5), &mut gate).await.is_err());
            gates.push(gate);
        }
        let refused = tokio::time::timeout(Duration::from_millis(20), admission.admit(Work::Gate)).await;
        assert!(matches!(refused, Ok(Err(ApiError::Overloaded(_)))), "{refused:?}");
        // A waiter that gives up leaves the line.
        gates.pop();
        let mut gate = Box::pin(admission.admit(Work::Gate));
        assert!(tokio::time::timeout(Duration::from_millis(5), &mut gate).await.is_err(), "room again");
        // The turn passes on when the worker is free.
        drop(busy);
        let turn = tokio::time::timeout(Duration::from_millis(100), &mut waiting).await;
        assert!(matches!(turn, Ok(Ok(_))), "{turn:?}");
    }
}
