//! valet-lot's integration tests, one binary: layout validation and import, warp geometry on a
//! synthetic frame, smoothing, the frame pipeline with a stand-in network, the bundled model on
//! the rendered aerial lot, and (when `../shared/data` is present) on pklot-padova through the
//! whole path.

mod aerial;
mod data;
mod layouts;
mod pipeline;
mod smoothing;
mod warp;

use std::path::PathBuf;

/// `../shared/data/<rel>`, or `None` after printing why the test skips.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(rel);
    if dir.exists() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent (shared data is not on this machine)", dir.display());
        None
    }
}

/// A valid one-camera layout with two zones on two levels, to break in tests.
pub const GOOD: &str = r#"
id = "test-lot"
name = "Test lot"

[[cameras]]
id = "cam1"
width = 200
height = 100

[[levels]]
id = "L0"

[[levels]]
id = "L1"

[[zones]]
id = "A"
level = "L0"

[[zones]]
id = "B"
level = "L1"

[[spaces]]
id = "a1"
zone = "A"
camera = "cam1"
polygon = [[10, 10], [60, 10], [60, 60], [10, 60]]

[[spaces]]
id = "b1"
zone = "B"
camera = "cam1"
rect = { cx = 140, cy = 50, w = 40, h = 60, angle = 0 }
"#;
