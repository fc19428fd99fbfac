//! A [`Tariff`] as the operator writes it (TOML or JSON, shaped as [`TariffSpec`]) and the checks
//! that make every accepted tariff priceable. Pricing itself is in `tariff/price.rs`.
//!
//! Invariant: a `Tariff` value has passed [`Tariff::new`], so [`Tariff::price`] never meets a zero
//! increment (an endless walk), a band list without a start, or a price large enough to overflow.

mod price;

use std::fmt;

use chrono::Weekday;
use serde::{Deserialize, Serialize};

pub use price::{LineItem, Price, PriceLine, Stay};

use crate::discount::Validation;
use crate::money::{Currency, Money};

/// Largest price of one increment, in minor units: €100,000.00 in a two-decimal currency. Far above
/// any real tariff (so a typo is refused), and low enough that no stay chrono can represent
/// overflows an `i64` total even before the daily maximum applies.
pub const MAX_INCREMENT_PRICE_MINOR: i64 = 10_000_000;
/// Bands may start, and grace may last, at most a week into a stay: later stays are priced per
/// day by the daily maximum, and the bound keeps pricing a century-long stay as cheap as a week's.
pub const MAX_SCHEDULE_MINUTES: u32 = 7 * 24 * 60;
const MINUTES_PER_DAY: u32 = 24 * 60;

/// The operator's words: what a tariff file holds. Amounts are minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TariffSpec {
    pub currency: Currency,
    /// The garage's offset from UTC, for night and weekend windows. Fixed: daylight saving time is
    /// not modelled, so a garage that observes it edits this twice a year (an audited tariff change).
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// The first minutes of every stay are free, and a stay no longer than this costs nothing.
    #[serde(default)]
    pub grace_minutes: u32,
    /// The most any 24 hours of a stay (counted from entry: hours 0–24, 24–48, …) can cost.
    pub daily_max_minor: i64,
    /// Increment prices by time since entry; the first starts at minute 0, later ones strictly later.
    pub bands: Vec<Band>,
    /// Night, weekend and other windows of local time; the first window holding an increment's
    /// start prices that increment instead of the band.
    #[serde(default)]
    pub windows: Vec<RateWindow>,
    #[serde(default)]
    pub validations: Vec<Validation>,
}

/// From `from_minute` after entry on, each started `every_minutes` costs `price_minor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub name: String,
    pub from_minute: u32,
    pub every_minutes: u32,
    pub price_minor: i64,
}

/// Local times (on the listed weekdays, every day if none) when increments have their own length
/// and price. `from` is inclusive, `to` exclusive; a window with `to` before `from` runs past
/// midnight (22:00–06:00), and one with `from == to` lasts all day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateWindow {
    pub name: String,
    #[serde(default)]
    #[schema(schema_with = weekdays)]
    pub days: Vec<Weekday>,
    pub from: TimeOfDay,
    pub to: TimeOfDay,
    pub every_minutes: u32,
    pub price_minor: i64,
}

impl RateWindow {
    fn holds(&self, weekday: Weekday, minute_of_day: u16) -> bool {
        let (from, to) = (self.from.0, self.to.0);
        let in_time = match from.cmp(&to) {
            std::cmp::Ordering::Less => (from..to).contains(&minute_of_day),
            std::cmp::Ordering::Greater => minute_of_day >= from || minute_of_day < to,
            std::cmp::Ordering::Equal => true,
        };
        in_time && (self.days.is_empty() || self.days.contains(&weekday))
    }
}

/// `RateWindow::days`' schema: chrono writes a weekday as its English name's first three letters.
fn weekdays() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let day = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]));
    ArrayBuilder::new().items(day).description(Some("Every day when empty.")).build()
}

/// A local wall-clock time to the minute, written `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeOfDay(u16);

