//! Fuzz target: a tariff file, `Tariff::from_toml` or `Tariff::from_json`, and pricing stays with it.
//!
//! The input's first line is the stay: entry (Unix seconds), its length in seconds, and discounts
//! (`m<minutes>`, `f<minor units>`, `p<percent>`), separated by spaces; the rest is the tariff, JSON
//! when it starts with `{`, else TOML.
//!
//! Invariants: no panic (`Tariff::price` promises a price for any stay); an accepted tariff
//! round-trips through TOML and JSON; a price is never negative, its lines add up to it, a later
//! exit never costs less, one more minute adds at most one increment, and discounts never raise it.

#![no_main]

use chrono::{DateTime, TimeDelta};
use libfuzzer_sys::fuzz_target;
use valet_garage::{Discount, Percent, Price, Stay, Tariff};

fn assert_adds_up(price: &Price) {
    assert!(price.total.minor >= 0, "{price:?}");
    let sum: i128 = price.lines.iter().map(|l| i128::from(l.amount.minor)).sum();
    assert_eq!(sum, i128::from(price.total.minor), "the lines do not add up: {price:?}");
}

fuzz_target!(|input: &str| {
    let (stay, text) = input.split_once('\n').unwrap_or((input, ""));
    let parsed = if text.trim_start().starts_with('{') { Tariff::from_json(text) } else { Tariff::from_toml(text) };
    let Ok(tariff) = parsed else { return };

    let toml = toml::to_string(&tariff).expect("a tariff serialises to TOML");
    assert_eq!(Tariff::from_toml(&toml).ok().as_ref(), Some(&tariff), "TOML round trip:\n{toml}");
    let json = serde_json::to_string(&tariff).expect("a tariff serialises to JSON");
    assert_eq!(Tariff::from_json(&json).ok().as_ref(), Some(&tariff), "JSON round trip: {json}");

    let mut words = stay.split_whitespace();
    let mut number = || words.next().and_then(|w| w.parse::<i64>().ok()).unwrap_or(0);
    let (entry, seconds) = (number(), number());
    let Some(entry) = DateTime::from_timestamp(entry, 0) else { return };
    let Some(exit) = entry.checked_add_signed(TimeDelta::seconds(seconds % (200 * 365 * 86_400))) else { return };
    let plain = tariff.price(&Stay::new(entry, exit));
    assert_adds_up(&plain);

    if let Some(later) = exit.checked_add_signed(TimeDelta::minutes(1)) {
        let longer = tariff.price(&Stay::new(entry, later));
        let step = longer.total.minor - plain.total.minor;
        assert!(step >= 0, "a later exit cost less: {plain:?} then {longer:?}");
        assert!(step <= tariff.largest_increment_price().minor, "one minute added {step}: {longer:?}");
    }

    let mut stay = Stay::new(entry, exit);
    for word in stay_words(input).take(8) {
        let (kind, value) = word.split_at(1);
        let Ok(value) = value.parse::<u32>() else { continue };
        stay.discounts.push(match kind {
            "m" => Discount::FreeMinutes(value),
            "f" => Discount::FixedMinor(value),
            _ => Discount::Percent(Percent::new((value % 101) as u8).expect("0 to 100")),
        });
    }
    let discounted = tariff.price(&stay);
    assert_adds_up(&discounted);
    assert!(discounted.total.minor <= plain.total.minor, "discounts raised {plain:?} to {discounted:?}");
});

/// The discount words of the first line (after entry and length).
fn stay_words(input: &str) -> impl Iterator<Item = &str> {
    let line = input.split('\n').next().unwrap_or_default();
    line.split_whitespace().skip(2).filter(|w| w.len() > 1 && w.is_char_boundary(1))
}
