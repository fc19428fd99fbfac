//! [`Layout`]: a lot's cameras, levels, zones and spaces, as a TOML file people edit and version.
//!
//! The file is flat on purpose: `[[cameras]]`, `[[levels]]`, `[[zones]]` and `[[spaces]]` lists
//! whose entries refer to each other by id, so moving a space to another zone is a one-line diff.
//! [`Layout::validate`] turns every mistake into a [`LayoutProblem`] that names the space.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::geometry::{Quad, quad_area, segments_cross};

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub String);

        /// The id quoted, as messages show it (`space "12"`), never the type's name.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl $name {
            pub fn new(id: impl Into<String>) -> $name {
                $name(id.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

id_type!(
    /// A lot, e.g. `ufpr05`.
    LotId,
    /// A camera of the lot; a frame is always read against one camera's spaces.
    CameraId,
    /// A level (floor) of the lot.
    LevelId,
    /// A zone of a level, the unit guidance signs count.
    ZoneId,
    /// A space, unique within the lot.
    SpaceId,
);

/// One lot: what each camera sees and how its spaces group into zones and levels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub id: LotId,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub cameras: Vec<Camera>,
    pub levels: Vec<Level>,
    pub zones: Vec<Zone>,
    pub spaces: Vec<Space>,
}

/// A camera and the frame size its spaces were drawn on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    pub id: CameraId,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    pub id: LevelId,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    pub id: ZoneId,
    pub level: LevelId,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// A space: exactly one of `polygon` or `rect`, in its camera's pixel coordinates.
///
/// A polygon's corner order is the crop's orientation: `p0` becomes the classifier input's
/// top-left corner, `p1` its top-right, `p2` its bottom-right and `p3` its bottom-left (PKLot's
/// `contour` order, which the occupancy model was judged with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Space {
    pub id: SpaceId,
    pub zone: ZoneId,
    pub camera: CameraId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polygon: Option<Quad>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rect: Option<RotatedRect>,
}

/// OpenCV's `RotatedRect`: centre, size, and the angle (degrees) of the `w` side from the x axis.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotatedRect {
    pub cx: f64,
    pub cy: f64,
    pub w: f64,
    pub h: f64,
    pub angle: f64,
}

impl RotatedRect {
    /// Corners in crop order: `p0 → p1` runs along the `h` side, `p1 → p2` along the `w` side.
    /// That is how PKLot's contours relate to their rotated rectangles, so a layout may use
    /// either and get the same crop orientation.
    pub fn corners(&self) -> Quad {
        let (sin, cos) = self.angle.to_radians().sin_cos();
        let wd = [cos * self.w / 2.0, sin * self.w / 2.0];
        let hd = [-sin * self.h / 2.0, cos * self.h / 2.0];
        let at = |sh: f64, sw: f64| [self.cx + sh * hd[0] + sw * wd[0], self.cy + sh * hd[1] + sw * wd[1]];
        [at(-1.0, -1.0), at(1.0, -1.0), at(1.0, 1.0), at(-1.0, 1.0)]
    }
}

impl Space {
    /// The four corners the crop is warped from; `None` when the space has no shape (or two),
    /// which [`Layout::validate`] reports.
    pub fn quad(&self) -> Option<Quad> {
        match (&self.polygon, &self.rect) {
            (Some(quad), None) => Some(*quad),
            (None, Some(rect)) => Some(rect.corners()),
            _ => None,
        }
    }
}

