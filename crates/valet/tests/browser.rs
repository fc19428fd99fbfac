//! The dashboard and the portal in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`; `.ci/run` installs them), against a real
//! `valet serve`. Skipped, with the reason printed, where they are not installed. A failing test
//! saves a screenshot to `target/browser-screenshots/`; with `VALET_SCREENSHOTS=DIR` the pages
//! shown in the README are saved there too.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::FutureExt;
use serde_json::{Value, json};

#[path = "browser/calibration.rs"]
mod calibration;
#[path = "browser/cameras.rs"]
mod cameras;
#[path = "browser/charges.rs"]
mod charges;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const FRAME_VL482TG: &[u8] = include_bytes!("../../server/demo/gate-VL482TG.jpg");

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A garage (`valet serve`, all functions, the rendered aerial lot) with a camera and an
/// operator, or `valet serve --demo` with its own operator and no camera key.
struct Garage {
    url: String,
    camera_key: String,
    operator: String,
    operator_key: String,
    _server: Running,
    _dir: tempfile::TempDir,
}

fn valet() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_valet"));
    for var in
        ["VALET_CONFIG", "VALET_LISTEN", "VALET_DATA_DIR", "VALET_DATABASE_URL", "VALET_FUNCTIONS", "PORT", "K_SINK"]
    {
        cmd.env_remove(var);
    }
    cmd
}

fn add_key(data: &Path, name: &str, role: &str) -> String {
    let out = valet().args(["devices", "add", name, "--role", role, "--data"]).arg(data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_owned()
}

impl Garage {
    fn start() -> Garage {
        Garage::start_with(&[])
    }

    /// A garage whose `valet serve` also gets the variables in `env`.
    fn start_with(env: &[(&str, String)]) -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("lots")).unwrap();
        let layout = valet_lot::synthetic::aerial::layout();
        std::fs::write(data.join("lots/aerial.toml"), layout.to_toml()).unwrap();
        // Every started quarter hour costs €0.75 from the first second, so a test's stay is charged.
        let tariff = dir.path().join("tariff.toml");
        std::fs::write(&tariff, "currency = \"EUR\"\nutc_offset_minutes = 0\ngrace_minutes = 0\ndaily_max_minor = 2400\n\n[[bands]]\nname = \"all day\"\nfrom_minute = 0\nevery_minutes = 15\nprice_minor = 75\n").unwrap();
        let camera_key = add_key(&data, "lane-cam", "device");
        let operator_key = add_key(&data, "alice", "admin");
        let mut child = valet()
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .env("VALET_TARIFF_FILE", &tariff)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("serve prints its URL").to_owned();
        Garage { url, camera_key, operator: "alice".to_owned(), operator_key, _server: Running(child), _dir: dir }
    }

    /// A camera that reads plates itself reports one.
    async fn plate_read(&self, camera: &str, direction: &str, text: &str, confidence: f32) {
        let read = json!({ "camera": camera, "direction": direction, "text": text, "confidence": confidence });
        let answer = reqwest::Client::new()
            .post(format!("{}/v1/plate-reads", self.url))
            .bearer_auth(&self.camera_key)
            .json(&read)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }

    /// The audit log, as the operator's key reads it.
    async fn audit(&self) -> Value {
        let answer = reqwest::Client::new()
            .get(format!("{}/v1/audit", self.url))
            .bearer_auth(&self.operator_key)
            .send()
            .await
            .unwrap();
        answer.json().await.unwrap()
    }

    /// Signs `plate` up through the API with the ledger's test card.
    async fn sign_up(&self, plate: &str) {
        let signed = reqwest::Client::new()
            .post(format!("{}/v1/drivers", self.url))
            .json(&json!({ "plates": [plate], "payment_method": "pm_card_visa" }))
            .send()
            .await
            .unwrap();
        assert_eq!(signed.status(), 201);
    }

    /// VL482TG drives in and out a second later, through the gate cameras' frames.
    async fn stay_of_a_second(&self) {
        self.post_gate_frame("entry").await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        self.post_gate_frame("exit").await;
    }

    /// VL482TG signed up, in and out: a paid stay of a second.
    async fn signed_up_stay(&self) {
        self.sign_up("VL482TG").await;
        self.stay_of_a_second().await;
    }

    /// `valet serve --demo` in a throwaway directory, as a newcomer first runs it.
    fn demo() -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let mut child = valet()
            .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut url, mut operator, mut operator_key) = (None, None, None);
        let mut printed = String::new();
        while operator_key.is_none() {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                panic!("serve --demo printed no URL, operator and key:\n{printed}");
            }
            let word = |prefix: &str| line.split_whitespace().find(|w| w.starts_with(prefix)).map(str::to_owned);
            url = url.or_else(|| word("http://").map(|w| w.trim_end_matches("/ops").to_owned()));
            operator = operator.or_else(|| word("`demo-").map(|w| w.trim_matches('`').to_owned()));
            operator_key = word("valet_");
            printed.push_str(&line);
        }
        let (Some(url), Some(operator), Some(operator_key)) = (url, operator, operator_key) else {
            panic!("serve --demo printed no URL, operator and key:\n{printed}");
        };
        Garage { url, camera_key: String::new(), operator, operator_key, _server: Running(child), _dir: dir }
    }

    async fn post_gate_frame(&self, direction: &str) {
        let answer = reqwest::Client::new()
            .post(format!("{}/v1/gates/lane-{direction}/frames?direction={direction}", self.url))
            .bearer_auth(&self.camera_key)
            .body(FRAME_VL482TG)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{}", answer.text().await.unwrap());
    }
}

