//! Lot history: frames and space changes read back as recorded, per lot, in time order, and
//! followed frame by frame; lot layouts saved, replaced, listed and removed.

use valet_store::{LotFrameRecord, RecordedFrame, SpaceChangeRecord, SpaceStateRecord};

use super::{TestGarage, at, conformance};

conformance!(
    a_lot_frame_and_its_changes_read_back_as_recorded,
    changes_are_kept_per_lot_and_in_time_order,
    each_cameras_latest_frame_is_what_a_restart_resumes_from,
    retention_forgets_old_frames_with_their_changes,
    a_follower_reads_every_lots_frames_after_the_last_it_saw_with_their_changes,
    a_saved_layout_reads_back_and_each_save_replaces_it_with_the_next_version,
    layouts_are_listed_by_lot_and_a_removed_one_is_gone,
);

fn frame(lot: &str, minute: u32, free: u32) -> LotFrameRecord {
    LotFrameRecord {
        lot: lot.into(),
        camera: "cam1".into(),
        at: at(2, 9, minute),
        free,
        occupied: 2 - free,
        unknown: 0,
        spaces: vec![
            SpaceStateRecord { space: "a1".into(), state: "occupied".into(), confidence: 0.97, p_occupied: 0.97 },
            SpaceStateRecord { space: "a2".into(), state: "free".into(), confidence: 0.8, p_occupied: 0.2 },
        ],
        counts: serde_json::json!({ "zones": [{ "zone": "A", "free": free }] }),
    }
}

fn change(space: &str, from: Option<&str>, to: &str, minute: u32) -> SpaceChangeRecord {
    SpaceChangeRecord {
        space: space.into(),
        from: from.map(Into::into),
        to: to.into(),
        confidence: 0.9,
        at: at(2, 9, minute),
    }
}

async fn a_lot_frame_and_its_changes_read_back_as_recorded(garage: TestGarage) {
    let history = garage.store.lot_history();
    assert!(history.latest_frame("ufpr05").await.unwrap().is_none());
    let first = frame("ufpr05", 0, 1);
    let changes = [change("a1", None, "occupied", 0), change("a2", None, "free", 0)];
    let id = history.record_frame(&first, &changes).await.unwrap();
    let later = frame("ufpr05", 5, 0);
    let later_id = history.record_frame(&later, &[change("a2", Some("free"), "occupied", 5)]).await.unwrap();
    assert_ne!(id, later_id);
    assert_eq!(history.latest_frame("ufpr05").await.unwrap(), Some((later_id, later)));
    let all = history.changes_since("ufpr05", at(2, 0, 0), 100).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[..2], changes);
    assert_eq!(all[2].from.as_deref(), Some("free"));
}

async fn changes_are_kept_per_lot_and_in_time_order(garage: TestGarage) {
    let history = garage.store.lot_history();
    history.record_frame(&frame("north", 10, 1), &[change("n1", None, "free", 10)]).await.unwrap();
    history.record_frame(&frame("south", 5, 1), &[change("s1", None, "free", 5)]).await.unwrap();
    history.record_frame(&frame("north", 20, 0), &[change("n1", Some("free"), "occupied", 20)]).await.unwrap();
    let north = history.changes_since("north", at(2, 9, 15), 100).await.unwrap();
    assert_eq!(north, vec![change("n1", Some("free"), "occupied", 20)]);
    assert_eq!(history.changes_since("north", at(2, 0, 0), 1).await.unwrap().len(), 1, "the limit holds");
    assert_eq!(history.latest_frame("south").await.unwrap().unwrap().1.at, at(2, 9, 5));
}

async fn each_cameras_latest_frame_is_what_a_restart_resumes_from(garage: TestGarage) {
    let history = garage.store.lot_history();
    assert!(history.latest_frame_per_camera("north").await.unwrap().is_empty());
    let mut cam2 = frame("north", 1, 0);
    cam2.camera = "cam2".into();
    history.record_frame(&frame("north", 0, 1), &[]).await.unwrap();
    history.record_frame(&cam2, &[]).await.unwrap();
    history.record_frame(&frame("north", 2, 2), &[]).await.unwrap();
    history.record_frame(&frame("other", 3, 0), &[]).await.unwrap();
    let latest = history.latest_frame_per_camera("north").await.unwrap();
    assert_eq!(latest, vec![cam2, frame("north", 2, 2)]);
}

