//! A small open-air lot seen from straight above, rendered: asphalt, painted bays, kerbs and
//! grass, and cars in whichever bays are taken. [`layout`] and [`frame`] describe the same lot by
//! construction (each space's polygon is exactly its painted bay), so whoever renders a frame
//! knows the truth of every bay on it: `valet serve --demo` shows it, tests score the model on it.
//!
//! Pixels are a pure function of the [`ParkedCar`]s and a frame seed (light and sensor grain). A
//! car's look (colour, size, shape) is a function of its own seed, and where it stands in a bay of
//! that seed and the bay, so the same car parks the same way on every frame. Cars are drawn the
//! way the occupancy model's synthetic training cars are (`topdown_car` in
//! `training/occupancy/train_gen.py`): a rounded-box body shaded across its width, windscreen,
//! rear and side windows, a highlight, and a soft shadow.

use image::{Rgb, RgbImage};

use crate::geometry::Quad;
use crate::layout::{Camera, CameraId, Layout, Level, LevelId, LotId, Space, SpaceId, Zone, ZoneId};

/// The camera's frame size.
pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 480;
/// Bays in each of the two rows, which face each other across the aisle.
pub const BAYS_PER_ROW: usize = 5;
/// Every bay of the lot; bay `i` is the layout's `i`-th space.
pub const BAYS: usize = 2 * BAYS_PER_ROW;
/// The one camera.
pub const CAMERA: &str = "cam1";

/// 2.5 m × 5.5 m bays at about 44 px/m (a car is ~4.5 m × 1.8 m).
const BAY_WIDTH: f32 = 110.0;
const BAY_DEPTH: f32 = 172.0;
/// Left edge of the first bay.
const LEFT: f32 = 45.0;
/// The rows' back lines; each row's front edge is `BAY_DEPTH` towards the aisle.
const TOP_BACK: f32 = 30.0;
const BOTTOM_BACK: f32 = 450.0;
/// Half the width of a painted line.
const LINE: f32 = 2.5;
/// Where shadows fall, in pixels (a sun high in the south-west).
const SUN: [f32; 2] = [7.0, 5.0];

/// A car standing in bay `bay` (0-based, `< BAYS`); `car` decides what it looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkedCar {
    pub bay: usize,
    pub car: u64,
}

/// The lot: ten spaces `A1`..`A5` (top row) and `B1`..`B5` (bottom row) on one 640×480 camera,
/// one zone per row.
pub fn layout() -> Layout {
    let spaces = (0..BAYS)
        .map(|bay| {
            let row = if bay < BAYS_PER_ROW { "A" } else { "B" };
            Space {
                id: SpaceId::new(format!("{row}{}", bay % BAYS_PER_ROW + 1)),
                zone: ZoneId::new(row),
                camera: CameraId::new(CAMERA),
                polygon: Some(bay_quad(bay)),
                rect: None,
            }
        })
        .collect();
    let zone = |id: &str| Zone { id: ZoneId::new(id), level: LevelId::new("ground"), name: format!("Row {id}") };
    Layout {
        id: LotId::new("aerial"),
        name: "Aerial lot".to_owned(),
        cameras: vec![Camera { id: CameraId::new(CAMERA), width: WIDTH, height: HEIGHT }],
        levels: vec![Level { id: LevelId::new("ground"), name: "Ground".to_owned() }],
        zones: vec![zone("A"), zone("B")],
        spaces,
    }
}

/// Bay `bay`'s corners, from the middle of one painted line to the next, in crop order: the
/// bay's back at the crop's top, its open end (the aisle) at the bottom, for both rows.
pub fn bay_quad(bay: usize) -> Quad {
    let [x0, y0, x1, y1] = bay_box(bay).map(f64::from);
    if bay < BAYS_PER_ROW { [[x0, y0], [x1, y0], [x1, y1], [x0, y1]] } else { [[x1, y1], [x0, y1], [x0, y0], [x1, y0]] }
}

