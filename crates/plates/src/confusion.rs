//! Glyphs that plates and cameras confuse: the classes that fold spellings for matching
//! ([`matching_key`]) and the partners the format step may substitute ([`digit_for`], [`letter_for`]).
//!
//! The classes are O/0/Q, 1/I, 8/B, 5/S and 2/Z. Q joins O/0 because a Q's short tail is the first
//! thing a small or blurred crop loses. D does not: its straight back survives blur, and folding it
//! would merge many plates that a person tells apart at a glance (gate matching must not).

/// Each class: the digit first (the representative, so keys read like digits), then its letters.
const CLASSES: [&str; 5] = ["0OQ", "1I", "8B", "5S", "2Z"];

/// How much a confusable partner's probability counts towards a glyph it was not: enough for a
/// plate format to overturn the network's preference (`O` where the format needs a digit), too little
/// for a partner to beat a glyph the network actually saw.
pub const PARTNER_WEIGHT: f32 = 0.5;

fn class_of(c: char) -> Option<&'static str> {
    let c = c.to_ascii_uppercase();
    CLASSES.iter().copied().find(|class| class.contains(c))
}

/// The other members of `c`'s confusion class (empty for an unambiguous glyph).
pub fn partners(c: char) -> impl Iterator<Item = char> {
    let c = c.to_ascii_uppercase();
    class_of(c).unwrap_or("").chars().filter(move |p| *p != c)
}

/// The digit a letter is mistaken for (`O` → `0`, `B` → `8`), if any.
pub fn digit_for(c: char) -> Option<char> {
    partners(c).find(char::is_ascii_digit).filter(|_| c.is_ascii_alphabetic())
}

/// The letter a digit is mistaken for (`0` → `O`, `8` → `B`), if any.
pub fn letter_for(c: char) -> Option<char> {
    partners(c).find(char::is_ascii_alphabetic).filter(|_| c.is_ascii_digit())
}

/// `text` with each glyph folded to its class representative, uppercase, without spaces, dashes
/// or dots: two reads of one plate have equal keys even where the camera confused O and 0.
pub fn matching_key(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| class_of(c).and_then(|class| class.chars().next()).unwrap_or(c.to_ascii_uppercase()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confused_spellings_share_a_matching_key() {
        let same =
            [("8O1", "BO1"), ("AYO9O34", "AY09034"), ("5Z1", "S2I"), ("abc-123", "ABC123"), ("RK6O5AB", "RK605AB")];
        for (a, b) in same {
            assert_eq!(matching_key(a), matching_key(b), "{a} vs {b}");
        }
    }

    #[test]
    fn distinct_glyphs_keep_distinct_keys() {
        for (a, b) in [("D01", "001"), ("ABC123", "ABC124"), ("M5XSX", "M5XSY")] {
            assert_ne!(matching_key(a), matching_key(b), "{a} vs {b}");
        }
    }

    #[test]
    fn each_confusable_glyph_has_a_partner_of_the_other_kind() {
        let table = [
            ('O', Some('0'), None),
            ('Q', Some('0'), None),
            ('0', None, Some('O')),
            ('I', Some('1'), None),
            ('1', None, Some('I')),
            ('B', Some('8'), None),
            ('8', None, Some('B')),
            ('S', Some('5'), None),
            ('5', None, Some('S')),
            ('Z', Some('2'), None),
            ('2', None, Some('Z')),
            ('D', None, None),
            ('7', None, None),
            ('A', None, None),
        ];
        for (glyph, digit, letter) in table {
            assert_eq!((digit_for(glyph), letter_for(glyph)), (digit, letter), "{glyph}");
        }
    }
}
