//! Per-camera occupancy calibration, one job: an operator's labelled bays in, versioned adapters
//! out. The running server and `valet lot label` both go through here, so a label made from the
//! dashboard and one made from files are the same record, and an adapter is fitted the same way.
//!
//! ```text
//! frame + layout + "bay A3 is occupied"      every label of the camera          a new version
//!   ──▶ labels_for_frame ──▶ NewLabel rows ──▶ fit_camera: decode crops, ──────▶ of its adapter,
//!       (the bay's warped patch, PNG)   store   observe, Adapter::fit             active only if it
//!                                                                                  beats the model
//! ```
//!
//! Invariants:
//! - a label is the bay's patch exactly as the frame pipeline warps it for the model, so what the
//!   adapter is fitted on is what it will read;
//! - a frame the layout cannot read (another aspect ratio), a bay not in the layout, or an empty
//!   request is refused before anything is stored;
//! - every fit is saved as a version, kept or not, with the reason; an adapter becomes active only
//!   when its leave-one-frame-out accuracy on the labels beats the universal model's.

use std::time::Instant;

use chrono::{DateTime, Utc};
use image::RgbImage;
use valet_imaging::DecodeLimits;
use valet_lot::{CameraId, FrameError, LotReader, SpaceId};
use valet_occupancy::{Adapter, ClassifyError, FitError, LabelledObservation, OccupancyClassifier, SpaceState};
use valet_store::{NewAdapter, NewLabel, OccupancyCalibration, StoreError, StoredAdapter};

/// What an operator says of one frame of one camera.
#[derive(Debug, Clone)]
pub struct FrameLabels {
    pub lot: String,
    pub camera: CameraId,
    /// The frame's key: its time for a live frame, its file stem for one from files.
    pub frame: String,
    pub states: Vec<(SpaceId, SpaceState)>,
    /// Who labelled: the operator's name, or `cli`.
    pub by: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("no bays to label: say which bays are occupied or free, confirm the frame, or mark the lot empty")]
    Nothing,
    #[error("bay {space:?} is not in camera {camera:?}'s layout (its bays: {known})")]
    UnknownSpace { space: String, camera: String, known: String },
    #[error("bay {0:?} is labelled twice in one request")]
    Twice(String),
    #[error("the frame cannot be labelled: {0}")]
    Frame(#[from] FrameError),
    #[error("encoding a bay's crop: {0}")]
    Encode(String),
}

/// Each labelled bay's patch cut out of `image` as the frame pipeline would read it, as store rows.
pub fn labels_for_frame(
    reader: &LotReader,
    image: &RgbImage,
    labels: &FrameLabels,
) -> Result<Vec<NewLabel>, LabelError> {
    if labels.states.is_empty() {
        return Err(LabelError::Nothing);
    }
    let patches = reader.space_patches(&labels.camera, image)?;
    let mut rows: Vec<NewLabel> = Vec::with_capacity(labels.states.len());
    for (space, state) in &labels.states {
        let Some((_, patch)) = patches.iter().find(|(id, _)| id == space) else {
            let known: Vec<&str> = patches.iter().map(|(id, _)| id.as_str()).collect();
            return Err(LabelError::UnknownSpace {
                space: space.to_string(),
                camera: labels.camera.to_string(),
                known: known.join(", "),
            });
        };
        if rows.iter().any(|r| r.space == space.as_str()) {
            return Err(LabelError::Twice(space.to_string()));
        }
        rows.push(NewLabel {
            lot: labels.lot.clone(),
            camera: labels.camera.to_string(),
            space: space.to_string(),
            frame: labels.frame.clone(),
            frame_width: image.width(),
            frame_height: image.height(),
            occupied: *state == SpaceState::Occupied,
            crop_png: png(patch)?,
            labelled_at: labels.at,
            labelled_by: labels.by.clone(),
        });
    }
    Ok(rows)
}

