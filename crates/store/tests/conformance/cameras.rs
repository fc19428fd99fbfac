//! The pulled gate cameras: added once per name (a second add is a conflict that changes
//! nothing), listed by name with every field as it was added, removed once.

use valet_garage::Direction;
use valet_store::{StoreError, StoredCamera};

use super::{TestGarage, at, conformance};

conformance!(a_camera_is_added_once_listed_as_added_and_removed_once);

fn camera(name: &str, url: &str, direction: Direction) -> StoredCamera {
    StoredCamera {
        name: name.to_owned(),
        url: url.to_owned(),
        direction,
        lane: None,
        region: None,
        every_ms: 500,
        added_at: at(2, 9, 0),
        added_by: "alice".to_owned(),
    }
}

async fn a_camera_is_added_once_listed_as_added_and_removed_once(garage: TestGarage) {
    let cameras = garage.store.gate_cameras();
    assert!(cameras.list().await.unwrap().is_empty());
    let mut exit = camera("north-exit", "rtsp://admin:hunter2@10.0.0.7/stream1", Direction::Exit);
    exit.lane = Some("north".to_owned());
    exit.region = Some("eu".to_owned());
    exit.every_ms = 250;
    cameras.add(&exit).await.unwrap();
    let entry = camera("north-entry", "http://10.0.0.8/mjpeg", Direction::Entry);
    cameras.add(&entry).await.unwrap();
    assert_eq!(cameras.list().await.unwrap(), [entry.clone(), exit.clone()], "by name, every field kept");
    assert_eq!(cameras.get("north-exit").await.unwrap(), Some(exit.clone()));
    assert_eq!(cameras.get("south").await.unwrap(), None);

    // The same name again, even pointing elsewhere: refused, and the first one stays.
    let again = camera("north-exit", "http://elsewhere/snap.jpg", Direction::Entry);
    let err = cameras.add(&again).await.unwrap_err();
    assert!(matches!(&err, StoreError::CameraExists(name) if name == "north-exit"), "{err:?}");
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(cameras.get("north-exit").await.unwrap(), Some(exit));

    assert!(cameras.remove("north-exit").await.unwrap());
    assert!(!cameras.remove("north-exit").await.unwrap(), "removing twice: the second finds none");
    assert!(!cameras.remove("never-added").await.unwrap());
    assert_eq!(cameras.list().await.unwrap(), [entry]);
    // Its name is free again.
    cameras.add(&again).await.unwrap();
    assert_eq!(cameras.get("north-exit").await.unwrap().unwrap().url, "http://elsewhere/snap.jpg");
}
