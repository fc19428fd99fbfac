//! Valet's functions (DESIGN.md): ingest, plate reader, occupancy, gate, billing and query, as
//! CloudEvent handlers. One process runs any subset (`valet serve --functions gate,billing`);
//! an event whose consumer is in the same process is handed over in memory, and one whose
//! consumer is elsewhere leaves the process: posted to `K_SINK` when set (a SinkBinding), or
//! returned as the reply to the event that caused it (Knative Broker/Trigger reply semantics:
//! 200 with an event continues the chain, 202 ends it).
//!
//! Invariants: handlers are safe under redelivery. The gate claims each event's id in the store's
//! inbox before acting; billing settles under the charge's idempotency key; the plate reader and
//! occupancy are pure given their input (occupancy's smoothing aside, which a repeated frame
//! only reinforces). Every caused event's id is derived from its cause's, so a redelivery emits
//! the same ids downstream. A failure is an error answer (5xx), never a swallowed event, so the
//! broker retries and finally dead-letters.

mod billing;
pub mod cloudevents;
pub(crate) mod gate;
pub(crate) mod occupancy;
pub(crate) mod plate_reader;
mod sink;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use cloudevents::CloudEvent;
pub use sink::Sink;

use crate::AppState;
use crate::error::ApiError;

/// The event types, reverse-DNS, past tense, versioned. A change to a payload's meaning is a new
/// version, so old and new functions can run side by side during a rollout.
pub mod types {
    /// A gate camera's frame (`image/jpeg`); extensions `valetcamera`, `valetdirection`.
    pub const GATE_FRAME_RECEIVED: &str = "io.valet.gate.frame.received.v1";
    /// A bay camera's frame (`image/jpeg`); extensions `valetlot`, `valetcamera`.
    pub const LOT_FRAME_RECEIVED: &str = "io.valet.lot.frame.received.v1";
    /// A plate read at a gate ([`crate::api::PlateReadEvent`]).
    pub const PLATE_READ: &str = "io.valet.plate.read.v1";
    /// The gate opened a session ([`crate::api::GateEvent`]).
    pub const SESSION_OPENED: &str = "io.valet.session.opened.v1";
    /// The gate closed a session; its `charge_request`, when present, is billing's to settle.
    pub const SESSION_CLOSED: &str = "io.valet.session.closed.v1";
    /// The gate decided a read that changed no session (refused, unreadable, ambiguous, …).
    pub const GATE_DECIDED: &str = "io.valet.gate.decided.v1";
    pub const CHARGE_SUCCEEDED: &str = "io.valet.charge.succeeded.v1";
    pub const CHARGE_FAILED: &str = "io.valet.charge.failed.v1";
    /// A lot's counts and changed spaces after a frame ([`crate::lots::LotUpdate`]).
    pub const LOT_COUNTED: &str = "io.valet.lot.counted.v1";
}

/// One of Valet's functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Function {
    /// Cameras' frames over HTTP and MQTT, authenticated per device → frame events.
    Ingest,
    PlateReader,
    Occupancy,
    /// Plate reads → sessions, barrier commands, review items.
    Gate,
    /// Closed sessions → charges and receipts.
    Billing,
    /// The JSON API for people, signs and operators.
    Query,
}

