//! Plane geometry for spaces: [`Quad`]s, areas, crossings and the [`Homography`] a warp uses.

/// Four corners `[x, y]` in pixel coordinates (continuous: `(0, 0)` is the top-left corner of the
/// top-left pixel, whose centre is `(0.5, 0.5)`).
pub type Quad = [[f64; 2]; 4];

/// Twice the signed area of the triangle `o, a, b` (positive when `a → b` turns clockwise on
/// screen, where y grows downwards).
pub fn cross(o: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// Signed area (shoelace); the sign is the winding.
pub fn quad_area(q: &Quad) -> f64 {
    (0..4).map(|i| q[i][0] * q[(i + 1) % 4][1] - q[(i + 1) % 4][0] * q[i][1]).sum::<f64>() / 2.0
}

/// True when segments `a–b` and `c–d` cross at a point inside both (touching ends do not count).
pub fn segments_cross(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> bool {
    let (d1, d2) = (cross(c, d, a), cross(c, d, b));
    let (d3, d4) = (cross(a, b, c), cross(a, b, d));
    d1 * d2 < 0.0 && d3 * d4 < 0.0
}

/// A projective map of the plane: `(x, y) → ((a x + b y + c) / w, (d x + e y + f) / w)` with
/// `w = g x + h y + 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography(pub [f64; 8]);

impl Homography {
    /// The map sending each `from[i]` to `to[i]`; `None` when three of the points are collinear.
    pub fn from_points(from: &Quad, to: &Quad) -> Option<Homography> {
        let mut m = [[0.0f64; 9]; 8];
        for i in 0..4 {
            let ([x, y], [u, v]) = (from[i], to[i]);
            m[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
            m[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
        }
        // Gaussian elimination with partial pivoting on the augmented 8×9 system.
        for col in 0..8 {
            let pivot = (col..8).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
            if m[pivot][col].abs() < 1e-12 {
                return None;
            }
            m.swap(col, pivot);
            for row in 0..8 {
                if row != col {
                    let factor = m[row][col] / m[col][col];
                    let pivot_row = m[col];
                    for (v, p) in m[row].iter_mut().zip(pivot_row).skip(col) {
                        *v -= factor * p;
                    }
                }
            }
        }
        let coeffs = std::array::from_fn(|i| m[i][8] / m[i][i]);
        let h = Homography(coeffs);
        h.0.iter().all(|c| c.is_finite()).then_some(h)
    }

    pub fn apply(&self, x: f64, y: f64) -> [f64; 2] {
        let [a, b, c, d, e, f, g, h] = self.0;
        let w = g * x + h * y + 1.0;
        [(a * x + b * y + c) / w, (d * x + e * y + f) / w]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_homography_sends_each_corner_where_asked() {
        let square = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
        let quad = [[608.0, 613.0], [741.0, 654.0], [775.0, 582.0], [608.0, 526.0]];
        let h = Homography::from_points(&square, &quad).unwrap();
        for (s, q) in square.iter().zip(&quad) {
            let p = h.apply(s[0], s[1]);
            assert!((p[0] - q[0]).abs() < 1e-6 && (p[1] - q[1]).abs() < 1e-6, "{p:?} vs {q:?}");
        }
    }

    #[test]
    fn collinear_corners_have_no_homography() {
        let square = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        let line = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]];
        assert!(Homography::from_points(&square, &line).is_none());
    }

    #[test]
    fn a_bow_tie_crosses_itself_and_a_square_does_not() {
        assert!(segments_cross([0.0, 0.0], [10.0, 10.0], [10.0, 0.0], [0.0, 10.0]));
        assert!(!segments_cross([0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]));
    }
}
