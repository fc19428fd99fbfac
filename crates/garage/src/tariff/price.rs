//! Pricing a [`Stay`]: walking its increments, capping each 24 hours, applying discounts, and the
//! [`Price`] lines a receipt prints.
//!
//! The walk is what rules out the prototype's cliff. Increments start at fixed minutes after entry
//! (after the grace period), each started one is charged once, and an exit only decides how many
//! have started, so a later exit can only add increments, one minute adds at most one, and 61
//! minutes at $3.00 per hour costs $6.00.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Serialize};

use super::{MINUTES_PER_DAY, Tariff};
use crate::discount::Discount;
use crate::missed_exit::MissedExitPolicy;
use crate::money::Money;

const DAY: i64 = MINUTES_PER_DAY as i64;
const DAYS_PER_WEEK: i64 = 7;

/// One visit to be priced: the times come from the gate reads, the discounts from validations and
/// permits the caller has already redeemed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stay {
    pub entry: DateTime<Utc>,
    pub exit: DateTime<Utc>,
    #[serde(default)]
    pub discounts: Vec<Discount>,
}

impl Stay {
    pub fn new(entry: DateTime<Utc>, exit: DateTime<Utc>) -> Stay {
        Stay { entry, exit, discounts: Vec::new() }
    }

    pub fn with_discount(mut self, discount: Discount) -> Stay {
        self.discounts.push(discount);
        self
    }
}

/// What a stay costs, and why. Invariant: the lines' amounts add up to `total`, and `total` is
/// never negative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Price {
    pub total: Money,
    pub lines: Vec<PriceLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PriceLine {
    pub item: LineItem,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineItem {
    /// `count` started increments of `every_minutes` at `price` each, under the band or window `rate`.
    Increments {
        rate: String,
        count: u64,
        every_minutes: u32,
        price: Money,
    },
    /// What the daily maximum took off, over the `days` of the stay where it applied.
    DailyMaximum {
        days: u64,
    },
    Discount(Discount),
    /// No exit was read: the stay is priced by the policy it was closed under, not by its length.
    MissedExit {
        policy: MissedExitPolicy,
    },
}

impl fmt::Display for LineItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineItem::Increments { rate, count, every_minutes, price } => {
                write!(f, "{rate}: {count} × {every_minutes} min at {price}")
            }
            LineItem::DailyMaximum { days: 1 } => write!(f, "daily maximum"),
            LineItem::DailyMaximum { days } => write!(f, "daily maximum, {days} days"),
            LineItem::Discount(Discount::FreeMinutes(minutes)) => write!(f, "{minutes} free minutes"),
            LineItem::Discount(Discount::FixedMinor(_)) => write!(f, "discount"),
            LineItem::Discount(Discount::Percent(percent)) => write!(f, "{} % off", percent.value()),
            LineItem::MissedExit { policy: MissedExitPolicy::DailyMaximum } => write!(f, "missed exit: daily maximum"),
            LineItem::MissedExit { policy: MissedExitPolicy::Free } => write!(f, "missed exit: free"),
        }
    }
}

/// Started increments per rate (bands first, then windows) and what they cost before and after
/// each 24 hours' cap. Sums are `i128` so that adding never has to be thought about; validated
/// prices keep every result within `i64` (see [`super::MAX_INCREMENT_PRICE_MINOR`]).
#[derive(Debug, Clone, Default)]
struct Tally {
    counts: Vec<u64>,
    uncapped: i128,
    capped: i128,
    capped_days: u64,
}

impl Tally {
    fn add(&mut self, day: &Tally, times: u64) {
        if self.counts.len() < day.counts.len() {
            self.counts.resize(day.counts.len(), 0);
        }
        for (total, count) in self.counts.iter_mut().zip(&day.counts) {
            *total += count * times;
        }
        self.uncapped += day.uncapped * i128::from(times);
        self.capped += day.capped * i128::from(times);
        self.capped_days += day.capped_days * times;
    }
}

impl Tariff {
    /// The price of `stay`. Total: any stay, including one that ends before it starts, gets a price
    /// (zero for no time at all), and nothing here panics.
    ///
    /// Order: increments started after the grace period, each 24 hours from entry capped at the
    /// daily maximum; then free minutes (priced as the same stay that much shorter); then
    /// percentages, each of what is left; then fixed amounts, never below zero.
    pub fn price(&self, stay: &Stay) -> Price {
        let currency = self.currency();
        let money = |minor: i128| Money::new(minor.clamp(i64::MIN.into(), i64::MAX.into()) as i64, currency);
        // Local time is found per increment (`rate_at`), where going past chrono's range is checked.
        let entry = stay.entry.naive_utc();
        // Increments start on whole minutes after entry, so what matters is how many minutes have begun.
        let seconds = (stay.exit - stay.entry).num_seconds();
        let mut minutes = if seconds > 0 { (seconds - 1) / 60 + 1 } else { 0 };

        let tally = self.tally(entry, minutes);
        let mut lines = self.increment_lines(&tally);
        if tally.uncapped > tally.capped {
            let item = LineItem::DailyMaximum { days: tally.capped_days };
            lines.push(PriceLine { item, amount: money(tally.capped - tally.uncapped) });
        }
        let mut total = tally.capped;
        for discount in &stay.discounts {
            if let Discount::FreeMinutes(free) = *discount {
                minutes = (minutes - i64::from(free)).max(0);
                let shorter = self.tally(entry, minutes).capped;
                lines.push(PriceLine { item: LineItem::Discount(*discount), amount: money(shorter - total) });
                total = shorter;
            }
        }
        for discount in &stay.discounts {
            if let Discount::Percent(percent) = *discount {
                let off = i128::from(money(total).percent(percent).minor);
                lines.push(PriceLine { item: LineItem::Discount(*discount), amount: money(-off) });
                total -= off;
            }
        }
        for discount in &stay.discounts {
            if let Discount::FixedMinor(amount) = *discount {
                let off = i128::from(amount).min(total);
                lines.push(PriceLine { item: LineItem::Discount(*discount), amount: money(-off) });
                total -= off;
            }
        }
        Price { total: money(total), lines }
    }