impl Function {
    pub const ALL: [Function; 6] = [
        Function::Ingest,
        Function::PlateReader,
        Function::Occupancy,
        Function::Gate,
        Function::Billing,
        Function::Query,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Function::Ingest => "ingest",
            Function::PlateReader => "plate-reader",
            Function::Occupancy => "occupancy",
            Function::Gate => "gate",
            Function::Billing => "billing",
            Function::Query => "query",
        }
    }

    /// The function that consumes events of type `ty`, if any does.
    pub fn consumer_of(ty: &str) -> Option<Function> {
        match ty {
            types::GATE_FRAME_RECEIVED => Some(Function::PlateReader),
            types::LOT_FRAME_RECEIVED => Some(Function::Occupancy),
            types::PLATE_READ => Some(Function::Gate),
            types::SESSION_CLOSED => Some(Function::Billing),
            _ => None,
        }
    }

    /// The event types this function makes from outside any event (a device's frame) and so
    /// must send somewhere itself: an event caused by an event can always go back as the reply.
    fn starts(self) -> &'static [&'static str] {
        match self {
            Function::Ingest => &[types::GATE_FRAME_RECEIVED, types::LOT_FRAME_RECEIVED],
            _ => &[],
        }
    }

    /// The event this function emits that another function consumes (the others end the chain).
    fn passes_on(self) -> Option<&'static str> {
        match self {
            Function::PlateReader => Some(types::PLATE_READ),
            Function::Gate => Some(types::SESSION_CLOSED),
            _ => None,
        }
    }

    /// The `source` attribute of the events this function emits.
    pub fn source(self) -> String {
        format!("/valet/{}", self.name())
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The functions one process runs: `all`, or names separated by commas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FunctionSet(BTreeSet<Function>);

impl FunctionSet {
    pub fn all() -> FunctionSet {
        FunctionSet(Function::ALL.into_iter().collect())
    }

    pub fn contains(&self, function: Function) -> bool {
        self.0.contains(&function)
    }

    /// Every function in one process: the embedded garage. Then no event ever leaves the process
    /// and the CloudEvents endpoint is not served.
    pub fn is_all(&self) -> bool {
        self.0.len() == Function::ALL.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = Function> + '_ {
        self.0.iter().copied()
    }

    /// The events this process would start and could hand to nobody without `K_SINK`: each
    /// chain a device's frame starts here, followed through the functions in this process to
    /// the first event whose consumer runs elsewhere, with that consumer. Empty when every
    /// chain stays in the process (or there is no ingest).
    pub fn stranded_without_sink(&self) -> Vec<(&'static str, Function)> {
        let mut stranded = Vec::new();
        for mut ty in self.iter().flat_map(|f| f.starts().iter().copied()) {
            while let Some(consumer) = Function::consumer_of(ty) {
                if !self.contains(consumer) {
                    stranded.push((ty, consumer));
                    break;
                }
                let Some(next) = consumer.passes_on() else { break };
                ty = next;
            }
        }
        stranded
    }
}

impl Default for FunctionSet {
    fn default() -> FunctionSet {
        FunctionSet::all()
    }
}

impl FromStr for FunctionSet {
    type Err = String;

    fn from_str(text: &str) -> Result<FunctionSet, String> {
        if text.trim() == "all" {
            return Ok(FunctionSet::all());
        }
        let mut set = BTreeSet::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let function = Function::ALL.into_iter().find(|f| f.name() == name).ok_or_else(|| {
                let known: Vec<_> = Function::ALL.iter().map(|f| f.name()).collect();
                format!("no function {name:?}; the functions are {} (or `all`)", known.join(", "))
            })?;
            set.insert(function);
        }
        if set.is_empty() {
            return Err("name at least one function (or `all`)".to_owned());
        }
        Ok(FunctionSet(set))
    }
}

impl TryFrom<String> for FunctionSet {
    type Error = String;
    fn try_from(text: String) -> Result<FunctionSet, String> {
        text.parse()
    }
}

impl From<FunctionSet> for String {
    fn from(set: FunctionSet) -> String {
        if set.is_all() {
            return "all".to_owned();
        }
        set.iter().map(Function::name).collect::<Vec<_>>().join(",")
    }
}

/// What handling an event in this process came to.
#[derive(Debug, Default)]
pub struct Chain {
    /// Every event emitted in this process, in order (a device's upload answers with them).
    pub trail: Vec<CloudEvent>,
    /// The last event, bound for a function this process does not run; `None` when the chain
    /// ended here.
    pub onward: Option<CloudEvent>,
}

