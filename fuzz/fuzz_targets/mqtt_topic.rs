//! Fuzz target: the MQTT topics camera frames arrive on (`{prefix}/gates/{camera}/{entry|exit}`,
//! `{prefix}/lots/{lot}/cameras/{camera}/frames`), as `valet serve` reads them.
//!
//! The input is the topic prefix on the first line, the topic on the second, then the payload.
//!
//! Invariants: no panic; a topic read as a frame is exactly the topic its fields spell, so no
//! camera or lot name holds a `/`, and the payload is passed on untouched; the topic a sign's
//! counts go out on is never read as a frame.

#![no_main]

use libfuzzer_sys::fuzz_target;
use valet_server::fuzzing::mqtt_frame;
use valet_server::mqtt::Frame;

fuzz_target!(|input: &[u8]| {
    let mut parts = input.splitn(3, |b| *b == b'\n');
    let (Some(prefix), Some(topic)) = (parts.next(), parts.next()) else { return };
    let (Ok(prefix), Ok(topic)) = (std::str::from_utf8(prefix), std::str::from_utf8(topic)) else { return };
    let payload = parts.next().unwrap_or_default().to_vec();
    match mqtt_frame(prefix, topic, payload.clone()) {
        Some(Frame::Gate { camera, direction, image }) => {
            assert!(!camera.contains('/'), "{camera:?}");
            assert_eq!(format!("{prefix}/gates/{camera}/{direction}"), topic);
            assert_eq!(image, payload);
        }
        Some(Frame::Lot { lot, camera, image }) => {
            assert!(!camera.contains('/') && !lot.contains('/'), "{lot:?} {camera:?}");
            assert_eq!(format!("{prefix}/lots/{lot}/cameras/{camera}/frames"), topic);
            assert_eq!(image, payload);
        }
        None => {}
    }
    let lot = topic.rsplit('/').next().unwrap_or_default();
    assert!(mqtt_frame(prefix, &valet_server::signs::topic(prefix, lot), Vec::new()).is_none());
});
