//! Guards the cost of the gate's decision itself, without a database: an exit read matched
//! against the plate's sessions, priced over a two-day stay with a night window, and turned into a
//! charge request (issue 4's target: p99 ≤ 5 ms on SQLite for the decision; this is its pure part).

use chrono::{TimeDelta, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use valet_garage::{
    Barrier, CameraId, Currency, Direction, DriverId, ExitContext, GateConfig, Money, ParkingSession, Payer, Plate,
    PlateLists, PlateRead, SessionId, Tariff, decide_exit,
};

fn decide(c: &mut Criterion) {
    let tariff = Tariff::from_toml(
        r#"
        currency = "EUR"
        grace_minutes = 10
        daily_max_minor = 2000
        [[bands]]
        name = "first hour"
        from_minute = 0
        every_minutes = 15
        price_minor = 100
        [[bands]]
        name = "later"
        from_minute = 60
        every_minutes = 30
        price_minor = 80
        [[windows]]
        name = "night"
        from = "22:00"
        to = "06:00"
        every_minutes = 60
        price_minor = 50
        "#,
    )
    .unwrap();
    let config = GateConfig {
        review_below_confidence: 0.6,
        when_unsure: Barrier::Hold,
        show_fee_below: Money::new(5000, Currency::EUR),
        leave_within_minutes: 10,
    };
    let entered = Utc.with_ymd_and_hms(2026, 3, 2, 7, 40, 0).unwrap();
    let now = entered + TimeDelta::minutes(2 * 24 * 60 + 195);
    let sessions = vec![ParkingSession::open(
        SessionId::from_bytes([1; 16]),
        Plate::parse("AB0123").unwrap(),
        entered,
        Payer::Registered(DriverId::from_bytes([2; 16])),
    )];
    let lists = PlateLists::default();
    let read = PlateRead {
        text: "AB0123".into(),
        confidence: 0.97,
        candidates: Vec::new(),
        camera: CameraId("exit-1".into()),
        direction: Direction::Exit,
        at: now,
    };
    let context = ExitContext { config: &config, tariff: &tariff, lists: &lists, sessions: &sessions };
    c.bench_function("decide_exit_two_day_stay", |b| b.iter(|| decide_exit(&read, &context)));
}

criterion_group!(benches, decide);
criterion_main!(benches);
