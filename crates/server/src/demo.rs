//! `valet serve --demo`: a simulated garage, so one command shows a living dashboard. Cars with
//! rendered plates (`demo/gate-*.jpg`, from `training/plates/render_gate_frame.py`) arrive and
//! leave through the real pipeline (plate reader → gate → billing). A car that comes in parks in
//! a free bay of the demo lot and leaves it when it goes out, and a bay camera posts rendered
//! frames of that lot ([`valet_lot::synthetic::aerial`]) every tick, read by the real occupancy
//! model: the lot map and its counts follow the cars. Some plates are read wrongly or unsurely
//! by the bundled models; the demo keeps them, so the review queue fills as a real one would,
//! up to [`REVIEW_CAP`]. Nothing is faked after the frames: every decision, session, charge and
//! count is the garage's own.

use std::time::Duration;

use rand::seq::IndexedRandom;
use valet_garage::{PaymentMethodToken, Plate};
use valet_lot::SmoothingConfig;
use valet_lot::synthetic::aerial::{self, ParkedCar};

use crate::AppState;
use crate::api::GateEvent;
use crate::functions::{self, occupancy, plate_reader, types};

/// The demo's cars: plate and the gate camera frame (960×720 JPEG) that shows it. Rendered by
/// `training/plates/render_gate_frame.py`; the bundled reader reads VL482TG and KR552TE surely
/// and the others wrongly or unsurely, as real lanes have such cars. Benchmarks drive them too.
pub const CARS: [(&str, &[u8]); 6] = [
    ("VL482TG", include_bytes!("../demo/gate-VL482TG.jpg")),
    ("KR552TE", include_bytes!("../demo/gate-KR552TE.jpg")),
    ("GT468WS", include_bytes!("../demo/gate-GT468WS.jpg")),
    ("BV310NP", include_bytes!("../demo/gate-BV310NP.jpg")),
    ("DM104AX", include_bytes!("../demo/gate-DM104AX.jpg")),
    ("ZH927LC", include_bytes!("../demo/gate-ZH927LC.jpg")),
];
/// Drivers who signed up; the others pay by plate (or end up in review).
const SIGNED_UP: [&str; 3] = ["VL482TG", "KR552TE", "GT468WS"];
/// The lot the demo's bay camera watches.
pub const LOT: &str = "demo";
/// The tariff a demo garage starts with: every started 5 minutes costs €0.50, no grace, so
/// short demo stays are charged.
pub const TARIFF: &str = "currency = \"EUR\"\nutc_offset_minutes = 0\ngrace_minutes = 0\ndaily_max_minor = 2400\n\n\
                          [[bands]]\nname = \"demo\"\nfrom_minute = 0\nevery_minutes = 5\nprice_minor = 50\n";
const TICK: Duration = Duration::from_secs(3);
/// Open review items at which the demo sends only cars whose last pass the same way raised
/// none: a demo left running overnight must not bury the queue a newcomer opens in the morning.
/// Those cars keep coming and going; the others move again once an operator works the queue down.
pub const REVIEW_CAP: usize = 8;
/// JPEG quality of the bay camera's frames.
const QUALITY: u8 = 85;

/// The demo lot: ten painted bays on one 640×480 camera (the aerial lot, under the demo's id).
pub fn layout() -> valet_lot::Layout {
    let mut layout = aerial::layout();
    layout.id = valet_lot::LotId::new(LOT);
    layout.name = "Demo lot".to_owned();
    layout
}

/// The simulation's state: which car stands in which bay, and which cars' reads need a person.
#[derive(Debug)]
pub struct Demo {
    /// Each car's bay while it is inside.
    bays: [Option<usize>; CARS.len()],
    /// Per car, entry and exit: whether its last pass that way raised no review item (`false`
    /// until it has passed). The bundled models read the same frame the same way each time.
    clean: [[bool; 2]; CARS.len()],
    review_cap: usize,
    frames: u64,
}

impl Demo {
    /// Signs the demo's drivers up and picks up the cars a previous run left inside (an open
    /// session under their plate), each in a bay of its own.
    pub async fn start(state: &AppState, review_cap: usize) -> Demo {
        for plate in SIGNED_UP {
            let (Ok(plate), Ok(method)) = (Plate::parse(plate), PaymentMethodToken::parse("pm_card_visa")) else {
                continue;
            };
            if let Err(e) = state.gate().sign_up(vec![plate], method, None).await {
                tracing::info!(error = %e, "demo driver not signed up (already there?)");
            }
        }
        let mut demo = Demo { bays: [None; CARS.len()], clean: [[false; 2]; CARS.len()], review_cap, frames: 0 };
        for (car, (plate, _)) in CARS.iter().enumerate() {
            let Ok(plate) = Plate::parse(plate) else { continue };
            if state.gate().store().open_sessions_by_plate(&plate).await.is_ok_and(|open| !open.is_empty()) {
                demo.park(car);
            }
        }
        demo
    }

