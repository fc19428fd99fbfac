//! Fuzz target: a PKLot XML annotation, `valet_lot::import::pklot`.
//!
//! Invariants: no panic; an imported layout is valid and round-trips through its TOML; every
//! label names a space of the layout.

#![no_main]

use libfuzzer_sys::fuzz_target;
use valet_lot::import::{PKLOT_FRAME, pklot};
use valet_lot::{CameraId, Layout};

fuzz_target!(|xml: &str| {
    let Ok(frame) = pklot(xml, CameraId::new("cam"), PKLOT_FRAME) else { return };
    assert!(frame.layout.validate().is_ok());
    for (id, _) in &frame.labels {
        assert!(frame.layout.spaces.iter().any(|s| &s.id == id), "label for unknown space {id}");
    }
    let written = frame.layout.to_toml();
    let again =
        Layout::from_toml(&written).unwrap_or_else(|e| panic!("an imported layout's TOML is refused: {e}\n{written}"));
    assert_eq!(again, frame.layout);
});
