//! Tariffs by property: for any valid tariff, stay and discounts, the promises a driver relies on
//! hold, and the weekly shortcut for long stays agrees with walking every day.

use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Timelike, Utc, Weekday};
use proptest::prelude::*;
use valet_garage::{Band, Currency, Discount, Percent, RateWindow, Stay, Tariff, TariffSpec, TimeOfDay};

const DAY_SECONDS: i64 = 24 * 60 * 60;

fn time_of_day(minute: u32) -> TimeOfDay {
    TimeOfDay::parse(&format!("{:02}:{:02}", minute / 60, minute % 60)).unwrap()
}

fn minute_of(time: TimeOfDay) -> u32 {
    let text = time.to_string();
    text[..2].parse::<u32>().unwrap() * 60 + text[3..].parse::<u32>().unwrap()
}

fn weekdays() -> impl Strategy<Value = Vec<Weekday>> {
    let all = vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
    proptest::sample::subsequence(all, 0..=7)
}

fn window() -> impl Strategy<Value = RateWindow> {
    (weekdays(), 0u32..1440, 0u32..1440, 1u32..=120, 0i64..=500).prop_map(|(days, from, to, every_minutes, price)| {
        RateWindow {
            name: "window".into(),
            days,
            from: time_of_day(from),
            to: time_of_day(to),
            every_minutes,
            price_minor: price,
        }
    })
}

/// Any tariff `Tariff::new` accepts, within sizes that keep each case fast: up to three bands
/// starting up to 30 hours in, up to two windows, two hours' grace.
fn tariff() -> impl Strategy<Value = Tariff> {
    let bands = prop::collection::vec((1u32..=600, 1u32..=240, 0i64..=500), 1..=3);
    let windows = prop::collection::vec(window(), 0..=2);
    (0u32..=120, -720i32..=720, 0i64..=5000, bands, windows).prop_map(|(grace, offset, daily_max, bands, windows)| {
        let mut from_minute = 0;
        let bands = bands
            .into_iter()
            .enumerate()
            .map(|(i, (gap, every_minutes, price_minor))| {
                if i > 0 {
                    from_minute += gap;
                }
                Band { name: format!("band {i}"), from_minute, every_minutes, price_minor }
            })
            .collect();
        let spec = TariffSpec {
            currency: Currency::EUR,
            utc_offset_minutes: offset,
            grace_minutes: grace,
            daily_max_minor: daily_max,
            bands,
            windows,
            validations: Vec::new(),
        };
        Tariff::new(spec).unwrap()
    })
}

/// An entry anywhere in ten years, to the second.
fn entry() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..10 * 365 * DAY_SECONDS)
        .prop_map(|s| Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap() + TimeDelta::seconds(s))
}

/// Stay lengths in seconds for `tariff`: half anywhere from an hour negative to a fortnight (long
/// enough for the weekly shortcut), half within three minutes of where the tariff changes (the end
/// of grace, a band's start, a day's end), because that is where cliffs hide.
fn length_for(tariff: &Tariff) -> impl Strategy<Value = i64> + use<> {
    let spec = tariff.spec();
    let grace = i64::from(spec.grace_minutes);
    let bands = spec.bands.iter().map(|b| i64::from(b.from_minute));
    let days = (1..=3).flat_map(|d| [d * 1440, d * 1440 + grace]);
    let marks: Vec<i64> = std::iter::once(grace).chain(bands).chain(days).map(|m| m * 60).collect();
    prop_oneof![
        -3600i64..=15 * DAY_SECONDS,
        (proptest::sample::select(marks), -180i64..=180).prop_map(|(mark, near)| mark + near),
    ]
}

fn stay() -> impl Strategy<Value = (Tariff, DateTime<Utc>, i64)> {
    (tariff(), entry()).prop_flat_map(|(tariff, entry)| {
        let length = length_for(&tariff);
        (Just(tariff), Just(entry), length)
    })
}

fn discount() -> impl Strategy<Value = Discount> {
    prop_oneof![
        (0u32..=600).prop_map(Discount::FreeMinutes),
        (0u32..=3000).prop_map(Discount::FixedMinor),
        (0u8..=100).prop_map(|p| Discount::Percent(Percent::new(p).unwrap())),
    ]
}

