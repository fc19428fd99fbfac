//! Layouts from public datasets: PKLot XML ([`pklot`]) and CNR-EXT slot CSV ([`cnr_csv`]).
//!
//! Both take text, never paths, and return a validated [`Layout`] with one level (`ground`) and
//! one zone (`main`) for the camera: the datasets have no zones, and an operator splits them by
//! editing the TOML.

use crate::layout::{Camera, CameraId, Layout, Level, LevelId, LotId, Space, SpaceId, Zone, ZoneId};
use crate::layout::{LayoutError, RotatedRect};

/// The size of PKLot's frames (all three cameras).
pub const PKLOT_FRAME: (u32, u32) = (1280, 720);
/// The pixel grid CNR-EXT's slot boxes are given in (the cameras' full resolution).
pub const CNR_SOURCE: (u32, u32) = (2592, 1944);

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not PKLot XML: {0}")]
    Xml(String),
    #[error("CNR-EXT CSV line {line}: {why}")]
    Csv { line: usize, why: String },
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// One PKLot XML: the layout, and the `occupied` flag of each space that has one.
#[derive(Debug, Clone)]
pub struct PklotFrame {
    pub layout: Layout,
    pub labels: Vec<(SpaceId, bool)>,
}

/// Reads a PKLot XML (`<parking id><space id occupied><rotatedRect/><contour/></space>…`). A
/// space's 4-point contour is used when present (its order is the crop orientation), else its
/// rotated rectangle.
pub fn pklot(xml: &str, camera: CameraId, frame: (u32, u32)) -> Result<PklotFrame, ImportError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| ImportError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "parking" {
        return Err(ImportError::Xml(format!("the root element is <{}>, not <parking>", root.tag_name().name())));
    }
    let lot = LotId::new(root.attribute("id").unwrap_or("lot"));
    let (mut spaces, mut labels) = (Vec::new(), Vec::new());
    for node in root.children().filter(|n| n.has_tag_name("space")) {
        let id = SpaceId::new(node.attribute("id").ok_or_else(|| ImportError::Xml("a <space> has no id".into()))?);
        let num = |n: roxmltree::Node, attr: &str| -> Result<f64, ImportError> {
            n.attribute(attr).and_then(|v| v.trim().parse::<f64>().ok()).ok_or_else(|| {
                ImportError::Xml(format!("space {id}: <{}> needs a number {attr:?}", n.tag_name().name()))
            })
        };
        let points: Vec<[f64; 2]> = match child(node, "contour") {
            Some(c) => c
                .children()
                .filter(|n| n.has_tag_name("point"))
                .map(|p| Ok([num(p, "x")?, num(p, "y")?]))
                .collect::<Result<_, ImportError>>()?,
            None => Vec::new(),
        };
        let (polygon, rect) = if let Ok(quad) = <[[f64; 2]; 4]>::try_from(points) {
            (Some(quad), None)
        } else if let Some(r) = child(node, "rotatedRect") {
            let part = |tag: &str| child(r, tag).ok_or_else(|| ImportError::Xml(format!("space {id}: no <{tag}>")));
            let (c, s, a) = (part("center")?, part("size")?, part("angle")?);
            let rect = RotatedRect {
                cx: num(c, "x")?,
                cy: num(c, "y")?,
                w: num(s, "w")?,
                h: num(s, "h")?,
                angle: num(a, "d")?,
            };
            (None, Some(rect))
        } else {
            return Err(ImportError::Xml(format!("space {id} has neither a 4-point contour nor a rotatedRect")));
        };
        match node.attribute("occupied").map(str::trim) {
            Some("1") => labels.push((id.clone(), true)),
            Some("0") => labels.push((id.clone(), false)),
            _ => {}
        }
        spaces.push(Space { id, zone: ZoneId::new("main"), camera: camera.clone(), polygon, rect });
    }
    let layout = single_zone(lot, camera, frame, spaces);
    layout.validate()?;
    Ok(PklotFrame { layout, labels })
}

/// Reads a CNR-EXT camera CSV (`SlotId,X,Y,W,H`, boxes in 2592×1944 pixels) for frames of
/// `frame` size; each box becomes a polygon top-left, top-right, bottom-right, bottom-left
/// (upright, as CNRPark's patches are cut).
pub fn cnr_csv(csv: &str, lot: LotId, camera: CameraId, frame: (u32, u32)) -> Result<Layout, ImportError> {
    let (sx, sy) = (f64::from(frame.0) / f64::from(CNR_SOURCE.0), f64::from(frame.1) / f64::from(CNR_SOURCE.1));
    let mut spaces = Vec::new();
    for (i, line) in csv.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.to_ascii_lowercase().starts_with("slotid")) {
            continue;
        }
        let bad = |why: String| ImportError::Csv { line: i + 1, why };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [id, x, y, w, h] = fields[..] else {
            return Err(bad(format!("expected SlotId,X,Y,W,H, got {} fields", fields.len())));
        };
        let n = |v: &str| v.parse::<f64>().map_err(|_| bad(format!("{v:?} is not a number")));
        let (x, y, w, h) = (n(x)? * sx, n(y)? * sy, n(w)? * sx, n(h)? * sy);
        spaces.push(Space {
            id: SpaceId::new(id),
            zone: ZoneId::new("main"),
            camera: camera.clone(),
            polygon: Some([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]),
            rect: None,
        });
    }
    let layout = single_zone(lot, camera, frame, spaces);
    layout.validate()?;
    Ok(layout)
}

fn child<'a, 'input>(parent: roxmltree::Node<'a, 'input>, tag: &str) -> Option<roxmltree::Node<'a, 'input>> {
    parent.children().find(|n| n.has_tag_name(tag))
}

fn single_zone(lot: LotId, camera: CameraId, frame: (u32, u32), spaces: Vec<Space>) -> Layout {
    Layout {
        name: String::new(),
        id: lot,
        cameras: vec![Camera { id: camera, width: frame.0, height: frame.1 }],
        levels: vec![Level { id: LevelId::new("ground"), name: String::new() }],
        zones: vec![Zone { id: ZoneId::new("main"), level: LevelId::new("ground"), name: String::new() }],
        spaces,
    }
}
