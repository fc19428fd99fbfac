//! The photo-like JPEG generator: a parking-lot scene (sky, asphalt, bay lines, cars, a lamp)
//! with smooth texture and per-pixel sensor noise, streamed through `jpeg-encoder`.
//!
//! Pixels are a pure function of (x, y, seed), computed in `fill_buffers` one row at a time.
//! `jpeg-encoder`'s interleaved baseline path (not progressive, not optimised Huffman tables,
//! which both buffer every block) asks for 16 rows per MCU row and writes them out before
//! asking for more, so memory stays at a few MCU rows whatever the image size. Noise is the
//! knob for compressed size: it is almost incompressible, so bytes grow steadily with it.

use std::io::Write;

use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType, SamplingFactor, rgb_to_ycbcr};

const QUALITY: u8 = 90;
/// Noise amplitude (in 8-bit levels) when no target size is asked for: a clean camera frame.
const DEFAULT_NOISE: f32 = 4.0;
/// Calibration encodes about this many pixels per try, whatever the image size.
const SAMPLE_PIXELS: u64 = 600_000;
/// Rows in one MCU row at 4:2:0, the unit the sampled strips are made of.
const MCU_ROWS: u32 = 16;

/// A deterministic photo-like JPEG of `width`×`height`.
///
/// With `target_bytes`, the noise level is calibrated on a sample first so the file lands near
/// that size (within about 15 %; [`noise_for_target`]). The same arguments always give the same
/// bytes.
///
/// # Panics
/// If `width` or `height` is 0.
pub fn photo_jpeg(width: u16, height: u16, target_bytes: Option<u64>, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(target_bytes.unwrap_or(0) as usize);
    write_photo_jpeg(&mut out, width, height, target_bytes, seed)
        .expect("writing to a Vec cannot fail once dimensions are non-zero");
    out
}

/// [`photo_jpeg`] streamed into `out` (a file, a socket), so even the compressed bytes need not
/// be held in memory.
pub fn write_photo_jpeg<W: Write>(
    out: W,
    width: u16,
    height: u16,
    target_bytes: Option<u64>,
    seed: u64,
) -> std::io::Result<()> {
    let noise = match target_bytes {
        Some(target) => noise_for_target(width, height, target, seed),
        None => DEFAULT_NOISE,
    };
    let scene = Scene::new(width, height, seed, noise);
    encode(out, Rows::full(&scene))
}

