//! [`RecoveryCode`]: how a driver gets back into their account on a new phone, until the garage
//! can send email. Shown once at sign-up (and after each use), kept only hashed, like device keys.
//!
//! 100 random bits written as 20 Crockford base-32 glyphs in five groups (`7KQ2-M9XD-4HJW-RT6P-B3NZ`):
//! no I, L, O or U, so nothing on the paper it was copied to reads two ways, and reading it back
//! forgives case, spaces, dashes and the look-alikes (O for 0, I and L for 1). 100 bits cannot be
//! guessed over the network, so a sign-in needs no lockout to be safe.

use std::fmt;

/// Crockford's base 32: digits, then the letters without I, L, O and U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Glyphs in a code (5 bits each: 100 bits), and per readable group.
const GLYPHS: usize = 20;
const GROUP: usize = 4;

/// A driver's recovery code. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a recovery code is 20 letters and digits, as shown at sign-up (for example 7KQ2-M9XD-4HJW-RT6P-B3NZ)")]
pub struct InvalidRecoveryCode;

impl RecoveryCode {
    /// The code made of the first 100 bits of `random` (16 bytes from a CSPRNG, like an id).
    pub fn from_bytes(random: [u8; 16]) -> RecoveryCode {
        let bits = u128::from_be_bytes(random);
        let glyphs = (0..GLYPHS).map(|i| char::from(ALPHABET[((bits >> (123 - 5 * i)) & 0x1f) as usize])).collect();
        RecoveryCode(glyphs)
    }

    /// Reads a code as a person types it back: any case, any spaces and dashes, O for 0, I or L for 1.
    pub fn parse(text: &str) -> Result<RecoveryCode, InvalidRecoveryCode> {
        let mut glyphs = String::with_capacity(GLYPHS);
        for c in text.chars() {
            let c = match c.to_ascii_uppercase() {
                c if c.is_whitespace() || c == '-' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
                _ => return Err(InvalidRecoveryCode),
            };
            glyphs.push(c);
        }
        if glyphs.len() != GLYPHS {
            return Err(InvalidRecoveryCode);
        }
        Ok(RecoveryCode(glyphs))
    }

    /// The 20 glyphs without dashes: what is hashed and compared.
    pub fn canonical(&self) -> &str {
        &self.0
    }

    /// The code as shown to the driver, in groups of four.
    pub fn expose(&self) -> String {
        let groups: Vec<&str> = (0..GLYPHS).step_by(GROUP).map(|i| &self.0[i..i + GROUP]).collect();
        groups.join("-")
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_five_groups_of_four_unambiguous_glyphs_and_reads_back_however_it_is_typed() {
        let code = RecoveryCode::from_bytes(*b"0123456789abcdef");
        let shown = code.expose();
        assert_eq!(shown.len(), 24, "{shown}");
        assert_eq!(shown.split('-').count(), 5, "{shown}");
        assert!(!shown.contains(['I', 'L', 'O', 'U']), "{shown}");
        for typed in [shown.clone(), shown.to_lowercase(), shown.replace('-', " "), shown.replace('-', "")] {
            assert_eq!(RecoveryCode::parse(&typed), Ok(code.clone()), "{typed}");
        }
        assert_eq!(RecoveryCode::parse("oooo-iiii-llll-0000-1111"), RecoveryCode::parse("000011111111 00001111"));
        assert!(!format!("{code:?}").contains(&shown[..4]));
    }

    #[test]
    fn different_random_bytes_give_different_codes_and_junk_is_refused() {
        let a = RecoveryCode::from_bytes([0; 16]);
        let b = RecoveryCode::from_bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]);
        assert_ne!(a, b, "the 100th bit counts");
        assert_eq!(a.expose(), "0000-0000-0000-0000-0000");
        for junk in
            ["", "7KQ2-M9XD", "7KQ2-M9XD-4HJW-RT6P-B3NZ-0000", "UUUU-M9XD-4HJW-RT6P-B3NZ", "7KQ2_M9XD4HJWRT6PB3NZ"]
        {
            assert_eq!(RecoveryCode::parse(junk), Err(InvalidRecoveryCode), "{junk}");
        }
    }
}
