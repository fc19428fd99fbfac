//! `GET /metrics`: what an operator's Prometheus scrapes, in the OpenMetrics text format
//! (`prometheus-client`).
//!
//! Two kinds of figures. [`Metrics`] keeps the ones that only exist as things happen: gate
//! decisions by outcome, charges by outcome, plate reads by camera and each function's handling
//! time. [`scrape`] reads the others where their truth already is, at scrape time, and only in the
//! process that holds it:
//! - pulled cameras' health, where they are pulled;
//! - the lots' spaces, where occupancy runs;
//! - from the database, where the query function runs (one process answers for the garage): the
//!   review queue, open stays, charges awaiting an outcome, events in progress, dead letters.
//!
//! No figure carries a plate, a key or a URL: labels are function, camera, lot, direction and
//! outcome names.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use valet_garage::{ChargeState, Direction};

use crate::AppState;
use crate::error::ApiError;
use crate::functions::Function;

/// Label pairs, in order.
type Labels = Vec<(&'static str, String)>;

/// The figures counted as they happen; cheap to clone (the families share their counts).
#[derive(Debug, Clone)]
pub struct Metrics {
    decisions: Family<Labels, Counter>,
    charges: Family<Labels, Counter>,
    reads: Family<Labels, Counter>,
    mail: Family<Labels, Counter>,
    handled: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            decisions: Family::default(),
            charges: Family::default(),
            reads: Family::default(),
            mail: Family::default(),
            handled: Family::new_with_constructor(handling_buckets),
        }
    }
}

/// 1 ms to ~16 s, doubling: a gate decision takes milliseconds, a charge a provider's round trip.
fn handling_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    /// The gate decided a read: `outcome` as the lane's answer names it (`opened`, `charged`…).
    pub fn gate_decided(&self, direction: Direction, outcome: &str) {
        let direction = match direction {
            Direction::Entry => "entry",
            Direction::Exit => "exit",
        };
        self.decisions.get_or_create(&vec![("direction", direction.to_owned()), ("outcome", outcome.to_owned())]).inc();
    }

    /// A charge's outcome: `succeeded`, `failed`, or `pending` when the provider did not answer.
    pub fn charge_settled(&self, outcome: &'static str) {
        self.charges.get_or_create(&vec![("outcome", outcome.to_owned())]).inc();
    }

    /// The plate reader read a frame from `camera` (pushed, or a pulled camera's passage).
    pub fn plate_read(&self, camera: &str) {
        self.reads.get_or_create(&vec![("camera", camera.to_owned())]).inc();
    }

    /// What a pass of the mailer did: mails sent, skipped, deferred (to be tried again) and given up.
    pub fn mail_pass(&self, pass: &valet_mail::Pass) {
        let counts =
            [("sent", pass.sent), ("skipped", pass.skipped), ("deferred", pass.deferred), ("given_up", pass.given_up)];
        for (outcome, count) in counts {
            if count > 0 {
                self.mail.get_or_create(&vec![("outcome", outcome.to_owned())]).inc_by(u64::from(count));
            }
        }
    }

    /// `function` handled an event in `took`, successfully or not.
    pub fn handled(&self, function: Function, took: Duration, ok: bool) {
        let labels = vec![("function", function.name().to_owned()), ("result", if ok { "ok" } else { "error" }.into())];
        self.handled.get_or_create(&labels).observe(took.as_secs_f64());
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "valet_gate_decisions",
            "Plate reads the gate decided, by direction and outcome",
            self.decisions.clone(),
        );
        registry.register("valet_charges", "Charges settled, by outcome", self.charges.clone());
        registry.register("valet_mail", "Mail to drivers by outcome of each try", self.mail.clone());
        registry.register("valet_plate_reads", "Plate reads handed to the gate, by camera", self.reads.clone());
        registry.register_with_unit(
            "valet_function_handling",
            "Time a function took to handle one event",
            prometheus_client::registry::Unit::Seconds,
            self.handled.clone(),
        );
    }
}

/// A charge's outcome as [`Metrics::charge_settled`] counts it.
pub fn charge_outcome(state: &ChargeState) -> &'static str {
    match state {
        ChargeState::Succeeded { .. } => "succeeded",
        ChargeState::Failed { .. } => "failed",
        ChargeState::Requested { .. } => "pending",
    }
}

