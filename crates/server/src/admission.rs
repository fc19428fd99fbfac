//! Admission to the work a request waits for: the image work (decoding and the models), and the
//! gate's decisions on plate reads reported as text. At most `decode_concurrency` images are
//! worked on at once, since a 162 MP photo costs about 100 MB while it decodes, and at most
//! [`DECISIONS_AT_ONCE`] reads are decided at once (each is a few database statements); and only
//! so many may wait for a turn. Past that a request is refused at once with 503 and `Retry-After`
//! ([`ApiError::Overloaded`]) instead of joining an unbounded line in which every waiter holds
//! its body in memory and all of them time out together (`valet bench load` found plate reads at
//! twice their knee answered after 5.4 s before they had a line of their own).
//!
//! Gate frames wait in a line four times longer than bay frames and uploads to classify: a car
//! at a barrier is worth more than a sign's count, which the next frame refreshes anyway. A gate
//! frame or plate read refused all the same is not lost: the 503 tells the camera (and `valet
//! send`) to send it again, and a pulled camera keeps its latest frame for the next turn.

use std::sync::atomic::{AtomicUsize, Ordering};

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// What a request wants the image workers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// A gate camera's frame: a car at a barrier.
    Gate,
    /// A bay camera's frame, an upload to classify, a calibration fit.
    Bulk,
    /// A plate read a camera reported as text, for the gate to decide: database work, not
    /// image work, so it has workers of its own.
    Read,
}

/// How many gate frames may wait for each bulk image that may.
const GATE_QUEUE_FACTOR: usize = 4;
/// Plate reads the gate decides at once.
pub const DECISIONS_AT_ONCE: usize = 16;
/// How many plate reads may wait for each bulk image that may: a read costs a few hundred bytes
/// and about a millisecond, an image megabytes and tens of milliseconds.
const READ_QUEUE_FACTOR: usize = 16;
/// `Retry-After` for a plate read refused: at hundreds of reads a second, cameras told to come
/// back in a second return as a storm that costs more than the reads (`valet bench load`).
const READ_RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug)]
pub struct Admission {
    images: Arc<Semaphore>,
    decisions: Arc<Semaphore>,
    queue: usize,
    waiting_gate: AtomicUsize,
    waiting_bulk: AtomicUsize,
    waiting_reads: AtomicUsize,
}

impl Admission {
    /// `concurrency` images at once, and `queue` bulk images (four times as many gate frames,
    /// sixteen times as many plate reads) waiting.
    pub fn new(concurrency: usize, queue: usize) -> Admission {
        Admission {
            images: Arc::new(Semaphore::new(concurrency.max(1))),
            decisions: Arc::new(Semaphore::new(DECISIONS_AT_ONCE)),
            queue,
            waiting_gate: AtomicUsize::new(0),
            waiting_bulk: AtomicUsize::new(0),
            waiting_reads: AtomicUsize::new(0),
        }
    }

    /// A turn at the workers for `work`, held until the permit drops; or 503 at once when the
    /// line for `work` is full.
    pub async fn admit(&self, work: Work) -> Result<OwnedSemaphorePermit, ApiError> {
        let (workers, waiting, limit, refusal, retry_after) = match work {
            Work::Gate => (
                &self.images,
                &self.waiting_gate,
                self.queue.saturating_mul(GATE_QUEUE_FACTOR),
                "every image worker is busy and the line for gate frames is full",
                1,
            ),
            Work::Bulk => (
                &self.images,
                &self.waiting_bulk,
                self.queue,
                "every image worker is busy and the line for images is full",
                1,
            ),
            Work::Read => (
                &self.decisions,
                &self.waiting_reads,
                self.queue.saturating_mul(READ_QUEUE_FACTOR),
                "the gate is deciding all the reads it can and the line for plate reads is full",
                READ_RETRY_AFTER_SECS,
            ),
        };
        if let Ok(permit) = workers.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if waiting.fetch_add(1, Ordering::SeqCst) >= limit {
            waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::Overloaded(refusal, retry_after));
        }
        // Leaves the line whether the turn comes or the request is dropped while waiting.
        let _in_line = InLine(waiting);
        workers.clone().acquire_owned().await.map_err(|e| ApiError::Internal(e.to_string()))
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
        assert!(matches!(refused, Ok(Err(ApiError::Overloaded(..)))), "{refused:?}");
        // Gate frames have their own, longer line.
        let mut gates = Vec::new();
        for _ in 0..GATE_QUEUE_FACTOR {
            let mut gate = Box::pin(admission.admit(Work::Gate));
            assert!(tokio::time::timeout(Duration::from_millis(5), &mut gate).await.is_err());
            gates.push(gate);
        }
        let refused = tokio::time::timeout(Duration::from_millis(20), admission.admit(Work::Gate)).await;
        assert!(matches!(refused, Ok(Err(ApiError::Overloaded(..)))), "{refused:?}");
        // A waiter that gives up leaves the line.
        gates.pop();
        let mut gate = Box::pin(admission.admit(Work::Gate));
        assert!(tokio::time::timeout(Duration::from_millis(5), &mut gate).await.is_err(), "room again");
        // The turn passes on when the worker is free.
        drop(busy);
        let turn = tokio::time::timeout(Duration::from_millis(100), &mut waiting).await;
        assert!(matches!(turn, Ok(Ok(_))), "{turn:?}");
    }

    #[tokio::test]
    async fn plate_reads_have_workers_and_a_line_of_their_own() {
        let admission = Admission::new(1, 1);
        let _image = admission.admit(Work::Bulk).await.unwrap();
        // Busy image workers do not hold up reads.
        let mut deciding = Vec::new();
        for _ in 0..DECISIONS_AT_ONCE {
            let turn = tokio::time::timeout(Duration::from_millis(20), admission.admit(Work::Read)).await;
            deciding.push(turn.expect("a read is decided at once").unwrap());
        }
        let mut line = Vec::new();
        for _ in 0..READ_QUEUE_FACTOR {
            let mut read = Box::pin(admission.admit(Work::Read));
            assert!(tokio::time::timeout(Duration::from_millis(5), &mut read).await.is_err(), "it waits");
            line.push(read);
        }
        let refused = tokio::time::timeout(Duration::from_millis(20), admission.admit(Work::Read)).await;
        assert!(matches!(refused, Ok(Err(ApiError::Overloaded(..)))), "{refused:?}");
        drop(deciding.pop());
        let turn = tokio::time::timeout(Duration::from_millis(100), &mut line[0]).await;
        assert!(matches!(turn, Ok(Ok(_))), "{turn:?}");
    }
}
