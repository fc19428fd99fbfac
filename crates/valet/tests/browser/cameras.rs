//! The dashboard's Cameras page: reached from the nav, it lists the pushed cameras (lanes that
//! reported a read) and lets an admin add a pulled camera (its password never shown), see a bad
//! URL refused on the page, and remove it again. Needs the real `valet-cameras`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_and_removes_a_pulled_camera_on_the_cameras_page() {
    in_browser("cameras", |browser, garage| async move {
        garage.plate_read("lane-push", "entry", "AB123CD", 0.9).await;
        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        browser.click("header nav a[href='/ops/cameras']").await;
        browser.wait_url("/ops/cameras").await;
        let table = browser.text("#cameras").await;
        assert!(table.contains("lane-push") && table.contains("pushed"), "{table}");

        browser.fill("#camera-name", "north-exit").await;
        browser.fill("#camera-url", "rtsp://admin:hunter2@127.0.0.1:9/stream1").await;
        browser.fill("#camera-direction", "exit").await;
        browser.fill("#camera-lane", "north").await;
        browser.click("#add-camera button[type=submit]").await;
        let row = browser.wait_text("tr[data-camera='north-exit']", |t| t.contains("north-exit")).await;
        assert!(row.contains("pulled") && row.contains("exit") && row.contains("***"), "{row}");
        assert!(!row.contains("hunter2"), "the password is never shown: {row}");
        document(&browser, "cameras.png").await;

        // A URL Valet cannot pull is refused on the page, saying why; nothing is added.
        browser.fill("#camera-name", "ftp-cam").await;
        browser.fill("#camera-url", "ftp://127.0.0.1/x").await;
        browser.click("#add-camera button[type=submit]").await;
        let error = browser.wait_text("#camera-error", |t| !t.is_empty()).await;
        assert!(!error.starts_with("(no"), "{error}");

        browser.goto(&format!("{}/ops/cameras", garage.url)).await;
        browser.click("tr[data-camera='north-exit'] form.remove button").await;
        browser.wait_url("/ops/cameras").await;
        let table = browser.wait_text("#cameras", |t| !t.contains("north-exit")).await;
        assert!(!table.contains("north-exit") && table.contains("lane-push"), "{table}");
    })
    .await;
}
