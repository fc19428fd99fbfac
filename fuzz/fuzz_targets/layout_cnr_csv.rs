//! Fuzz target: a CNR-EXT camera CSV (`SlotId,X,Y,W,H`), `valet_lot::import::cnr_csv`.
//!
//! Invariants: no panic; an imported layout is valid, has one space per data line, and
//! round-trips through its TOML.

#![no_main]

use libfuzzer_sys::fuzz_target;
use valet_lot::import::cnr_csv;
use valet_lot::{CameraId, Layout, LotId};

fuzz_target!(|csv: &str| {
    let Ok(layout) = cnr_csv(csv, LotId::new("cnr"), CameraId::new("camera1"), (1000, 750)) else { return };
    assert!(layout.validate().is_ok());
    let written = layout.to_toml();
    let again =
        Layout::from_toml(&written).unwrap_or_else(|e| panic!("an imported layout's TOML is refused: {e}\n{written}"));
    assert_eq!(again, layout);
});