/// The noise amplitude at which a `width`×`height` photo comes out near `target_bytes`.
///
/// Encodes a few full-width strips spread down the image (so every bay, car and the sky are
/// represented), then scales their size per pixel to the whole image, bisecting on noise.
/// Returns the nearest end of the range if the target cannot be reached.
pub fn noise_for_target(width: u16, height: u16, target_bytes: u64, seed: u64) -> f32 {
    let (mut lo, mut hi) = (0.0f32, 96.0f32);
    let estimate = |noise: f32| {
        let scene = Scene::new(width, height, seed, noise);
        let rows = Rows::sampled(&scene);
        let sampled_pixels = u64::from(width) * rows.rows.len() as u64;
        let mut counter = ByteCount(0);
        encode(&mut counter, rows).expect("counting bytes cannot fail");
        // Headers and tables (~600 bytes) appear once, not once per strip.
        let overhead = 620u64.min(counter.0);
        let per_pixel = (counter.0 - overhead) as f64 / sampled_pixels as f64;
        overhead + (per_pixel * f64::from(width) * f64::from(height)) as u64
    };
    if estimate(hi) <= target_bytes {
        return hi;
    }
    if estimate(lo) >= target_bytes {
        return lo;
    }
    for _ in 0..10 {
        let mid = (lo + hi) / 2.0;
        if estimate(mid) < target_bytes {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

fn encode<W: Write>(out: W, rows: Rows<'_>) -> std::io::Result<()> {
    let mut encoder = Encoder::new(out, QUALITY);
    // Pinned so the streaming (interleaved) path is the one taken; see the module doc.
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder.set_progressive(false);
    encoder.set_optimized_huffman_tables(false);
    encoder.encode_image(rows).map_err(std::io::Error::other)
}

/// A `Write` that only counts, for calibration.
struct ByteCount(u64);

impl Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The scene, as a function of pixel position.
struct Scene {
    width: u32,
    height: u32,
    seed: u64,
    noise: f32,
    /// Lattice spacing of the smooth texture, in pixels.
    cell: u32,
}

/// Parking bays across the image.
const BAYS: u32 = 12;
const HORIZON: f32 = 0.35;
const CAR_COLOURS: [[f32; 3]; 6] = [
    [180.0, 30.0, 35.0],
    [30.0, 60.0, 140.0],
    [200.0, 200.0, 205.0],
    [25.0, 25.0, 28.0],
    [120.0, 125.0, 130.0],
    [220.0, 180.0, 40.0],
];

impl Scene {
    fn new(width: u16, height: u16, seed: u64, noise: f32) -> Scene {
        let (width, height) = (u32::from(width), u32::from(height));
        Scene { width, height, seed, noise, cell: (width.max(height) / 48).max(8) }
    }

    /// Appends row `y` as Y, Cb, Cr samples.
    fn fill_row(&self, y: u32, buffers: &mut [Vec<u8>; 4]) {
        let (w, h) = (self.width as f32, self.height as f32);
        let v = (y as f32 + 0.5) / h;
        let texture = self.texture_row(y);
        let lamp = (0.8 * w, 0.15 * h, 0.05 * w.min(h));
        for x in 0..self.width {
            let u = (x as f32 + 0.5) / w;
            let mut rgb = self.base_colour(u, v);
            let (dx, dy) = (x as f32 - lamp.0, y as f32 - lamp.1);
            if dx * dx + dy * dy < lamp.2 * lamp.2 {
                rgb = [250.0, 240.0, 200.0];
            }
            // Smooth texture: linear between the row's lattice values.
            let cx = x / self.cell;
            let t = (x % self.cell) as f32 / self.cell as f32;
            let shade = texture[cx as usize] * (1.0 - t) + texture[cx as usize + 1] * t;
            let bits = splitmix64(self.seed ^ (u64::from(y) << 32 | u64::from(x)));
            let grain = |shift: u32| ((bits >> shift) & 0xFFFF) as f32 / 32767.5 - 1.0;
            let luma = shade + grain(0) * self.noise;
            let chroma = 0.3 * self.noise;
            let channel = |c: f32, n: f32| (c + luma + n * chroma).clamp(0.0, 255.0) as u8;
            let (yy, cb, cr) =
                rgb_to_ycbcr(channel(rgb[0], grain(16)), channel(rgb[1], grain(32)), channel(rgb[2], grain(48)));
            buffers[0].push(yy);
            buffers[1].push(cb);
            buffers[2].push(cr);
        }
    }

    /// Sky above the horizon; asphalt with bay lines and parked cars below.
    fn base_colour(&self, u: f32, v: f32) -> [f32; 3] {
        if v < HORIZON {
            let t = v / HORIZON;
            return [110.0 + 90.0 * t, 150.0 + 65.0 * t, 210.0 + 20.0 * t];
        }
        let bay_position = u * BAYS as f32;
        let bay = bay_position as u32;
        let f = bay_position - bay as f32;
        if f < 0.02 && (0.5..0.95).contains(&v) {
            return [230.0, 230.0, 220.0];
        }
        let occupant = splitmix64(self.seed.wrapping_add(u64::from(bay)));
        if !occupant.is_multiple_of(3) && (0.15..0.85).contains(&f) && (0.55..0.88).contains(&v) {
            if (0.58..0.66).contains(&v) && (0.25..0.75).contains(&f) {
                return [40.0, 50.0, 60.0];
            }
            return CAR_COLOURS[(occupant >> 8) as usize % CAR_COLOURS.len()];
        }
        let grey = 105.0 - 30.0 * (v - HORIZON);
        [grey, grey, grey + 4.0]
    }

    /// The texture lattice for row `y`, interpolated vertically: one value per lattice column.
    fn texture_row(&self, y: u32) -> Vec<f32> {
        let cy = y / self.cell;
        let t = (y % self.cell) as f32 / self.cell as f32;
        let lattice = |cx: u32, cy: u32| {
            let bits = splitmix64(self.seed ^ 0x5EED ^ (u64::from(cy) << 32 | u64::from(cx)));
            (bits & 0xFFFF) as f32 / 32767.5 - 1.0
        };
        (0..=self.width / self.cell + 1)
            .map(|cx| 10.0 * (lattice(cx, cy) * (1.0 - t) + lattice(cx, cy + 1) * t))
            .collect()
    }
}

/// Which scene rows to encode, in order: all of them, or calibration strips.
struct Rows<'a> {
    scene: &'a Scene,
    rows: Vec<u32>,
}

impl<'a> Rows<'a> {
    fn full(scene: &'a Scene) -> Rows<'a> {
        Rows { scene, rows: Vec::new() }
    }

    /// MCU-aligned strips of 16 rows, evenly spread, about `SAMPLE_PIXELS` in all.
    fn sampled(scene: &'a Scene) -> Rows<'a> {
        let max_strips = (scene.height / MCU_ROWS).max(1);
        let wanted = SAMPLE_PIXELS / (u64::from(scene.width) * u64::from(MCU_ROWS));
        let strips = (wanted as u32).clamp(4, 64).min(max_strips);
        let rows = (0..strips)
            .flat_map(|k| {
                let centre = (2 * k + 1) * scene.height / (2 * strips);
                let top = (centre / MCU_ROWS * MCU_ROWS).min(scene.height.saturating_sub(MCU_ROWS));
                (top..(top + MCU_ROWS).min(scene.height)).collect::<Vec<_>>()
            })
            .collect();
        Rows { scene, rows }
    }

    fn scene_row(&self, y: u16) -> u32 {
        if self.rows.is_empty() { u32::from(y) } else { self.rows[usize::from(y)] }
    }
}

impl ImageBuffer for Rows<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.scene.width as u16
    }

    fn height(&self) -> u16 {
        if self.rows.is_empty() { self.scene.height as u16 } else { self.rows.len() as u16 }
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        self.scene.fill_row(self.scene_row(y), buffers);
    }
}

/// A fast, well-mixed 64-bit hash (SplitMix64's finaliser): the generator's only randomness.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within_15_percent(actual: usize, target: u64) -> bool {
        let ratio = actual as f64 / target as f64;
        (0.85..=1.15).contains(&ratio)
    }

    #[test]
    fn a_camera_frame_lands_within_15_percent_of_its_target_size() {
        let bytes = photo_jpeg(1920, 1080, Some(205_000), 1);
        assert!(within_15_percent(bytes.len(), 205_000), "{} bytes", bytes.len());
    }

    #[test]
    fn a_phone_photo_lands_within_15_percent_of_its_target_size() {
        let bytes = photo_jpeg(2592, 1944, Some(1_190_000), 2);
        assert!(within_15_percent(bytes.len(), 1_190_000), "{} bytes", bytes.len());
    }

    #[test]
    fn a_small_image_lands_within_15_percent_of_its_target_size() {
        let bytes = photo_jpeg(640, 480, Some(60_000), 3);
        assert!(within_15_percent(bytes.len(), 60_000), "{} bytes", bytes.len());
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_does_not() {
        let a = photo_jpeg(300, 200, None, 7);
        assert_eq!(a, photo_jpeg(300, 200, None, 7));
        assert_ne!(a, photo_jpeg(300, 200, None, 8));
    }

    #[test]
    fn more_noise_gives_a_bigger_file() {
        let size = |noise| {
            let scene = Scene::new(800, 600, 1, noise);
            let mut counter = ByteCount(0);
            encode(&mut counter, Rows::full(&scene)).unwrap();
            counter.0
        };
        assert!(size(2.0) < size(10.0));
        assert!(size(10.0) < size(40.0));
    }
}
