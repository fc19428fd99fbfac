//! [`LotReader`]: a decoded frame of one camera → every space of that camera warped to the
//! classifier's input → one batched inference → a [`FrameReading`] of per-space probabilities.
//!
//! Sampling maps are built once per camera and frame size and cached. A frame of another size
//! than the layout's camera is read only when its aspect ratio is the same (coordinates are
//! scaled, and the reading carries a warning); otherwise it is refused, never misread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use image::RgbImage;
use rayon::prelude::*;
use valet_occupancy::{Adapter, ClassifyError, OccupancyClassifier};

use crate::layout::{CameraId, Layout, SpaceId};
use crate::warp::{SamplingMap, WarpMode};

/// Largest relative difference of aspect ratios still read by rescaling (1 %: a 1280×720
/// layout reads 1920×1080 or 640×360 frames, not 1280×1024).
pub const ASPECT_TOLERANCE: f64 = 0.01;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("camera {0:?} is not in the lot's layout")]
    UnknownCamera(CameraId),
    #[error(
        "frame is {got_w}×{got_h} but camera {camera:?}'s spaces were drawn on {want_w}×{want_h}, \
         a different aspect ratio: refusing to guess where the spaces are (redraw the layout for this frame size)"
    )]
    AspectMismatch { camera: CameraId, want_w: u32, want_h: u32, got_w: u32, got_h: u32 },
    #[error("space {0:?} cannot be warped (its corners are collinear)")]
    Degenerate(SpaceId),
    #[error(transparent)]
    Classify(#[from] ClassifyError),
}

/// The classifier's answer for one space on one frame: the camera's adapter's where it has one.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SpaceReading {
    pub space: SpaceId,
    pub p_occupied: f32,
    /// The universal model's own probability, where an adapter gave `p_occupied`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_universal: Option<f32>,
}

/// One frame of one camera, read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FrameReading {
    pub camera: CameraId,
    /// In layout order.
    pub spaces: Vec<SpaceReading>,
    /// Said once per frame, e.g. that the frame was rescaled to the layout.
    pub warnings: Vec<String>,
    pub warp_ms: f64,
    pub model_ms: f64,
    /// Whether the camera's adapter read this frame (else the universal model alone).
    pub adapted: bool,
}

/// The precomputed warps of one camera's spaces at one frame size.
#[derive(Debug)]
pub struct CameraPlan {
    pub spaces: Vec<(SpaceId, SamplingMap)>,
    /// Set when the frame size differs from the layout's (same aspect).
    pub rescaled: Option<String>,
}

impl CameraPlan {
    /// Every space warped from `frame`, in layout order. Spaces are independent, so they are
    /// spread over rayon's pool (the one the classifier's engine runs on, idle during the warp).
    fn warp_all(&self, frame: &RgbImage) -> Vec<RgbImage> {
        self.spaces.par_iter().map(|(_, map)| map.warp(frame)).collect()
    }
}

/// Reads whole frames of a lot's cameras with one classifier.
#[derive(Debug)]
pub struct LotReader {
    layout: Layout,
    classifier: Arc<OccupancyClassifier>,
    mode: WarpMode,
    plans: Mutex<HashMap<(CameraId, u32, u32), Arc<CameraPlan>>>,
    /// Each calibrated camera's adapter, swapped while frames are read (see [`LotReader::set_adapter`]).
    adapters: RwLock<HashMap<CameraId, Arc<Adapter>>>,
}