/// `[left, top, right, bottom]` of bay `bay`.
fn bay_box(bay: usize) -> [f32; 4] {
    let x0 = LEFT + (bay % BAYS_PER_ROW) as f32 * BAY_WIDTH;
    let y0 = if bay < BAYS_PER_ROW { TOP_BACK } else { BOTTOM_BACK - BAY_DEPTH };
    [x0, y0, x0 + BAY_WIDTH, y0 + BAY_DEPTH]
}

/// A frame of the lot with `parked` in their bays (a bay named twice, or out of range, is drawn
/// once or not at all). `seed` varies the light and the sensor's grain between frames.
pub fn frame(parked: &[ParkedCar], seed: u64) -> RgbImage {
    let mut rgb = vec![[0f32; 3]; (WIDTH * HEIGHT) as usize];
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            rgb[(y * WIDTH + x) as usize] = ground(x as f32 + 0.5, y as f32 + 0.5);
        }
    }
    let mut cars: Vec<Car> = Vec::new();
    for p in parked.iter().filter(|p| p.bay < BAYS) {
        if !cars.iter().any(|c| c.bay == p.bay) {
            cars.push(Car::new(*p));
        }
    }
    for car in &cars {
        car.paint(&mut rgb, Car::shadow);
    }
    for car in &cars {
        car.paint(&mut rgb, Car::body);
    }
    let light = 0.94 + 0.12 * unit(hash(seed, 1));
    let balance = [0.0, 1.0, 2.0].map(|c| 1.0 + 0.03 * (unit(hash(seed, 2 + c as u64)) - 0.5));
    RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let px = rgb[(y * WIDTH + x) as usize];
        let grain = hash(seed ^ 0x9E37_79B9, u64::from(y) << 16 | u64::from(x));
        Rgb(std::array::from_fn(|c| {
            let noise = 10.0 * (unit(grain >> (c * 16)) - 0.5);
            (px[c] * light * balance[c] + noise).clamp(0.0, 255.0) as u8
        }))
    })
}

/// Asphalt, paint, kerbs and grass at `(x, y)`: the empty lot.
fn ground(x: f32, y: f32) -> [f32; 3] {
    let texture = 1.0 + 0.07 * value_noise(x / 70.0, y / 70.0, 11) + 0.04 * value_noise(x / 9.0, y / 9.0, 12);
    // Kerbs 10 px outside the back lines, grass beyond them.
    let outside = (TOP_BACK - 10.0 - y).max(y - BOTTOM_BACK - 10.0);
    if outside > 8.0 {
        let blades = 1.0 + 0.15 * value_noise(x / 3.0, y / 3.0, 13);
        return [72.0, 112.0, 52.0].map(|c| c * texture * blades);
    }
    if outside > 0.0 {
        return [172.0, 172.0, 166.0].map(|c| c * texture);
    }
    let mut asphalt = [88.0, 90.0, 95.0].map(|c| c * texture);
    // A faint oil stain where cars stand, different in each bay.
    for bay in 0..BAYS {
        let [x0, y0, x1, y1] = bay_box(bay);
        let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0 + 12.0 * (unit(hash(bay as u64, 3)) - 0.5));
        let (dx, dy) = ((x - cx) / 18.0, (y - cy) / 30.0);
        let stain = 0.12 * unit(hash(bay as u64, 4)) * (-(dx * dx + dy * dy)).exp();
        asphalt = asphalt.map(|c| c * (1.0 - stain));
    }
    let paint = paint(x, y) * (0.8 + 0.2 * value_noise(x / 4.0, y / 4.0, 14));
    let white = [228.0, 228.0, 218.0];
    std::array::from_fn(|c| asphalt[c] * (1.0 - paint) + white[c] * paint)
}

