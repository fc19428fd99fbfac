//! What plates look like where ([`Region`], [`Format`]) and the ranking of a recogniser's spellings
//! by them ([`rank`]): OCR probability × format prior, with confusable glyphs corrected where a
//! format demands it (Brazil's `AYO9O34` has a digit in fifth place, so it is `AYO9034`).

use std::fmt;
use std::str::FromStr;

use crate::confusion::{self, PARTNER_WEIGHT};
use crate::recognition::Recognition;

/// Where the plates come from, which decides which spellings are plausible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// United States: 2–8 letters and digits in any order (each state differs).
    Us,
    /// Europe: a short table of national formats, then any 5–8 letters and digits.
    Eu,
    /// Brazil: `LLLDDDD` (old) or `LLLDLDD` (Mercosul), nothing else.
    Br,
    /// Whichever region's formats fit the read best.
    #[default]
    Auto,
}

impl Region {
    /// The regions `Auto` chooses among, most specific first (which also breaks ties).
    pub const SPECIFIC: [Region; 3] = [Region::Br, Region::Eu, Region::Us];

    pub fn as_str(self) -> &'static str {
        match self {
            Region::Us => "us",
            Region::Eu => "eu",
            Region::Br => "br",
            Region::Auto => "auto",
        }
    }

    /// The region's plate formats; empty for `Auto`, which has none of its own.
    pub fn formats(self) -> &'static [Format] {
        match self {
            Region::Us => US,
            Region::Eu => EU,
            Region::Br => BR,
            Region::Auto => &[],
        }
    }

    /// How plausible `text` is as a plate of this region: the prior of the best format it fits,
    /// or [`NO_FORMAT_PRIOR`].
    pub fn prior(self, text: &str) -> f32 {
        let fitting = self.formats().iter().filter(|f| f.fits(text)).map(|f| f.prior);
        fitting.fold(NO_FORMAT_PRIOR, f32::max)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Region {
    type Err = String;

    fn from_str(s: &str) -> Result<Region, String> {
        match s.to_ascii_lowercase().as_str() {
            "us" => Ok(Region::Us),
            "eu" => Ok(Region::Eu),
            "br" => Ok(Region::Br),
            "auto" => Ok(Region::Auto),
            other => Err(format!("unknown region {other:?} (expected us, eu, br or auto)")),
        }
    }
}

/// A plate format: one slot per glyph, `L` a letter, `D` a digit, `A` either.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Format {
    pub pattern: &'static str,
    /// How much fitting this format says the text is a real plate. A specific letter/digit
    /// pattern says more than "seven of anything", so it outranks the generic shapes when
    /// `Auto` compares regions.
    pub prior: f32,
}

/// The prior of a text that fits none of a region's formats: possible (a vanity or foreign plate),
/// but a spelling that fits should win unless the recogniser is far surer of this one.
pub const NO_FORMAT_PRIOR: f32 = 0.01;

const SPECIFIC: f32 = 1.0;
const COMMON: f32 = 0.6;
const GENERIC: f32 = 0.3;
const GENERIC_RARE: f32 = 0.15;

const fn format(pattern: &'static str, prior: f32) -> Format {
    Format { pattern, prior }
}

/// Mercosul's fifth slot is a letter exactly where the old format has a digit, so `AYO9O34` fits
/// both: as Mercosul as read, or as old-style with O taken for 0. Old-style wins such a tie (its prior
/// over Mercosul's exceeds 1 / [`PARTNER_WEIGHT`]) because the Brazilian benchmark, like the fleet it
/// was photographed in, is old-style. Where Mercosul plates dominate, raise this above
/// [`PARTNER_WEIGHT`] and a clearly read fifth letter will stand.
const MERCOSUL: f32 = 0.3;

const BR: &[Format] = &[format("LLLDDDD", SPECIFIC), format("LLLDLDD", MERCOSUL)];