/// The whole scrape: the counted figures and, from what this process holds, the read ones.
pub async fn scrape(state: &AppState) -> Result<String, ApiError> {
    let mut registry = Registry::default();
    state.metrics().register(&mut registry);
    cameras(state, &mut registry);
    lots(state, &mut registry);
    if state.functions().contains(Function::Query) {
        garage(state, &mut registry).await?;
    }
    let mut text = String::new();
    encode(&mut text, &registry).map_err(|e| ApiError::Internal(format!("encoding the metrics: {e}")))?;
    Ok(text)
}

fn gauge(value: impl TryInto<i64>) -> Gauge {
    let gauge = Gauge::default();
    gauge.set(value.try_into().unwrap_or(i64::MAX));
    gauge
}

/// One of a camera's health counts.
type HealthCount = fn(&valet_cameras::Health) -> u64;

/// Each camera this process pulls: frames in, read, dropped, passages, errors, reconnects, up.
fn cameras(state: &AppState, registry: &mut Registry) {
    let pulls = state.pulls();
    let names = pulls.names();
    if names.is_empty() {
        return;
    }
    let counters: [(&str, &str, HealthCount); 6] = [
        ("valet_camera_frames", "Frames received from a pulled gate camera", |h| h.frames),
        ("valet_camera_frames_read", "Frames motion gating sent to the plate reader", |h| h.frames_read),
        ("valet_camera_frames_dropped", "Frames dropped because the reader was busy", |h| h.frames_dropped),
        ("valet_camera_passages", "Cars seen through, one plate read each", |h| h.passages),
        ("valet_camera_errors", "Connection and frame errors", |h| h.errors),
        ("valet_camera_reconnects", "Reconnections after an error or a stall", |h| h.reconnects),
    ];
    let families: Vec<Family<Labels, Counter>> = counters.iter().map(|_| Family::default()).collect();
    let up: Family<Labels, Gauge> = Family::default();
    for name in &names {
        let Some(pulled) = pulls.state(name) else { continue };
        let labels = vec![("camera", name.clone())];
        let health = pulled.health.unwrap_or_default();
        up.get_or_create(&labels).set(i64::from(health.connected));
        for ((_, _, count), family) in counters.iter().zip(&families) {
            family.get_or_create(&labels).inc_by(count(&health));
        }
    }
    for ((name, help, _), family) in counters.into_iter().zip(families) {
        registry.register(name, help, family);
    }
    registry.register("valet_camera_connected", "1 while a pulled gate camera streams, else 0", up);
}

/// Each lot's spaces by state, where the occupancy function reads the frames.
fn lots(state: &AppState, registry: &mut Registry) {
    if !state.functions().contains(Function::Occupancy) {
        return;
    }
    let spaces: Family<Labels, Gauge> = Family::default();
    for lot in state.lots().all() {
        let availability = lot.availability();
        let tally = availability.counts.lot;
        for (label, count) in [("free", tally.free), ("occupied", tally.occupied), ("unknown", tally.unknown)] {
            let labels = vec![("lot", availability.lot.clone()), ("state", label.to_owned())];
            spaces.get_or_create(&labels).set(i64::from(count));
        }
    }
    registry.register("valet_lot_spaces", "Spaces of a lot by state, as the bay cameras last saw them", spaces);
}

/// Dead letters read at most this many at a scrape: beyond it the figure says "at least".
const DEAD_LETTERS_COUNTED: u32 = 10_000;

/// What waits on people or on the provider, from the database.
async fn garage(state: &AppState, registry: &mut Registry) -> Result<(), ApiError> {
    let store = state.gate().store();
    let review = store.open_review_items().await?.len();
    let open = store.open_session_count().await?;
    let pending = store.charges_awaiting_outcome().await?.len();
    let dead = store.dead_letters(DEAD_LETTERS_COUNTED).await?.len();
    let inbox: Family<Labels, Gauge> = Family::default();
    for (function, count) in store.events_in_progress().await? {
        inbox.get_or_create(&vec![("function", function)]).set(count);
    }
    registry.register("valet_inbox_in_progress", "Events a function claimed and has not finished", inbox);
    registry.register("valet_review_queue", "Review items waiting for an operator", gauge(review));
    registry.register("valet_open_stays", "Stays open: cars inside", gauge(open));
    registry.register("valet_charges_pending", "Charges sent whose outcome is not known yet", gauge(pending));
    registry.register("valet_dead_letters", "Events the broker gave up on, kept for an operator", gauge(dead));
    Ok(())
}
