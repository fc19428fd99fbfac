//! Warp geometry against a synthetic frame: a quadrilateral painted in four coloured quarters
//! must come out as a square with the same quarters in the same corners.

use image::{Rgb, RgbImage};
use valet_lot::{Homography, Quad, SamplingMap};

const TOP_LEFT: [u8; 3] = [255, 0, 0];
const TOP_RIGHT: [u8; 3] = [0, 255, 0];
const BOTTOM_RIGHT: [u8; 3] = [0, 0, 255];
const BOTTOM_LEFT: [u8; 3] = [255, 255, 255];
const OUTSIDE: [u8; 3] = [60, 60, 60];

/// A 400×300 frame with `quad` painted so that its p0 corner is red, p1 green, p2 blue, p3 white
/// (each a quarter of the square the quad is the perspective image of).
fn painted(quad: &Quad) -> RgbImage {
    let square = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
    let to_square = Homography::from_points(quad, &square).unwrap();
    RgbImage::from_fn(400, 300, |x, y| {
        let [u, v] = to_square.apply(f64::from(x) + 0.5, f64::from(y) + 0.5);
        Rgb(match (u, v) {
            (u, v) if !(0.0..1.0).contains(&u) || !(0.0..1.0).contains(&v) => OUTSIDE,
            (u, v) if u < 0.5 && v < 0.5 => TOP_LEFT,
            (_, v) if v < 0.5 => TOP_RIGHT,
            (u, _) if u >= 0.5 => BOTTOM_RIGHT,
            _ => BOTTOM_LEFT,
        })
    })
}

fn assert_near(got: [u8; 3], want: [u8; 3], at: &str) {
    let far = got.iter().zip(want).any(|(g, w)| g.abs_diff(w) > 2);
    assert!(!far, "{at}: got {got:?}, want {want:?}");
}

#[test]
fn each_corner_of_the_space_lands_in_its_corner_of_the_square() {
    let quad = [[100.0, 50.0], [320.0, 90.0], [280.0, 260.0], [60.0, 220.0]];
    let frame = painted(&quad);
    for side in [16, 64, 150] {
        let out = SamplingMap::new(&quad, 400, 300, side, 1).unwrap().warp(&frame);
        let (a, b) = (side / 8, side - 1 - side / 8);
        assert_near(out.get_pixel(a, a).0, TOP_LEFT, &format!("{side}: p0 → (0,0)"));
        assert_near(out.get_pixel(b, a).0, TOP_RIGHT, &format!("{side}: p1 → (S,0)"));
        assert_near(out.get_pixel(b, b).0, BOTTOM_RIGHT, &format!("{side}: p2 → (S,S)"));
        assert_near(out.get_pixel(a, b).0, BOTTOM_LEFT, &format!("{side}: p3 → (0,S)"));
        // The quarter boundaries of the square fall on the patch's middle lines.
        let (m0, m1) = (side / 2 - 2, side / 2 + 1);
        assert_near(out.get_pixel(m0, m0).0, TOP_LEFT, "just above-left of the centre");
        assert_near(out.get_pixel(m1, m1).0, BOTTOM_RIGHT, "just below-right of the centre");
    }
}

#[test]
fn listing_the_corners_from_another_start_rotates_the_patch() {
    let quad = [[100.0, 50.0], [320.0, 90.0], [280.0, 260.0], [60.0, 220.0]];
    let frame = painted(&quad);
    let rotated = [quad[1], quad[2], quad[3], quad[0]];
    let out = SamplingMap::new(&rotated, 400, 300, 32, 1).unwrap().warp(&frame);
    assert_near(out.get_pixel(3, 3).0, TOP_RIGHT, "p1 listed first is now the top-left");
    assert_near(out.get_pixel(28, 28).0, BOTTOM_LEFT, "p3 is now the bottom-right");
}

#[test]
fn supersampling_keeps_the_geometry_and_averages_edges() {
    let quad = [[100.0, 50.0], [320.0, 90.0], [280.0, 260.0], [60.0, 220.0]];
    let frame = painted(&quad);
    let out = SamplingMap::new(&quad, 400, 300, 16, 3).unwrap().warp(&frame);
    assert_near(out.get_pixel(2, 2).0, TOP_LEFT, "p0");
    assert_near(out.get_pixel(13, 13).0, BOTTOM_RIGHT, "p2");
}

#[test]
fn a_space_on_the_frame_edge_reads_edge_pixels_not_memory_past_them() {
    let frame = RgbImage::from_pixel(50, 40, Rgb([9, 99, 199]));
    let whole = [[0.0, 0.0], [50.0, 0.0], [50.0, 40.0], [0.0, 40.0]];
    let out = SamplingMap::new(&whole, 50, 40, 64, 2).unwrap().warp(&frame);
    assert!(out.pixels().all(|p| p.0 == [9, 99, 199]));
}
