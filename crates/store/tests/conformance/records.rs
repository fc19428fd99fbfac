//! Drivers, receipts, the review queue, the audit log, plate lists, permits and tariffs.

use std::collections::BTreeSet;

use valet_garage::{
    AuditAction, AuditEvent, CameraId, Direction, ListChange, OperatorId, Permit, PermitBenefit, PermitId, PermitTerms,
    PlateRead, Reason, Receipt, ReviewItem, ReviewReason, SessionEvent,
};
use valet_store::{ListKind, StoreError};

use super::{TestGarage, at, conformance, driver, exited, plate, tariff, unregistered_session};

conformance!(
    a_driver_is_found_by_any_confusable_spelling_of_their_plate,
    a_plate_belongs_to_one_account,
    a_receipt_is_written_once_per_session,
    a_review_item_is_decided_once,
    the_audit_log_reads_back_in_order,
    plate_lists_and_permits_read_back_as_saved,
    activating_a_tariff_keeps_the_old_version_and_exactly_one_active,
    a_tariff_change_among_busy_gates_waits_its_turn_and_succeeds,
);

/// An operator saves a tariff while gates open stays as fast as they can: the change (a read, then
/// writes) waits for the database instead of failing (on SQLite a deferred transaction's lock
/// upgrade was refused at once with "database is locked", a 500 at `PUT /v1/tariff`).
async fn a_tariff_change_among_busy_gates_waits_its_turn_and_succeeds(garage: TestGarage) {
    let store = std::sync::Arc::new(garage.store.clone());
    let gates: Vec<_> = (0..4u8)
        .map(|gate| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                for n in 0..25u8 {
                    let id = gate * 25 + n;
                    let session = unregistered_session(id, &format!("BUSY{id:03}"), at(1, 8, 0));
                    store.open_session(&session).await.unwrap();
                }
            })
        })
        .collect();
    for round in 0..10u32 {
        let mut spec = tariff().spec().clone();
        spec.bands[0].price_minor = 100 + i64::from(round);
        let changed = store.activate_tariff(&valet_garage::Tariff::new(spec).unwrap(), at(1, 9, round)).await;
        assert_eq!(changed.unwrap(), i64::from(round) + 1, "round {round}");
    }
    for gate in gates {
        gate.await.unwrap();
    }
    assert_eq!(store.active_tariff().await.unwrap().unwrap().version, 10);
}

async fn a_driver_is_found_by_any_confusable_spelling_of_their_plate(garage: TestGarage) {
    let store = &garage.store;
    let alice = driver(1, &["AB0123", "CD45"]);
    store.register_driver(&alice, at(1, 9, 0)).await.unwrap();
    store.register_driver(&driver(2, &["XY99"]), at(1, 9, 0)).await.unwrap();
    assert_eq!(store.drivers_by_plate(&plate("ABO123")).await.unwrap(), vec![alice.clone()]);
    assert!(store.drivers_by_plate(&plate("ZZ11")).await.unwrap().is_empty());

    store.add_driver_plate(alice.id, &plate("EF67"), at(1, 10, 0)).await.unwrap();
    let stored = store.driver(alice.id).await.unwrap().unwrap();
    assert_eq!(stored.plates().map(|p| p.display()).collect::<Vec<_>>(), ["AB0123", "CD45", "EF67"]);
    assert_eq!(store.driver(super::driver_id(9)).await.unwrap(), None);
}

async fn a_plate_belongs_to_one_account(garage: TestGarage) {
    let store = &garage.store;
    store.register_driver(&driver(1, &["AB0123"]), at(1, 9, 0)).await.unwrap();
    let err = store.register_driver(&driver(2, &["AB0123"]), at(1, 9, 0)).await.unwrap_err();
    assert!(matches!(err, StoreError::PlateTaken(ref p) if p == "AB0123"), "{err}");
    assert_eq!(store.driver(super::driver_id(2)).await.unwrap(), None, "a refused sign-up leaves nothing behind");
    store.register_driver(&driver(3, &[]), at(1, 9, 0)).await.unwrap();
    let err = store.add_driver_plate(super::driver_id(3), &plate("AB0123"), at(1, 9, 1)).await.unwrap_err();
    assert!(matches!(err, StoreError::PlateTaken(_)), "{err}");
}

async fn a_receipt_is_written_once_per_session(garage: TestGarage) {
    let store = &garage.store;
    let session = unregistered_session(1, "AB0123", at(2, 8, 0));
    store.open_session(&session).await.unwrap();
    let mut paid = exited(&session, at(2, 9, 0));
    store.close_session(&paid).await.unwrap();
    paid.apply(SessionEvent::PaymentSucceeded { at: at(2, 9, 1) }).unwrap();
    let receipt = Receipt::for_session(&paid, None).unwrap();

    assert!(store.write_receipt(&receipt, at(2, 9, 2)).await.unwrap());
    assert!(!store.write_receipt(&receipt, at(2, 9, 3)).await.unwrap());
    assert_eq!(store.receipt(session.id).await.unwrap(), Some(receipt));
    assert_eq!(garage.raw_rows_containing("receipts", "AB0123").await, 0, "receipts show the plate masked");
}