/// National formats seen in the European benchmark (Croatia/Slovakia `RK115AN`, Bosnia `1T43213`,
/// Czechia `4BO4979`, …) and in the synthetic training plates, then generic shapes.
const EU: &[Format] = &[
    format("LLDDDLL", SPECIFIC),
    format("LLDDDDLL", SPECIFIC),
    format("LLLDDDD", SPECIFIC),
    format("DLDDDDD", SPECIFIC),
    format("DLLDDDD", SPECIFIC),
    format("LLDDDDL", SPECIFIC),
    format("AAAAA", GENERIC_RARE),
    format("AAAAAA", GENERIC_RARE),
    format("AAAAAAA", GENERIC_RARE),
    format("AAAAAAAA", GENERIC_RARE),
];

/// US states differ, so the prior is learned, not legislated: the letter/digit shapes of the
/// training labels (endtoend train split + seg_and_ocr, 865 plates; `training/plates`). Shapes of
/// ≥ 5 % of them are [`SPECIFIC`], of ≥ 2 % [`COMMON`]; all-letter and all-digit shapes stay generic
/// so they never pull a mixed read their way. [`COMMON`] over [`GENERIC`] is 1 / [`PARTNER_WEIGHT`]:
/// a common shape breaks a tie, it does not outvote the recogniser.
const US: &[Format] = &[
    format("DDDLLL", SPECIFIC),
    format("LLLDDD", SPECIFIC),
    format("LLLDDDD", SPECIFIC),
    format("DLLLDDD", SPECIFIC),
    format("LLDLDL", COMMON),
    format("LLDDDD", COMMON),
    format("DDDDLL", COMMON),
    format("LLDDD", COMMON),
    format("LLLDDL", COMMON),
    format("DLLDDD", COMMON),
    format("LDDDDDD", COMMON),
    format("AAAAA", GENERIC),
    format("AAAAAA", GENERIC),
    format("AAAAAAA", GENERIC),
    format("AA", GENERIC_RARE),
    format("AAA", GENERIC_RARE),
    format("AAAA", GENERIC_RARE),
    format("AAAAAAAA", GENERIC_RARE),
];

impl Format {
    pub fn fits(&self, text: &str) -> bool {
        text.len() == self.pattern.len() && self.pattern.chars().zip(text.chars()).all(|(slot, c)| slot_fits(slot, c))
    }

    /// `text` with each glyph that breaks a slot replaced by its confusable partner of the right
    /// kind (`O` → `0` in a digit slot), or `None` if some glyph has no such partner.
    pub fn conform(&self, text: &str) -> Option<String> {
        if text.len() != self.pattern.len() {
            return None;
        }
        self.pattern
            .chars()
            .zip(text.chars())
            .map(|(slot, c)| match slot {
                _ if slot_fits(slot, c) => Some(c),
                'L' => confusion::letter_for(c),
                'D' => confusion::digit_for(c),
                _ => None,
            })
            .collect()
    }
}

fn slot_fits(slot: char, c: char) -> bool {
    match slot {
        'L' => c.is_ascii_uppercase(),
        'D' => c.is_ascii_digit(),
        _ => c.is_ascii_uppercase() || c.is_ascii_digit(),
    }
}

/// Spellings less likely than this fraction of the recogniser's most likely one (which may be "")
/// are noise, not alternatives: a blank crop must not read as its least unlikely glyph.
const MIN_RELATIVE_CONFIDENCE: f32 = 1e-3;

/// One spelling of a plate and how sure the reader is of it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    pub text: String,
    /// The recogniser's probability of exactly this spelling (summed over its CTC alignments); for
    /// a spelling a plate format corrected, at least the probability of the read it corrects times
    /// [`PARTNER_WEIGHT`] per swapped glyph.
    pub confidence: f32,
}

/// The spellings of one plate, best first, and the region that ranked them.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// The region asked for, or the one `Auto` found fitted best.
    pub region: Region,
    pub candidates: Vec<Candidate>,
    /// For each glyph of the best spelling, its probability on that spelling's best alignment.
    pub char_confidences: Vec<f32>,
}

