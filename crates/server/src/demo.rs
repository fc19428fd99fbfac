//! `valet serve --demo`: a simulated garage, so one command shows a living dashboard. Cars with
//! rendered plates (`demo/gate-*.jpg`, from `training/plates/render_gate_frame.py`) arrive and
//! leave through the real pipeline (plate reader → gate → billing), and a bay camera posts a new
//! frame of the demo lot every few seconds (classified by the real occupancy model). Some
//! plates are read wrongly or unsurely by the bundled models; the demo keeps them, so the review
//! queue fills as a real one would. Nothing is faked after the frame: every decision, session,
//! charge and count is the garage's own.

use std::time::Duration;

use rand::Rng;
use valet_garage::{PaymentMethodToken, Plate};

use crate::AppState;
use crate::functions::{self, occupancy, plate_reader, types};

/// The demo's cars: plate and the camera frame that shows it.
const CARS: [(&str, &[u8]); 6] = [
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

/// The demo lot: ten spaces on one 640×480 camera.
pub fn layout() -> valet_lot::Layout {
    let mut layout = valet_lot::synthetic::grid_layout(10, 640, 480);
    layout.id = valet_lot::LotId::new(LOT);
    layout.name = "Demo lot".to_owned();
    layout
}

/// Runs the simulation until the process ends.
pub async fn run(state: AppState) {
    for plate in SIGNED_UP {
        let (Ok(plate), Ok(method)) = (Plate::parse(plate), PaymentMethodToken::parse("pm_card_visa")) else {
            continue;
        };
        if let Err(e) = state.gate().sign_up(vec![plate], method, None).await {
            tracing::info!(error = %e, "demo driver not signed up (already there?)");
        }
    }
    let mut inside = [false; CARS.len()];
    let mut tick = tokio::time::interval(TICK);
    let mut seed = 0u64;
    loop {
        tick.tick().await;
        seed += 1;
        // The bay camera: a new scene every tick.
        let image = valet_imaging::synthetic::photo_jpeg(640, 480, None, seed % 7);
        let frame = functions::frame_event(types::LOT_FRAME_RECEIVED, None, image.into(), &[(occupancy::LOT, LOT)]);
        if let Err(e) = functions::start(&state, frame).await {
            tracing::warn!(error = %e, "demo bay frame not read");
        }
        // A car arrives or leaves: the one picked at random changes sides.
        let car = rand::rng().random_range(0..CARS.len());
        let (plate, jpeg) = CARS[car];
        let direction = if inside[car] { "exit" } else { "entry" };
        let extensions =
            [(plate_reader::CAMERA, format!("demo-{direction}")), (plate_reader::DIRECTION, direction.to_owned())];
        let extensions: Vec<(&str, &str)> = extensions.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let frame =
            functions::frame_event(types::GATE_FRAME_RECEIVED, None, bytes::Bytes::from_static(jpeg), &extensions);
        match functions::start(&state, frame).await {
            Ok(_) => {
                inside[car] = !inside[car];
                tracing::info!(plate, direction, "demo car passed the gate");
            }
            Err(e) => tracing::warn!(plate, direction, error = %e, "demo gate frame not handled"),
        }
    }
}
