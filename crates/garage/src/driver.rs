//! A signed-up [`Driver`]: their plates and the [`PaymentMethodToken`] the payment provider gave
//! for their card. The garage never holds a card number, and the token's parser refuses one.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::id::DriverId;
use crate::plate::Plate;

/// The payment provider's handle on a saved payment method (`pm_1Nq…`, a ledger account name).
/// Opaque to the garage: 1 to 255 printable ASCII characters, and never anything holding a card
/// number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PaymentMethodToken(String);

/// Fewest and most digits in a card number (ISO/IEC 7812 PAN).
const PAN_DIGITS: std::ops::RangeInclusive<usize> = 12..=19;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPaymentMethod {
    /// The digits are not echoed: the message may end up in a log.
    #[error(
        "this looks like a card number; the garage never stores one. Save the card with the payment provider and pass its token"
    )]
    LooksLikeCardNumber,
    #[error("a payment method token is 1 to 255 printable ASCII characters without spaces")]
    Malformed,
}

impl PaymentMethodToken {
    pub fn parse(text: &str) -> Result<PaymentMethodToken, InvalidPaymentMethod> {
        // Checked first, so that a card number with spaces is named as what it is, not "malformed".
        if holds_card_number(text) {
            return Err(InvalidPaymentMethod::LooksLikeCardNumber);
        }
        if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidPaymentMethod::Malformed);
        }
        Ok(PaymentMethodToken(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A run of at least 12 digits, spaces and dashes allowed between them as people type cards. A run
/// longer than 19 is refused too: it contains a card number.
fn holds_card_number(text: &str) -> bool {
    let mut run = 0;
    for c in text.chars() {
        match c {
            '0'..='9' => run += 1,
            ' ' | '-' => {}
            _ => run = 0,
        }
        if run >= *PAN_DIGITS.start() {
            return true;
        }
    }
    false
}

impl TryFrom<String> for PaymentMethodToken {
    type Error = InvalidPaymentMethod;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        PaymentMethodToken::parse(&text)
    }
}

impl From<PaymentMethodToken> for String {
    fn from(token: PaymentMethodToken) -> String {
        token.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlateChangeError {
    #[error("plate {0} is already on this account")]
    AlreadyListed(Plate),
    #[error("plate {0} is not on this account")]
    NotListed(Plate),
    #[error("plate {0} has a session in progress; it can be removed once the car has left")]
    ActiveSession(Plate),
}

/// Someone who signed up once, with plates and a payment method, and is charged at the exit from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Driver {
    pub id: DriverId,
    plates: BTreeSet<Plate>,
    pub payment_method: PaymentMethodToken,
}

impl Driver {
    pub fn new(id: DriverId, payment_method: PaymentMethodToken) -> Driver {
        Driver { id, plates: BTreeSet::new(), payment_method }
    }

    pub fn plates(&self) -> impl Iterator<Item = &Plate> {
        self.plates.iter()
    }

    /// Whether `plate` is on this account, spelled exactly so.
    pub fn has_plate(&self, plate: &Plate) -> bool {
        self.plates.contains(plate)
    }

    pub fn add_plate(&mut self, plate: Plate) -> Result<(), PlateChangeError> {
        if self.plates.contains(&plate) {
            return Err(PlateChangeError::AlreadyListed(plate));
        }
        self.plates.insert(plate);
        Ok(())
    }

    /// Removes `plate` unless a car that might be it is still inside: `active` holds the plates of
    /// open (or closed but unsettled) sessions, and a confusable spelling counts, because the exit
    /// gate would match it.
    pub fn remove_plate(&mut self, plate: &Plate, active: &BTreeSet<Plate>) -> Result<(), PlateChangeError> {
        if !self.plates.contains(plate) {
            return Err(PlateChangeError::NotListed(plate.clone()));
        }
        let key = plate.matching_key();
        if active.iter().any(|a| a.matching_key() == key) {
            return Err(PlateChangeError::ActiveSession(plate.clone()));
        }
        self.plates.remove(plate);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plate(raw: &str) -> Plate {
        Plate::parse(raw).unwrap()
    }

    #[test]
    fn anything_holding_a_card_number_is_refused_without_echoing_it() {
        let table = [
            "4242424242424242",
            "4242 4242 4242 4242",
            "4242-4242-4242-4242",
            "378282246310005",
            "pm_4000056655665556",
            "123456789012",
            "12345678901234567890123",
        ];
        for text in table {
            let error = PaymentMethodToken::parse(text).unwrap_err();
            assert_eq!(error, InvalidPaymentMethod::LooksLikeCardNumber, "{text}");
            assert!(!error.to_string().contains("4242"), "{error}");
        }
    }

    #[test]
    fn provider_tokens_are_accepted_and_junk_is_malformed() {
        for text in ["pm_1NqLiJLkdIwHu7ixUEgbFdYF", "ledger:driver-42", "tok_visa", "12345678901"] {
            assert_eq!(PaymentMethodToken::parse(text).unwrap().as_str(), text);
        }
        for text in ["", "pm 1", "pm_\u{e9}", &"x".repeat(256)] {
            assert_eq!(PaymentMethodToken::parse(text), Err(InvalidPaymentMethod::Malformed), "{text:?}");
        }
    }

    #[test]
    fn a_plate_cannot_be_removed_while_it_or_a_confusable_spelling_is_parked() {
        let mut driver = Driver::new(DriverId::from_bytes([1; 16]), PaymentMethodToken::parse("pm_1").unwrap());
        driver.add_plate(plate("AB0123")).unwrap();
        driver.add_plate(plate("XY99")).unwrap();
        assert_eq!(driver.add_plate(plate("ab-0123")), Err(PlateChangeError::AlreadyListed(plate("AB0123"))));

        let parked = BTreeSet::from([plate("ABO123")]);
        assert_eq!(
            driver.remove_plate(&plate("AB0123"), &parked),
            Err(PlateChangeError::ActiveSession(plate("AB0123")))
        );
        assert_eq!(driver.remove_plate(&plate("XY99"), &parked), Ok(()));
        assert_eq!(driver.remove_plate(&plate("XY99"), &parked), Err(PlateChangeError::NotListed(plate("XY99"))));
        assert_eq!(driver.remove_plate(&plate("AB0123"), &BTreeSet::new()), Ok(()));
        assert_eq!(driver.plates().count(), 0);
    }
}