fn png(patch: &RgbImage) -> Result<Vec<u8>, LabelError> {
    let mut out = std::io::Cursor::new(Vec::new());
    patch.write_to(&mut out, image::ImageFormat::Png).map_err(|e| LabelError::Encode(e.to_string()))?;
    Ok(out.into_inner())
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Fit(#[from] FitError),
    #[error(transparent)]
    Classify(#[from] ClassifyError),
    #[error("label {id} (bay {space:?}) has an unreadable crop: {reason}")]
    Crop { id: i64, space: String, reason: String },
    #[error("adapter version {version} of camera {camera:?} does not load: {reason}")]
    Adapter { camera: String, version: i64, reason: String },
    #[error("the fit stopped: {0}")]
    Join(String),
}

/// One fit of one camera, as saved.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOutcome {
    pub version: i64,
    /// Whether this version is now the camera's active adapter.
    pub kept: bool,
    pub labels: usize,
    pub frames: usize,
    pub universal_accuracy: f64,
    pub adapted_accuracy: f64,
    /// Decoding the crops, the model's pass over them and the fit.
    pub fit_ms: f64,
    /// Why it was not kept.
    pub note: Option<String>,
}

/// Fits `camera`'s adapter from every label it has and saves it as a new version: active when
/// it beats the universal model leave-one-frame-out, else inactive with the reason. The CPU work
/// (decoding, inference, Newton steps) runs on a blocking thread.
pub async fn fit_camera(
    store: &OccupancyCalibration,
    classifier: std::sync::Arc<OccupancyClassifier>,
    lot: &str,
    camera: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<FitOutcome, CalibrationError> {
    let labels = store.labels(lot, camera).await?;
    let model = classifier.spec().model.clone();
    let fitted = tokio::task::spawn_blocking(move || -> Result<_, CalibrationError> {
        let started = Instant::now();
        let limits = DecodeLimits::default();
        let mut patches = Vec::with_capacity(labels.len());
        for label in &labels {
            let decoded = valet_imaging::decode(&label.label.crop_png, &limits).map_err(|e| {
                CalibrationError::Crop { id: label.id, space: label.label.space.clone(), reason: e.to_string() }
            })?;
            patches.push(decoded.image);
        }
        let observations = classifier.observe(&patches)?;
        let labelled: Vec<LabelledObservation> = labels
            .iter()
            .zip(observations)
            .map(|(l, observation)| LabelledObservation {
                space: l.label.space.clone(),
                frame: l.label.frame.clone(),
                state: if l.label.occupied { SpaceState::Occupied } else { SpaceState::Free },
                observation,
            })
            .collect();
        let fit = Adapter::fit(&model, &labelled)?;
        Ok((fit, started.elapsed().as_secs_f64() * 1e3))
    })
    .await
    .map_err(|e| CalibrationError::Join(e.to_string()))??;
    let (fit, fit_ms) = fitted;
    let kept = fit.beats_universal();
    let cv = fit.cross_validated;
    let note = (!kept).then(|| {
        format!(
            "not kept: leave-one-frame-out {:.1} % is not better than the universal model's {:.1} % on the same labels",
            cv.adapted * 100.0,
            cv.universal * 100.0
        )
    });
    let version = store
        .save_adapter(&NewAdapter {
            lot: lot.to_owned(),
            camera: camera.to_owned(),
            fitted_at: now,
            fitted_by: by.to_owned(),
            labels: u32::try_from(fit.labels).unwrap_or(u32::MAX),
            universal_accuracy: cv.universal,
            adapted_accuracy: cv.adapted,
            fit_ms,
            params: fit.adapter.to_json(),
            active: kept,
            note: note.clone(),
        })
        .await?;
    Ok(FitOutcome {
        version,
        kept,
        labels: fit.labels,
        frames: fit.frames,
        universal_accuracy: cv.universal,
        adapted_accuracy: cv.adapted,
        fit_ms,
        note,
    })
}

/// The adapter a stored version holds, refused when it was fitted on another model than
/// `classifier`'s (after a model upgrade its labels are still there to fit again).
pub fn load_adapter(stored: &StoredAdapter, classifier: &OccupancyClassifier) -> Result<Adapter, CalibrationError> {
    let refuse = |reason: String| CalibrationError::Adapter {
        camera: stored.adapter.camera.clone(),
        version: stored.version,
        reason,
    };
    let adapter = Adapter::from_json(&stored.adapter.params).map_err(|e| refuse(e.to_string()))?;
    // The model's embedding length, from one blank patch (a millisecond, once per swap).
    let side = classifier.spec().input_size;
    let probe = classifier.observe(&[RgbImage::new(side, side)])?;
    let dim = probe.first().map_or(0, |o| o.embedding.len());
    adapter.check_model(&classifier.spec().model, dim).map_err(|e| refuse(e.to_string()))?;
    Ok(adapter)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use valet_lot::WarpMode;
    use valet_lot::synthetic::grid_layout;

    use super::*;

    fn reader() -> LotReader {
        LotReader::new(grid_layout(4, 640, 480), Arc::new(OccupancyClassifier::bundled().unwrap()), WarpMode::default())
    }

    fn request(reader: &LotReader, states: &[(&str, SpaceState)]) -> FrameLabels {
        FrameLabels {
            lot: reader.layout().id.to_string(),
            camera: reader.layout().cameras[0].id.clone(),
            frame: "2026-12-03T08:00:00Z".into(),
            states: states.iter().map(|(s, st)| (SpaceId::new((*s).to_owned()), *st)).collect(),
            by: "ops".into(),
            at: Utc::now(),
        }
    }

    #[test]
    fn each_labelled_bay_keeps_its_patch_at_the_models_input_size() {
        let reader = reader();
        let first = reader.layout().spaces[0].id.to_string();
        let rows =
            labels_for_frame(&reader, &RgbImage::new(640, 480), &request(&reader, &[(&first, SpaceState::Occupied)]))
                .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].occupied);
        assert_eq!((rows[0].frame_width, rows[0].frame_height), (640, 480));
        let crop = valet_imaging::decode(&rows[0].crop_png, &DecodeLimits::default()).unwrap().image;
        let side = reader.classifier().spec().input_size;
        assert_eq!(crop.dimensions(), (side, side));
    }

    #[test]
    fn bad_labels_are_refused_before_anything_is_stored() {
        let reader = reader();
        let first = reader.layout().spaces[0].id.to_string();
        let frame = RgbImage::new(640, 480);
        let err = labels_for_frame(&reader, &frame, &request(&reader, &[("Z9", SpaceState::Free)])).unwrap_err();
        assert!(err.to_string().contains("not in camera") && err.to_string().contains(&first), "{err}");
        let twice = [(first.as_str(), SpaceState::Free), (first.as_str(), SpaceState::Occupied)];
        assert!(matches!(labels_for_frame(&reader, &frame, &request(&reader, &twice)), Err(LabelError::Twice(_))));
        assert!(matches!(labels_for_frame(&reader, &frame, &request(&reader, &[])), Err(LabelError::Nothing)));
        // Another aspect ratio: the layout's bays would land elsewhere.
        let square = RgbImage::new(480, 480);
        let err = labels_for_frame(&reader, &square, &request(&reader, &[(&first, SpaceState::Free)])).unwrap_err();
        assert!(matches!(err, LabelError::Frame(FrameError::AspectMismatch { .. })), "{err}");
    }
}