/// How much white paint covers `(x, y)`, in `[0, 1]`: the bays' side and back lines and the
/// aisle's dashed centre line, with a one-pixel soft edge.
fn paint(x: f32, y: f32) -> f32 {
    let cover = |distance: f32, half: f32| (half + 0.5 - distance).clamp(0.0, 1.0);
    let right = LEFT + BAYS_PER_ROW as f32 * BAY_WIDTH;
    let along_rows = x > LEFT - LINE - 1.0 && x < right + LINE + 1.0;
    let mut p: f32 = 0.0;
    for back in [TOP_BACK, BOTTOM_BACK] {
        if along_rows {
            p = p.max(cover((y - back).abs(), LINE));
        }
        let (y0, y1) = if back < BOTTOM_BACK { (back, back + BAY_DEPTH) } else { (back - BAY_DEPTH, back) };
        if y > y0 - LINE && y < y1 {
            let nearest = ((x - LEFT) / BAY_WIDTH).round().clamp(0.0, BAYS_PER_ROW as f32);
            p = p.max(cover((x - LEFT - nearest * BAY_WIDTH).abs(), LINE));
        }
    }
    let aisle = (TOP_BACK + BAY_DEPTH + BOTTOM_BACK - BAY_DEPTH) / 2.0;
    if along_rows && (x - LEFT).rem_euclid(40.0) < 24.0 {
        p = p.max(cover((y - aisle).abs(), 1.5));
    }
    p
}

/// One car as it stands in its bay, in pixels.
#[derive(Debug)]
struct Car {
    bay: usize,
    centre: [f32; 2],
    /// Unit vector from the car's rear to its nose.
    heading: [f32; 2],
    half_length: f32,
    half_width: f32,
    /// Squareness of the body's outline (a superellipse's exponent) and its edge's sharpness.
    exponent: f32,
    sharpness: f32,
    colour: [f32; 3],
    /// Along the car (-1 rear .. 1 nose): where the windscreen and rear window start and end.
    windscreen: [f32; 2],
    rear_window: [f32; 2],
    /// Across the car: glass inside this, and side windows beyond `side` when `side_windows`.
    glass_inner: f32,
    side: f32,
    side_windows: bool,
    glass: f32,
    highlight: [f32; 2],
}

/// Car colours and how common each is (train_gen.py's `PALETTE`, `PALETTE_P`): mostly white,
/// silver, grey and black.
const PALETTE: [([f32; 3], u32); 15] = [
    ([0.92, 0.92, 0.92], 14),
    ([0.85, 0.86, 0.88], 14),
    ([0.65, 0.66, 0.68], 12),
    ([0.45, 0.46, 0.48], 10),
    ([0.25, 0.25, 0.27], 8),
    ([0.07, 0.07, 0.08], 12),
    ([0.12, 0.12, 0.15], 6),
    ([0.70, 0.08, 0.08], 6),
    ([0.50, 0.05, 0.07], 3),
    ([0.10, 0.20, 0.55], 5),
    ([0.05, 0.10, 0.30], 3),
    ([0.15, 0.35, 0.20], 2),
    ([0.80, 0.70, 0.20], 1),
    ([0.75, 0.68, 0.55], 2),
    ([0.35, 0.55, 0.75], 2),
];

impl Car {
    fn new(parked: ParkedCar) -> Car {
        let r = |i: u64| unit(hash(parked.car, i));
        let here = |i: u64| unit(hash(parked.car ^ (parked.bay as u64).wrapping_mul(0xA24B_AED4_963E_E407), i));
        let [x0, y0, x1, y1] = bay_box(parked.bay);
        let half_length = 72.0 + 10.0 * r(1);
        let half_width = half_length * (0.42 + 0.06 * r(2));
        // Nose in or reversed in, a little off centre and askew.
        let nose_in = if here(3) < 0.6 { -1.0 } else { 1.0 };
        let towards_aisle = if parked.bay < BAYS_PER_ROW { 1.0 } else { -1.0 };
        let angle = 0.05 * (here(4) - 0.5);
        let sign = nose_in * towards_aisle;
        let heading = [-sign * angle.sin(), sign * angle.cos()];
        let centre = [(x0 + x1) / 2.0 + 8.0 * (here(5) - 0.5), (y0 + y1) / 2.0 + 10.0 * (here(6) - 0.5)];
        let total: u32 = PALETTE.iter().map(|p| p.1).sum();
        let mut pick = (r(7) * total as f32) as u32;
        let mut colour = PALETTE[0].0;
        for (c, weight) in PALETTE {
            if pick < weight {
                colour = c;
                break;
            }
            pick -= weight;
        }
        let colour = [0, 1, 2].map(|c| 255.0 * colour[c] * (1.0 + 0.12 * (r(8 + c as u64) - 0.5)));
        let w0 = 0.0 + 0.2 * r(11);
        let rw0 = -(0.35 + 0.25 * r(13));
        Car {
            bay: parked.bay,
            centre,
            heading,
            half_length,
            half_width,
            exponent: 3.0 + 3.0 * r(15),
            sharpness: 14.0 + 10.0 * r(16),
            colour,
            windscreen: [w0, w0 + 0.3 + 0.15 * r(12)],
            rear_window: [rw0, rw0 + 0.18 + 0.12 * r(14)],
            glass_inner: 0.7 + 0.15 * r(17),
            side: 0.62 + 0.13 * r(18),
            side_windows: r(19) < 0.6,
            glass: 255.0 * (0.03 + 0.22 * r(20)),
            highlight: [r(21) - 0.5, 0.12 * r(22)],
        }
    }