async fn retention_forgets_old_frames_with_their_changes(garage: TestGarage) {
    let history = garage.store.lot_history();
    history.record_frame(&frame("west", 0, 1), &[change("a1", None, "occupied", 0)]).await.unwrap();
    history.record_frame(&frame("west", 10, 2), &[change("a1", Some("occupied"), "free", 10)]).await.unwrap();
    assert_eq!(history.forget_before(at(2, 9, 5)).await.unwrap(), 1);
    assert_eq!(
        history.changes_since("west", at(1, 0, 0), 10).await.unwrap(),
        vec![change("a1", Some("occupied"), "free", 10)]
    );
    assert_eq!(history.latest_frame_per_camera("west").await.unwrap(), vec![frame("west", 10, 2)]);
}

async fn a_follower_reads_every_lots_frames_after_the_last_it_saw_with_their_changes(garage: TestGarage) {
    let history = garage.store.lot_history();
    assert_eq!(history.last_frame_id().await.unwrap(), None);
    assert!(history.frames_after(0, 10).await.unwrap().is_empty());
    let first = history.record_frame(&frame("north", 0, 1), &[change("n1", None, "free", 0)]).await.unwrap();
    assert_eq!(history.last_frame_id().await.unwrap(), Some(first));
    let changes = [change("s1", None, "occupied", 1), change("s2", None, "free", 1)];
    let second = history.record_frame(&frame("south", 1, 1), &changes).await.unwrap();
    let third = history.record_frame(&frame("north", 2, 0), &[]).await.unwrap();
    assert_eq!(history.last_frame_id().await.unwrap(), Some(third));

    let after_first = history.frames_after(first, 10).await.unwrap();
    assert_eq!(
        after_first,
        vec![
            RecordedFrame { id: second, frame: frame("south", 1, 1), changes: changes.to_vec() },
            RecordedFrame { id: third, frame: frame("north", 2, 0), changes: vec![] },
        ]
    );
    let one = history.frames_after(0, 1).await.unwrap();
    assert_eq!(one.len(), 1, "the limit holds");
    assert_eq!((one[0].id, one[0].changes.clone()), (first, vec![change("n1", None, "free", 0)]));
    assert!(history.frames_after(third, 10).await.unwrap().is_empty());
}

const LAYOUT_V1: &str = "id = \"north\"\n# first draft\n";
const LAYOUT_V2: &str = "id = \"north\"\n# second draft\n";

async fn a_saved_layout_reads_back_and_each_save_replaces_it_with_the_next_version(garage: TestGarage) {
    let layouts = garage.store.lot_layouts();
    assert_eq!(layouts.get("north").await.unwrap(), None);
    assert_eq!(layouts.save("north", LAYOUT_V1, at(2, 9, 0)).await.unwrap(), 1);
    let saved = layouts.get("north").await.unwrap().unwrap();
    assert_eq!(
        (saved.lot.as_str(), saved.toml.as_str(), saved.version, saved.saved_at),
        ("north", LAYOUT_V1, 1, at(2, 9, 0))
    );
    assert_eq!(layouts.save("north", LAYOUT_V2, at(2, 9, 5)).await.unwrap(), 2);
    let saved = layouts.get("north").await.unwrap().unwrap();
    assert_eq!((saved.toml.as_str(), saved.version, saved.saved_at), (LAYOUT_V2, 2, at(2, 9, 5)));
    assert_eq!(layouts.all().await.unwrap().len(), 1, "one row per lot");
}

async fn layouts_are_listed_by_lot_and_a_removed_one_is_gone(garage: TestGarage) {
    let layouts = garage.store.lot_layouts();
    assert!(layouts.all().await.unwrap().is_empty());
    layouts.save("south", "id = \"south\"\n", at(2, 9, 0)).await.unwrap();
    layouts.save("north", LAYOUT_V1, at(2, 9, 1)).await.unwrap();
    layouts.save("north", LAYOUT_V2, at(2, 9, 2)).await.unwrap();
    let all = layouts.all().await.unwrap();
    assert_eq!(all.iter().map(|l| l.lot.as_str()).collect::<Vec<_>>(), ["north", "south"]);
    assert_eq!(layouts.versions().await.unwrap(), vec![("north".to_owned(), 2), ("south".to_owned(), 1)]);
    assert!(layouts.remove("north").await.unwrap());
    assert!(!layouts.remove("north").await.unwrap(), "already gone");
    assert_eq!(layouts.get("north").await.unwrap(), None);
    assert_eq!(layouts.versions().await.unwrap(), vec![("south".to_owned(), 1)]);
    // Saved again after removal, it starts over.
    assert_eq!(layouts.save("north", LAYOUT_V1, at(2, 9, 3)).await.unwrap(), 1);
}
