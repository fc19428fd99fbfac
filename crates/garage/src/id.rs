//! Opaque 128-bit identifiers ([`SessionId`], [`DriverId`], [`PermitId`], [`LinkToken`]), made from
//! bytes the caller supplies, because this crate draws no randomness of its own.
//!
//! 128 bits from a CSPRNG make a [`LinkToken`] unguessable, which is what lets a link grant
//! pay-by-plate for one session without a login.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {kind} is 32 hexadecimal digits; got {text:?}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub text: String,
}

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(u128);

        impl $name {
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(u128::from_be_bytes(bytes))
            }

            /// Reads the 32 lowercase or uppercase hex digits that `Display` writes.
            pub fn parse(text: &str) -> Result<Self, InvalidId> {
                let invalid = || InvalidId { kind: $kind, text: text.to_owned() };
                if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid());
                }
                u128::from_str_radix(text, 16).map(Self).map_err(|_| invalid())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:032x}", self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(text: String) -> Result<Self, Self::Error> {
                Self::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.to_string()
            }
        }

        $crate::schema::checked_schema!(
            $name,
            $crate::schema::string(concat!("A ", $kind, ": 32 hexadecimal digits."), Some("^[0-9a-fA-F]{32}$"))
        );
    };
}

opaque_id!(
    /// One visit: entry to exit to settlement.
    SessionId,
    "session id"
);
opaque_id!(
    /// A signed-up driver.
    DriverId,
    "driver id"
);
opaque_id!(
    /// A monthly (or other period's) permit.
    PermitId,
    "permit id"
);
opaque_id!(
    /// The secret in an unregistered driver's sign-up / pay-by-plate link (kiosk screen, QR code).
    LinkToken,
    "link token"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_made_from_bytes_reads_back_from_its_hex_form() {
        let id = SessionId::from_bytes(*b"0123456789abcdef");
        let text = id.to_string();
        assert_eq!(text, "30313233343536373839616263646566");
        assert_eq!(SessionId::parse(&text), Ok(id));
        assert_eq!(SessionId::parse(&text.to_uppercase()), Ok(id));
        assert_eq!(serde_json::from_str::<SessionId>(&format!("\"{text}\"")).unwrap(), id);
    }

    #[test]
    fn anything_but_thirty_two_hex_digits_is_not_an_id() {
        for bad in ["", "123", "+0000000000000000000000000000001", "g0000000000000000000000000000000", &"0".repeat(33)]
        {
            assert!(LinkToken::parse(bad).is_err(), "{bad:?}");
        }
        assert!(DriverId::parse("x").unwrap_err().to_string().contains("driver id"));
    }
}
