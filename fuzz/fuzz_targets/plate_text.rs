//! Fuzz target: plate text as cameras and people send it. The same input is tried as a plate
//! (`Plate::parse`), against every plate format and region name (`valet_plates::formats`), and as
//! the JSON body of `POST /v1/plate-reads` (`PlateReadEvent`, then `into_read` and `pool`).
//!
//! Invariants: no panic; a parsed plate parses again to itself, is 2 to 10 of A-Z and 0-9, shows
//! at most two glyphs at each end when masked, and has the matching key the reader computes from
//! the raw text; a format's correction of a text fits the format; pooled keys hold only spellings
//! with their key, and their evidence is a finite, non-negative sum.

#![no_main]

use chrono::{DateTime, TimeDelta};
use libfuzzer_sys::fuzz_target;
use valet_garage::{MAX_GLYPHS, MIN_GLYPHS, Plate};
use valet_plates::Region;
use valet_server::api::PlateReadEvent;

fn plate(text: &str) {
    let Ok(plate) = Plate::parse(text) else { return };
    let shown = plate.display();
    assert!((MIN_GLYPHS..=MAX_GLYPHS).contains(&shown.len()), "{shown:?}");
    assert!(shown.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()), "{shown:?}");
    assert_eq!(Plate::parse(shown).as_ref(), Ok(&plate));
    assert_eq!(plate.matching_key().as_str(), valet_plates::confusion::matching_key(text), "{text:?}");
    let masked = plate.masked();
    assert_eq!(masked.chars().count(), shown.len());
    let hidden = masked.chars().filter(|c| *c == '•').count();
    assert!(hidden * 3 >= shown.len() && hidden > 0, "{masked:?} shows too much of {shown:?}");
    let json = serde_json::to_string(&plate).expect("a plate serialises");
    assert_eq!(serde_json::from_str::<Plate>(&json).ok().as_ref(), Some(&plate));
}

fn formats(text: &str) {
    for region in Region::SPECIFIC {
        let prior = region.prior(text);
        assert!(prior.is_finite() && prior > 0.0 && prior <= 1.0, "{region} prior {prior} for {text:?}");
        for format in region.formats() {
            if format.fits(text) {
                assert_eq!(format.conform(text).as_deref(), Some(text), "{} fits {text:?}", format.pattern);
            }
            if let Some(fixed) = format.conform(text) {
                assert!(format.fits(&fixed), "{}: {text:?} conformed to {fixed:?}", format.pattern);
                assert_eq!(fixed.chars().count(), text.chars().count());
            }
        }
    }
    if let Ok(region) = text.parse::<Region>() {
        assert_eq!(region.as_str(), text.to_ascii_lowercase());
    }
}

fn plate_read(text: &str) {
    let Ok(event) = serde_json::from_str::<PlateReadEvent>(text) else { return };
    let now = DateTime::from_timestamp(1_780_000_000, 0).expect("a time");
    let Ok(read) = event.into_read(now - TimeDelta::seconds(5), now) else { return };
    let pooled = valet_garage::pool(&read);
    let mut keys = Vec::new();
    for key in &pooled.keys {
        assert!(key.evidence.is_finite() && key.evidence >= 0.0, "{key:?}");
        assert!(key.spellings.iter().all(|(p, _)| p.matching_key() == key.key), "{key:?}");
        assert!(!keys.contains(&&key.key), "{:?} pooled twice", key.key);
        keys.push(&key.key);
    }
    if let Some(car) = pooled.car() {
        assert_eq!(Some(car), pooled.top());
    }
}

fuzz_target!(|text: &str| {
    plate(text);
    formats(text);
    plate_read(text);
});