/// Ranks the spellings of one plate read in one or more views (crops of the same box with other
/// margins): every view's beams, best path and their format-conforming corrections, each scored by
/// its probability in all views (geometric mean) × the region's format prior; keeps `top_n`.
///
/// Several views vote out what one crop's edge got wrong; the first view gives the per-glyph
/// confidences. No views reads as nothing.
pub fn rank(views: &[Recognition], region: Region, top_n: usize) -> Ranking {
    let Some(recognition) = views.first() else {
        return Ranking { region, candidates: Vec::new(), char_confidences: Vec::new() };
    };
    let (alphabet, posteriors) = (recognition.alphabet(), recognition.posteriors());
    // For per-glyph confidences a glyph may borrow part of a confusable partner's probability, so a
    // format-corrected 0 is as sure as the O it was read as, at PARTNER_WEIGHT.
    let partners: Vec<Vec<usize>> = (0..posteriors.classes())
        .map(|k| {
            alphabet
                .glyph(k)
                .map_or_else(Vec::new, |c| confusion::partners(c).filter_map(|p| alphabet.label(p)).collect())
        })
        .collect();
    let confusable =
        posteriors.map(|step, k| partners[k].iter().map(|p| PARTNER_WEIGHT * step[*p]).fold(step[k], f32::max));

    let regions: &[Region] = if region == Region::Auto { &Region::SPECIFIC } else { std::slice::from_ref(&region) };
    let exact = |text: &str| {
        alphabet.labels(text).map_or(0.0, |labels| {
            let log_sum: f64 = views.iter().map(|v| v.posteriors().probability(&labels).min(1.0).ln()).sum();
            (log_sum / views.len() as f64).exp() as f32
        })
    };
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut offer = |text: String, confidence: f32| match candidates.iter_mut().find(|c| c.text == text) {
        Some(known) => known.confidence = known.confidence.max(confidence),
        None => candidates.push(Candidate { text, confidence }),
    };
    let read =
        views.iter().flat_map(|v| std::iter::once(v.text.as_str()).chain(v.beams.iter().map(|b| b.text.as_str())));
    for text in read.filter(|t| !t.is_empty()) {
        let p_read = exact(text);
        offer(text.to_owned(), p_read);
        for fixed in regions.iter().flat_map(|r| r.formats()).filter_map(|f| f.conform(text)) {
            // A correction costs PARTNER_WEIGHT per glyph it swaps, unless the network itself
            // already likes the corrected spelling better.
            let swaps = fixed.chars().zip(text.chars()).filter(|(a, b)| a != b).count();
            let p_fixed = exact(&fixed).max(p_read * PARTNER_WEIGHT.powi(swaps as i32));
            offer(fixed, p_fixed);
        }
    }
    // The empty reading competes too: a crop with no legible glyph reads as nothing, not as noise.
    let most_likely = candidates.iter().map(|c| c.confidence).fold(exact(""), f32::max);
    candidates.retain(|c| c.confidence > 0.0 && c.confidence >= most_likely * MIN_RELATIVE_CONFIDENCE);

    let score = |r: Region, c: &Candidate| c.confidence * r.prior(&c.text);
    let best_score = |r: Region| candidates.iter().map(|c| score(r, c)).fold(0.0, f32::max);
    // `max_by` keeps the last of equals; folding keeps the first, the most specific region. With no
    // spelling at all no region fitted, and the one asked for is answered.
    let region = if candidates.is_empty() {
        region
    } else {
        regions.iter().copied().fold(regions[0], |best, r| if best_score(r) > best_score(best) { r } else { best })
    };

    let mut ranked: Vec<(f32, Candidate)> = candidates.into_iter().map(|c| (score(region, &c), c)).collect();
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| b.1.confidence.total_cmp(&a.1.confidence))
            .then_with(|| a.1.text.cmp(&b.1.text))
    });
    let candidates: Vec<Candidate> = ranked.into_iter().take(top_n.max(1)).map(|(_, c)| c).collect();
    let char_confidences = candidates
        .first()
        .and_then(|best| confusable.aligned_confidences(&alphabet.labels(&best.text)?))
        .unwrap_or_default();
    Ranking { region, candidates, char_confidences }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One crop per view of a three-glyph plate `A?1` over the alphabet `18AB`, the middle glyph
    /// read as B with probability `p_b`, else as 8.
    fn view(p_b: f32) -> Recognition {
        use crate::ctc::Posteriors;
        use crate::recognition::Alphabet;
        //            blank  1    8          A    B
        let probs = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0 - p_b, 0.0, p_b, 0.0, 1.0, 0.0, 0.0, 0.0];
        let posteriors = Posteriors::from_probabilities(3, 5, probs.to_vec());
        Recognition::decode(posteriors, std::sync::Arc::new(Alphabet::new("18AB")))
    }

    #[test]
    fn a_spelling_is_scored_in_every_view_not_just_the_first() {
        let alone = rank(&[view(0.6)], Region::Us, 2);
        assert_eq!(alone.candidates[0].text, "AB1");
        // The second view is sure of 8: √(0.4·0.9) = 0.6 beats √(0.6·0.1) ≈ 0.24.
        let both = rank(&[view(0.6), view(0.1)], Region::Us, 2);
        assert_eq!(both.candidates[0].text, "A81", "{both:?}");
        assert!((both.candidates[0].confidence - 0.6).abs() < 1e-4, "{both:?}");
        assert!(rank(&[], Region::Us, 2).candidates.is_empty());
    }

    #[test]
    fn regions_parse_from_their_names_in_any_case() {
        for region in [Region::Us, Region::Eu, Region::Br, Region::Auto] {
            assert_eq!(region.as_str().to_uppercase().parse::<Region>(), Ok(region));
        }
        assert!("fr".parse::<Region>().unwrap_err().contains("us, eu, br or auto"));
    }

    #[test]
    fn brazilian_plates_are_old_or_mercosul_and_nothing_else() {
        let table = [
            ("AYO9034", SPECIFIC),
            ("RIO2A18", MERCOSUL),
            ("AYO9O34", MERCOSUL),
            ("AYO90X4", NO_FORMAT_PRIOR),
            ("AB1234", NO_FORMAT_PRIOR),
            ("AYO90345", NO_FORMAT_PRIOR),
        ];
        for (text, prior) in table {
            assert_eq!(Region::Br.prior(text), prior, "{text}");
        }
    }

    #[test]
    fn a_national_format_outranks_a_generic_shape() {
        assert_eq!(Region::Eu.prior("RK115AN"), SPECIFIC);
        assert_eq!(Region::Eu.prior("SG47471"), GENERIC_RARE);
        assert_eq!(Region::Us.prior("ABC123"), SPECIFIC);
        assert_eq!(Region::Us.prior("6HP995"), COMMON);
        assert_eq!(Region::Us.prior("UF2V5S"), COMMON);
        assert_eq!(Region::Us.prior("1049338"), GENERIC);
        assert_eq!(Region::Us.prior("NEILDMND"), GENERIC_RARE);
        assert_eq!(Region::Us.prior("A"), NO_FORMAT_PRIOR);
        assert_eq!(Region::Auto.prior("ABC1234"), NO_FORMAT_PRIOR);
    }

    #[test]
    fn conforming_swaps_only_confusable_glyphs_into_the_slot_they_must_fill() {
        let old = Format { pattern: "LLLDDDD", prior: SPECIFIC };
        let table = [
            ("AYO9O34", Some("AYO9034")),
            ("AY09034", Some("AYO9034")),
            ("8RS5I20", Some("BRS5120")),
            ("AYO9034", Some("AYO9034")),
            ("AYO9X34", None),
            ("AYO903", None),
        ];
        for (text, conformed) in table {
            assert_eq!(old.conform(text).as_deref(), conformed, "{text}");
        }
    }
}