    /// `(u, v)`: the point along (nose +1) and across the car, in half-lengths and half-widths.
    fn local(&self, x: f32, y: f32, grow: [f32; 2], shift: [f32; 2]) -> (f32, f32) {
        let (dx, dy) = (x - self.centre[0] - shift[0], y - self.centre[1] - shift[1]);
        let [hx, hy] = self.heading;
        ((dx * hx + dy * hy) / (self.half_length * grow[0]), (-dx * hy + dy * hx) / (self.half_width * grow[1]))
    }

    /// Blends `layer` (colour, opacity) over every pixel near the car.
    fn paint(&self, rgb: &mut [[f32; 3]], layer: fn(&Car, f32, f32, [f32; 3]) -> [f32; 3]) {
        let reach = self.half_length * 1.2 + SUN[0].abs().max(SUN[1].abs());
        let span = |c: f32, limit: u32| ((c - reach).max(0.0) as u32, ((c + reach) as u32).min(limit - 1));
        let ((x0, x1), (y0, y1)) = (span(self.centre[0], WIDTH), span(self.centre[1], HEIGHT));
        for y in y0..=y1 {
            for x in x0..=x1 {
                let i = (y * WIDTH + x) as usize;
                rgb[i] = layer(self, x as f32 + 0.5, y as f32 + 0.5, rgb[i]);
            }
        }
    }

    /// The ground under the car's soft shadow.
    fn shadow(&self, x: f32, y: f32, under: [f32; 3]) -> [f32; 3] {
        let (u, v) = self.local(x, y, [1.08, 1.15], SUN);
        let shade = 0.5 * sigmoid((1.0 - (u.abs().powi(3) + v.abs().powi(3))) * 12.0);
        // The sigmoid's far tail is cut so a car darkens only its own surroundings.
        if shade < 0.01 { under } else { under.map(|c| c * (1.0 - shade)) }
    }

    /// The car's body, glass and highlight over `under`.
    fn body(&self, x: f32, y: f32, under: [f32; 3]) -> [f32; 3] {
        let (u, v) = self.local(x, y, [1.0, 1.0], [0.0, 0.0]);
        let alpha = sigmoid((1.0 - (u.abs().powf(self.exponent) + v.abs().powf(self.exponent))) * self.sharpness);
        if alpha < 0.02 {
            return under;
        }
        let shade = (1.0 - 0.3 * v * v) * (1.0 + 0.1 * u);
        let band = |t: f32, [a, b]: [f32; 2]| sigmoid((t - a) * 25.0) * sigmoid((b - t) * 25.0);
        let inner = sigmoid((self.glass_inner - v.abs()) * 25.0);
        let side = if self.side_windows {
            band(u, [self.rear_window[0], self.windscreen[0]])
                * sigmoid((v.abs() - self.side) * 30.0)
                * sigmoid((0.9 - v.abs()) * 30.0)
        } else {
            0.0
        };
        let window = ((band(u, self.windscreen) + band(u, self.rear_window)) * inner + side).min(1.0);
        let reflection = 1.0 + 0.6 * sigmoid((v + self.highlight[0]) * 3.0);
        let glass = [0.9, 0.95, 1.1].map(|c| self.glass * c * reflection);
        let highlight = 255.0 * self.highlight[1] * (-(v - self.highlight[0]).powi(2) / 0.05).exp();
        std::array::from_fn(|c| {
            let paint = self.colour[c] * shade;
            let car = paint * (1.0 - window) + glass[c] * window + highlight;
            under[c] * (1.0 - alpha) + car.min(255.0) * alpha
        })
    }
}