    fn increment_lines(&self, tally: &Tally) -> Vec<PriceLine> {
        let bands = self.spec.bands.iter().map(|b| (&b.name, b.every_minutes, b.price_minor));
        let windows = self.spec.windows.iter().map(|w| (&w.name, w.every_minutes, w.price_minor));
        bands
            .chain(windows)
            .zip(&tally.counts)
            .filter(|(_, count)| **count > 0)
            .map(|((rate, every_minutes, price_minor), &count)| {
                let price = Money::new(price_minor, self.currency());
                let amount = price.checked_mul(i64::try_from(count).unwrap_or(i64::MAX));
                let amount = amount.unwrap_or(Money::new(i64::MAX, self.currency()));
                PriceLine { item: LineItem::Increments { rate: rate.clone(), count, every_minutes, price }, amount }
            })
            .collect()
    }

    /// Increments started in the first `minutes` minutes of a stay that began at `entry` (UTC).
    ///
    /// Each 24 hours from entry is walked on its own, its grid restarting at the day's first minute,
    /// so that days are independent. A whole day past the grace period and the last band's start
    /// depends only on its weekday and its starting time, which repeat weekly: such days are walked
    /// once per weekday and counted, so a year's stay costs no more work than a fortnight's.
    fn tally(&self, entry: NaiveDateTime, minutes: i64) -> Tally {
        let mut tally = Tally::default();
        if minutes <= 0 {
            return tally;
        }
        let days = (minutes - 1) / DAY + 1;
        let last_band = self.spec.bands.last().map_or(0, |b| i64::from(b.from_minute));
        let settled = (i64::from(self.spec.grace_minutes).max(last_band) + DAY - 1) / DAY;
        // Days before `settled`, and the last day (cut short by the exit), are walked one by one.
        for day in (0..settled.min(days)).chain((days - 1).max(settled)..days) {
            tally.add(&self.day(entry, day, minutes), 1);
        }
        let repeating = (days - 1 - settled).max(0);
        for phase in 0..repeating.min(DAYS_PER_WEEK) {
            let times = (repeating - phase - 1) / DAYS_PER_WEEK + 1;
            tally.add(&self.day(entry, settled + phase, minutes), times.unsigned_abs());
        }
        tally
    }

    /// Day `day` of the stay (minutes `day × 1440` to `(day + 1) × 1440` after entry), capped.
    fn day(&self, entry: NaiveDateTime, day: i64, minutes: i64) -> Tally {
        let rates = self.spec.bands.len() + self.spec.windows.len();
        let mut tally = Tally { counts: vec![0; rates], ..Tally::default() };
        let end = minutes.min((day + 1) * DAY);
        let mut minute = (day * DAY).max(i64::from(self.spec.grace_minutes));
        while minute < end {
            let (rate, every_minutes, price_minor) = self.rate_at(entry, minute);
            tally.counts[rate] += 1;
            tally.uncapped += i128::from(price_minor);
            minute += i64::from(every_minutes);
        }
        tally.capped = tally.uncapped.min(i128::from(self.spec.daily_max_minor));
        tally.capped_days = u64::from(tally.capped < tally.uncapped);
        tally
    }

    /// The rate of the increment starting `minute` minutes after entry (UTC): (index, length, price).
    fn rate_at(&self, entry: NaiveDateTime, minute: i64) -> (usize, u32, i64) {
        let since_local_entry = minute + i64::from(self.spec.utc_offset_minutes);
        let local = TimeDelta::try_minutes(since_local_entry).and_then(|delta| entry.checked_add_signed(delta));
        let window = local.and_then(|local| {
            let minute_of_day = (local.hour() * 60 + local.minute()) as u16;
            self.spec.windows.iter().enumerate().find(|(_, w)| w.holds(local.weekday(), minute_of_day))
        });
        if let Some((index, w)) = window {
            return (self.spec.bands.len() + index, w.every_minutes, w.price_minor);
        }
        // Validation guarantees a first band at minute 0, so some band always applies.
        let index = self.spec.bands.iter().rposition(|b| i64::from(b.from_minute) <= minute).unwrap_or(0);
        let band = &self.spec.bands[index];
        (index, band.every_minutes, band.price_minor)
    }
}
