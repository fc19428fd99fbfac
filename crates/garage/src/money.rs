//! Money as integer minor units plus an ISO 4217 [`Currency`]; [`Percent`] and its rounding rule.
//!
//! Never a float: every amount is an exact count of cents (or the currency's smallest unit), and
//! every operation that could overflow or mix currencies says so instead of guessing.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An ISO 4217 alphabetic code: three uppercase ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a currency is a three-letter ISO 4217 code such as EUR; got {0:?}")]
pub struct InvalidCurrency(String);

crate::schema::checked_schema!(
    Currency,
    crate::schema::string(
        "An ISO 4217 code such as EUR (read in either case, written in upper case).",
        Some("^[A-Za-z]{3}$")
    )
);

impl Currency {
    pub const EUR: Currency = Currency(*b"EUR");
    pub const USD: Currency = Currency(*b"USD");
    pub const GBP: Currency = Currency(*b"GBP");

    /// Accepts any three letters, in either case: the garage prices in whatever its operator
    /// configures, and ISO adds codes faster than this crate would.
    pub fn parse(code: &str) -> Result<Currency, InvalidCurrency> {
        match code.as_bytes() {
            &[a, b, c] if code.bytes().all(|b| b.is_ascii_alphabetic()) => {
                Ok(Currency([a, b, c].map(|b| b.to_ascii_uppercase())))
            }
            _ => Err(InvalidCurrency(code.to_owned())),
        }
    }

    pub fn code(&self) -> &str {
        // Only ever built from ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// Digits after the decimal point. Two unless ISO 4217 says otherwise for the few currencies
    /// listed; an unlisted zero- or three-decimal currency would only display wrongly, never price wrongly.
    pub fn decimals(&self) -> u32 {
        match &self.0 {
            b"JPY" | b"KRW" | b"ISK" | b"CLP" | b"VND" | b"XAF" | b"XOF" | b"PYG" | b"UGX" => 0,
            b"BHD" | b"KWD" | b"OMR" | b"JOD" | b"TND" | b"IQD" | b"LYD" => 3,
            _ => 2,
        }
    }

    fn symbol(&self) -> Option<&'static str> {
        match &self.0 {
            b"EUR" => Some("€"),
            b"USD" => Some("$"),
            b"GBP" => Some("£"),
            _ => None,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl TryFrom<String> for Currency {
    type Error = InvalidCurrency;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        Currency::parse(&code)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> String {
        currency.code().to_owned()
    }
}

/// An amount: `minor` units of `currency` (cents for EUR). Negative amounts are credits and
/// reductions (a discount line on a receipt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount out of range")]
    Overflow,
}

impl Money {
    pub const fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    pub const fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        self.minor.checked_add(other.minor).map(|minor| Money::new(minor, currency)).ok_or(MoneyError::Overflow)
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        self.minor.checked_sub(other.minor).map(|minor| Money::new(minor, currency)).ok_or(MoneyError::Overflow)
    }

    /// `count` of this amount (`12 × €1.00`).
    pub fn checked_mul(self, count: i64) -> Result<Money, MoneyError> {
        self.minor.checked_mul(count).map(|minor| Money::new(minor, self.currency)).ok_or(MoneyError::Overflow)
    }

    /// `percent` of this amount, rounded to the nearest minor unit with halves rounded away from
    /// zero: 10 % of €0.05 is €0.01. Applied as a discount, the half cent goes to the driver.
    pub fn percent(self, percent: Percent) -> Money {
        let scaled = i128::from(self.minor) * i128::from(percent.0);
        let rounded = (scaled.abs() + 50) / 100 * scaled.signum();
        // |rounded| ≤ |minor| because percent ≤ 100, so it fits back in an i64.
        Money::new(rounded as i64, self.currency)
    }

    fn same_currency(self, other: Money) -> Result<Currency, MoneyError> {
        if self.currency == other.currency {
            Ok(self.currency)
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
}

/// `€12.50`, `-£0.80` for the currencies with a well-known symbol; `12.50 CHF` for the rest.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minor < 0 { "-" } else { "" };
        let decimals = self.currency.decimals();
        let scale = 10u64.pow(decimals);
        let units = self.minor.unsigned_abs() / scale;
        let fraction = self.minor.unsigned_abs() % scale;
        let number = if decimals == 0 {
            units.to_string()
        } else {
            format!("{units}.{fraction:0width$}", width = decimals as usize)
        };
        match self.currency.symbol() {
            Some(symbol) => write!(f, "{sign}{symbol}{number}"),
            None => write!(f, "{sign}{number} {}", self.currency),
        }
    }
}

/// A whole percentage from 0 to 100: a discount can take the whole price, never more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Percent(u8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a percentage is 0 to 100; got {0}")]
pub struct InvalidPercent(u8);

crate::schema::checked_schema!(
    Percent,
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .description(Some("A whole percentage."))
        .minimum(Some(0))
        .maximum(Some(100))
);

impl Percent {
    pub const ALL: Percent = Percent(100);