impl LotReader {
    /// `layout` should have passed [`Layout::validate`] (every loader does). The classifier may
    /// be shared (`Arc`) with other readers and handlers.
    pub fn new(layout: Layout, classifier: impl Into<Arc<OccupancyClassifier>>, mode: WarpMode) -> LotReader {
        LotReader {
            layout,
            classifier: classifier.into(),
            mode,
            plans: Mutex::new(HashMap::new()),
            adapters: RwLock::new(HashMap::new()),
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn classifier(&self) -> &Arc<OccupancyClassifier> {
        &self.classifier
    }

    pub fn mode(&self) -> WarpMode {
        self.mode
    }

    /// The cached plan for `camera` at `width`×`height`, built on first use.
    pub fn plan(&self, camera: &CameraId, width: u32, height: u32) -> Result<Arc<CameraPlan>, FrameError> {
        let key = (camera.clone(), width, height);
        if let Some(plan) = self.plans.lock().expect("plan cache poisoned").get(&key) {
            return Ok(plan.clone());
        }
        let plan = Arc::new(self.build_plan(camera, width, height)?);
        self.plans.lock().expect("plan cache poisoned").insert(key, plan.clone());
        Ok(plan)
    }

    fn build_plan(&self, camera_id: &CameraId, width: u32, height: u32) -> Result<CameraPlan, FrameError> {
        let camera = self.layout.camera(camera_id).ok_or_else(|| FrameError::UnknownCamera(camera_id.clone()))?;
        let mismatch = || FrameError::AspectMismatch {
            camera: camera.id.clone(),
            want_w: camera.width,
            want_h: camera.height,
            got_w: width,
            got_h: height,
        };
        if width == 0 || height == 0 {
            return Err(mismatch());
        }
        let (sx, sy) = (f64::from(width) / f64::from(camera.width), f64::from(height) / f64::from(camera.height));
        let rescaled = if (width, height) == (camera.width, camera.height) {
            None
        } else if (sx / sy - 1.0).abs() <= ASPECT_TOLERANCE {
            Some(format!(
                "frame is {width}×{height} but camera {:?}'s spaces were drawn on {}×{}: space coordinates scaled by {sx:.3}",
                camera.id.as_str(),
                camera.width,
                camera.height
            ))
        } else {
            return Err(mismatch());
        };
        let (side, supersample) = self.mode.geometry(self.classifier.spec().input_size);
        let mut spaces = Vec::new();
        for space in self.layout.spaces_of(camera_id) {
            let quad = space.quad().ok_or_else(|| FrameError::Degenerate(space.id.clone()))?;
            let scaled = quad.map(|[x, y]| [x * sx, y * sy]);
            let map = SamplingMap::new(&scaled, width, height, side, supersample)
                .ok_or_else(|| FrameError::Degenerate(space.id.clone()))?;
            spaces.push((space.id.clone(), map));
        }
        Ok(CameraPlan { spaces, rescaled })
    }

    /// Every space of `camera` warped from `frame`, in layout order, ready for the classifier.
    pub fn patches(&self, camera: &CameraId, frame: &RgbImage) -> Result<Vec<RgbImage>, FrameError> {
        let plan = self.plan(camera, frame.width(), frame.height())?;
        Ok(plan.warp_all(frame))
    }

    /// Like [`LotReader::patches`], each with its space: what a label keeps of a frame.
    pub fn space_patches(&self, camera: &CameraId, frame: &RgbImage) -> Result<Vec<(SpaceId, RgbImage)>, FrameError> {
        let plan = self.plan(camera, frame.width(), frame.height())?;
        Ok(plan.spaces.iter().map(|(id, _)| id.clone()).zip(plan.warp_all(frame)).collect())
    }

    /// Reads `camera`'s next frames through `adapter`, or the universal model alone with `None`.
    /// Takes effect on the next frame; a frame being read finishes with the adapter it began with.
    pub fn set_adapter(&self, camera: &CameraId, adapter: Option<Arc<Adapter>>) {
        let mut adapters = self.adapters.write().expect("adapters poisoned");
        match adapter {
            Some(a) => adapters.insert(camera.clone(), a),
            None => adapters.remove(camera),
        };
    }

    pub fn adapter(&self, camera: &CameraId) -> Option<Arc<Adapter>> {
        self.adapters.read().expect("adapters poisoned").get(camera).cloned()
    }

    /// Reads one frame of `camera`: warp, one batched inference, a probability per space.
    pub fn read(&self, camera: &CameraId, frame: &RgbImage) -> Result<FrameReading, FrameError> {
        let plan = self.plan(camera, frame.width(), frame.height())?;
        let t = Instant::now();
        let patches = plan.warp_all(frame);
        let warp_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let adapter = self.adapter(camera);
        let spaces = match &adapter {
            None => plan
                .spaces
                .iter()
                .zip(self.classifier.classify(&patches)?)
                .map(|((id, _), v)| SpaceReading { space: id.clone(), p_occupied: v.p_occupied, p_universal: None })
                .collect(),
            Some(adapter) => plan
                .spaces
                .iter()
                .zip(self.classifier.observe(&patches)?)
                .map(|((id, _), o)| SpaceReading {
                    space: id.clone(),
                    p_occupied: adapter.verdict(id.as_str(), &o).p_occupied,
                    p_universal: Some(o.verdict.p_occupied),
                })
                .collect(),
        };
        let model_ms = t.elapsed().as_secs_f64() * 1e3;
        Ok(FrameReading {
            camera: camera.clone(),
            spaces,
            warnings: plan.rescaled.iter().cloned().collect(),
            warp_ms,
            model_ms,
            adapted: adapter.is_some(),
        })
    }
}