/// Handles `event` and every event it causes whose consumer runs in this process.
pub async fn run(state: &AppState, event: CloudEvent) -> Result<Chain, ApiError> {
    let mut chain = Chain::default();
    let mut next = Some(event);
    while let Some(event) = next.take() {
        match Function::consumer_of(&event.ty).filter(|f| state.functions().contains(*f)) {
            Some(function) => {
                let started = std::time::Instant::now();
                let caused = handle(state, function, &event).await;
                state.metrics().handled(function, started.elapsed(), caused.is_ok());
                let caused = caused?;
                if let Some(caused) = &caused {
                    tracing::debug!(from = %event.ty, to = %caused.ty, id = %caused.id, "event caused");
                    chain.trail.push(caused.clone());
                }
                next = caused;
            }
            None => {
                // The first event with no consumer here: its consumer is elsewhere, or it ends the
                // chain (a session opened, a charge settled) and goes to the broker for the record.
                chain.onward = Some(event);
            }
        }
    }
    Ok(chain)
}

async fn handle(state: &AppState, function: Function, event: &CloudEvent) -> Result<Option<CloudEvent>, ApiError> {
    match function {
        Function::PlateReader => plate_reader::handle(state, event).await.map(Some),
        Function::Gate => gate::handle(state, event).await,
        Function::Billing => billing::handle(state, event).await,
        Function::Occupancy => occupancy::handle(state, event).await.map(Some),
        Function::Ingest | Function::Query => {
            Err(ApiError::BadEvent(format!("{function} consumes no events (got {})", event.ty)))
        }
    }
}

/// Sends the chain's onward event on: to `K_SINK` when this process has one. Returns the event
/// when there is no sink, for the caller to reply with.
pub async fn forward(state: &AppState, chain: &mut Chain) -> Result<Option<CloudEvent>, ApiError> {
    let Some(onward) = chain.onward.take() else { return Ok(None) };
    match state.sink() {
        Some(sink) => {
            sink.deliver(&onward).await?;
            Ok(None)
        }
        None => Ok(Some(onward)),
    }
}

/// Starts a chain with a device's event: runs it through this process, then hands what goes on
/// to `K_SINK`. Returns the chain and the id of the event forwarded, if one was.
pub async fn start(state: &AppState, event: CloudEvent) -> Result<(Chain, Option<String>), ApiError> {
    let mut chain = run(state, event).await?;
    let onward = chain.onward.as_ref().map(|e| e.id.clone());
    match forward(state, &mut chain).await? {
        // Taken by the sink (or nothing left over).
        None => Ok((chain, onward)),
        Some(unsent) => match Function::consumer_of(&unsent.ty) {
            Some(consumer) => Err(ApiError::Internal(format!(
                "this process does not run the {consumer} function and has no K_SINK to send its events to"
            ))),
            // The chain's last event, and no broker to record it: the embedded garage.
            None => Ok((chain, None)),
        },
    }
}

/// Ingest over MQTT: each camera frame the broker delivers starts a chain; the frame is
/// acknowledged once the chain has run here and been taken by the sink, or refused for good.
/// A failure that a retry could cure (the sink down) is logged and the frame acknowledged too:
/// MQTT 3.1.1 redelivers only on reconnection, and a gate frame is stale within seconds.
/// On `stop` it takes no new frame and returns once the current one is handled (SIGTERM).
pub async fn ingest_mqtt(
    state: AppState,
    mqtt: crate::mqtt::Mqtt,
    mut frames: tokio::sync::mpsc::Receiver<crate::mqtt::Delivery>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use crate::mqtt::Frame;
    loop {
        let delivery = tokio::select! {
            biased;
            _ = stop.changed() => return,
            delivery = frames.recv() => match delivery {
                Some(delivery) => delivery,
                None => return,
            },
        };
        let event = match &delivery.frame {
            Frame::Gate { camera, direction, image } => frame_event(
                types::GATE_FRAME_RECEIVED,
                None,
                image.clone(),
                &[(plate_reader::CAMERA, camera), (plate_reader::DIRECTION, direction)],
            ),
            Frame::Lot { lot, camera, image } => frame_event(
                types::LOT_FRAME_RECEIVED,
                None,
                image.clone(),
                &[(occupancy::LOT, lot), (occupancy::CAMERA, camera)],
            ),
        };
        let id = event.id.clone();
        match start(&state, event).await {
            Ok((chain, forwarded)) => {
                let last = chain.trail.last().map(|e| e.ty.as_str()).unwrap_or("none");
                tracing::info!(event = %id, last, forwarded = forwarded.is_some(), "MQTT frame handled");
            }
            Err(e) => tracing::error!(event = %id, error = %e, "MQTT frame not handled"),
        }
        mqtt.ack(&delivery).await;
    }
}