    pub fn new(value: u8) -> Result<Percent, InvalidPercent> {
        if value <= 100 { Ok(Percent(value)) } else { Err(InvalidPercent(value)) }
    }

    pub fn value(&self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Percent {
    type Error = InvalidPercent;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Percent::new(value)
    }
}

impl From<Percent> for u8 {
    fn from(percent: Percent) -> u8 {
        percent.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR)
    }

    #[test]
    fn amounts_display_with_the_currencys_symbol_or_code_and_its_decimals() {
        let chf = Currency::parse("chf").unwrap();
        let table = [
            (eur(1250), "€12.50"),
            (eur(5), "€0.05"),
            (eur(-80), "-€0.80"),
            (Money::new(300, Currency::USD), "$3.00"),
            (Money::new(1250, chf), "12.50 CHF"),
            (Money::new(1200, Currency::parse("JPY").unwrap()), "1200 JPY"),
            (Money::new(1500, Currency::parse("KWD").unwrap()), "1.500 KWD"),
        ];
        for (money, shown) in table {
            assert_eq!(money.to_string(), shown);
        }
    }

    #[test]
    fn currencies_are_three_letters_and_nothing_else() {
        assert_eq!(Currency::parse("eur"), Ok(Currency::EUR));
        for bad in ["", "EU", "EURO", "E1R", "€€€"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn arithmetic_refuses_mixed_currencies_and_overflow_instead_of_guessing() {
        let usd = Money::new(1, Currency::USD);
        assert_eq!(eur(100).checked_add(eur(25)), Ok(eur(125)));
        assert_eq!(eur(100).checked_sub(eur(125)), Ok(eur(-25)));
        assert_eq!(eur(80).checked_mul(3), Ok(eur(240)));
        assert_eq!(eur(1).checked_add(usd), Err(MoneyError::CurrencyMismatch(Currency::EUR, Currency::USD)));
        assert_eq!(eur(i64::MAX).checked_add(eur(1)), Err(MoneyError::Overflow));
        assert_eq!(eur(i64::MAX).checked_mul(2), Err(MoneyError::Overflow));
    }

    #[test]
    fn a_percentage_rounds_half_cents_away_from_zero() {
        let table = [(1000, 15, 150), (5, 10, 1), (4, 10, 0), (15, 50, 8), (-15, 50, -8), (999, 100, 999), (999, 0, 0)];
        for (minor, percent, expected) in table {
            assert_eq!(eur(minor).percent(Percent::new(percent).unwrap()), eur(expected), "{percent}% of {minor}");
        }
        assert_eq!(eur(i64::MAX).percent(Percent::ALL), eur(i64::MAX));
    }

    #[test]
    fn a_percentage_above_one_hundred_is_refused() {
        assert!(Percent::new(101).is_err());
        assert!(serde_json::from_str::<Percent>("150").is_err());
    }
}