fn read(text: &str) -> PlateRead {
    PlateRead {
        text: text.into(),
        confidence: 0.4,
        candidates: Vec::new(),
        camera: CameraId("exit-1".into()),
        direction: Direction::Exit,
        at: at(2, 9, 0),
    }
}

async fn a_review_item_is_decided_once(garage: TestGarage) {
    let store = &garage.store;
    let unsure = ReviewItem::from_read(ReviewReason::LowConfidence, None, &read("AB0123"));
    let lost = ReviewItem::from_read(ReviewReason::NoOpenSession, None, &read("XY99"));
    let first = store.add_review_item(&unsure).await.unwrap();
    let second = store.add_review_item(&lost).await.unwrap();
    let queue = store.open_review_items().await.unwrap();
    assert_eq!(queue.iter().map(|i| (i.id, &i.item)).collect::<Vec<_>>(), [(first, &unsure), (second, &lost)]);

    let ops = OperatorId("ops-anna".into());
    assert!(store.resolve_review_item(first, &ops, "read confirmed from the photo", at(2, 10, 0)).await.unwrap());
    assert!(!store.resolve_review_item(first, &OperatorId("ops-ben".into()), "me too", at(2, 10, 1)).await.unwrap());
    assert_eq!(store.open_review_items().await.unwrap().len(), 1);
    let decided = store.review_item(first).await.unwrap().unwrap();
    assert_eq!(decided.resolved, Some((ops, "read confirmed from the photo".into(), at(2, 10, 0))));
}

async fn the_audit_log_reads_back_in_order(garage: TestGarage) {
    let store = &garage.store;
    let event = |minute, what| AuditEvent {
        who: OperatorId("ops-anna".into()),
        what,
        why: Reason::parse("test").unwrap(),
        at: at(3, 12, minute),
    };
    let events = [
        event(0, AuditAction::ManualBarrierOpen { camera: CameraId("exit-1".into()) }),
        event(5, AuditAction::ListChange { plate: plate("XY99"), change: ListChange::Denied }),
        event(9, AuditAction::TariffChange { tariff: tariff().spec().clone() }),
    ];
    for e in &events {
        store.append_audit_event(e).await.unwrap();
    }
    assert_eq!(store.audit_events(at(3, 0, 0)).await.unwrap(), events);
    assert_eq!(store.audit_events(at(3, 12, 5)).await.unwrap(), events[1..]);
}

async fn plate_lists_and_permits_read_back_as_saved(garage: TestGarage) {
    let store = &garage.store;
    store.list_plate(&plate("STAFF1"), ListKind::Allow, at(1, 0, 0)).await.unwrap();
    store.list_plate(&plate("XY5080"), ListKind::Allow, at(1, 0, 0)).await.unwrap();
    store.list_plate(&plate("XY5080"), ListKind::Deny, at(1, 0, 1)).await.unwrap();
    let lists = store.plate_lists().await.unwrap();
    assert!(lists.allows(&plate("STAFF1")) && !lists.allows(&plate("XY5080")));
    assert!(lists.denies(&plate("XYS08O")), "the deny list matches confusable spellings after reading back");
    assert!(store.unlist_plate(&plate("XY5080")).await.unwrap());
    assert!(!store.plate_lists().await.unwrap().denies(&plate("XY5080")));

    let permit = Permit::new(PermitTerms {
        id: PermitId::from_bytes([5; 16]),
        plates: BTreeSet::from([plate("AB0123")]),
        benefit: PermitBenefit::Free,
        valid_from: at(1, 0, 0),
        valid_to: at(31, 0, 0),
        max_concurrent: 1,
    })
    .unwrap();
    store.save_permit(&permit, at(1, 0, 0)).await.unwrap();
    assert_eq!(store.permit(permit.id()).await.unwrap(), Some(permit.clone()));
    assert_eq!(store.permits_valid_at(at(15, 0, 0)).await.unwrap(), vec![permit]);
    assert!(store.permits_valid_at(at(31, 0, 0)).await.unwrap().is_empty(), "valid_to is exclusive");
}

async fn activating_a_tariff_keeps_the_old_version_and_exactly_one_active(garage: TestGarage) {
    let store = &garage.store;
    assert_eq!(store.active_tariff().await.unwrap(), None);
    let first = tariff();
    let mut dearer_spec = first.spec().clone();
    dearer_spec.bands[0].price_minor = 400;
    let dearer = valet_garage::Tariff::new(dearer_spec).unwrap();

    assert_eq!(store.activate_tariff(&first, at(1, 0, 0)).await.unwrap(), 1);
    assert_eq!(store.activate_tariff(&dearer, at(10, 0, 0)).await.unwrap(), 2);
    let active = store.active_tariff().await.unwrap().unwrap();
    assert_eq!((active.version, &active.tariff, active.active), (2, &dearer, true));
    let old = store.tariff_version(1).await.unwrap().unwrap();
    assert_eq!((old.tariff, old.active, old.created_at), (first, false, at(1, 0, 0)));
}
