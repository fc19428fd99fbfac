//! Occupancy calibration: labels keep their crops and refuse a second word on the same bay and
//! frame (the whole batch with it), retention forgets them; adapters get one version after
//! another even when two replicas save at once, at most one is active, and rollback works.

use valet_store::{ActiveAdapter, CameraLabels, NewAdapter, NewLabel, StoreError};

use super::{TestGarage, at, conformance};

conformance!(
    labels_keep_their_crops_and_are_counted_per_camera,
    a_second_label_for_a_bay_on_a_frame_is_refused_with_its_whole_batch,
    retention_forgets_old_labels_and_a_label_can_be_removed,
    each_fit_is_the_next_version_and_an_active_one_replaces_the_last,
    an_adapter_is_rolled_back_to_a_version_or_to_the_universal_model,
    two_replicas_saving_at_once_get_distinct_versions,
);

fn label(camera: &str, space: &str, frame: &str, occupied: bool) -> NewLabel {
    NewLabel {
        lot: "north".to_owned(),
        camera: camera.to_owned(),
        space: space.to_owned(),
        frame: frame.to_owned(),
        frame_width: 1000,
        frame_height: 750,
        occupied,
        // Not a real PNG: the store keeps bytes, and a NUL and high bytes prove it keeps them exactly.
        crop_png: [b"\x89PNG\r\n\x1a\n\0".as_slice(), space.as_bytes(), &[0xff, 0xfe]].concat(),
        labelled_at: at(2, 8, 0),
        labelled_by: "ana".to_owned(),
    }
}

fn adapter(camera: &str, active: bool) -> NewAdapter {
    NewAdapter {
        lot: "north".to_owned(),
        camera: camera.to_owned(),
        fitted_at: at(2, 9, 0),
        fitted_by: "cli".to_owned(),
        labels: 120,
        universal_accuracy: 0.84,
        adapted_accuracy: if active { 0.991 } else { 0.8 },
        fit_ms: 412.5,
        params: r#"{"weights":[0.5,-1.25]}"#.to_owned(),
        active,
        note: (!active).then(|| "worse than the universal model".to_owned()),
    }
}

async fn labels_keep_their_crops_and_are_counted_per_camera(garage: TestGarage) {
    let calibration = garage.store.occupancy_calibration();
    let batch = [
        label("cam-b", "B1", "20260302_0800", true),
        label("cam-a", "A2", "20260302_0900", false),
        label("cam-a", "A1", "20260302_0900", true),
        label("cam-a", "A1", "20260302_0800", false),
    ];
    let ids = calibration.add_labels(&batch).await.unwrap();
    assert_eq!(ids.len(), 4);

    let stored = calibration.labels("north", "cam-a").await.unwrap();
    let order: Vec<(&str, &str)> = stored.iter().map(|s| (s.label.frame.as_str(), s.label.space.as_str())).collect();
    assert_eq!(order, [("20260302_0800", "A1"), ("20260302_0900", "A1"), ("20260302_0900", "A2")]);
    assert_eq!(stored[0], valet_store::StoredLabel { id: ids[3], label: batch[3].clone() });
    assert!(calibration.labels("south", "cam-a").await.unwrap().is_empty());

    let counts = calibration.label_counts("north").await.unwrap();
    assert_eq!(
        counts,
        [
            CameraLabels { camera: "cam-a".to_owned(), free: 2, occupied: 1, frames: 2 },
            CameraLabels { camera: "cam-b".to_owned(), free: 0, occupied: 1, frames: 1 },
        ]
    );
}

async fn a_second_label_for_a_bay_on_a_frame_is_refused_with_its_whole_batch(garage: TestGarage) {
    let calibration = garage.store.occupancy_calibration();
    calibration.add_labels(&[label("cam-a", "A1", "f1", true)]).await.unwrap();

    // The same bay on the same frame, even with the opposite answer, after a label that is new.
    let batch = [label("cam-a", "A2", "f1", false), label("cam-a", "A1", "f1", false)];
    let err = calibration.add_labels(&batch).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::LabelExists { camera, space, frame } if camera == "cam-a" && space == "A1" && frame == "f1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("already labelled on frame f1"), "{err}");
    let kept = calibration.labels("north", "cam-a").await.unwrap();
    assert_eq!(kept.len(), 1, "nothing of the refused batch is written");
    assert!(kept[0].label.occupied);

    // Twice in one batch is refused too; the same bay on another frame or camera is not.
    let twice = [label("cam-a", "A3", "f2", true), label("cam-a", "A3", "f2", true)];
    assert!(matches!(calibration.add_labels(&twice).await, Err(StoreError::LabelExists { .. })));
    let others = [label("cam-a", "A1", "f2", true), label("cam-b", "A1", "f1", true)];
    calibration.add_labels(&others).await.unwrap();
    assert_eq!(calibration.labels("north", "cam-a").await.unwrap().len(), 2);
}