/// A WebDriver session on headless Chromium.
struct Browser {
    base: String,
    client: reqwest::Client,
    _driver: Running,
}

impl Browser {
    /// `None` (after saying why) where Chromium or its driver is not installed.
    async fn start() -> Option<Browser> {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(tool).exists() {
                eprintln!("skipped: {tool} is not installed (apt-get install chromium chromium-driver)");
                return None;
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let driver = Running(driver);
        // A WebDriver call that never answers fails the test instead of hanging it.
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,1400"] }
        } } });
        let created: Value =
            client.post(format!("{base}/session")).json(&capabilities).send().await.unwrap().json().await.unwrap();
        let id = created["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_owned();
        Some(Browser { base: format!("{base}/session/{id}"), client, _driver: driver })
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.try_command(method, path, body).await.unwrap_or_else(|e| panic!("{e}"))
    }

    async fn try_command(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value, String> {
        let request = self.client.request(method, format!("{}{path}", self.base));
        let request = if body.is_null() { request } else { request.json(&body) };
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        match answer["value"].get("error") {
            Some(_) => Err(format!("WebDriver {path}: {}", answer["value"])),
            None => Ok(answer["value"].clone()),
        }
    }

    async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({ "url": url })).await;
    }

    async fn url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", Value::Null).await.as_str().unwrap().to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let found =
            self.command(reqwest::Method::POST, "/element", json!({ "using": "css selector", "value": css })).await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("{css}: {found}")).to_owned()
    }

    async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{element}/value"), json!({ "text": text })).await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{element}/click"), json!({})).await;
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.command(reqwest::Method::GET, &format!("/element/{element}/text"), Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `css`'s text, or `None` while no element matches (a page still loading).
    async fn try_text(&self, css: &str) -> Option<String> {
        let found = self
            .try_command(reqwest::Method::POST, "/element", json!({ "using": "css selector", "value": css }))
            .await
            .ok()?;
        let element = found[ELEMENT].as_str()?.to_owned();
        let text =
            self.try_command(reqwest::Method::GET, &format!("/element/{element}/text"), Value::Null).await.ok()?;
        text.as_str().map(str::to_owned)
    }

    /// Waits (up to 10 s) until `css`'s text satisfies `ok`, since a form's submission and its
    /// redirect finish after the click returns; returns the last text seen.
    async fn wait_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.try_text(css).await;
            if text.as_deref().is_some_and(&ok) || Instant::now() > deadline {
                return text.unwrap_or_else(|| format!("(no {css})"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (up to 10 s) until the page's address ends with `suffix`.
    async fn wait_url(&self, suffix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url().await;
            if url.ends_with(suffix) || Instant::now() > deadline {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, path: &Path) {
        let png = self.command(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Signs in to the dashboard as `name`.
    async fn sign_in(&self, garage: &Garage, name: &str, key: &str) {
        self.goto(&format!("{}/ops", garage.url)).await;
        self.fill("#name", name).await;
        self.fill("#key", key).await;
        self.click("form.card button[type=submit]").await;
        self.wait_text("#operator", |t| t == name).await;
    }
}

/// Runs `body` with a browser and a garage; on failure saves a screenshot named after the test.
/// Both are dropped (their processes killed) when it returns, pass, fail or time out: a test that
/// is still running after `TEST_LIMIT` fails, so a stuck browser cannot hang the whole run.
async fn in_browser<F>(name: &str, body: impl FnOnce(Arc<Browser>, Arc<Garage>) -> F)
where
    F: std::future::Future<Output = ()>,
{
    in_garage(name, Garage::start, body).await;
}

/// [`in_browser`] against `valet serve --demo`.
async fn in_demo<F>(name: &str, body: impl FnOnce(Arc<Browser>, Arc<Garage>) -> F)
where
    F: std::future::Future<Output = ()>,
{
    in_garage(name, Garage::demo, body).await;
}

/// [`in_browser`], the garage started with `env`.
async fn in_browser_with<F>(name: &str, env: &[(&str, String)], body: impl FnOnce(Arc<Browser>, Arc<Garage>) -> F)
where
    F: std::future::Future<Output = ()>,
{
    in_garage(name, || Garage::start_with(env), body).await;
}

async fn in_garage<F>(name: &str, garage: impl FnOnce() -> Garage, body: impl FnOnce(Arc<Browser>, Arc<Garage>) -> F)
where
    F: std::future::Future<Output = ()>,
{
    const TEST_LIMIT: Duration = Duration::from_secs(180);
    if tokio::time::timeout(TEST_LIMIT, run_in_browser(name, garage, body)).await.is_err() {
        panic!("{name}: still running after {TEST_LIMIT:?}");
    }
}

async fn run_in_browser<F>(
    name: &str,
    garage: impl FnOnce() -> Garage,
    body: impl FnOnce(Arc<Browser>, Arc<Garage>) -> F,
) where
    F: std::future::Future<Output = ()>,
{
    let Some(browser) = Browser::start().await else { return };
    let browser = Arc::new(browser);
    let garage = Arc::new(garage());
    let outcome = std::panic::AssertUnwindSafe(body(Arc::clone(&browser), garage)).catch_unwind().await;
    if let Err(panic) = outcome {
        let path =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../browser-screenshots").join(format!("{name}.png"));
        browser.screenshot(&path).await;
        eprintln!("screenshot of the failure: {}", path.display());
        let _ = browser.client.delete(&browser.base).send().await;
        std::panic::resume_unwind(panic);
    }
    let _ = browser.client.delete(&browser.base).send().await;
}

/// Saves a README screenshot when `VALET_SCREENSHOTS` names a directory.
async fn document(browser: &Browser, name: &str) {
    if let Ok(dir) = std::env::var("VALET_SCREENSHOTS") {
        browser.screenshot(&Path::new(&dir).join(name)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_signs_up_in_the_portal_and_sees_the_account() {
    in_browser("driver_sign_up", |browser, garage| async move {
        browser.goto(&garage.url).await;
        document(&browser, "portal.png").await;
        browser.fill("#plates", "VL482TG, KM907RS").await;
        browser.click("form[action='/signup'] button").await;
        browser.wait_text("#recovery-code", |t| t.len() == 24).await;
        browser.click("#continue").await;
        let url = browser.wait_url("/me").await;
        assert!(url.ends_with("/me"), "{url}");
        let plates = browser.wait_text("#plates", |t| t.contains("KM907RS")).await;
        assert!(plates.contains("VL482TG") && plates.contains("KM907RS"), "{plates}");
        // The car arrives: the gate knows it, and the stay shows on the account.
        garage.post_gate_frame("entry").await;
        browser.goto(&format!("{}/me", garage.url)).await;
        let stays = browser.wait_text("#stays", |t| t.contains("VL482TG")).await;
        assert!(stays.contains("VL482TG") && stays.contains("open"), "{stays}");
        // A plate whose car is inside cannot be removed; the other one can.
        browser.click("form[action='/me/plates/VL482TG/remove'] button").await;
        let refusal = browser.wait_text("[role=alert]", |t| !t.is_empty()).await;
        assert!(refusal.to_lowercase().contains("session") || refusal.contains("inside"), "{refusal}");
        browser.goto(&format!("{}/me", garage.url)).await;
        browser.click("form[action='/me/plates/KM907RS/remove'] button").await;
        let plates = browser.wait_text("#plates", |t| !t.contains("KM907RS")).await;
        assert!(plates.contains("VL482TG") && !plates.contains("KM907RS"), "{plates}");
        document(&browser, "portal-account.png").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_refuses_strangers_and_lets_an_operator_in() {
    in_browser("operator_login", |browser, garage| async move {
        // Not signed in: the dashboard sends the browser to the sign-in page.
        browser.goto(&format!("{}/ops", garage.url)).await;
        let url = browser.wait_url("/ops/login").await;
        assert!(url.ends_with("/ops/login"), "{url}");
        // A wrong key is refused.
        browser.fill("#name", "alice").await;
        browser.fill("#key", "valet_wrong").await;
        browser.click("form.card button[type=submit]").await;
        let alert = browser.wait_text("[role=alert]", |t| t.contains("do not match")).await;
        assert!(alert.contains("do not match"), "{alert}");
        // The right one signs in.
        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        assert_eq!(browser.wait_text("#operator", |t| t == "alice").await, "alice");
        // The operator puts a plate on the deny list; the page and the audit log show it.
        browser.fill("#list-plate", "XX999XX").await;
        browser.fill("#list-why", "stolen car report 4711").await;
        browser.click("form[action='/ops/lists'] button").await;
        let lists = browser.wait_text("#lists", |t| t.contains("Denied: XX999XX")).await;
        assert!(lists.contains("Denied: XX999XX"), "{lists}");
        let log = browser.wait_text("#audit", |t| t.contains("stolen car report 4711")).await;
        assert!(log.contains("stolen car report 4711"), "{log}");
        // Without the login cookie, and without the form's token, changes are refused.
        let client = reqwest::Client::new();
        let answer = client
            .post(format!("{}/ops/review/1", garage.url))
            .form(&[("resolution", "x"), ("decision", "none"), ("why", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
        let answer = client
            .post(format!("{}/signup", garage.url))
            .form(&[("plates", "AB123CD"), ("payment_method", "pm_card_visa")])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "a form without its CSRF token");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_frame_opens_a_session_the_dashboard_shows() {
    in_browser("session_opens", |browser, garage| async move {
        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        assert_eq!(browser.text("#inside").await, "0");
        garage.post_gate_frame("entry").await;
        browser.goto(&format!("{}/ops", garage.url)).await;
        assert_eq!(browser.text("#inside").await, "1");
        assert!(browser.text("#sessions").await.contains("VL482TG"));
    })
    .await;
}

/// Each polygon's `data-state` on the dashboard's map, in layout order.
async fn map_states(browser: &Browser) -> Vec<String> {
    let states = browser
        .command(reqwest::Method::POST, "/execute/sync", json!({
            "script": "return Array.from(document.querySelectorAll('polygon')).map(p => p.dataset.state || '')", "args": []
        }))
        .await;
    states.as_array().unwrap().iter().map(|s| s.as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_updates_live_when_a_bay_frame_is_posted() {
    use valet_lot::synthetic::aerial::{self, ParkedCar};
    in_browser("map_updates", |browser, garage| async move {
        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        assert_eq!(browser.text("[data-count=unknown]").await, "10", "no frame yet");
        // A bay camera posts a frame with cars in five bays; the page is not reloaded.
        let taken = [0, 2, 3, 6, 9];
        let cars: Vec<ParkedCar> = taken.iter().map(|&bay| ParkedCar { bay, car: bay as u64 }).collect();
        let frame = valet_imaging::encode_jpeg(&aerial::frame(&cars, 1), 85).unwrap();
        let answer = reqwest::Client::new()
            .post(format!("{}/v1/lots/aerial/frames", garage.url))
            .bearer_auth(&garage.camera_key)
            .body(frame)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let unknown = browser.wait_text("[data-count=unknown]", |t| t == "0").await;
        assert_eq!(unknown, "0", "the counts moved without a reload");
        assert_eq!(browser.text("[data-count=occupied]").await, "5");
        let expected: Vec<&str> =
            (0..aerial::BAYS).map(|bay| if taken.contains(&bay) { "occupied" } else { "free" }).collect();
        assert_eq!(map_states(&browser).await, expected, "each bay is coloured by the car in it, or none");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_dashboard_shows_its_cars_coming_and_going() {
    in_demo("demo_dashboard", |browser, garage| async move {
        browser.sign_in(&garage, &garage.operator, &garage.operator_key).await;
        // The first screen: the demo lot is read within a tick or two, its map agreeing with its
        // counts; then cars come and go, and the counts follow without a reload.
        let first = browser.wait_text("[data-count=unknown]", |t| t == "0").await;
        assert_eq!(first, "0", "the demo lot was read");
        let mut seen = std::collections::BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        // For the README's picture, a lot with a few cars in it (the demo has six).
        let mut busy = false;
        while (seen.len() < 2 || !busy) && Instant::now() < deadline {
            let occupied = browser.text("[data-count=occupied]").await;
            let free = browser.text("[data-count=free]").await;
            let states = map_states(&browser).await;
            let on_map = states.iter().filter(|s| *s == "occupied").count().to_string();
            // The stream updates the counts and the polygons one after the other: compare a
            // settled page only.
            if on_map == occupied && free == (10 - states.iter().filter(|s| *s == "occupied").count()).to_string() {
                busy = occupied.parse::<u32>().is_ok_and(|n| n >= 3);
                seen.insert(occupied);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(seen.len() >= 2, "the demo lot's counts moved as cars came and went: {seen:?}");
        // The sessions table is drawn when the page loads: load it afresh for the picture.
        browser.goto(&format!("{}/ops", garage.url)).await;
        browser.wait_text("[data-count=unknown]", |t| t == "0").await;
        document(&browser, "dashboard.png").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_decides_a_review_item() {
    in_browser("review_decision", |browser, garage| async move {
        // An unsure read at the entry: the gate lets the car in and asks a person.
        garage.plate_read("lane-entry", "entry", "AB123CD", 0.3).await;
        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        assert!(browser.text("#review-h").await.contains("(1)"));
        // The item says whose stay it is and that the car is still inside.
        let stay = browser.text(".review .stay").await;
        assert!(stay.contains("still inside"), "{stay}");
        browser.fill("form.decide input[name=resolution]", "confirmed AB123CD on the camera image").await;
        browser.fill("form.decide input[name=why]", "the plate is legible in the frame").await;
        browser.click("form.decide button").await;
        let queue = browser.wait_text("#review-h", |t| t.contains("(0)")).await;
        assert!(queue.contains("(0)"), "{queue}");
        // The decision is in the audit log, under the operator's name.
        let audit = garage.audit().await;
        assert!(audit.to_string().contains("alice") && audit.to_string().contains("legible"), "{audit}");
    })
    .await;
}

/// The broker the barrier tests use, when one answers.
const BROKER: &str = "127.0.0.1:1883";

fn broker_answers() -> bool {
    std::net::TcpStream::connect_timeout(&BROKER.parse().unwrap(), Duration::from_secs(1)).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_lifts_a_known_lanes_barrier_and_only_that_is_audited() {
    if !broker_answers() {
        eprintln!("skipped: no MQTT broker answers at {BROKER} (the barriers' channel)");
        return;
    }
    let env = [
        ("VALET_MQTT_BROKER", BROKER.to_owned()),
        ("VALET_MQTT_PREFIX", format!("valet-browser-{}", std::process::id())),
    ];
    in_browser_with("barrier_lift", &env, |browser, garage| async move {
        // A lane is known once its camera has read a plate.
        garage.plate_read("lane-exit", "exit", "AB123CD", 0.9).await;
        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        // The form offers the known lanes only: no typing a lane that does not exist.
        let lanes = browser.text("#barrier-camera").await;
        assert_eq!(lanes.trim(), "lane-exit (exit)", "{lanes}");
        browser.fill("#barrier-why", "intercom: the reader cannot see the plate").await;
        browser.click("form[action='/ops/barriers/open'] button").await;
        let log = browser.wait_text("#audit", |t| t.contains("lane-exit")).await;
        assert!(log.contains("lifted the barrier at lane-exit") && log.contains("intercom"), "{log}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_barrier_channel_the_dashboard_says_so_instead_of_a_form() {
    in_browser("no_barrier_channel", |browser, garage| async move {
        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        let section = browser.text("section[aria-labelledby=barrier-h]").await;
        assert!(section.contains("No lane yet"), "{section}");
        garage.post_gate_frame("entry").await;
        browser.goto(&format!("{}/ops", garage.url)).await;
        let section = browser.text("section[aria-labelledby=barrier-h]").await;
        assert!(section.contains("No barrier channel") && section.contains("VALET_MQTT_BROKER"), "{section}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_refunds_a_paid_stay() {
    in_browser("refund", |browser, garage| async move {
        garage.signed_up_stay().await;
        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        assert_eq!(browser.text("#paid-today").await, "€0.75");
        assert!(browser.text("#paid").await.contains("VL482TG"));
        let tariff = browser.text("#tariff").await;
        assert!(tariff.starts_with("Charged from the first minute"), "no grace reads as none: {tariff}");
        browser.fill("form.refund input[name=why]", "barrier fault: the driver waited ten minutes").await;
        browser.click("form.refund button").await;
        let log = browser.wait_text("#audit", |t| t.contains("refunded")).await;
        assert!(log.contains("refunded €0.75") && log.contains("barrier fault"), "{log}");
        // Refunded in full: the day's takings say so, and the stay offers no second refund.
        assert_eq!(browser.text("#paid-today").await, "€0.00");
        let paid = browser.text("#paid").await;
        assert!(paid.contains("refunded €0.75") && !paid.contains("Refund in full"), "{paid}");
        assert!(browser.try_text("form.refund").await.is_none(), "no refund form is left: {paid}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stay_that_cost_nothing_offers_no_refund() {
    in_browser("free_stay", |browser, garage| async move {
        let client = reqwest::Client::new();
        garage.sign_up("VL482TG").await;
        // An hour's grace: the test's stay of a second costs €0.00 and charges nothing.
        let tariff = json!({ "tariff": { "currency": "EUR", "grace_minutes": 60, "daily_max_minor": 2400,
            "bands": [{ "name": "all day", "from_minute": 0, "every_minutes": 15, "price_minor": 75 }] },
            "why": "test: an hour free" });
        let changed = client
            .put(format!("{}/v1/tariff", garage.url))
            .bearer_auth(&garage.operator_key)
            .json(&tariff)
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), 200);
        garage.stay_of_a_second().await;
        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        let paid = browser.text("#paid").await;
        assert!(paid.contains("VL482TG") && paid.contains("nothing charged"), "{paid}");
        assert!(browser.try_text("form.refund").await.is_none(), "no refund form for a free stay: {paid}");
        assert_eq!(browser.text("#paid-today").await, "€0.00");
        let tariff = browser.text("#tariff").await;
        assert!(tariff.contains("Free for the first 60 minutes"), "{tariff}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_item_raised_by_a_gate_frame_shows_the_plate_as_the_camera_saw_it() {
    in_browser("review_crop", |browser, garage| async move {
        // The bundled models are unsure of this rendered plate, so its entry is queued for review.
        let unsure: &[u8] = include_bytes!("../../server/demo/gate-ZH927LC.jpg");
        let answer = reqwest::Client::new()
            .post(format!("{}/v1/gates/lane-entry/frames?direction=entry", garage.url))
            .bearer_auth(&garage.camera_key)
            .body(unsure)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        assert!(browser.text("#review-h").await.contains("(1)"));
        let shown = browser
            .command(reqwest::Method::POST, "/execute/async", json!({
                "script": "var done = arguments[0]; var img = document.querySelector('img.crop'); \
                           if (!img) { done(0); } else if (img.complete) { done(img.naturalWidth); } \
                           else { img.onload = function () { done(img.naturalWidth); }; img.onerror = function () { done(-1); }; }",
                "args": []
            }))
            .await;
        assert!(shown.as_i64().unwrap_or(0) > 0, "the crop is shown: {shown}");
        // The operator reads the plate off the image and corrects it, with no decision to write;
        // the stay carries it now.
        browser.fill("form.correct input[name=plate]", "ZH927LC").await;
        browser.fill("form.correct input[name=why]", "legible in the crop").await;
        browser.click("form.correct button").await;
        let log = browser.wait_text("#audit", |t| t.contains("corrected")).await;
        assert!(log.contains("corrected the plate ZH927LG to ZH927LC"), "{log}");
        assert!(browser.text("#sessions").await.contains("ZH927LC"));
        // And the crop is shown only to a signed-in operator.
        let stranger = reqwest::get(format!("{}/ops/review/1/crop.jpg", garage.url)).await.unwrap();
        assert_eq!(stranger.status(), 401);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_no_page_scrolls_sideways() {
    in_browser("phone_width", |browser, garage| async move {
        // Fill the dashboard's wide parts: a car inside, a paid stay, a review item with its crop.
        let client = reqwest::Client::new();
        garage.signed_up_stay().await;
        let unsure: &[u8] = include_bytes!("../../server/demo/gate-ZH927LC.jpg");
        let answer = client
            .post(format!("{}/v1/gates/lane-entry/frames?direction=entry", garage.url))
            .bearer_auth(&garage.camera_key)
            .body(unsure)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
        browser.command(reqwest::Method::POST, "/window/rect", json!({ "width": 390, "height": 844 })).await;
        browser.sign_in(&garage, "alice", &garage.operator_key).await;
        for page in ["/ops", "/", "/ops/login"] {
            browser.goto(&format!("{}{page}", garage.url)).await;
            let widths = browser
                .command(reqwest::Method::POST, "/execute/sync", json!({
                    "script": "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]", "args": []
                }))
                .await;
            let (scroll, client) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
            assert!(client <= 400, "the window is a phone's: {widths}");
            assert!(scroll <= client, "{page} scrolls sideways on a phone: {scroll} px of content in {client} px");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_signs_out_and_signs_in_again_on_a_new_phone_with_the_recovery_code() {
    in_browser("driver_sign_in", |browser, garage| async move {
        browser.goto(&garage.url).await;
        browser.fill("#plates", "PHONE1").await;
        browser.click("form[action='/signup'] button").await;
        let code = browser.wait_text("#recovery-code", |t| t.len() == 24).await;
        assert_eq!(code.matches('-').count(), 4, "the code is shown once, in groups: {code}");
        browser.click("#continue").await;
        let plates = browser.wait_text("#plates", |t| t.contains("PHONE1")).await;
        assert!(plates.contains("PHONE1") && !plates.contains("PH0NE1"), "spelled as typed: {plates}");

        // Signing out: this browser no longer opens the account.
        browser.click("form[action='/me/signout'] button").await;
        browser.wait_text("#signup-h", |t| !t.is_empty()).await;
        browser.goto(&format!("{}/me", garage.url)).await;
        assert!(!browser.url().await.ends_with("/me"), "signed out");

        // A new phone: a browser that has never seen this garage.
        let phone = Browser::start().await.expect("Chromium ran a moment ago");
        phone.goto(&format!("{}/signin", garage.url)).await;
        phone.fill("#signin-plate", "phone1").await;
        phone.fill("#signin-code", "0000-0000-0000-0000-0000").await;
        phone.click("form[action='/signin'] button").await;
        let refused = phone.wait_text("[role=alert]", |t| t.contains("do not open")).await;
        assert!(refused.contains("do not open an account"), "{refused}");
        phone.fill("#signin-plate", "phone1").await;
        phone.fill("#signin-code", &code.to_lowercase()).await;
        phone.click("form[action='/signin'] button").await;
        let next = phone.wait_text("#recovery-code", |t| t.len() == 24).await;
        assert!(next.len() == 24 && next != code, "a used code is replaced: {next}");
        phone.click("#continue").await;
        let plates = phone.wait_text("#plates", |t| t.contains("PHONE1")).await;
        assert!(plates.contains("PHONE1"), "{plates}");
        let _ = phone.client.delete(&phone.base).send().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_without_the_link_pays_by_plate_with_the_hour_they_drove_in() {
    in_browser("pay_by_plate", |browser, garage| async move {
        garage.post_gate_frame("entry").await; // VL482TG, not signed up; the garage's clock is UTC
        let hour = chrono::Utc::now().format("%-H").to_string().parse::<u32>().unwrap();
        let find = |plate: &'static str, hour: u32| {
            let browser = Arc::clone(&browser);
            let url = garage.url.clone();
            async move {
                browser.goto(&url).await;
                browser.fill("#pay-plate", plate).await;
                browser.click(&format!("#pay-hour option[value='{hour}']")).await;
                browser.click("form[action='/pay'] button").await;
            }
        };
        // Twelve hours off: the same answer as a car that is not there, and the ways out.
        find("VL482TG", (hour + 12) % 24).await;
        let alert = browser.wait_text("[role=alert]", |t| !t.is_empty()).await;
        assert!(alert.contains("did not lead to a stay") && !alert.contains("VL482TG"), "{alert}");
        assert!(browser.text("#other-ways").await.contains("intercom"));
        find("QQ999QQ", hour).await;
        assert_eq!(browser.wait_text("[role=alert]", |t| !t.is_empty()).await, alert);

        // The plate and the hour it drove in: the stay's own page, ready to pay.
        find("VL482TG", hour).await;
        let plate = browser.wait_text("#quote-plate", |t| t == "VL482TG").await;
        assert_eq!(plate, "VL482TG");
        assert!(browser.url().await.contains("/pay/"));
    })
    .await;
}
