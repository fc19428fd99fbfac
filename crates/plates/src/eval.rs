//! Scoring plate reads against the openalpr benchmark's labels: [`parse_labels`] reads a `name.txt`
//! (lines `file x y w h PLATE`), [`score`] judges one frame's reads against one labelled plate, and
//! [`Tally`] sums the judgements into the rates `valet eval plates` prints.

use crate::PlateRead;
use crate::detection::PlateBox;

/// A detected box counts as the labelled plate from this IoU on (the usual detection criterion).
pub const FOUND_IOU: f32 = 0.5;

/// One plate labelled in a benchmark image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledPlate {
    /// The image's file name, as the label line gives it.
    pub file: String,
    pub bbox: PlateBox,
    /// The plate's text, uppercase.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LabelError {
    pub line: usize,
    pub reason: String,
}

/// Parses a label file: one `file x y w h PLATE` line per plate, tab or space separated; blank
/// lines are skipped.
pub fn parse_labels(text: &str) -> Result<Vec<LabelledPlate>, LabelError> {
    let mut plates = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let error = |reason: String| LabelError { line: i + 1, reason };
        let [file, x, y, w, h, plate] = fields[..] else {
            return Err(error(format!("expected `file x y w h PLATE`, got {} fields", fields.len())));
        };
        let number = |v: &str| v.parse::<i64>().map_err(|_| error(format!("{v:?} is not a pixel coordinate")));
        let (x, y, w, h) = (number(x)?, number(y)?, number(w)?, number(h)?);
        if w <= 0 || h <= 0 {
            return Err(error(format!("a plate of {w}×{h} pixels")));
        }
        // Labellers drag boxes a pixel past the edge (`-1 574 270 87`): keep the part in the frame.
        let (left, top) = (x.max(0), y.max(0));
        let clamp = |v: i64| u32::try_from(v.max(0)).map_err(|_| error(format!("{v} is not a pixel coordinate")));
        plates.push(LabelledPlate {
            file: file.to_owned(),
            bbox: PlateBox { x: clamp(left)?, y: clamp(top)?, w: clamp(x + w - left)?, h: clamp(y + h - top)? },
            text: plate.to_ascii_uppercase(),
        });
    }
    Ok(plates)
}

/// How the reader did on one labelled plate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// Some detected box overlaps the plate with IoU ≥ [`FOUND_IOU`].
    pub found: bool,
    /// The judged read equals the plate exactly.
    pub top1: bool,
    /// The judged read equals the plate once every `O` is taken for `0` on both sides.
    pub top1_folded: bool,
    /// The plate is among the judged read's candidates.
    pub topn: bool,
    /// The judged read's text ("" when nothing was read).
    pub read: String,
}

/// Judges the read of the box that best overlaps the plate (IoU ≥ [`FOUND_IOU`]) or, when no box
/// does, the frame's first (most confident) read, so a right text in a loose box still counts.
pub fn score(truth: &LabelledPlate, reads: &[PlateRead]) -> Outcome {
    let best = reads
        .iter()
        .map(|r| (r.bbox.iou(&truth.bbox), r))
        .filter(|(iou, _)| *iou >= FOUND_IOU)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, r)| r);
    let found = best.is_some();
    let Some(judged) = best.or(reads.first()) else {
        return Outcome { found, top1: false, top1_folded: false, topn: false, read: String::new() };
    };
    let want = truth.text.to_ascii_uppercase();
    let fold = |s: &str| s.replace('O', "0");
    Outcome {
        found,
        top1: judged.text == want,
        top1_folded: fold(&judged.text) == fold(&want),
        topn: judged.candidates.iter().any(|c| c.text == want),
        read: judged.text.clone(),
    }
}

/// Counts of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub n: usize,
    pub top1: usize,
    pub top1_folded: usize,
    pub topn: usize,
    pub found: usize,
}

/// A [`Tally`] as fractions in `[0, 1]` (0 when there were no plates).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Rates {
    pub n: usize,
    pub top1: f64,
    pub top1_folded: f64,
    pub topn: f64,
    pub found: f64,
}

impl Tally {
    pub fn add(&mut self, outcome: &Outcome) {
        self.n += 1;
        self.top1 += usize::from(outcome.top1);
        self.top1_folded += usize::from(outcome.top1_folded);
        self.topn += usize::from(outcome.topn);
        self.found += usize::from(outcome.found);
    }

    pub fn merge(&mut self, other: &Tally) {
        self.n += other.n;
        self.top1 += other.top1;
        self.top1_folded += other.top1_folded;
        self.topn += other.topn;
        self.found += other.found;
    }