/// One thing wrong with a layout, worded to name what to fix.
#[derive(Debug, Clone, PartialEq)]
pub enum LayoutProblem {
    NoCameras,
    DuplicateId { kind: &'static str, id: String },
    UnknownLevel { zone: ZoneId, level: LevelId },
    UnknownZone { space: SpaceId, zone: ZoneId },
    UnknownCamera { space: SpaceId, camera: CameraId },
    EmptyFrame { camera: CameraId },
    NoShape { space: SpaceId },
    TwoShapes { space: SpaceId },
    NotFinite { space: SpaceId },
    TooFewPoints { space: SpaceId, distinct: usize },
    SelfIntersecting { space: SpaceId },
    ZeroArea { space: SpaceId, area: f64 },
    NotConvex { space: SpaceId },
    OutsideFrame { space: SpaceId, camera: CameraId, point: [f64; 2], width: u32, height: u32 },
}

impl fmt::Display for LayoutProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use LayoutProblem::*;
        match self {
            NoCameras => write!(f, "the layout has no [[cameras]]"),
            DuplicateId { kind, id } => write!(f, "{kind} id {id:?} is used more than once"),
            UnknownLevel { zone, level } => {
                write!(f, "zone {zone:?} is on level {level:?}, which is not in [[levels]]")
            }
            UnknownZone { space, zone } => write!(f, "space {space:?} is in zone {zone:?}, which is not in [[zones]]"),
            UnknownCamera { space, camera } => {
                write!(f, "space {space:?} is seen by camera {camera:?}, which is not in [[cameras]]")
            }
            EmptyFrame { camera } => write!(f, "camera {camera:?} has a zero width or height"),
            NoShape { space } => write!(f, "space {space:?} has neither a polygon nor a rect"),
            TwoShapes { space } => write!(f, "space {space:?} has both a polygon and a rect; keep one"),
            NotFinite { space } => write!(f, "space {space:?} has a coordinate that is not a finite number"),
            TooFewPoints { space, distinct } => {
                write!(f, "space {space:?} has {distinct} distinct corners; it needs 4")
            }
            SelfIntersecting { space } => {
                write!(f, "space {space:?} crosses itself: its corners must go around the space, not across it")
            }
            ZeroArea { space, area } => write!(f, "space {space:?} has no area ({area:.2} px²)"),
            NotConvex { space } => write!(f, "space {space:?} is not convex, so it cannot be warped to a square"),
            OutsideFrame { space, camera, point, width, height } => write!(
                f,
                "space {space:?} has corner ({}, {}) outside camera {camera:?}'s {width}×{height} frame",
                point[0], point[1]
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("layout file is not valid TOML for a lot: {0}")]
    Toml(String),
    #[error("lot {lot}: {}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid { lot: LotId, problems: Vec<LayoutProblem> },
}

impl LayoutError {
    /// The problems found by validation (empty for a parse error).
    pub fn problems(&self) -> &[LayoutProblem] {
        match self {
            LayoutError::Invalid { problems, .. } => problems,
            LayoutError::Toml(_) => &[],
        }
    }
}

/// Below this a polygon is a line or a point, not a space (px²).
const MIN_AREA: f64 = 1.0;

impl Layout {
    /// Parses and validates a layout file.
    pub fn from_toml(text: &str) -> Result<Layout, LayoutError> {
        let layout: Layout = toml::from_str(text).map_err(|e| LayoutError::Toml(e.to_string()))?;
        layout.validate()?;
        Ok(layout)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a layout is plain strings, numbers and lists")
    }

    pub fn camera(&self, id: &CameraId) -> Option<&Camera> {
        self.cameras.iter().find(|c| &c.id == id)
    }

    pub fn zone(&self, id: &ZoneId) -> Option<&Zone> {
        self.zones.iter().find(|z| &z.id == id)
    }

    /// The spaces one camera sees, in file order.
    pub fn spaces_of<'a>(&'a self, camera: &'a CameraId) -> impl Iterator<Item = &'a Space> + 'a {
        self.spaces.iter().filter(move |s| &s.camera == camera)
    }

