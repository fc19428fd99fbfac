//! The gate lanes: a camera becomes known on its first read, keeps its first sighting, and
//! follows its latest direction; a late read never moves `last_seen` back.

use valet_garage::{CameraId, Direction};

use super::{TestGarage, at, conformance};

conformance!(a_lane_is_known_from_its_first_read_and_follows_its_latest);

async fn a_lane_is_known_from_its_first_read_and_follows_its_latest(garage: TestGarage) {
    let store = &garage.store;
    assert!(store.lanes().await.unwrap().is_empty());
    let exit = CameraId("lane-exit".to_owned());
    store.saw_lane(&exit, Direction::Exit, at(1, 8, 0)).await.unwrap();
    store.saw_lane(&CameraId("lane-entry".to_owned()), Direction::Entry, at(1, 8, 5)).await.unwrap();
    store.saw_lane(&exit, Direction::Exit, at(1, 9, 0)).await.unwrap();
    // A read delivered late does not make the lane look older.
    store.saw_lane(&exit, Direction::Exit, at(1, 8, 30)).await.unwrap();
    let lanes = store.lanes().await.unwrap();
    let cameras: Vec<&str> = lanes.iter().map(|l| l.camera.0.as_str()).collect();
    assert_eq!(cameras, ["lane-entry", "lane-exit"]);
    assert_eq!((lanes[1].first_seen, lanes[1].last_seen), (at(1, 8, 0), at(1, 9, 0)));
    // Remounted to watch the other way.
    store.saw_lane(&exit, Direction::Entry, at(1, 10, 0)).await.unwrap();
    assert_eq!(store.lanes().await.unwrap()[1].direction, Direction::Entry);
}