/// An event from a frame a camera sent: `camera`'s frame, starting a new chain.
pub fn frame_event(ty: &str, id: Option<String>, image: bytes::Bytes, extensions: &[(&str, &str)]) -> CloudEvent {
    let mut event = CloudEvent {
        id: id.unwrap_or_else(cloudevents::fresh_id),
        source: Function::Ingest.source(),
        ty: ty.to_owned(),
        time: Some(cloudevents::now()),
        subject: None,
        content_type: Some("image/jpeg".to_owned()),
        extensions: Default::default(),
        data: image,
    };
    for (name, value) in extensions {
        event.extensions.insert((*name).to_owned(), (*value).to_owned());
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_sets_parse_from_names_and_print_back() {
        assert!("all".parse::<FunctionSet>().unwrap().is_all());
        let set: FunctionSet = "gate, billing".parse().unwrap();
        assert!(set.contains(Function::Gate) && set.contains(Function::Billing) && !set.contains(Function::Query));
        assert_eq!(String::from(set), "gate,billing");
        assert_eq!(String::from(FunctionSet::all()), "all");
        let err = "gate,parking".parse::<FunctionSet>().unwrap_err();
        assert!(err.contains("\"parking\"") && err.contains("plate-reader"), "{err}");
        assert!(" , ".parse::<FunctionSet>().is_err());
    }

    #[test]
    fn only_chains_a_device_starts_need_a_sink_and_only_where_they_leave_the_process() {
        let stranded = |set: &str| {
            let set: FunctionSet = set.parse().unwrap();
            set.stranded_without_sink().into_iter().map(|(ty, f)| format!("{ty}>{f}")).collect::<Vec<_>>()
        };
        assert_eq!(
            stranded("ingest"),
            ["io.valet.gate.frame.received.v1>plate-reader", "io.valet.lot.frame.received.v1>occupancy"]
        );
        assert_eq!(stranded("ingest,plate-reader,occupancy"), ["io.valet.plate.read.v1>gate"]);
        assert_eq!(stranded("ingest,plate-reader,occupancy,gate"), ["io.valet.session.closed.v1>billing"]);
        assert!(stranded("ingest,plate-reader,occupancy,gate,billing").is_empty());
        assert!(stranded("all").is_empty());
        // Consumers answer the broker with their events: no sink needed.
        assert!(stranded("plate-reader").is_empty() && stranded("gate").is_empty() && stranded("query").is_empty());
    }

    #[test]
    fn every_consumed_type_is_versioned_past_tense_reverse_dns() {
        for ty in [types::GATE_FRAME_RECEIVED, types::LOT_FRAME_RECEIVED, types::PLATE_READ, types::SESSION_CLOSED] {
            assert!(Function::consumer_of(ty).is_some(), "{ty}");
            assert!(ty.starts_with("io.valet.") && ty.ends_with(".v1"), "{ty}");
        }
        assert_eq!(Function::consumer_of(types::CHARGE_SUCCEEDED), None);
    }
}