    /// Every problem at once, so one edit pass can fix them all.
    pub fn validate(&self) -> Result<(), LayoutError> {
        let mut problems = Vec::new();
        if self.cameras.is_empty() {
            problems.push(LayoutProblem::NoCameras);
        }
        duplicates("camera", self.cameras.iter().map(|c| c.id.as_str()), &mut problems);
        duplicates("level", self.levels.iter().map(|l| l.id.as_str()), &mut problems);
        duplicates("zone", self.zones.iter().map(|z| z.id.as_str()), &mut problems);
        duplicates("space", self.spaces.iter().map(|s| s.id.as_str()), &mut problems);
        for camera in &self.cameras {
            if camera.width == 0 || camera.height == 0 {
                problems.push(LayoutProblem::EmptyFrame { camera: camera.id.clone() });
            }
        }
        let levels: HashSet<&LevelId> = self.levels.iter().map(|l| &l.id).collect();
        for zone in &self.zones {
            if !levels.contains(&zone.level) {
                problems.push(LayoutProblem::UnknownLevel { zone: zone.id.clone(), level: zone.level.clone() });
            }
        }
        let zones: HashSet<&ZoneId> = self.zones.iter().map(|z| &z.id).collect();
        let cameras: HashMap<&CameraId, &Camera> = self.cameras.iter().map(|c| (&c.id, c)).collect();
        for space in &self.spaces {
            if !zones.contains(&space.zone) {
                problems.push(LayoutProblem::UnknownZone { space: space.id.clone(), zone: space.zone.clone() });
            }
            let camera = cameras.get(&space.camera).copied();
            if camera.is_none() {
                problems.push(LayoutProblem::UnknownCamera { space: space.id.clone(), camera: space.camera.clone() });
            }
            if let Some(problem) = shape_problem(space, camera) {
                problems.push(problem);
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(LayoutError::Invalid { lot: self.id.clone(), problems }) }
    }
}

fn duplicates<'a>(kind: &'static str, ids: impl Iterator<Item = &'a str>, problems: &mut Vec<LayoutProblem>) {
    let mut seen = HashSet::new();
    let mut reported = BTreeSet::new();
    for id in ids {
        if !seen.insert(id) && reported.insert(id) {
            problems.push(LayoutProblem::DuplicateId { kind, id: id.to_owned() });
        }
    }
}

/// The first thing wrong with a space's shape, checked from the most basic up.
fn shape_problem(space: &Space, camera: Option<&Camera>) -> Option<LayoutProblem> {
    let id = || space.id.clone();
    let quad = match (&space.polygon, &space.rect) {
        (None, None) => return Some(LayoutProblem::NoShape { space: id() }),
        (Some(_), Some(_)) => return Some(LayoutProblem::TwoShapes { space: id() }),
        _ => space.quad()?,
    };
    if quad.iter().flatten().any(|v| !v.is_finite()) {
        return Some(LayoutProblem::NotFinite { space: id() });
    }
    let mut distinct: Vec<[f64; 2]> = Vec::new();
    for p in quad {
        if !distinct.iter().any(|q| (q[0] - p[0]).abs() < 0.5 && (q[1] - p[1]).abs() < 0.5) {
            distinct.push(p);
        }
    }
    if distinct.len() < 4 {
        return Some(LayoutProblem::TooFewPoints { space: id(), distinct: distinct.len() });
    }
    if segments_cross(quad[0], quad[1], quad[2], quad[3]) || segments_cross(quad[1], quad[2], quad[3], quad[0]) {
        return Some(LayoutProblem::SelfIntersecting { space: id() });
    }
    let area = quad_area(&quad);
    if area.abs() < MIN_AREA {
        return Some(LayoutProblem::ZeroArea { space: id(), area: area.abs() });
    }
    let turns: Vec<f64> =
        (0..4).map(|i| crate::geometry::cross(quad[i], quad[(i + 1) % 4], quad[(i + 2) % 4])).collect();
    if !(turns.iter().all(|t| *t > 0.0) || turns.iter().all(|t| *t < 0.0)) {
        return Some(LayoutProblem::NotConvex { space: id() });
    }
    let camera = camera?;
    let (w, h) = (f64::from(camera.width), f64::from(camera.height));
    quad.iter().find(|p| p[0] < 0.0 || p[1] < 0.0 || p[0] > w || p[1] > h).map(|p| LayoutProblem::OutsideFrame {
        space: id(),
        camera: camera.id.clone(),
        point: *p,
        width: camera.width,
        height: camera.height,
    })
}
