//! A stay whose exit was never read (a camera down, a car out behind another, a barrier lifted by
//! hand): the session stays open, and the car cannot be charged for a time nobody saw. Such a stay
//! is closed under a [`MissedExitPolicy`]: at the tariff's daily maximum, the usual price of a
//! lost ticket, or free. The policy prices the stay once, whatever its length: nobody knows when
//! the car left.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::session::Exit;
use crate::tariff::{LineItem, Price, PriceLine, Tariff};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissedExitPolicy {
    /// One day at the tariff's daily maximum.
    DailyMaximum,
    /// Nothing: the garage's loss, or a car known to have left.
    Free,
}

impl MissedExitPolicy {
    pub const NAMES: [&'static str; 2] = ["daily_maximum", "free"];

    pub fn name(self) -> &'static str {
        match self {
            MissedExitPolicy::DailyMaximum => "daily_maximum",
            MissedExitPolicy::Free => "free",
        }
    }

    /// The exit a missed-exit stay is closed with, at `at` (when it was closed, not when the car
    /// left, which nobody saw).
    pub fn exit(self, tariff: &Tariff, at: DateTime<Utc>) -> Exit {
        let amount = match self {
            MissedExitPolicy::DailyMaximum => tariff.daily_max(),
            MissedExitPolicy::Free => Money::new(0, tariff.spec().currency),
        };
        let line = PriceLine { item: LineItem::MissedExit { policy: self }, amount };
        Exit { at, price: Price { total: amount, lines: vec![line] } }
    }
}

impl fmt::Display for MissedExitPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a missed-exit policy is daily_maximum or free, not {0:?}")]
pub struct InvalidMissedExitPolicy(pub String);

impl FromStr for MissedExitPolicy {
    type Err = InvalidMissedExitPolicy;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "daily_maximum" => Ok(MissedExitPolicy::DailyMaximum),
            "free" => Ok(MissedExitPolicy::Free),
            other => Err(InvalidMissedExitPolicy(other.chars().take(40).collect())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::tariff::{Band, TariffSpec};

    fn tariff() -> Tariff {
        let band = Band { name: "hour".into(), from_minute: 0, every_minutes: 60, price_minor: 300 };
        let spec = TariffSpec {
            currency: Currency::EUR,
            utc_offset_minutes: 0,
            grace_minutes: 0,
            daily_max_minor: 2400,
            bands: vec![band],
            windows: Vec::new(),
            validations: Vec::new(),
        };
        Tariff::new(spec).unwrap()
    }

    #[test]
    fn a_missed_exit_is_priced_once_by_its_policy_whatever_the_stay() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let daily = MissedExitPolicy::DailyMaximum.exit(&tariff(), at);
        assert_eq!((daily.at, daily.price.total), (at, Money::new(2400, Currency::EUR)));
        assert_eq!(daily.price.lines.iter().map(|l| l.amount).collect::<Vec<_>>(), [Money::new(2400, Currency::EUR)]);
        assert_eq!(daily.price.lines[0].item.to_string(), "missed exit: daily maximum");
        let free = MissedExitPolicy::Free.exit(&tariff(), at);
        assert!(free.price.total.is_zero());
        assert_eq!(free.price.lines[0].item.to_string(), "missed exit: free");
    }

    #[test]
    fn a_policy_is_read_by_its_name_and_nothing_else() {
        for policy in [MissedExitPolicy::DailyMaximum, MissedExitPolicy::Free] {
            assert_eq!(policy.name().parse(), Ok(policy));
            assert_eq!(serde_json::to_value(policy).unwrap(), policy.name());
        }
        assert_eq!(MissedExitPolicy::NAMES, ["daily_maximum", "free"]);
        for bad in ["", "daily max", "FREE", "charge"] {
            assert!(bad.parse::<MissedExitPolicy>().is_err(), "{bad}");
        }
    }
}
