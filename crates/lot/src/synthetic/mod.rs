//! Made-up lots. [`grid_layout`]: layouts of any number of spaces, for benchmarks (the cost of a
//! frame depends on how many spaces it has and how big they are, not on where they are).
//! [`aerial`]: a small lot rendered with its cars, whose layout matches its frames, for the demo
//! and for tests that need to know the truth of every bay.

pub mod aerial;

use crate::layout::{Camera, CameraId, Layout, Level, LevelId, LotId, Space, SpaceId, Zone, ZoneId};

/// `n` PKLot-sized spaces (about 140×80 px, slanted like UFPR05's) in rows over a
/// `width`×`height` frame, overlapping once the frame is full; zones of 25 spaces on one level.
pub fn grid_layout(n: usize, width: u32, height: u32) -> Layout {
    let (w, h) = (f64::from(width), f64::from(height));
    let (dx, dy) = (150.0, 90.0);
    let cols = ((w - 160.0) / dx).floor().max(1.0) as usize;
    let rows = ((h - 100.0) / dy).floor().max(1.0) as usize;
    let zones = n.div_ceil(25).max(1);
    let spaces = (0..n)
        .map(|i| {
            let (col, row, layer) = (i % cols, (i / cols) % rows, i / (cols * rows));
            let x = 10.0 + col as f64 * dx + (layer % 5) as f64 * 7.0;
            let y = 10.0 + row as f64 * dy + (layer % 5) as f64 * 5.0;
            Space {
                id: SpaceId::new(format!("s{i}")),
                zone: ZoneId::new(format!("z{}", i / 25)),
                camera: CameraId::new("cam1"),
                polygon: Some([[x, y + 70.0], [x + 130.0, y + 85.0], [x + 140.0, y + 10.0], [x + 5.0, y]]),
                rect: None,
            }
        })
        .collect();
    Layout {
        id: LotId::new("synthetic"),
        name: String::new(),
        cameras: vec![Camera { id: CameraId::new("cam1"), width, height }],
        levels: vec![Level { id: LevelId::new("ground"), name: String::new() }],
        zones: (0..zones)
            .map(|z| Zone { id: ZoneId::new(format!("z{z}")), level: LevelId::new("ground"), name: String::new() })
            .collect(),
        spaces,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn grid_layouts_of_any_size_are_valid() {
        for n in [1, 10, 50, 100, 200, 400] {
            super::grid_layout(n, 1280, 720).validate().unwrap();
        }
    }
}
