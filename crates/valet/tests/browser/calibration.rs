//! The operator's labels on the dashboard's live lot map, and each camera's calibration panel:
//! a corrected bay, a confirmed frame and an empty lot become labels (seen through
//! `GET /v1/lots/{id}/calibration`), a second label of a bay on the same frame is refused on the
//! page, and an adapter fitted from the labels shows its scores and can be rolled back.

use super::*;
use valet_lot::synthetic::aerial::{self, ParkedCar};

/// The aerial lot's camera.
const CAMERA: &str = aerial::CAMERA;

impl Garage {
    /// The bay camera posts a frame with cars in `taken` (bay indices, layout order).
    async fn post_lot_frame(&self, taken: &[usize], seed: u64) {
        let cars: Vec<ParkedCar> = taken.iter().map(|&bay| ParkedCar { bay, car: bay as u64 + seed }).collect();
        let frame = valet_imaging::encode_jpeg(&aerial::frame(&cars, seed), 85).unwrap();
        let answer = reqwest::Client::new()
            .post(format!("{}/v1/lots/aerial/frames", self.url))
            .bearer_auth(&self.camera_key)
            .body(frame)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    }

    /// The aerial camera's calibration as the API reports it.
    async fn calibration(&self) -> Value {
        let answer = reqwest::Client::new()
            .get(format!("{}/v1/lots/aerial/calibration", self.url))
            .bearer_auth(&self.operator_key)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.unwrap();
        body["cameras"]
            .as_array()
            .and_then(|cameras| cameras.iter().find(|c| c["camera"] == CAMERA))
            .unwrap_or_else(|| panic!("no camera {CAMERA} in {body}"))
            .clone()
    }

    /// (free, occupied, frames) labelled so far.
    async fn label_counts(&self) -> (u64, u64, u64) {
        let camera = self.calibration().await;
        let count = |key: &str| camera[key].as_u64().unwrap_or_else(|| panic!("no {key} in {camera}"));
        (count("free_labels"), count("occupied_labels"), count("frames"))
    }
}

impl Browser {
    async fn script(&self, script: &str) -> Value {
        self.command(reqwest::Method::POST, "/execute/sync", json!({ "script": script, "args": [] })).await
    }

    /// The frame the label form would label (its time), as the page knows it.
    async fn shown_frame(&self) -> String {
        let script = "var f = document.querySelector('form.label-frame input[name=frame]'); return f ? f.value : '';";
        self.script(script).await.as_str().unwrap_or_default().to_owned()
    }