fn price(tariff: &Tariff, entry: DateTime<Utc>, seconds: i64) -> i64 {
    tariff.price(&Stay::new(entry, entry + TimeDelta::seconds(seconds))).total.minor
}

/// Walks every day of the stay, with no weekly shortcut: what `Tariff::price` must agree with.
fn walked_day_by_day(tariff: &Tariff, entry: DateTime<Utc>, seconds: i64) -> i64 {
    let spec = tariff.spec();
    let minutes = if seconds > 0 { (seconds + 59) / 60 } else { 0 };
    let local = entry.naive_utc() + TimeDelta::minutes(i64::from(spec.utc_offset_minutes));
    let rate = |minute: i64| {
        let t = local + TimeDelta::minutes(minute);
        let minute_of_day = t.hour() * 60 + t.minute();
        let holds = |w: &&RateWindow| {
            let (from, to) = (minute_of(w.from), minute_of(w.to));
            let in_time = if from < to {
                (from..to).contains(&minute_of_day)
            } else {
                from == to || minute_of_day >= from || minute_of_day < to
            };
            in_time && (w.days.is_empty() || w.days.contains(&t.weekday()))
        };
        match spec.windows.iter().find(holds) {
            Some(w) => (w.every_minutes, w.price_minor),
            None => {
                let band = spec.bands.iter().rev().find(|b| i64::from(b.from_minute) <= minute).unwrap();
                (band.every_minutes, band.price_minor)
            }
        }
    };
    let mut total = 0;
    let mut day = 0;
    while day * 1440 < minutes {
        let (mut minute, end) = ((day * 1440).max(i64::from(spec.grace_minutes)), minutes.min((day + 1) * 1440));
        let mut raw = 0;
        while minute < end {
            let (every, price) = rate(minute);
            raw += price;
            minute += i64::from(every);
        }
        total += raw.min(spec.daily_max_minor);
        day += 1;
    }
    total
}

proptest! {
    #[test]
    fn price_never_decreases_with_time((tariff, entry, s) in stay(), more in 0i64..=3 * DAY_SECONDS) {
        prop_assert!(price(&tariff, entry, s) <= price(&tariff, entry, s + more));
    }

    #[test]
    fn one_more_minute_never_costs_more_than_the_dearest_increment((tariff, entry, s) in stay()) {
        let step = price(&tariff, entry, s + 60) - price(&tariff, entry, s);
        prop_assert!(step <= tariff.largest_increment_price().minor, "one minute added {step}");
    }

    #[test]
    fn no_stay_costs_more_than_its_started_days_at_the_daily_maximum((tariff, entry, s) in stay()) {
        let started_days = if s > 0 { (s - 1) / DAY_SECONDS + 1 } else { 0 };
        prop_assert!(price(&tariff, entry, s) <= started_days * tariff.daily_max().minor);
    }

    #[test]
    fn the_grace_period_is_free(tariff in tariff(), entry in entry(), permille in 0i64..=1000) {
        let grace_seconds = i64::from(tariff.spec().grace_minutes) * 60;
        prop_assert_eq!(price(&tariff, entry, grace_seconds * permille / 1000), 0);
    }

    #[test]
    fn lines_add_up_to_a_total_that_is_never_negative(
        (tariff, entry, s) in stay(), discounts in prop::collection::vec(discount(), 0..=3),
    ) {
        let stay = Stay { entry, exit: entry + TimeDelta::seconds(s), discounts };
        let price = tariff.price(&stay);
        let sum: i64 = price.lines.iter().map(|l| l.amount.minor).sum();
        prop_assert_eq!(sum, price.total.minor);
        prop_assert!(price.total.minor >= 0);
    }

    #[test]
    fn discounts_never_raise_the_price(
        (tariff, entry, s) in stay(), discounts in prop::collection::vec(discount(), 1..=3),
    ) {
        let stay = Stay { entry, exit: entry + TimeDelta::seconds(s), discounts };
        prop_assert!(tariff.price(&stay).total.minor <= price(&tariff, entry, s));
    }

    #[test]
    fn long_stays_cost_what_walking_every_day_costs(tariff in tariff(), entry in entry(), days in 0i64..=40, s in 0..DAY_SECONDS) {
        let seconds = days * DAY_SECONDS + s;
        prop_assert_eq!(price(&tariff, entry, seconds), walked_day_by_day(&tariff, entry, seconds));
    }
}
