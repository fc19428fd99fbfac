//! OpenALPR's JSON (`alpr -j`): one `alpr_results` object per image, one line each. `valet plate
//! --openalpr` writes it, so Valet drops in where OpenALPR's output is consumed, and `valet bench
//! plates --peer` reads it from any reader that speaks it (OpenALPR itself included).
//!
//! OpenALPR gives confidences in percent and a plate's place as its four corners; both are kept
//! here as OpenALPR writes them and converted only at the edges ([`AlprResults::from_reading`],
//! [`AlprResults::plate_reads`]).

use serde::{Deserialize, Serialize};
use valet_plates::{Candidate, FrameReading, PlateBox, PlateRead, Region};

/// One image's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlprResults {
    #[serde(default)]
    pub version: u32,
    #[serde(default)]
    pub data_type: String,
    #[serde(default)]
    pub epoch_time: u64,
    #[serde(default)]
    pub img_width: u32,
    #[serde(default)]
    pub img_height: u32,
    /// Milliseconds the reader spent on this image, in-process (OpenALPR: detection + OCR, after
    /// decoding).
    #[serde(default)]
    pub processing_time_ms: f64,
    #[serde(default)]
    pub results: Vec<AlprPlate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlprPlate {
    pub plate: String,
    /// Percent.
    pub confidence: f32,
    #[serde(default)]
    pub matches_template: u8,
    #[serde(default)]
    pub plate_index: usize,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub region_confidence: u8,
    #[serde(default)]
    pub processing_time_ms: f64,
    #[serde(default)]
    pub requested_topn: usize,
    /// The plate's corners, clockwise from the top left.
    #[serde(default)]
    pub coordinates: Vec<AlprPoint>,
    #[serde(default)]
    pub candidates: Vec<AlprCandidate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlprPoint {
    pub x: i64,
    pub y: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlprCandidate {
    pub plate: String,
    /// Percent.
    pub confidence: f32,
    #[serde(default)]
    pub matches_template: u8,
}

impl AlprResults {
    /// Valet's reading of one image, as OpenALPR would write it. `ms` is the time the read took
    /// (decode excluded, as OpenALPR counts it); `top_n` how many candidates were asked for.
    pub fn from_reading(reading: &FrameReading, width: u32, height: u32, ms: f64, top_n: usize) -> AlprResults {
        let percent = |confidence: f32| (confidence * 100.0).clamp(0.0, 100.0);
        let results = reading
            .plates
            .iter()
            .enumerate()
            .filter(|(_, plate)| !plate.text.is_empty())
            .map(|(index, plate)| {
                let b = plate.bbox;
                let (x0, y0, x1, y1) = (i64::from(b.x), i64::from(b.y), i64::from(b.x + b.w), i64::from(b.y + b.h));
                let fits = u8::from(plate.region != Region::Auto);
                AlprPlate {
                    plate: plate.text.clone(),
                    confidence: percent(plate.confidence),
                    matches_template: fits,
                    plate_index: index,
                    region: plate.region.as_str().to_owned(),
                    region_confidence: 0,
                    processing_time_ms: ms,
                    requested_topn: top_n,
                    coordinates: vec![
                        AlprPoint { x: x0, y: y0 },
                        AlprPoint { x: x1, y: y0 },
                        AlprPoint { x: x1, y: y1 },
                        AlprPoint { x: x0, y: y1 },
                    ],
                    candidates: plate
                        .candidates
                        .iter()
                        .map(|c| AlprCandidate {
                            plate: c.text.clone(),
                            confidence: percent(c.confidence),
                            matches_template: fits,
                        })
                        .collect(),
                }
            })
            .collect();
        AlprResults {
            version: 2,
            data_type: "alpr_results".to_owned(),
            epoch_time: u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0),
            img_width: width,
            img_height: height,
            processing_time_ms: ms,
            results,
        }
    }

    /// The plates as `valet_plates::eval` scores them: boxes around the corners, texts upper-cased,
    /// confidences back to 0–1, most confident first.
    pub fn plate_reads(&self) -> Vec<PlateRead> {
        let unit = |percent: f32| (percent / 100.0).clamp(0.0, 1.0);
        let mut reads: Vec<PlateRead> = self
            .results
            .iter()
            .map(|r| {
                let xs = r.coordinates.iter().map(|p| p.x.max(0));
                let ys = r.coordinates.iter().map(|p| p.y.max(0));
                let (x0, x1) = (xs.clone().min().unwrap_or(0), xs.max().unwrap_or(0));
                let (y0, y1) = (ys.clone().min().unwrap_or(0), ys.max().unwrap_or(0));
                let side = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
                let mut candidates: Vec<Candidate> = r
                    .candidates
                    .iter()
                    .map(|c| Candidate { text: c.plate.to_ascii_uppercase(), confidence: unit(c.confidence) })
                    .collect();
                if candidates.is_empty() {
                    candidates.push(Candidate { text: r.plate.to_ascii_uppercase(), confidence: unit(r.confidence) });
                }
                PlateRead {
                    bbox: PlateBox { x: side(x0), y: side(y0), w: side(x1 - x0), h: side(y1 - y0) },
                    detection_confidence: unit(r.confidence),
                    text: r.plate.to_ascii_uppercase(),
                    confidence: unit(r.confidence),
                    char_confidences: Vec::new(),
                    candidates,
                    region: Region::Auto,
                }
            })
            .collect();
        reads.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        reads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What OpenALPR 2.3 printed for one benchmark photo (`alpr -c eu -j`), trimmed.
    const OPENALPR: &str = r#"{"version":2,"data_type":"alpr_results","epoch_time":1700000000000,"img_width":480,
        "img_height":360,"processing_time_ms":27.4,"regions_of_interest":[],"results":[{"plate":"ZG7721W",
        "confidence":88.1,"matches_template":0,"plate_index":0,"region":"","region_confidence":0,
        "processing_time_ms":9.1,"requested_topn":10,"coordinates":[{"x":150,"y":210},{"x":260,"y":212},
        {"x":259,"y":236},{"x":149,"y":234}],"candidates":[{"plate":"ZG7721W","confidence":88.1,
        "matches_template":0},{"plate":"ZG772IW","confidence":80.3,"matches_template":0}]},
        {"plate":"l1","confidence":60.0,"coordinates":[]}]}"#;

    #[test]
    fn openalpr_output_becomes_scored_reads_most_confident_first() {
        let results: AlprResults = serde_json::from_str(&OPENALPR.replace('\n', "")).unwrap();
        let reads = results.plate_reads();
        assert_eq!(reads.len(), 2);
        assert_eq!((reads[0].text.as_str(), reads[0].confidence), ("ZG7721W", 0.881));
        assert_eq!(reads[0].bbox, PlateBox { x: 149, y: 210, w: 111, h: 26 });
        assert_eq!(reads[0].candidates[1].text, "ZG772IW");
        // A result without candidates is its own only candidate; texts are upper-cased.
        assert_eq!((reads[1].text.as_str(), reads[1].candidates.len()), ("L1", 1));
        assert_eq!(results.processing_time_ms, 27.4);
    }
}
