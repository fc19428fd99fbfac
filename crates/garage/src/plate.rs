//! Licence plates as the garage keeps them: [`Plate`] (the normalised spelling a person reads), its
//! confusion-aware [`MatchingKey`] (what the exit gate matches on), and the masked form receipts show.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Fewest and most glyphs a plate may have once spaces, dashes and dots are gone. Two covers the
/// shortest vanity plates; ten the longest formats the reader knows, with room to spare.
pub const MIN_GLYPHS: usize = 2;
pub const MAX_GLYPHS: usize = 10;

/// Glyphs cameras confuse, digit first (the representative). The same classes and the same
/// representatives as `valet_plates::confusion`, so a key computed from a read here equals one the
/// reader computed there; copied rather than depended on because the garage must not depend on vision.
const CONFUSION_CLASSES: [&str; 5] = ["0OQ", "1I", "8B", "5S", "2Z"];

/// A plate in normal form: uppercase ASCII letters and digits only, 2 to 10 of them.
///
/// Invariant: the inner string is already normalised, so two `Plate`s are equal exactly when a
/// person would read them as the same spelling.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Plate(String);

crate::schema::checked_schema!(
    Plate,
    // Read leniently (lower case, spaces, dashes and dots are normalised away), so the pattern
    // only says what a plate is made of; `Plate::parse` has the last word.
    crate::schema::string(
        "A licence plate: 2 to 10 letters A-Z and digits, written in normal form.",
        Some("[A-Za-z0-9]")
    )
);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPlate {
    #[error("a plate has {MIN_GLYPHS} to {MAX_GLYPHS} letters or digits; {0:?} has {1}")]
    Length(String, usize),
    #[error("a plate holds only letters A-Z and digits (spaces, dashes and dots are ignored); {0:?} has {1:?}")]
    Glyph(String, char),
}

impl Plate {
    /// Normalises `raw` (uppercase; spaces, dashes and dots dropped) and checks what is left.
    pub fn parse(raw: &str) -> Result<Plate, InvalidPlate> {
        let mut glyphs = String::with_capacity(raw.len());
        for c in raw.chars() {
            match c.to_ascii_uppercase() {
                c if c.is_whitespace() || c == '-' || c == '.' => {}
                c @ ('A'..='Z' | '0'..='9') => glyphs.push(c),
                other => return Err(InvalidPlate::Glyph(raw.to_owned(), other)),
            }
        }
        if !(MIN_GLYPHS..=MAX_GLYPHS).contains(&glyphs.len()) {
            return Err(InvalidPlate::Length(raw.to_owned(), glyphs.len()));
        }
        Ok(Plate(glyphs))
    }

    /// The normal form, as people and receipts read it (`AB123CD`).
    pub fn display(&self) -> &str {
        &self.0
    }

    /// The key two reads of this plate share even when the camera confused O/0/Q, I/1, B/8, S/5 or Z/2.
    pub fn matching_key(&self) -> MatchingKey {
        MatchingKey(self.0.chars().map(fold).collect())
    }

    /// The plate with its middle hidden, for receipts and screens a stranger may see (`AB•••34`).
    ///
    /// At most two glyphs show at each end, and at least a third of the plate is always hidden, so a
    /// short plate is never printed whole.
    pub fn masked(&self) -> String {
        let len = self.0.len();
        let shown = ((len - len.div_ceil(3)) / 2).min(2);
        let hidden = len - 2 * shown;
        format!("{}{}{}", &self.0[..shown], "•".repeat(hidden), &self.0[len - shown..])
    }
}

fn fold(c: char) -> char {
    CONFUSION_CLASSES.iter().find(|class| class.contains(c)).and_then(|class| class.chars().next()).unwrap_or(c)
}

impl fmt::Display for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Plate {
    type Error = InvalidPlate;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Plate::parse(&raw)
    }
}

impl From<Plate> for String {
    fn from(plate: Plate) -> String {
        plate.0
    }
}

/// A plate with each confusable glyph folded to its class's digit: equal keys mean "possibly the
/// same plate, misread". Only ever made from a [`Plate`], so it is normalised too.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MatchingKey(String);

impl MatchingKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MatchingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plate(raw: &str) -> Plate {
        Plate::parse(raw).unwrap()
    }

    #[test]
    fn parsing_uppercases_and_drops_spaces_dashes_and_dots() {
        for (raw, normal) in
            [("ab-123-cd", "AB123CD"), (" m 5 x . s x ", "M5XSX"), ("Z9", "Z9"), ("1234567890", "1234567890")]
        {
            assert_eq!(plate(raw).display(), normal, "{raw:?}");
        }
    }

    #[test]
    fn parsing_refuses_wrong_lengths_and_foreign_glyphs_with_a_reason() {
        let table = [
            ("", InvalidPlate::Length(String::new(), 0)),
            ("A - .", InvalidPlate::Length("A - .".into(), 1)),
            ("ABCDEF123456", InvalidPlate::Length("ABCDEF123456".into(), 12)),
            ("AB_12", InvalidPlate::Glyph("AB_12".into(), '_')),
            ("MÜ 123", InvalidPlate::Glyph("MÜ 123".into(), 'Ü')),
        ];
        for (raw, error) in table {
            assert_eq!(Plate::parse(raw), Err(error), "{raw:?}");
        }
        assert!(Plate::parse("AB_12").unwrap_err().to_string().contains("'_'"));
    }

    /// The pairs `valet_plates::confusion`'s own test holds equal and apart: the same answers here
    /// keep the gate's keys identical to the reader's.
    #[test]
    fn matching_keys_fold_exactly_the_confusion_classes_the_plate_reader_uses() {
        let same =
            [("8O1", "BO1"), ("AYO9O34", "AY09034"), ("5Z1", "S2I"), ("abc-123", "ABC123"), ("RK6O5AB", "RK605AB")];
        for (a, b) in same {
            assert_eq!(plate(a).matching_key(), plate(b).matching_key(), "{a} vs {b}");
        }
        for (a, b) in [("D01", "001"), ("ABC123", "ABC124"), ("M5XSX", "M5XSY")] {
            assert_ne!(plate(a).matching_key(), plate(b).matching_key(), "{a} vs {b}");
        }
        assert_eq!(plate("QOIBSZ").matching_key().as_str(), "001852");
    }

    #[test]
    fn masking_shows_at_most_two_glyphs_each_end_and_hides_at_least_a_third() {
        let table = [
            ("AB1234", "AB••34"),
            ("AB12C34", "AB•••34"),
            ("1234567890", "12••••••90"),
            ("ABCDE", "A•••E"),
            ("ABCD", "A••D"),
            ("ABC", "A•C"),
            ("AB", "••"),
        ];
        for (raw, masked) in table {
            assert_eq!(plate(raw).masked(), masked, "{raw}");
        }
    }

    #[test]
    fn a_plate_round_trips_through_serde_as_its_normal_form_and_is_checked_on_the_way_in() {
        assert_eq!(serde_json::to_string(&plate("ab 12")).unwrap(), "\"AB12\"");
        assert_eq!(serde_json::from_str::<Plate>("\"ab-12\"").unwrap(), plate("AB12"));
        assert!(serde_json::from_str::<Plate>("\"A\"").is_err());
    }
}
