//! Builders the test modules share: times, plates, money, the example tariffs and reads.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use valet_garage::{
    Band, CameraId, Candidate, Currency, Direction, DriverId, LinkToken, Money, Plate, PlateRead, SessionId, Tariff,
    TariffSpec,
};

/// Monday 2 March 2026, 00:00 UTC: the week every example starts in.
pub fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
}

pub fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

pub fn plate(raw: &str) -> Plate {
    Plate::parse(raw).unwrap()
}

pub fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

pub fn session_id(n: u8) -> SessionId {
    SessionId::from_bytes([n; 16])
}

pub fn driver_id(n: u8) -> DriverId {
    DriverId::from_bytes([n; 16])
}

pub fn link(n: u8) -> LinkToken {
    LinkToken::from_bytes([n; 16])
}

pub fn band(name: &str, from_minute: u32, every_minutes: u32, price_minor: i64) -> Band {
    Band { name: name.into(), from_minute, every_minutes, price_minor }
}

/// Ten minutes' grace, €1.00 per started 15 minutes in the first hour, €0.80 per 30 after, at
/// most €20.00 a day.
pub fn city_centre() -> Tariff {
    Tariff::new(TariffSpec {
        currency: Currency::EUR,
        utc_offset_minutes: 0,
        grace_minutes: 10,
        daily_max_minor: 2000,
        bands: vec![band("first hour", 0, 15, 100), band("later", 60, 30, 80)],
        windows: Vec::new(),
        validations: Vec::new(),
    })
    .unwrap()
}

pub fn read_at(text: &str, confidence: f32, direction: Direction, at: DateTime<Utc>) -> PlateRead {
    PlateRead {
        text: text.into(),
        confidence,
        candidates: Vec::new(),
        camera: CameraId("gate-1".into()),
        direction,
        at,
    }
}

pub fn with_candidates(mut read: PlateRead, candidates: &[(&str, f32)]) -> PlateRead {
    read.candidates =
        candidates.iter().map(|&(text, confidence)| Candidate { text: text.into(), confidence }).collect();
    read
}