crate::schema::checked_schema!(
    TimeOfDay,
    crate::schema::string("A local time to the minute, `HH:MM`.", Some("^([01][0-9]|2[0-3]):[0-5][0-9]$"))
);

impl TimeOfDay {
    pub fn parse(text: &str) -> Result<TimeOfDay, TariffError> {
        let bad = || TariffError::TimeOfDay(text.to_owned());
        let (hours, minutes) = text.split_once(':').ok_or_else(bad)?;
        let hours: u16 = hours.parse().map_err(|_| bad())?;
        let minutes: u16 = minutes.parse().map_err(|_| bad())?;
        if hours < 24 && minutes < 60 && text.len() == 5 { Ok(TimeOfDay(hours * 60 + minutes)) } else { Err(bad()) }
    }
}

impl TryFrom<String> for TimeOfDay {
    type Error = TariffError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        TimeOfDay::parse(&text)
    }
}

impl From<TimeOfDay> for String {
    fn from(time: TimeOfDay) -> String {
        time.to_string()
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TariffError {
    #[error("a tariff needs at least one band")]
    NoBands,
    #[error("the first band must start at minute 0, {0:?} starts at {1}")]
    FirstBandLate(String, u32),
    #[error("band {0:?} must start after the band before it")]
    BandsOutOfOrder(String),
    #[error("{0:?}: bands and grace may reach at most {MAX_SCHEDULE_MINUTES} minutes into a stay, not {1}")]
    TooFarIntoStay(String, u32),
    #[error("{0:?}: an increment lasts 1 to {MINUTES_PER_DAY} minutes, not {1}")]
    Increment(String, u32),
    #[error("{0:?}: a price is 0 to {MAX_INCREMENT_PRICE_MINOR} minor units, not {1}")]
    Price(String, i64),
    #[error("the daily maximum must be 0 to {max} minor units, not {0}", max = MAX_INCREMENT_PRICE_MINOR * 1440)]
    DailyMax(i64),
    #[error("a UTC offset is under 24 hours either way, not {0} minutes")]
    UtcOffset(i32),
    #[error("validation code {0:?} is listed twice")]
    DuplicateValidation(String),
    #[error("a time of day is written HH:MM (00:00 to 23:59), not {0:?}")]
    TimeOfDay(String),
    #[error("tariff TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("tariff JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A checked [`TariffSpec`]: build one with [`Tariff::new`], [`Tariff::from_toml`] or
/// [`Tariff::from_json`], then [`Tariff::price`] stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TariffSpec", into = "TariffSpec")]
pub struct Tariff {
    spec: TariffSpec,
}

impl Tariff {
    pub fn new(spec: TariffSpec) -> Result<Tariff, TariffError> {
        if spec.utc_offset_minutes.unsigned_abs() >= MINUTES_PER_DAY {
            return Err(TariffError::UtcOffset(spec.utc_offset_minutes));
        }
        if spec.grace_minutes > MAX_SCHEDULE_MINUTES {
            return Err(TariffError::TooFarIntoStay("grace".into(), spec.grace_minutes));
        }
        if !(0..=MAX_INCREMENT_PRICE_MINOR * i64::from(MINUTES_PER_DAY)).contains(&spec.daily_max_minor) {
            return Err(TariffError::DailyMax(spec.daily_max_minor));
        }
        let first = spec.bands.first().ok_or(TariffError::NoBands)?;
        if first.from_minute != 0 {
            return Err(TariffError::FirstBandLate(first.name.clone(), first.from_minute));
        }
        for pair in spec.bands.windows(2) {
            if pair[1].from_minute <= pair[0].from_minute {
                return Err(TariffError::BandsOutOfOrder(pair[1].name.clone()));
            }
        }
        for band in &spec.bands {
            if band.from_minute > MAX_SCHEDULE_MINUTES {
                return Err(TariffError::TooFarIntoStay(band.name.clone(), band.from_minute));
            }
        }
        let rates = spec.bands.iter().map(|b| (&b.name, b.every_minutes, b.price_minor));
        let windows = spec.windows.iter().map(|w| (&w.name, w.every_minutes, w.price_minor));
        for (name, every_minutes, price_minor) in rates.chain(windows) {
            if !(1..=MINUTES_PER_DAY).contains(&every_minutes) {
                return Err(TariffError::Increment(name.clone(), every_minutes));
            }
            if !(0..=MAX_INCREMENT_PRICE_MINOR).contains(&price_minor) {
                return Err(TariffError::Price(name.clone(), price_minor));
            }
        }
        for (i, validation) in spec.validations.iter().enumerate() {
            if spec.validations[..i].iter().any(|v| v.code == validation.code) {
                return Err(TariffError::DuplicateValidation(validation.code.clone()));
            }
        }
        Ok(Tariff { spec })
    }

    pub fn from_toml(text: &str) -> Result<Tariff, TariffError> {
        Tariff::new(toml::from_str(text)?)
    }

    pub fn from_json(text: &str) -> Result<Tariff, TariffError> {
        Tariff::new(serde_json::from_str(text)?)
    }

    pub fn spec(&self) -> &TariffSpec {
        &self.spec
    }

    pub fn currency(&self) -> Currency {
        self.spec.currency
    }

    pub fn daily_max(&self) -> Money {
        Money::new(self.spec.daily_max_minor, self.spec.currency)
    }

    /// The dearest single increment of any band or window: the most one more minute can ever add.
    pub fn largest_increment_price(&self) -> Money {
        let bands = self.spec.bands.iter().map(|b| b.price_minor);
        let windows = self.spec.windows.iter().map(|w| w.price_minor);
        Money::new(bands.chain(windows).max().unwrap_or(0), self.spec.currency)
    }

    pub fn validation(&self, code: &str) -> Option<&Validation> {
        self.spec.validations.iter().find(|v| v.code == code)
    }
}

impl TryFrom<TariffSpec> for Tariff {
    type Error = TariffError;
    fn try_from(spec: TariffSpec) -> Result<Self, Self::Error> {
        Tariff::new(spec)
    }
}

impl From<Tariff> for TariffSpec {
    fn from(tariff: Tariff) -> TariffSpec {
        tariff.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band(name: &str, from_minute: u32, every_minutes: u32, price_minor: i64) -> Band {
        Band { name: name.into(), from_minute, every_minutes, price_minor }
    }

    fn spec(bands: Vec<Band>) -> TariffSpec {
        TariffSpec {
            currency: Currency::EUR,
            utc_offset_minutes: 0,
            grace_minutes: 0,
            daily_max_minor: 2000,
            bands,
            windows: Vec::new(),
            validations: Vec::new(),
        }
    }

    #[test]
    fn tariffs_that_could_not_be_priced_are_refused_with_the_reason() {
        type IsExpected = fn(&TariffError) -> bool;
        let table: [(&str, TariffSpec, IsExpected); 8] = [
            ("no bands", spec(vec![]), |e| matches!(e, TariffError::NoBands)),
            ("late first band", spec(vec![band("a", 5, 15, 100)]), |e| matches!(e, TariffError::FirstBandLate(..))),
            (
                "bands out of order",
                spec(vec![band("a", 0, 15, 100), band("b", 60, 30, 80), band("c", 60, 30, 80)]),
                |e| matches!(e, TariffError::BandsOutOfOrder(n) if n == "c"),
            ),
            ("zero increment", spec(vec![band("a", 0, 0, 100)]), |e| matches!(e, TariffError::Increment(..))),
            ("negative price", spec(vec![band("a", 0, 15, -1)]), |e| matches!(e, TariffError::Price(..))),
            (
                "band past a week",
                spec(vec![band("a", 0, 15, 100), band("b", MAX_SCHEDULE_MINUTES + 1, 15, 100)]),
                |e| matches!(e, TariffError::TooFarIntoStay(..)),
            ),
            ("negative daily max", TariffSpec { daily_max_minor: -1, ..spec(vec![band("a", 0, 15, 100)]) }, |e| {
                matches!(e, TariffError::DailyMax(-1))
            }),
            ("offset of a day", TariffSpec { utc_offset_minutes: 1440, ..spec(vec![band("a", 0, 15, 100)]) }, |e| {
                matches!(e, TariffError::UtcOffset(1440))
            }),
        ];
        for (case, spec, expected) in table {
            let error = Tariff::new(spec).unwrap_err();
            assert!(expected(&error), "{case}: got {error}");
        }
    }

    #[test]
    fn a_tariff_loads_from_toml_and_from_json_alike() {
        let toml = r#"
            currency = "EUR"
            utc_offset_minutes = 60
            grace_minutes = 10
            daily_max_minor = 2000

            [[bands]]
            name = "first hour"
            from_minute = 0
            every_minutes = 15
            price_minor = 100

            [[bands]]
            name = "after the first hour"
            from_minute = 60
            every_minutes = 30
            price_minor = 80

            [[windows]]
            name = "night"
            from = "22:00"
            to = "06:00"
            every_minutes = 60
            price_minor = 50

            [[windows]]
            name = "weekend"
            days = ["Sat", "Sun"]
            from = "00:00"
            to = "00:00"
            every_minutes = 60
            price_minor = 60

            [[validations]]
            code = "CINEMA"
            discount = { free_minutes = 180 }
            max_uses = 500
        "#;
        let from_toml = Tariff::from_toml(toml).unwrap();
        let json = serde_json::to_string(&from_toml).unwrap();
        assert_eq!(Tariff::from_json(&json).unwrap(), from_toml);
        assert_eq!(from_toml.largest_increment_price(), Money::new(100, Currency::EUR));
        assert_eq!(from_toml.spec().windows[1].days, [Weekday::Sat, Weekday::Sun]);
        assert!(from_toml.validation("CINEMA").is_some());
    }

    #[test]
    fn a_tariff_file_with_a_bad_value_says_which() {
        let error = Tariff::from_toml("currency = \"EUR\"\ndaily_max_minor = 1\nbands = []").unwrap_err();
        assert!(error.to_string().contains("at least one band"), "{error}");
        let error = Tariff::from_json(r#"{"currency":"EUR","daily_max_minor":1,"bands":[],"colour":1}"#).unwrap_err();
        assert!(error.to_string().contains("colour"), "{error}");
    }

    #[test]
    fn times_of_day_are_hours_and_minutes() {
        assert_eq!(TimeOfDay::parse("06:30").unwrap().to_string(), "06:30");
        for bad in ["24:00", "6:30", "06:60", "0630", "06:3x"] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_past_midnight_and_all_day_windows_hold_the_right_minutes() {
        let window = |from: &str, to: &str, days: Vec<Weekday>| RateWindow {
            name: "w".into(),
            days,
            from: TimeOfDay::parse(from).unwrap(),
            to: TimeOfDay::parse(to).unwrap(),
            every_minutes: 60,
            price_minor: 0,
        };
        let night = window("22:00", "06:00", vec![]);
        let weekend = window("00:00", "00:00", vec![Weekday::Sat, Weekday::Sun]);
        let table = [
            (&night, Weekday::Mon, 22 * 60, true),
            (&night, Weekday::Mon, 5 * 60 + 59, true),
            (&night, Weekday::Mon, 6 * 60, false),
            (&night, Weekday::Mon, 21 * 60 + 59, false),
            (&weekend, Weekday::Sat, 0, true),
            (&weekend, Weekday::Sun, 1439, true),
            (&weekend, Weekday::Fri, 1439, false),
        ];
        for (window, day, minute, holds) in table {
            assert_eq!(window.holds(day, minute), holds, "{day} {minute}");
        }
    }
}
