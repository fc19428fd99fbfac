//! Tariffs by example: stays a person can price on paper, including the prototype's cliff.

use chrono::{DateTime, TimeDelta, Utc};
use valet_garage::{Currency, Discount, LineItem, Money, Percent, RateWindow, Stay, Tariff, TariffSpec, TimeOfDay};

use crate::helpers::{band, city_centre, eur, minutes, monday};

fn price_of(tariff: &Tariff, stay: TimeDelta) -> Money {
    tariff.price(&Stay::new(monday(), monday() + stay)).total
}

#[test]
fn the_city_centre_tariff_prices_stays_as_its_sign_reads() {
    let tariff = city_centre();
    let table = [
        (TimeDelta::zero(), 0, "no time"),
        (minutes(-30), 0, "exit before entry"),
        (minutes(10), 0, "the whole grace period"),
        (minutes(10) + TimeDelta::seconds(1), 100, "one second past grace starts the first increment"),
        (minutes(25), 100, "first increment runs minutes 10-25"),
        (minutes(26), 200, "second increment started"),
        (minutes(60), 400, "four increments in the first hour"),
        (minutes(70), 400, "the fourth increment runs to minute 70"),
        (minutes(71), 480, "then €0.80 per 30 minutes"),
        (minutes(24 * 60), 2000, "capped at the daily maximum"),
        (minutes(24 * 60 + 1), 2080, "the second day starts its own increments"),
        (minutes(48 * 60), 4000, "two capped days"),
    ];
    for (stay, minor, why) in table {
        assert_eq!(price_of(&tariff, stay), eur(minor), "{why}");
    }
}

/// The prototype charged $3.00 for 60 minutes and $9.00 for 61.
#[test]
fn sixty_one_minutes_at_three_dollars_an_hour_cost_three_dollars_plus_one_increment() {
    let tariff = Tariff::new(TariffSpec {
        currency: Currency::USD,
        utc_offset_minutes: 0,
        grace_minutes: 0,
        daily_max_minor: 2400,
        bands: vec![band("hourly", 0, 60, 300)],
        windows: Vec::new(),
        validations: Vec::new(),
    })
    .unwrap();
    let usd = |minor| Money::new(minor, Currency::USD);
    assert_eq!(price_of(&tariff, minutes(60)), usd(300));
    assert_eq!(price_of(&tariff, minutes(61)), usd(600));
    assert_eq!(price_of(&tariff, minutes(120)), usd(600));
    assert_eq!(price_of(&tariff, minutes(121)), usd(900));
}

fn with_windows(utc_offset_minutes: i32) -> Tariff {
    let time = |text| TimeOfDay::parse(text).unwrap();
    Tariff::new(TariffSpec {
        currency: Currency::EUR,
        utc_offset_minutes,
        grace_minutes: 0,
        daily_max_minor: 2000,
        bands: vec![band("day", 0, 30, 100)],
        windows: vec![
            RateWindow {
                name: "weekend".into(),
                days: vec![chrono::Weekday::Sat, chrono::Weekday::Sun],
                from: time("00:00"),
                to: time("00:00"),
                every_minutes: 60,
                price_minor: 60,
            },
            RateWindow {
                name: "night".into(),
                days: Vec::new(),
                from: time("22:00"),
                to: time("06:00"),
                every_minutes: 60,
                price_minor: 50,
            },
        ],
        validations: Vec::new(),
    })
    .unwrap()
}

#[test]
fn each_increment_takes_the_rate_of_the_window_it_starts_in() {
    let at = |day: i64, hour: i64, minute: i64| monday() + TimeDelta::days(day) + minutes(hour * 60 + minute);
    let table: [(DateTime<Utc>, i64, i64, &str); 5] = [
        (at(0, 21, 30), 120, 200, "21:30 day €1.00, then 22:00 and 23:00 at night €0.50"),
        (at(0, 5, 30), 61, 150, "05:30 night €0.50 for an hour, then 06:30 day €1.00"),
        (at(5, 10, 0), 180, 180, "Saturday: three weekend hours at €0.60"),
        (at(6, 23, 0), 120, 110, "Sunday 23:00 weekend wins over night, Monday 00:00 is night"),
        (at(4, 12, 0), 0, 0, "no time is free in any window"),
    ];
    for (entry, stay, minor, why) in table {
        let price = with_windows(0).price(&Stay::new(entry, entry + minutes(stay)));
        assert_eq!(price.total, eur(minor), "{why}: {:?}", price.lines);
    }
}

#[test]
fn windows_are_in_the_garages_local_time() {
    // 20:30 UTC is 21:30 an hour east of Greenwich: the same stay as the first row above.
    let entry = monday() + minutes(20 * 60 + 30);
    assert_eq!(with_windows(60).price(&Stay::new(entry, entry + minutes(120))).total, eur(200));
    assert_eq!(with_windows(0).price(&Stay::new(entry, entry + minutes(120))).total, eur(350));
}

#[test]
fn lines_say_what_was_charged_and_add_up_to_the_total() {
    let entry = monday() + minutes(21 * 60 + 30);
    let price = with_windows(0).price(&Stay::new(entry, entry + minutes(120)));
    let shown: Vec<_> = price.lines.iter().map(|l| format!("{} = {}", l.item, l.amount)).collect();
    assert_eq!(shown, ["day: 1 × 30 min at €1.00 = €1.00", "night: 2 × 60 min at €0.50 = €1.00"]);

    let capped = city_centre().price(&Stay::new(monday(), monday() + minutes(30 * 60)));
    let sum = capped.lines.iter().try_fold(eur(0), |sum, line| sum.checked_add(line.amount)).unwrap();
    assert_eq!(sum, capped.total);
    assert!(capped.lines.iter().any(|l| l.item == LineItem::DailyMaximum { days: 1 }), "{:?}", capped.lines);
}

#[test]
fn discounts_apply_free_minutes_then_percentages_then_fixed_amounts() {
    let tariff = city_centre();
    let hour = || Stay::new(monday(), monday() + minutes(60));
    let half = Discount::Percent(Percent::new(50).unwrap());
    let table = [
        (hour(), 400, "no discount"),
        (hour().with_discount(Discount::FreeMinutes(30)), 200, "priced as 30 minutes"),
        (hour().with_discount(Discount::FreeMinutes(90)), 0, "more free minutes than the stay"),
        (hour().with_discount(half), 200, "half off"),
        (hour().with_discount(Discount::FixedMinor(500)), 0, "never below zero"),
        (hour().with_discount(Discount::Percent(Percent::ALL)), 0, "a free permit"),
        (
            hour().with_discount(Discount::FixedMinor(50)).with_discount(half).with_discount(Discount::FreeMinutes(30)),
            50,
            "30 minutes = €2.00, half off = €1.00, less €0.50, whatever order they were given in",
        ),
    ];
    for (stay, minor, why) in table {
        let price = tariff.price(&stay);
        assert_eq!(price.total, eur(minor), "{why}");
        let sum = price.lines.iter().try_fold(eur(0), |sum, line| sum.checked_add(line.amount)).unwrap();
        assert_eq!(sum, price.total, "{why}: lines {:?}", price.lines);
    }
}

#[test]
fn pricing_is_total_even_for_the_longest_stay_time_can_hold() {
    let tariff = with_windows(-59);
    let (first, last) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
    let forever = tariff.price(&Stay::new(first, last));
    let days = (last - first).num_days() + 1;
    assert!(forever.total.minor > 0 && forever.total.minor <= days * 2000, "{}", forever.total);
    assert_eq!(tariff.price(&Stay::new(last, first)).total, eur(0));
}