    /// The cars in the lot, as the bay camera films them.
    pub fn parked(&self) -> Vec<ParkedCar> {
        self.bays
            .iter()
            .enumerate()
            .filter_map(|(car, bay)| bay.map(|bay| ParkedCar { bay, car: car as u64 }))
            .collect()
    }

    /// One tick: a car passes a gate, then the bay camera films the lot twice, as many frames as
    /// the smoothing needs to confirm a change, so that between ticks the map's picture and its
    /// colours agree.
    pub async fn tick(&mut self, state: &AppState) {
        self.move_a_car(state).await;
        for _ in 0..SmoothingConfig::default().confirm_frames {
            self.film_the_lot(state).await;
        }
    }

    /// A car picked at random arrives or leaves through the real gate pipeline, and parks in (or
    /// leaves) its bay. While the review queue holds `review_cap` items, only a car whose last
    /// pass the same way raised none may move, so the queue stops growing there.
    pub async fn move_a_car(&mut self, state: &AppState) {
        let queue_full = match state.gate().store().open_review_items().await {
            Ok(open) => open.len() >= self.review_cap,
            Err(e) => {
                tracing::warn!(error = %e, "demo could not count the review queue; sending clean reads only");
                true
            }
        };
        let way = |car: usize| usize::from(self.bays[car].is_some());
        let movable: Vec<usize> = (0..CARS.len()).filter(|&car| !queue_full || self.clean[car][way(car)]).collect();
        let Some(&car) = movable.choose(&mut rand::rng()) else { return };
        let (plate, jpeg) = CARS[car];
        let direction = ["entry", "exit"][way(car)];
        let extensions =
            [(plate_reader::CAMERA, format!("demo-{direction}")), (plate_reader::DIRECTION, direction.to_owned())];
        let extensions: Vec<(&str, &str)> = extensions.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let frame =
            functions::frame_event(types::GATE_FRAME_RECEIVED, None, bytes::Bytes::from_static(jpeg), &extensions);
        match functions::start(state, frame).await {
            Ok((chain, _)) => {
                let raised = chain
                    .trail
                    .iter()
                    .filter_map(|event| event.data_json::<GateEvent>().ok())
                    .any(|gate| !gate.answer.review_items.is_empty());
                self.clean[car][way(car)] = !raised;
                match self.bays[car] {
                    Some(_) => self.bays[car] = None,
                    None => self.park(car),
                }
                tracing::info!(plate, direction, raised_review = raised, "demo car passed the gate");
            }
            Err(e) => tracing::warn!(plate, direction, error = %e, "demo gate frame not handled"),
        }
    }

    /// Puts `car` in a free bay picked at random (there are more bays than cars).
    fn park(&mut self, car: usize) {
        let free: Vec<usize> = (0..aerial::BAYS).filter(|bay| !self.bays.contains(&Some(*bay))).collect();
        self.bays[car] = free.choose(&mut rand::rng()).copied();
    }

    /// The bay camera posts a frame of the lot as it stands, read by the real occupancy function.
    pub async fn film_the_lot(&mut self, state: &AppState) {
        self.frames += 1;
        let (parked, seed) = (self.parked(), self.frames);
        let jpeg =
            tokio::task::spawn_blocking(move || valet_imaging::encode_jpeg(&aerial::frame(&parked, seed), QUALITY))
                .await;
        let jpeg = match jpeg {
            Ok(Ok(jpeg)) => jpeg,
            Ok(Err(e)) => return tracing::warn!(error = %e, "demo bay frame not encoded"),
            Err(e) => return tracing::warn!(error = %e, "demo bay frame not rendered"),
        };
        let frame = functions::frame_event(types::LOT_FRAME_RECEIVED, None, jpeg.into(), &[(occupancy::LOT, LOT)]);
        if let Err(e) = functions::start(state, frame).await {
            tracing::warn!(error = %e, "demo bay frame not read");
        }
    }
}

/// Runs the simulation until the process ends.
pub async fn run(state: AppState) {
    let mut demo = Demo::start(&state, REVIEW_CAP).await;
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        demo.tick(&state).await;
    }
}
