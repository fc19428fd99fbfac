//! What can make a stay cheaper: a [`Discount`] (free minutes, a fixed amount or a percentage), and
//! the [`Validation`] codes a shop hands out that grant one, with their use limit.

use serde::{Deserialize, Serialize};

use crate::money::Percent;

/// One reduction carried by a stay. How the tariff applies them, in which order, is written on
/// [`crate::Tariff::price`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Discount {
    /// The stay is priced as if it were this many minutes shorter.
    FreeMinutes(u32),
    /// This many minor units of the tariff's currency off the price, never below zero. No currency
    /// of its own, so it cannot disagree with the tariff's.
    FixedMinor(u32),
    /// This share of the price off, rounded as [`crate::Money::percent`] rounds.
    Percent(Percent),
}

/// A validation code (the cinema's stamp, the shop's QR code) and the discount it grants.
///
/// `max_uses` is the code's budget across all drivers; the caller counts uses (it owns the
/// database), and [`Validation::redeem`] is the one place that compares the count with the limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Validation {
    pub code: String,
    pub discount: Discount,
    #[serde(default)]
    pub max_uses: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("validation {code:?} has been used all {max_uses} times it may be")]
pub struct ValidationUsedUp {
    pub code: String,
    pub max_uses: u32,
}

impl Validation {
    /// The discount to put on a stay, given how often the code was redeemed before.
    pub fn redeem(&self, uses_so_far: u32) -> Result<Discount, ValidationUsedUp> {
        match self.max_uses {
            Some(max_uses) if uses_so_far >= max_uses => Err(ValidationUsedUp { code: self.code.clone(), max_uses }),
            _ => Ok(self.discount),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_can_be_redeemed_until_its_uses_run_out() {
        let cinema = Validation { code: "CINEMA".into(), discount: Discount::FreeMinutes(180), max_uses: Some(2) };
        let table = [(0, true), (1, true), (2, false), (7, false)];
        for (uses, redeemable) in table {
            assert_eq!(cinema.redeem(uses).is_ok(), redeemable, "after {uses} uses");
        }
        let unlimited = Validation { max_uses: None, ..cinema };
        assert_eq!(unlimited.redeem(u32::MAX), Ok(Discount::FreeMinutes(180)));
    }

    #[test]
    fn discounts_read_as_small_tables_in_config() {
        let table = [
            (r#"{"free_minutes":30}"#, Discount::FreeMinutes(30)),
            (r#"{"fixed_minor":250}"#, Discount::FixedMinor(250)),
            (r#"{"percent":20}"#, Discount::Percent(Percent::new(20).unwrap())),
        ];
        for (json, discount) in table {
            assert_eq!(serde_json::from_str::<Discount>(json).unwrap(), discount);
        }
        assert!(serde_json::from_str::<Discount>(r#"{"percent":120}"#).is_err());
    }
}