async fn retention_forgets_old_labels_and_a_label_can_be_removed(garage: TestGarage) {
    let calibration = garage.store.occupancy_calibration();
    let old = NewLabel { labelled_at: at(1, 8, 0), ..label("cam-a", "A1", "f1", true) };
    let new = NewLabel { labelled_at: at(3, 8, 0), ..label("cam-a", "A2", "f1", false) };
    let ids = calibration.add_labels(&[old, new]).await.unwrap();

    assert_eq!(calibration.forget_labels_before(at(2, 0, 0)).await.unwrap(), 1);
    let left = calibration.labels("north", "cam-a").await.unwrap();
    assert_eq!(left.iter().map(|l| l.id).collect::<Vec<_>>(), [ids[1]]);

    assert!(calibration.remove_label(ids[1]).await.unwrap());
    assert!(!calibration.remove_label(ids[1]).await.unwrap(), "removing twice finds nothing");
    assert!(calibration.labels("north", "cam-a").await.unwrap().is_empty());
}

async fn each_fit_is_the_next_version_and_an_active_one_replaces_the_last(garage: TestGarage) {
    let calibration = garage.store.occupancy_calibration();
    assert!(calibration.active_adapter("north", "cam-a").await.unwrap().is_none());
    assert_eq!(calibration.save_adapter(&adapter("cam-a", true)).await.unwrap(), 1);
    assert_eq!(calibration.save_adapter(&adapter("cam-a", false)).await.unwrap(), 2);
    // Another camera counts its own versions.
    assert_eq!(calibration.save_adapter(&adapter("cam-b", true)).await.unwrap(), 1);

    // A refused fit is kept in the history but leaves version 1 in use.
    let active = calibration.active_adapter("north", "cam-a").await.unwrap().unwrap();
    assert_eq!((active.version, active.adapter.clone()), (1, adapter("cam-a", true)));

    assert_eq!(calibration.save_adapter(&adapter("cam-a", true)).await.unwrap(), 3);
    let history = calibration.adapters("north", "cam-a").await.unwrap();
    let summary: Vec<(i64, bool, bool)> =
        history.iter().map(|a| (a.version, a.adapter.active, a.adapter.note.is_some())).collect();
    assert_eq!(summary, [(3, true, false), (2, false, true), (1, false, false)]);
    assert_eq!(history[1].adapter, adapter("cam-a", false));
    assert_eq!(
        calibration.active_versions().await.unwrap(),
        [
            ActiveAdapter { lot: "north".to_owned(), camera: "cam-a".to_owned(), version: 3 },
            ActiveAdapter { lot: "north".to_owned(), camera: "cam-b".to_owned(), version: 1 },
        ]
    );
}

async fn an_adapter_is_rolled_back_to_a_version_or_to_the_universal_model(garage: TestGarage) {
    let calibration = garage.store.occupancy_calibration();
    for _ in 0..3 {
        calibration.save_adapter(&adapter("cam-a", true)).await.unwrap();
    }
    let active_version = || async { calibration.active_adapter("north", "cam-a").await.unwrap().map(|a| a.version) };
    assert_eq!(active_version().await, Some(3));

    calibration.activate("north", "cam-a", Some(1)).await.unwrap();
    assert_eq!(active_version().await, Some(1));
    let actives = calibration.adapters("north", "cam-a").await.unwrap().iter().filter(|a| a.adapter.active).count();
    assert_eq!(actives, 1);

    let err = calibration.activate("north", "cam-a", Some(9)).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownAdapter { version: 9, .. }), "{err:?}");
    assert!(err.to_string().contains("no adapter version 9"), "{err}");
    assert_eq!(active_version().await, Some(1), "a refused rollback changes nothing");
    // Another camera's versions are not this one's.
    assert!(calibration.activate("north", "cam-b", Some(1)).await.is_err());

    calibration.activate("north", "cam-a", None).await.unwrap();
    assert_eq!(active_version().await, None);
    assert!(calibration.active_versions().await.unwrap().is_empty());
    assert_eq!(calibration.adapters("north", "cam-a").await.unwrap().len(), 3, "rollback forgets no fit");
}

/// Two occupancy replicas fitting the same camera at once: every fit is kept under its own
/// version, and exactly one ends up active. (Without the retry on a lost race this fails on
/// PostgreSQL in most runs.)
async fn two_replicas_saving_at_once_get_distinct_versions(garage: TestGarage) {
    let calibration = garage.store.occupancy_calibration();
    let replicas: Vec<_> = (0..2)
        .map(|_| {
            let calibration = calibration.clone();
            tokio::spawn(async move {
                let mut versions = Vec::new();
                for i in 0..6 {
                    versions.push(calibration.save_adapter(&adapter("cam-a", i % 2 == 0)).await.unwrap());
                }
                versions
            })
        })
        .collect();
    let mut versions = Vec::new();
    for replica in replicas {
        versions.extend(replica.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=12).collect::<Vec<i64>>());
    let actives = calibration.adapters("north", "cam-a").await.unwrap().iter().filter(|a| a.adapter.active).count();
    assert_eq!(actives, 1);
}