    pub fn rates(&self) -> Rates {
        let rate = |k: usize| if self.n == 0 { 0.0 } else { k as f64 / self.n as f64 };
        Rates {
            n: self.n,
            top1: rate(self.top1),
            top1_folded: rate(self.top1_folded),
            topn: rate(self.topn),
            found: rate(self.found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::{Candidate, Region};

    fn read(bbox: PlateBox, text: &str, alternatives: &[&str]) -> PlateRead {
        let candidates = std::iter::once(text)
            .chain(alternatives.iter().copied())
            .map(|t| Candidate { text: t.to_owned(), confidence: 0.5 })
            .collect();
        PlateRead {
            bbox,
            detection_confidence: 0.9,
            text: text.to_owned(),
            confidence: 0.5,
            char_confidences: vec![0.9; text.len()],
            candidates,
            region: Region::Br,
        }
    }

    const TRUTH_BOX: PlateBox = PlateBox { x: 528, y: 412, w: 162, h: 52 };

    fn truth(text: &str) -> LabelledPlate {
        LabelledPlate { file: "AYO9034.jpg".into(), bbox: TRUTH_BOX, text: text.into() }
    }

    #[test]
    fn label_lines_parse_with_tabs_or_spaces_and_uppercase_the_plate() {
        let labels = parse_labels("AYO9034.jpg\t528\t412\t162\t52\tAYO9034\n\nb.png 1 2 3 4 ab12\n").unwrap();
        assert_eq!(
            labels,
            [
                truth("AYO9034"),
                LabelledPlate { file: "b.png".into(), bbox: PlateBox { x: 1, y: 2, w: 3, h: 4 }, text: "AB12".into() }
            ]
        );
    }

    #[test]
    fn a_box_dragged_past_the_edge_keeps_its_part_in_the_frame() {
        let labels = parse_labels("PJT2905.jpg\t-1\t574\t270\t87\tPJT2905").unwrap();
        assert_eq!(labels[0].bbox, PlateBox { x: 0, y: 574, w: 269, h: 87 });
    }

    #[test]
    fn a_broken_label_line_names_its_line() {
        let err = parse_labels("a.jpg 1 2 3 4 X\na.jpg 1 2 -3 4 X").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(parse_labels("a.jpg 1 2 x 4 X").unwrap_err().reason.contains("\"x\""));
        assert!(parse_labels("a.jpg 1 2 3 X").unwrap_err().reason.contains("5 fields"));
    }

    #[test]
    fn outcomes_follow_the_table() {
        let near = PlateBox { x: 530, y: 410, w: 160, h: 54 };
        let elsewhere = PlateBox { x: 0, y: 0, w: 100, h: 30 };
        // (reads, truth, (found, top1, top1 folded, top-N), judged read)
        let table: Vec<(Vec<PlateRead>, &str, [bool; 4], &str)> = vec![
            (vec![read(near, "AYO9034", &[])], "AYO9034", [true, true, true, true], "AYO9034"),
            (vec![read(near, "AYO9O34", &["AYO9034"])], "AYO9034", [true, false, true, true], "AYO9O34"),
            (vec![read(near, "AYO9O34", &["AYO9034"])], "ayo9034", [true, false, true, true], "AYO9O34"),
            // The overlapping box is judged even when a more confident read elsewhere comes first.
            (
                vec![read(elsewhere, "XXX1111", &[]), read(near, "AYO9034", &[])],
                "AYO9034",
                [true, true, true, true],
                "AYO9034",
            ),
            // No box overlaps: the first read is judged, and the plate was not found.
            (vec![read(elsewhere, "AYO9034", &[])], "AYO9034", [false, true, true, true], "AYO9034"),
            (vec![], "AYO9034", [false, false, false, false], ""),
        ];
        for (reads, text, judgements, judged) in table {
            let got = score(&truth(text), &reads);
            assert_eq!(
                ([got.found, got.top1, got.top1_folded, got.topn], got.read.as_str()),
                (judgements, judged),
                "{text} with {:?}",
                reads.iter().map(|r| &r.text).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn a_tally_becomes_fractions() {
        let mut tally = Tally::default();
        assert_eq!(tally.rates().top1, 0.0);
        let hit = Outcome { found: true, top1: true, top1_folded: true, topn: true, read: "A".into() };
        let miss = Outcome { found: true, top1: false, top1_folded: false, topn: true, read: "B".into() };
        tally.add(&hit);
        tally.add(&miss);
        let mut all = Tally::default();
        all.merge(&tally);
        all.merge(&tally);
        let rates = all.rates();
        assert_eq!((rates.n, rates.top1, rates.topn, rates.found), (4, 0.5, 1.0, 1.0));
    }
}
