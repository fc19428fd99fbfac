//! [`PlateKey`]: the secret that turns a plate's matching key into the [`PlateDigest`] the
//! database keeps, so a stolen database file does not list which cars parked when.
//!
//! A keyed HMAC-SHA256, not a plain hash: plates are short and guessable, so an unkeyed hash of
//! every possible plate is a cheap table. The digest is of the matching key, so a confusable
//! misread (O/0, 1/I, 8/B, 5/S, 2/Z) finds the same rows.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use valet_garage::{MatchingKey, Plate};

/// Fewest secret bytes accepted: 128 bits, below which the key itself could be guessed.
pub const MIN_PLATE_KEY_BYTES: usize = 16;

/// The HMAC key for plates, from configuration. `Debug` never prints it.
#[derive(Clone)]
pub struct PlateKey(Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a plate key is at least {MIN_PLATE_KEY_BYTES} bytes of secret; got {0}")]
pub struct PlateKeyTooShort(pub usize);

impl PlateKey {
    pub fn new(secret: &[u8]) -> Result<PlateKey, PlateKeyTooShort> {
        if secret.len() < MIN_PLATE_KEY_BYTES {
            return Err(PlateKeyTooShort(secret.len()));
        }
        Ok(PlateKey(secret.to_vec()))
    }

    /// The digest every plate with this matching key is stored and looked up by.
    pub fn digest(&self, key: &MatchingKey) -> PlateDigest {
        // HMAC accepts a key of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(key.as_str().as_bytes());
        PlateDigest(hex::encode(mac.finalize().into_bytes()))
    }

    pub fn digest_plate(&self, plate: &Plate) -> PlateDigest {
        self.digest(&plate.matching_key())
    }
}

impl fmt::Debug for PlateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlateKey(…)")
    }
}

/// A plate's matching key under a [`PlateKey`], as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlateDigest(String);

impl PlateDigest {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plate(raw: &str) -> Plate {
        Plate::parse(raw).unwrap()
    }

    #[test]
    fn confusable_spellings_share_a_digest_and_other_keys_give_other_digests() {
        let key = PlateKey::new(&[7; 32]).unwrap();
        let other = PlateKey::new(&[8; 32]).unwrap();
        assert_eq!(key.digest_plate(&plate("AB0123")), key.digest_plate(&plate("ABO123")));
        assert_ne!(key.digest_plate(&plate("AB0123")), key.digest_plate(&plate("AB0124")));
        assert_ne!(key.digest_plate(&plate("AB0123")), other.digest_plate(&plate("AB0123")));
        assert_eq!(key.digest_plate(&plate("AB0123")).as_str().len(), 64);
    }

    #[test]
    fn a_short_key_is_refused_and_no_key_is_ever_printed() {
        assert_eq!(PlateKey::new(b"short").unwrap_err(), PlateKeyTooShort(5));
        assert_eq!(format!("{:?}", PlateKey::new(&[1; 16]).unwrap()), "PlateKey(…)");
    }
}
