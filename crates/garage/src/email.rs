//! [`EmailAddress`]: where a driver wants receipts and failed-charge notices. Optional on an
//! account; the garage works the same without one.
//!
//! The check is deliberately plain ASCII `local@domain.tld`: it must refuse what would break a mail
//! header (spaces, angle brackets, line breaks, a second `@`) and typos a driver can fix at once (no
//! dot in the domain), not decide which addresses the world's mail servers accept. Quoted local
//! parts and internationalised domains are refused with a clear message rather than half-handled.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An e-mail address: trimmed, at most [`MAX_LEN`] characters, the domain lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

/// The longest address a mail path carries (RFC 5321 §4.5.3.1.3: 256 with the angle brackets).
pub const MAX_LEN: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEmail {
    #[error("an e-mail address looks like name@example.com")]
    Shape,
    #[error("an e-mail address is at most 254 characters")]
    TooLong,
    #[error("use the address in plain letters, digits and . _ + - (no spaces, quotes or accents)")]
    Characters,
    #[error("the part after @ must be a domain such as example.com")]
    Domain,
}

/// What a local part (before the `@`) may hold unquoted: RFC 5322's atext and dots.
fn local_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b)
}

impl EmailAddress {
    pub fn parse(text: &str) -> Result<EmailAddress, InvalidEmail> {
        let text = text.trim();
        if text.len() > MAX_LEN {
            return Err(InvalidEmail::TooLong);
        }
        let Some((local, domain)) = text.split_once('@') else { return Err(InvalidEmail::Shape) };
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(InvalidEmail::Shape);
        }
        if local.len() > 64
            || !local.bytes().all(local_char)
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err(InvalidEmail::Characters);
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(InvalidEmail::Domain);
        }
        Ok(EmailAddress(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = InvalidEmail;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        EmailAddress::parse(&text)
    }
}

impl From<EmailAddress> for String {
    fn from(address: EmailAddress) -> String {
        address.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_addresses_are_kept_with_the_domain_lower_cased() {
        let table = [
            ("ana@example.com", "ana@example.com"),
            ("  Ana.Silva+garage@Mail.Example.PT \n", "Ana.Silva+garage@mail.example.pt"),
            ("o'brien@ex-ample.ie", "o'brien@ex-ample.ie"),
        ];
        for (text, kept) in table {
            assert_eq!(EmailAddress::parse(text).unwrap().as_str(), kept, "{text:?}");
        }
    }

    #[test]
    fn what_would_break_a_header_or_is_a_typo_is_refused_with_its_reason() {
        use InvalidEmail::*;
        let long = format!("{}@example.com", "a".repeat(250));
        let table = [
            ("", Shape),
            ("ana", Shape),
            ("@example.com", Shape),
            ("ana@", Shape),
            ("ana@b@example.com", Shape),
            ("ana silva@example.com", Characters),
            ("ana\r\nBcc: x@evil.com@example.com", Shape),
            ("<ana>@example.com", Characters),
            ("\"ana\"@example.com", Characters),
            ("ana..s@example.com", Characters),
            (".ana@example.com", Characters),
            ("josé@example.com", Characters),
            ("ana@localhost", Domain),
            ("ana@example..com", Domain),
            ("ana@-example.com", Domain),
            ("ana@exämple.com", Domain),
            ("ana@example.com>", Domain),
            (long.as_str(), TooLong),
        ];
        for (text, error) in table {
            assert_eq!(EmailAddress::parse(text), Err(error), "{text:?}");
        }
    }
}
