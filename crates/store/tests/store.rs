//! The store against a real SQLite file (devices, keys and classification records) and PostgreSQL, and the
//! garage conformance suite against SQLite and PostgreSQL.

mod conformance;

use chrono::{TimeZone, Utc};
use valet_store::{ClassificationRecord, DeviceName, Store, StoreError};

fn noon() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

#[tokio::test]
async fn a_device_key_authenticates_only_its_device_and_is_stored_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let (gate, key) = store.add_device(&DeviceName::parse("gate-1").unwrap(), noon()).await.unwrap();
    let (_, other) = store.add_device(&DeviceName::parse("bay-cam").unwrap(), noon()).await.unwrap();
    assert_ne!(key, other);

    assert_eq!(store.device_by_key(key.expose()).await.unwrap().unwrap().id, gate.id);
    assert!(store.device_by_key("valet_wrong").await.unwrap().is_none());

    drop(store);
    let raw = std::fs::read(dir.path().join(valet_store::DATABASE_FILE)).unwrap();
    let needle = key.expose().as_bytes();
    assert!(!raw.windows(needle.len()).any(|w| w == needle), "the plain key must not be on disk");
}

#[tokio::test]
async fn a_revoked_key_no_longer_authenticates() {
    let store = Store::open_in_memory().await.unwrap();
    let name = DeviceName::parse("gate-1").unwrap();
    let (_, key) = store.add_device(&name, noon()).await.unwrap();
    assert!(store.revoke_device(&name, noon()).await.unwrap());
    assert!(store.device_by_key(key.expose()).await.unwrap().is_none());
    assert!(!store.revoke_device(&name, noon()).await.unwrap(), "revoking twice finds no live device");
}

#[tokio::test]
async fn a_second_device_with_the_same_name_is_refused() {
    let store = Store::open_in_memory().await.unwrap();
    let name = DeviceName::parse("gate-1").unwrap();
    store.add_device(&name, noon()).await.unwrap();
    let err = store.add_device(&name, noon()).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateDevice(ref n) if n == "gate-1"), "{err}");
}

#[test]
fn device_names_are_short_and_plain() {
    assert!(DeviceName::parse("level-2.bay_cam-07").is_ok());
    for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
        assert!(DeviceName::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

#[tokio::test]
async fn a_classification_record_survives_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let record = {
        let store = Store::open(dir.path()).await.unwrap();
        let (cam, _) = store.add_device(&DeviceName::parse("cam").unwrap(), noon()).await.unwrap();
        let record = ClassificationRecord {
            device: cam.id,
            received_at: noon(),
            bytes: 205_000,
            width: Some(1024),
            height: Some(768),
            label: Some("occupied".into()),
            p_occupied: Some(0.97),
            outcome: "ok".into(),
            receive_ms: 1.5,
            decode_ms: Some(4.0),
            model_ms: Some(0.3),
            total_ms: 6.0,
        };
        store.record_classification(&record).await.unwrap();
        record
    };
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.recent_classifications(10).await.unwrap(), vec![record]);
}

/// Distributed mode keeps devices and classification records on PostgreSQL, like the garage.
#[tokio::test]
async fn devices_and_classifications_live_on_postgres_too() {
    let key = valet_store::PlateKey::new(&[7; 32]).unwrap();
    let scratch = match valet_store::scratch::ScratchGarage::postgres(key, "valet_devices").await {
        Ok(scratch) => scratch,
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    let store = Store::connect_postgres(&scratch.postgres_url().unwrap()).await.unwrap();
    let name = DeviceName::parse("gate-1").unwrap();
    let (gate, key) = store.add_device(&name, noon()).await.unwrap();
    assert_eq!(store.device_by_key(key.expose()).await.unwrap().unwrap().id, gate.id);
    assert!(matches!(store.add_device(&name, noon()).await, Err(StoreError::DuplicateDevice(_))));
    let record = ClassificationRecord {
        device: gate.id,
        received_at: noon(),
        bytes: 1234,
        width: Some(150),
        height: Some(150),
        label: Some("free".into()),
        p_occupied: Some(0.25),
        outcome: "ok".into(),
        receive_ms: 1.5,
        decode_ms: Some(0.5),
        model_ms: Some(2.0),
        total_ms: 4.0,
    };
    store.record_classification(&record).await.unwrap();
    assert_eq!(store.recent_classifications(5).await.unwrap(), vec![record]);
    assert!(store.revoke_device(&name, noon()).await.unwrap());
    assert!(store.device_by_key(key.expose()).await.unwrap().is_none());
    store.ping().await.unwrap();
}

#[tokio::test]
async fn an_operator_login_needs_the_name_and_key_and_lapses() {
    let store = Store::open_in_memory().await.unwrap();
    let alice = DeviceName::parse("alice").unwrap();
    let (_, key) = store.add_key(&alice, valet_store::Role::Operator, noon()).await.unwrap();
    let (_, camera) = store.add_device(&DeviceName::parse("cam").unwrap(), noon()).await.unwrap();
    let until = noon() + chrono::TimeDelta::hours(8);
    // The wrong name, a camera's key, a wrong key: no login.
    assert!(store.open_login("bob", key.expose(), noon(), until).await.unwrap().is_none());
    assert!(store.open_login("cam", camera.expose(), noon(), until).await.unwrap().is_none());
    assert!(store.open_login("alice", "valet_wrong", noon(), until).await.unwrap().is_none());
    let (operator, token) = store.open_login("alice", key.expose(), noon(), until).await.unwrap().unwrap();
    assert_eq!(store.operator_by_login(token.expose(), noon()).await.unwrap().map(|d| d.id), Some(operator.id));
    // It lapses, and it ends on sign-out or when the key is revoked.
    assert!(store.operator_by_login(token.expose(), until).await.unwrap().is_none());
    store.close_login(token.expose()).await.unwrap();
    assert!(store.operator_by_login(token.expose(), noon()).await.unwrap().is_none());
    let (_, again) = store.open_login("alice", key.expose(), noon(), until).await.unwrap().unwrap();
    store.revoke_device(&alice, noon()).await.unwrap();
    assert!(store.operator_by_login(again.expose(), noon()).await.unwrap().is_none());
}

#[tokio::test]
async fn an_admin_is_an_operator_who_may_change_the_rules() {
    let store = Store::open_in_memory().await.unwrap();
    let until = noon() + chrono::TimeDelta::hours(8);
    let (admin, key) =
        store.add_key(&DeviceName::parse("root").unwrap(), valet_store::Role::Admin, noon()).await.unwrap();
    assert_eq!(admin.role, valet_store::Role::Admin);
    assert!(admin.role.operates() && valet_store::Role::Operator.operates() && !valet_store::Role::Device.operates());
    assert_eq!(store.device_by_key(key.expose()).await.unwrap().unwrap().role, valet_store::Role::Admin);
    // An admin signs in to the dashboard like any operator.
    let (_, login) = store.open_login("root", key.expose(), noon(), until).await.unwrap().unwrap();
    assert_eq!(store.operator_by_login(login.expose(), noon()).await.unwrap().unwrap().role, valet_store::Role::Admin);
}