    /// Waits (up to 10 s) until the page knows a frame other than `old`; returns it.
    async fn wait_shown_frame_after(&self, old: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let frame = self.shown_frame().await;
            if (!frame.is_empty() && frame != old) || Instant::now() > deadline {
                return frame;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An attribute of the bay `space`'s polygon on the map (`None` when it has none).
    async fn bay(&self, space: &str, attribute: &str) -> Option<String> {
        let script = format!(
            "var p = document.querySelector('polygon[data-space=\"{space}\"]'); return p && p.getAttribute('{attribute}');"
        );
        self.script(&script).await.as_str().map(str::to_owned)
    }

    /// The text of `css` in the aerial camera's calibration panel.
    async fn panel(&self, css: &str) -> String {
        self.text(&format!("article.camera-calibration[data-camera={CAMERA}] {css}")).await
    }
}

/// Reloads the dashboard (up to 60 s) until the camera panel's `css` satisfies `ok`: a fit runs
/// in the background, and the page shows it on the next load.
async fn reload_until(browser: &Browser, garage: &Garage, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        browser.goto(&format!("{}/ops", garage.url)).await;
        let text = browser.try_text(&format!("article.camera-calibration[data-camera={CAMERA}] {css}")).await;
        if text.as_deref().is_some_and(&ok) || Instant::now() > deadline {
            return text.unwrap_or_else(|| format!("(no {css})"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The bays with a car in the first frame the tests post, and the others.
const TAKEN: [usize; 5] = [0, 2, 3, 6, 9];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bay_corrected_on_the_map_is_stored_and_a_second_label_of_it_on_that_frame_is_refused() {
    in_browser("calibration_correct_a_bay", |browser, garage| async move {
        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        assert_eq!(browser.shown_frame().await, "", "no frame yet");
        // The frame arrives while the page is open: the map, and the frame the form labels, follow it.
        garage.post_lot_frame(&TAKEN, 1).await;
        let frame = browser.wait_shown_frame_after("").await;
        assert!(!frame.is_empty(), "the stream told the page of the frame");
        assert_eq!(browser.wait_text("[data-count=unknown]", |t| t == "0").await, "0");
        assert_eq!(browser.bay("A2", "data-state").await.as_deref(), Some("free"));
        // The operator sees a car in A2 the model missed: one click marks it occupied.
        browser.click("polygon[data-space=A2]").await;
        assert_eq!(browser.bay("A2", "data-label").await.as_deref(), Some("occupied"), "the click marked the bay");
        assert_eq!(browser.bay("A1", "data-label").await, None, "only the clicked bay");
        browser.click("form.label-frame button[value=bays]").await;
        let saved = browser.wait_text("#labelled", |t| t.contains("Saved")).await;
        assert!(saved.contains("Saved 1 label of camera cam1"), "{saved}");
        assert_eq!(garage.label_counts().await, (0, 1, 1), "one occupied label, of one frame");
        let labels = browser.panel("dd.labels").await;
        assert!(labels.contains("0 free, 1 occupied, from 1 frame"), "{labels}");
        // The same bay again on the same frame: refused, said on the page, nothing stored.
        browser.click("polygon[data-space=A2]").await;
        browser.click("form.label-frame button[value=bays]").await;
        let refusal = browser.wait_text("[role=alert]", |t| !t.is_empty()).await;
        assert!(refusal.contains("A2") && refusal.contains("already"), "{refusal}");
        assert_eq!(garage.label_counts().await, (0, 1, 1));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_confirms_a_frame_and_then_marks_the_lot_empty() {
    in_browser("calibration_confirm_and_empty", |browser, garage| async move {
        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        // Saving with no bay chosen says what to do instead of storing nothing.
        garage.post_lot_frame(&TAKEN, 1).await;
        browser.goto(&format!("{}/ops", garage.url)).await;
        browser.click("form.label-frame button[value=bays]").await;
        let refusal = browser.wait_text("[role=alert]", |t| !t.is_empty()).await;
        assert!(refusal.contains("No bay was chosen"), "{refusal}");
        // "This frame is right": every bay as the map shows it.
        browser.goto(&format!("{}/ops", garage.url)).await;
        browser.click("form.label-frame button[value=confirm]").await;
        let saved = browser.wait_text("#labelled", |t| t.contains("Saved")).await;
        assert!(saved.contains("Saved 10 labels"), "{saved}");
        assert_eq!(garage.label_counts().await, (5, 5, 1));
        // The cars leave; on the next frame the operator marks the lot empty.
        garage.post_lot_frame(&[], 2).await;
        browser.goto(&format!("{}/ops", garage.url)).await;
        browser.click("form.label-frame button[value=empty]").await;
        let saved = browser.wait_text("#labelled", |t| t.contains("Saved")).await;
        assert!(saved.contains("Saved 10 labels"), "{saved}");
        assert_eq!(garage.label_counts().await, (15, 5, 2), "ten more free labels, of a second frame");
    })
    .await;
}

/// The dashboard as a browser without JavaScript sees it: plain requests, the cookies kept by hand.
struct PlainPage {
    client: reqwest::Client,
    url: String,
    cookies: Vec<String>,
}

impl PlainPage {
    /// Signs in as the garage's operator.
    async fn sign_in(garage: &Garage) -> PlainPage {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let mut page = PlainPage { client, url: garage.url.clone(), cookies: Vec::new() };
        let (_, form) = page.get("/ops/login").await;
        let csrf = page_field(&form, "csrf");
        let name = garage.operator.clone();
        let (status, _) =
            page.post("/ops/login", &[("name", name.as_str()), ("key", &garage.operator_key), ("csrf", &csrf)]).await;
        assert_eq!(status, 303, "signed in");
        page
    }

    fn keep_cookies(&mut self, answer: &reqwest::Response) {
        for cookie in answer.headers().get_all(reqwest::header::SET_COOKIE) {
            let pair = cookie.to_str().unwrap().split(';').next().unwrap().to_owned();
            let name = pair.split('=').next().unwrap().to_owned();
            self.cookies.retain(|kept| !kept.starts_with(&format!("{name}=")));
            self.cookies.push(pair);
        }
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        let answer = self
            .client
            .get(format!("{}{path}", self.url))
            .header(reqwest::header::COOKIE, self.cookies.join("; "))
            .send()
            .await
            .unwrap();
        self.keep_cookies(&answer);
        (answer.status().as_u16(), answer.text().await.unwrap())
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let answer = self
            .client
            .post(format!("{}{path}", self.url))
            .header(reqwest::header::COOKIE, self.cookies.join("; "))
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep_cookies(&answer);
        (answer.status().as_u16(), answer.text().await.unwrap())
    }

    /// Loads the dashboard and presses one of the label form's buttons, as it was on that load.
    async fn label(&mut self, action: &str) -> (u16, String) {
        let (status, dashboard) = self.get("/ops").await;
        assert_eq!(status, 200);
        let (csrf, frame) = (page_field(&dashboard, "csrf"), page_field(&dashboard, "frame"));
        self.post(
            &format!("/ops/lots/aerial/cameras/{CAMERA}/labels"),
            &[("csrf", &csrf), ("frame", &frame), ("label", action)],
        )
        .await
    }
}

/// The value of the first hidden field `name` on a page.
fn page_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no field {name} on the page")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_javascript_frames_are_confirmed_and_a_frame_the_page_did_not_show_is_refused() {
    let garage = Garage::start();
    let mut page = PlainPage::sign_in(&garage).await;
    // No frame yet: nothing to cut a label from.
    let (status, refusal) = page.label("empty").await;
    assert_eq!(status, 409);
    assert!(refusal.contains("no frame yet"), "{refusal}");
    // The page shows frame 1, then frame 2 arrives: the form still names frame 1, and is refused.
    garage.post_lot_frame(&TAKEN, 1).await;
    let (_, dashboard) = page.get("/ops").await;
    let (csrf, shown) = (page_field(&dashboard, "csrf"), page_field(&dashboard, "frame"));
    garage.post_lot_frame(&TAKEN, 2).await;
    let path = format!("/ops/lots/aerial/cameras/{CAMERA}/labels");
    let (status, refusal) = page.post(&path, &[("csrf", &csrf), ("frame", &shown), ("label", "confirm")]).await;
    assert_eq!(status, 409);
    assert!(refusal.contains("new frame"), "{refusal}");
    assert_eq!(garage.label_counts().await, (0, 0, 0), "nothing stored");
    // Frame 2 as the page now shows it: confirmed, then marked empty, both by plain form posts.
    let (status, _) = page.label("confirm").await;
    assert_eq!(status, 303, "confirmed");
    assert_eq!(garage.label_counts().await, (5, 5, 1));
    garage.post_lot_frame(&[], 3).await;
    let (status, _) = page.label("empty").await;
    assert_eq!(status, 303, "marked empty");
    assert_eq!(garage.label_counts().await, (15, 5, 2));
    // Without the form's token, nothing is labelled.
    let (status, _) = page.post(&path, &[("csrf", "forged"), ("frame", &shown), ("label", "empty")]).await;
    assert_eq!(status, 403);
}

impl Browser {
    /// Marks each bay of the map with the state of `occupied` (bay indices), clicking it until its
    /// mark says so, and saves: the labels say what the operator says, whatever the map showed.
    async fn mark_every_bay(&self, occupied: &[usize]) {
        for (bay, space) in aerial::layout().spaces.iter().enumerate() {
            let wanted = if occupied.contains(&bay) { "occupied" } else { "free" };
            for _ in 0..3 {
                if self.bay(space.id.as_str(), "data-label").await.as_deref() == Some(wanted) {
                    break;
                }
                self.click(&format!("polygon[data-space={}]", space.id)).await;
            }
            assert_eq!(self.bay(space.id.as_str(), "data-label").await.as_deref(), Some(wanted), "bay {}", space.id);
        }
        self.click("form.label-frame button[value=bays]").await;
        let saved = self.wait_text("#labelled", |t| t.contains("Saved")).await;
        assert!(saved.contains("Saved 10 labels"), "{saved}");
    }
}

/// `97.5 %` as 97.5.
fn percent(text: &str) -> f64 {
    text.trim().trim_end_matches('%').trim().parse().unwrap_or_else(|_| panic!("not a percentage: {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_fitted_from_the_labels_shows_both_scores_and_an_admin_rolls_back_to_the_universal_model() {
    in_browser("calibration_adapter_rollback", |browser, garage| async move {
        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        let panel = browser.panel("dd.active").await;
        assert_eq!(panel, "the universal model", "no adapter before any label");
        // A camera whose every bay the universal model gets wrong (here: the operator says so on
        // three frames, every bay marked the other way), so an adapter fitted on the labels beats it.
        for (frame, taken) in [[0, 2, 3, 6, 9], [1, 4, 5, 7, 8], [0, 1, 2, 3, 4]].iter().enumerate() {
            garage.post_lot_frame(taken, 10 + frame as u64).await;
            browser.goto(&format!("{}/ops", garage.url)).await;
            let empty: Vec<usize> = (0..aerial::BAYS).filter(|bay| !taken.contains(bay)).collect();
            browser.mark_every_bay(&empty).await;
        }
        assert_eq!(garage.label_counts().await, (15, 15, 3));
        // The fits run in the background: wait for the last one.
        let active = reload_until(&browser, &garage, "dd.active", |t| t.starts_with("adapter version")).await;
        assert!(active.starts_with("adapter version"), "{active}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while garage.calibration().await["fitting"] == true && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        browser.goto(&format!("{}/ops", garage.url)).await;
        let active = browser.panel("dd.active").await;
        let universal = percent(&browser.panel("dd.accuracy strong.universal").await);
        let adapted = percent(&browser.panel("dd.accuracy strong.adapted").await);
        assert!(adapted > universal, "the kept adapter beats the universal model: {adapted} vs {universal}");
        let version = garage.calibration().await["active_version"].as_i64().expect("an active version");
        assert_eq!(active, format!("adapter version {version}"));
        let row = browser.panel(&format!("table.fits tr[data-version=\"{version}\"]")).await;
        assert!(row.contains("in use"), "{row}");
        // The admin goes back to the universal model.
        browser.click(&format!("article.camera-calibration[data-camera={CAMERA}] option[value=universal]")).await;
        browser.click(&format!("article.camera-calibration[data-camera={CAMERA}] form.rollback button")).await;
        let active = browser
            .wait_text(&format!("article.camera-calibration[data-camera={CAMERA}] dd.active"), |t| {
                t == "the universal model"
            })
            .await;
        assert_eq!(active, "the universal model");
        assert_eq!(garage.calibration().await["active_version"], Value::Null);
        let row = browser.panel(&format!("table.fits tr[data-version=\"{version}\"]")).await;
        assert!(!row.contains("in use") && row.contains("kept"), "{row}");
    })
    .await;
}