fn sigmoid(t: f32) -> f32 {
    1.0 / (1.0 + (-t).exp())
}

/// SplitMix64 of `seed` and `stream`: independent, reproducible draws without a generator.
fn hash(seed: u64, stream: u64) -> u64 {
    let mut z = seed.wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The low 16 bits of `bits` as a number in `[0, 1)`.
fn unit(bits: u64) -> f32 {
    (bits & 0xFFFF) as f32 / 65536.0
}

/// Smooth noise in `[-1, 1]`: lattice values at integer points, blended with a smoothstep.
fn value_noise(x: f32, y: f32, seed: u64) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (tx, ty) = (x - x0, y - y0);
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let at = |i: f32, j: f32| {
        let key = ((i as i64 as u64) << 32) ^ (j as i64 as u64 & 0xFFFF_FFFF);
        2.0 * unit(hash(seed, key)) - 1.0
    };
    let top = at(x0, y0) * (1.0 - sx) + at(x0 + 1.0, y0) * sx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - sx) + at(x0 + 1.0, y0 + 1.0) * sx;
    top * (1.0 - sy) + bottom * sy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_valid_and_each_space_is_its_painted_bay() {
        let layout = layout();
        layout.validate().unwrap();
        assert_eq!(layout.spaces.len(), BAYS);
        let empty = frame(&[], 1);
        for space in &layout.spaces {
            // The corners lie on painted lines (just inside the open end, where a line stops):
            // near-white there, asphalt in the bay's middle.
            let quad = space.polygon.unwrap();
            let (cx, cy) = (quad.iter().map(|p| p[0]).sum::<f64>() / 4.0, quad.iter().map(|p| p[1]).sum::<f64>() / 4.0);
            for [x, y] in quad {
                let (x, y) = (x + (cx - x).signum(), y + 2.0 * (cy - y).signum());
                let px = empty.get_pixel(x as u32, y as u32);
                assert!(px.0.iter().all(|&c| c > 150), "{} corner {x},{y}: {px:?}", space.id);
            }
            let px = empty.get_pixel(cx as u32, cy as u32);
            assert!(px.0.iter().all(|&c| c < 130), "{} middle: {px:?}", space.id);
        }
    }

    #[test]
    fn a_frame_is_a_pure_function_of_its_cars_and_seed() {
        let cars = [ParkedCar { bay: 2, car: 7 }, ParkedCar { bay: 8, car: 3 }];
        assert_eq!(frame(&cars, 5), frame(&cars, 5));
        assert_ne!(frame(&cars, 5), frame(&cars, 6), "the seed changes light and grain");
        assert_ne!(frame(&cars, 5), frame(&cars[..1], 5), "a car leaving changes the frame");
    }

    #[test]
    fn a_car_and_its_shadow_stay_in_its_bay() {
        // Nothing changes beyond a few pixels past the bay's side lines, nor past its ends where
        // a long car's shadow falls onto the kerb or the aisle.
        let empty = frame(&[], 9);
        for car in 0..20 {
            let parked = frame(&[ParkedCar { bay: 3, car }], 9);
            let [x0, y0, x1, y1] = bay_box(3);
            for (x, y, px) in parked.enumerate_pixels() {
                let before = empty.get_pixel(x, y);
                let changed = (0..3).any(|c| px[c].abs_diff(before[c]) > 3);
                let (x, y) = (x as f32, y as f32);
                let outside = x < x0 - 8.0 || x > x1 + 8.0 || y < y0 - 20.0 || y > y1 + 20.0;
                assert!(!(changed && outside), "car {car} reaches {x},{y}");
            }
        }
    }
}
