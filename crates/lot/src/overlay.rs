//! Drawing a layout over a frame: every space outlined in its state's colour, with its
//! confidence in percent, so an operator checks a layout (and a reading) at a glance.
//!
//! Self-contained (lines and a 3×5 digit font) to keep image-processing crates out of the tree.

use image::{Rgb, RgbImage};
use valet_occupancy::SpaceState;

use crate::geometry::Quad;

pub const FREE: Rgb<u8> = Rgb([40, 220, 60]);
pub const OCCUPIED: Rgb<u8> = Rgb([235, 40, 40]);
pub const UNKNOWN: Rgb<u8> = Rgb([250, 210, 0]);

/// What to draw for one space.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pub quad: Quad,
    pub state: Option<SpaceState>,
    /// In `[0, 1]`; `None` draws no number (a layout without a reading).
    pub confidence: Option<f32>,
}

/// Draws every mark onto `frame` (coordinates in `frame`'s pixels).
pub fn draw(frame: &mut RgbImage, marks: &[Mark]) {
    for mark in marks {
        let colour = match mark.state {
            Some(SpaceState::Free) => FREE,
            Some(SpaceState::Occupied) => OCCUPIED,
            None => UNKNOWN,
        };
        for i in 0..4 {
            line(frame, mark.quad[i], mark.quad[(i + 1) % 4], colour, 2);
        }
        // p0 is marked so the crop orientation is visible.
        disc(frame, mark.quad[0], 3, colour);
        if let Some(c) = mark.confidence {
            let pct = (c.clamp(0.0, 1.0) * 100.0).round() as u32;
            let cx = mark.quad.iter().map(|p| p[0]).sum::<f64>() / 4.0;
            let cy = mark.quad.iter().map(|p| p[1]).sum::<f64>() / 4.0;
            label(frame, cx, cy, &pct.to_string(), colour);
        }
    }
}

fn put(frame: &mut RgbImage, x: i64, y: i64, colour: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u64) < u64::from(frame.width()) && (y as u64) < u64::from(frame.height()) {
        frame.put_pixel(x as u32, y as u32, colour);
    }
}

fn line(frame: &mut RgbImage, a: [f64; 2], b: [f64; 2], colour: Rgb<u8>, thickness: i64) {
    let steps = (b[0] - a[0]).abs().max((b[1] - a[1]).abs()).ceil().clamp(1.0, 100_000.0) as i64;
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        let (x, y) = ((a[0] + t * (b[0] - a[0])) as i64, (a[1] + t * (b[1] - a[1])) as i64);
        for dy in 0..thickness {
            for dx in 0..thickness {
                put(frame, x + dx, y + dy, colour);
            }
        }
    }
}

fn disc(frame: &mut RgbImage, c: [f64; 2], r: i64, colour: Rgb<u8>) {
    for dy in -r..=r {
        for dx in -r..=r {
            if dx * dx + dy * dy <= r * r {
                put(frame, c[0] as i64 + dx, c[1] as i64 + dy, colour);
            }
        }
    }
}

/// 3×5 digits, one row per `u8`, high bit on the left.
const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b010, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

/// Digits at scale 2 on a dark box centred on `(cx, cy)`.
fn label(frame: &mut RgbImage, cx: f64, cy: f64, text: &str, colour: Rgb<u8>) {
    const SCALE: i64 = 2;
    let glyphs: Vec<&[u8; 5]> = text.bytes().filter(u8::is_ascii_digit).map(|b| &DIGITS[(b - b'0') as usize]).collect();
    let width = glyphs.len() as i64 * 4 * SCALE + SCALE;
    let height = 7 * SCALE;
    let (x0, y0) = (cx as i64 - width / 2, cy as i64 - height / 2);
    for y in 0..height {
        for x in 0..width {
            put(frame, x0 + x, y0 + y, Rgb([20, 20, 20]));
        }
    }
    for (i, glyph) in glyphs.iter().enumerate() {
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..3 {
                if bits & (0b100 >> col) != 0 {
                    for (dx, dy) in (0..SCALE).flat_map(|dx| (0..SCALE).map(move |dy| (dx, dy))) {
                        let x = x0 + SCALE + (i as i64 * 4 + col) * SCALE + dx;
                        let y = y0 + SCALE + row as i64 * SCALE + dy;
                        put(frame, x, y, colour);
                    }
                }
            }
        }
    }
}

/// PNG bytes of an image (for `--overlay`/`render` output).
pub fn png(image: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).expect("PNG encoding to memory cannot fail");
    out.into_inner()
}
