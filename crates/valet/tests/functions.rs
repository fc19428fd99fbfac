//! Valet's functions as separate `valet serve --functions …` processes on loopback, wired by
//! `K_SINK` the way Knative's SinkBinding wires them, or fed events directly the way a broker
//! delivers them: a JPEG from a gate camera to a recorded charge, duplicate deliveries to
//! replicas on one PostgreSQL, and a function killed mid-chain.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use valet_garage::{ChargeState, Plate, SessionState};
use valet_store::{GarageStore, PlateKey, SessionFilter, Store};

const PLATE_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
/// Every started quarter hour costs €0.75, from the first second: a test's stay of a second owes.
const TARIFF: &str = "currency = \"EUR\"\nutc_offset_minutes = 0\ngrace_minutes = 0\ndaily_max_minor = 2400\n\n\
                      [[bands]]\nname = \"from the first second\"\nfrom_minute = 0\nevery_minutes = 15\nprice_minor = 75\n";
/// Rendered by `training/plates/render_gate_frame.py`: a car's rear with the plate VL482TG.
const FRAME_VL482TG: &[u8] = include_bytes!("../../server/demo/gate-VL482TG.jpg");

/// Where the functions keep the garage: one SQLite file they share, or one PostgreSQL schema.
struct Garage {
    dir: tempfile::TempDir,
    postgres: Option<valet_store::scratch::ScratchGarage>,
}

impl Garage {
    fn sqlite() -> Garage {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tariff.toml"), TARIFF).unwrap();
        Garage { dir, postgres: None }
    }

    /// A schema of its own on the local PostgreSQL, or `None` after saying why there is none.
    async fn postgres() -> Option<Garage> {
        match valet_store::scratch::ScratchGarage::postgres(key(), "valet_functions").await {
            Ok(scratch) => {
                let mut garage = Garage::sqlite();
                garage.postgres = Some(scratch);
                Some(garage)
            }
            Err(why) => {
                eprintln!("skipped: {why}");
                None
            }
        }
    }

    /// The directory a function's process keeps its local files in: on SQLite every function
    /// shares one (the database is there), on PostgreSQL each has its own.
    fn data(&self, function: &str) -> PathBuf {
        match self.postgres {
            None => self.dir.path().join("data"),
            Some(_) => self.dir.path().join(function.replace(',', "-")),
        }
    }

    /// The garage's records, read past the functions.
    async fn store(&self) -> GarageStore {
        match &self.postgres {
            Some(scratch) => scratch.store.clone(),
            None => Store::open(&self.data("")).await.unwrap().garage(key()),
        }
    }

    /// Starts `valet serve --functions FUNCTIONS`, posting onward events to `sink`.
    fn start(&self, functions: &str, sink: Option<&str>) -> Function {
        self.start_with(functions, sink, &[])
    }

    fn start_with(&self, functions: &str, sink: Option<&str>, env: &[(&str, &str)]) -> Function {
        let data = self.data(functions);
        let log = self.dir.path().join(format!("{}-{}.log", functions.replace(',', "-"), rand_suffix()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_valet"));
        for var in [
            "VALET_CONFIG",
            "VALET_LISTEN",
            "VALET_DATA_DIR",
            "VALET_FUNCTIONS",
            "VALET_DATABASE_URL",
            "PORT",
            "K_SINK",
        ] {
            cmd.env_remove(var);
        }
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--functions", functions, "--data"])
            .arg(&data)
            .env("VALET_PLATE_KEY", PLATE_KEY)
            .env("VALET_TARIFF_FILE", self.dir.path().join("tariff.toml"))
            .env("VALET_SINK_ATTEMPTS", "2")
            .env("VALET_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(url) = self.postgres.as_ref().and_then(|p| p.postgres_url()) {
            cmd.env("VALET_DATABASE_URL", url);
        }
        if let Some(sink) = sink {
            cmd.env("K_SINK", sink);
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).map(str::to_owned);
        let url =
            url.unwrap_or_else(|| panic!("{functions} did not start:\n{}", std::fs::read_to_string(&log).unwrap()));
        Function { child, url, log, name: functions.to_owned() }
    }
}

fn key() -> PlateKey {
    PlateKey::new(&hex::decode(PLATE_KEY).unwrap()).unwrap()
}

fn rand_suffix() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos())
}

/// One `valet serve` process; killed on drop.
struct Function {
    child: Child,
    url: String,
    log: PathBuf,
    name: String,
}

impl Function {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        format!("--- {} log ---\n{}", self.name, std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        self.kill();
    }
}

fn add_device(data: &Path, name: &str, role: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_valet"))
        .args(["devices", "add", name, "--role", role, "--data"])
        .arg(data)
        .env_remove("VALET_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_owned()
}

async fn sign_up(query: &Function, plate: &str) {
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/drivers", query.url))
        .json(&json!({ "plates": [plate], "payment_method": "pm_card_visa" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
}

/// A CloudEvent delivered in binary mode, as the broker delivers it: (status, ce-type, body).
async fn deliver(to: &Function, id: String, ty: &str, data: Value) -> (u16, Option<String>, Value) {
    deliver_binary(to, &id, ty, &[("content-type", "application/json")], data.to_string().into_bytes()).await
}

/// `body` posted with the CloudEvent attributes and `headers` (content type, extensions).
async fn deliver_binary(
    to: &Function,
    id: &str,
    ty: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Option<String>, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/", to.url))
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-source", "/test/broker")
        .header("ce-type", ty);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let answer = request.body(body).send().await.unwrap();
    let status = answer.status().as_u16();
    let ty = answer.headers().get("ce-type").map(|v| v.to_str().unwrap().to_owned());
    let body = answer.bytes().await.unwrap();
    (status, ty, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn plate_read(plate: &str, direction: &str) -> Value {
    json!({ "camera": format!("lane-{direction}"), "direction": direction, "text": plate, "confidence": 0.98 })
}

/// Each session of `plate` with its charges' states.
async fn sessions_of(store: &GarageStore, plate: &str) -> Vec<(SessionState, Vec<String>)> {
    let plate = Plate::parse(plate).unwrap();
    let mut found = Vec::new();
    for record in store.sessions(SessionFilter::All, 500).await.unwrap() {
        if record.plate.as_ref() == Some(&plate) {
            let charges = store.charges_for_session(record.id).await.unwrap();
            let states = charges
                .iter()
                .map(|c| match c.charge.state() {
                    ChargeState::Requested { .. } => "requested".to_owned(),
                    ChargeState::Succeeded { .. } => "succeeded".to_owned(),
                    ChargeState::Failed { .. } => "failed".to_owned(),
                })
                .collect();
            found.push((record.state, states));
        }
    }
    found
}

fn paid_once(sessions: &[(SessionState, Vec<String>)]) -> bool {
    matches!(sessions, [(SessionState::Paid { .. }, charges)] if charges == &["succeeded"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_frame_goes_through_four_processes_to_one_recorded_charge() {
    let garage = Garage::sqlite();
    let camera_key = add_device(&garage.data("ingest,query"), "lane-cam", "device");
    // Started last-to-first, each told where the next one listens.
    let billing = garage.start("billing", None);
    let gate = garage.start("gate", Some(&billing.url));
    let reader = garage.start("plate-reader", Some(&gate.url));
    let front = garage.start("ingest,query", Some(&reader.url));
    let logs = || [&front, &reader, &gate, &billing].map(Function::log).join("\n");
    sign_up(&front, "VL482TG").await;

    let client = reqwest::Client::new();
    for (direction, idempotency_key) in [("entry", "frame-1"), ("exit", "frame-2")] {
        let answer = client
            .post(format!("{}/v1/gates/lane-{direction}/frames?direction={direction}", front.url))
            .bearer_auth(&camera_key)
            .header("idempotency-key", idempotency_key)
            .header("content-type", "image/jpeg")
            .body(FRAME_VL482TG)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        // Nothing after ingest runs in its process: the frame went on to the plate reader.
        assert_eq!(status, 202, "{body}\n{}", logs());
        assert_eq!(body["id"], idempotency_key);
        assert!(body["forwarded"].is_string(), "{body}");
        // A stay of at least a second owes one increment.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let store = garage.store().await;
    let sessions = sessions_of(&store, "VL482TG").await;
    assert!(paid_once(&sessions), "{sessions:?}\n{}", logs());

    // The camera retries the exit upload (its answer was lost): the same key, the same chain,
    // and the gate recognises the read: still one session, one charge.
    let again = client
        .post(format!("{}/v1/gates/lane-exit/frames?direction=exit", front.url))
        .bearer_auth(&camera_key)
        .header("idempotency-key", "frame-2")
        .body(FRAME_VL482TG)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 202);
    assert!(paid_once(&sessions_of(&store, "VL482TG").await), "{}", logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_of_gate_and_billing_on_one_postgres_make_one_session_and_one_charge_per_car() {
    let Some(garage) = Garage::postgres().await else { return };
    let query = garage.start("query", None);
    let gates = [garage.start("gate", None), garage.start("gate", None)];
    let billers = [garage.start("billing", None), garage.start("billing", None)];
    let cars = ["RA101AA", "RA202BB", "RA303CC", "RA404DD"];
    for car in cars {
        sign_up(&query, car).await;
    }

    // The broker delivers each entry read three times to each gate replica, all at once.
    let mut deliveries = Vec::new();
    for car in cars {
        for gate in &gates {
            for _ in 0..3 {
                deliveries.push(deliver(
                    gate,
                    format!("entry-{car}"),
                    "io.valet.plate.read.v1",
                    plate_read(car, "entry"),
                ));
            }
        }
    }
    for (status, ty, body) in futures_util::future::join_all(deliveries).await {
        // Handled (200, the session opened, first or replayed) or "busy, come back" (503).
        assert!(status == 200 || status == 503, "{status} {body}");
        if status == 200 {
            assert_eq!(ty.as_deref(), Some("io.valet.session.opened.v1"), "{body}");
        }
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Exits, likewise duplicated; the gates' replies (session.closed with the charge) are then
    // delivered three times to each billing replica, all at once.
    let mut exits = Vec::new();
    for car in cars {
        for gate in &gates {
            for _ in 0..3 {
                exits.push(deliver(gate, format!("exit-{car}"), "io.valet.plate.read.v1", plate_read(car, "exit")));
            }
        }
    }
    let mut closed = Vec::new();
    for (status, ty, body) in futures_util::future::join_all(exits).await {
        assert!(status == 200 || status == 503, "{status} {body}");
        if status == 200 {
            assert_eq!(ty.as_deref(), Some("io.valet.session.closed.v1"), "{body}");
            assert!(body["charge_request"].is_object(), "{body}");
            closed.push(body);
        }
    }
    // Every car's exit was answered at least once (a 503 is retried by the broker; here the
    // first worker's answer is replayed to the others once it finished).
    for car in cars {
        let (status, _, _) =
            deliver(&gates[1], format!("exit-{car}"), "io.valet.plate.read.v1", plate_read(car, "exit")).await;
        assert_eq!(status, 200);
    }
    closed.sort_by_key(|body| body["session"].as_str().map(str::to_owned));
    closed.dedup_by_key(|body| body["session"].as_str().map(str::to_owned));
    assert_eq!(closed.len(), cars.len(), "{closed:?}");
    let mut charges = Vec::new();
    for body in &closed {
        let id = format!("closed-{}", body["session"].as_str().unwrap());
        for biller in &billers {
            for _ in 0..3 {
                charges.push(deliver(biller, id.clone(), "io.valet.session.closed.v1", body.clone()));
            }
        }
    }
    for (status, ty, body) in futures_util::future::join_all(charges).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(ty.as_deref(), Some("io.valet.charge.succeeded.v1"), "{body}");
    }

    let store = garage.store().await;
    let logs = || [&query, &gates[0], &gates[1], &billers[0], &billers[1]].map(Function::log).join("\n");
    for car in cars {
        let sessions = sessions_of(&store, car).await;
        assert!(paid_once(&sessions), "{car}: {sessions:?}\n{}", logs());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_killed_mid_chain_is_retried_after_restart_and_charges_once() {
    let garage = Garage::sqlite();
    let query = garage.start("query", None);
    let mut billing = garage.start("billing", None);
    let billing_url = billing.url.clone();
    let gate = garage.start("gate", Some(&billing_url));
    sign_up(&query, "KM907RS").await;

    let (status, ty, _) =
        deliver(&gate, "in-1".to_owned(), "io.valet.plate.read.v1", plate_read("KM907RS", "entry")).await;
    // The session opened; billing took the session.opened event and let it go.
    assert_eq!((status, ty), (202, None));
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Billing dies. The exit is decided and stored, but its charge cannot be handed on: the gate
    // answers with an error, so the broker will deliver the read again.
    billing.kill();
    let (status, _, body) =
        deliver(&gate, "out-1".to_owned(), "io.valet.plate.read.v1", plate_read("KM907RS", "exit")).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "sink_failed");
    let store = garage.store().await;
    let sessions = sessions_of(&store, "KM907RS").await;
    assert!(
        matches!(sessions.as_slice(), [(SessionState::Closed { .. }, charges)] if charges.is_empty()),
        "{sessions:?}"
    );

    // Billing comes back on the same address; the broker's retry of the same event reaches it.
    let port = billing_url.rsplit(':').next().unwrap();
    let restarted = restart_on(&garage, "billing", port);
    let (status, _, body) =
        deliver(&gate, "out-1".to_owned(), "io.valet.plate.read.v1", plate_read("KM907RS", "exit")).await;
    assert_eq!(status, 202, "{body}\n{}\n{}", gate.log(), restarted.log());
    assert!(paid_once(&sessions_of(&store, "KM907RS").await), "{}", restarted.log());

    // A late duplicate of the same read changes nothing.
    let (status, _, _) =
        deliver(&gate, "out-1".to_owned(), "io.valet.plate.read.v1", plate_read("KM907RS", "exit")).await;
    assert_eq!(status, 202);
    assert!(paid_once(&sessions_of(&store, "KM907RS").await));
}

/// `function` started again on the port its predecessor had, so the sink URL still holds.
fn restart_on(garage: &Garage, function: &str, port: &str) -> Function {
    // The port was just released; another process could take it, so try a few times.
    let log = garage.dir.path().join(format!("{function}-restarted.log"));
    for _ in 0..20 {
        let data = garage.data(function);
        let out = Command::new(env!("CARGO_BIN_EXE_valet"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--functions", function, "--data"])
            .arg(&data)
            .env("VALET_PLATE_KEY", PLATE_KEY)
            .env("VALET_TARIFF_FILE", garage.dir.path().join("tariff.toml"))
            .env_remove("VALET_DATABASE_URL")
            .env_remove("K_SINK")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn();
        let Ok(mut child) = out else { continue };
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        if line.contains("http://") {
            return Function {
                child,
                url: format!("http://127.0.0.1:{port}"),
                log: log.clone(),
                name: function.to_owned(),
            };
        }
        let _ = child.wait();
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("could not restart {function} on port {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_published_over_mqtt_lifts_the_barrier_over_mqtt() {
    const BROKER: &str = "127.0.0.1:1883";
    if std::net::TcpStream::connect_timeout(&BROKER.parse().unwrap(), Duration::from_secs(1)).is_err() {
        eprintln!("skipped: no MQTT broker answers at {BROKER}");
        return;
    }
    let prefix = format!("valet-e2e-{}-{}", std::process::id(), rand_suffix());
    let garage = Garage::sqlite();
    // The barrier listens before anything happens.
    let (barrier, mut barrier_events) =
        rumqttc::AsyncClient::new(rumqttc::MqttOptions::new(format!("{prefix}-barrier"), "127.0.0.1", 1883), 16);
    barrier.subscribe(format!("{prefix}/barriers/lane-entry"), rumqttc::QoS::AtLeastOnce).await.unwrap();
    let (commands_tx, mut commands) = tokio::sync::mpsc::channel::<Value>(16);
    tokio::spawn(async move {
        while let Ok(event) = barrier_events.poll().await {
            if let rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) = event {
                let _ = commands_tx.send(serde_json::from_slice(&p.payload).unwrap()).await;
            }
        }
    });
    let valet = garage.start_with("all", None, &[("VALET_MQTT_BROKER", BROKER), ("VALET_MQTT_PREFIX", &prefix)]);

    // The entry camera publishes its JPEG (again, until ingest has subscribed: the gate
    // recognises the same car read twice and opens one session).
    let mut options = rumqttc::MqttOptions::new(format!("{prefix}-camera"), "127.0.0.1", 1883);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (camera, mut camera_events) = rumqttc::AsyncClient::new(options, 16);
    tokio::spawn(async move { while camera_events.poll().await.is_ok() {} });
    let mut command = None;
    for _ in 0..10 {
        let topic = format!("{prefix}/gates/lane-entry/entry");
        camera.publish(topic, rumqttc::QoS::AtLeastOnce, false, FRAME_VL482TG.to_vec()).await.unwrap();
        if let Ok(received) = tokio::time::timeout(Duration::from_secs(3), commands.recv()).await {
            command = received;
            break;
        }
    }
    let command = command.unwrap_or_else(|| panic!("no barrier command\n{}", valet.log()));
    assert_eq!(command["barrier"], "lift", "{command}");
    assert_eq!(command["outcome"], "opened", "{command}");
    let sessions = sessions_of(&garage.store().await, "VL482TG").await;
    assert!(matches!(sessions.as_slice(), [(SessionState::Open, _)]), "{sessions:?}\n{}", valet.log());
}

/// One `curl` of a shell example: its URL, `-H` headers and body.
#[derive(Debug)]
struct CurlExample {
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Every `curl` in the ```sh blocks of `markdown` that sends a CloudEvent (a `ce-type` header).
/// `@frame.jpg` bodies are `frame`.
fn cloudevent_examples(markdown: &str, frame: &[u8]) -> Vec<CurlExample> {
    let mut examples = Vec::new();
    let mut in_sh = false;
    let mut block = String::new();
    for line in markdown.lines() {
        let fence = line.trim_start();
        if !in_sh && fence.starts_with("```sh") {
            in_sh = true;
            block.clear();
        } else if in_sh && fence.starts_with("```") {
            in_sh = false;
            // A command continues over lines ending in a backslash.
            let joined = block.replace("\\\n", " ");
            for command in joined.lines() {
                let words = shell_words(command);
                let Some(curl) = words.iter().rposition(|w| w == "curl") else { continue };
                let mut example = CurlExample { url: String::new(), headers: Vec::new(), body: Vec::new() };
                let mut args = words[curl + 1..].iter();
                while let Some(arg) = args.next() {
                    match arg.as_str() {
                        "-H" | "--header" => {
                            let header = args.next().expect("-H takes a header");
                            let (name, value) = header.split_once(':').expect("a header is NAME: VALUE");
                            example.headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                        }
                        "-d" | "--data" | "--data-binary" | "--data-raw" => {
                            let data = args.next().expect("-d takes a body");
                            example.body = match data.strip_prefix('@') {
                                Some("frame.jpg") => frame.to_vec(),
                                Some(file) => panic!("an example posts @{file}, which this test does not know"),
                                None => data.clone().into_bytes(),
                            };
                        }
                        "-X" => {
                            args.next();
                        }
                        url if url.starts_with("http") => example.url = url.to_owned(),
                        _ => {}
                    }
                }
                if example.headers.iter().any(|(name, _)| name == "ce-type") {
                    examples.push(example);
                }
            }
        } else if in_sh {
            block.push_str(line);
            block.push('\n');
        }
    }
    examples
}

/// Splits a shell command line into words: single and double quotes, backslash escapes.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => word.get_or_insert_default().extend(chars.by_ref().take_while(|&c| c != '\'')),
            '"' => {
                let word = word.get_or_insert_default();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        c => word.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_default().extend(chars.next()),
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cloudevent_example_in_the_deploy_readme_is_taken_by_the_function_it_is_for() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/README.md")).unwrap();
    let examples = cloudevent_examples(&readme, FRAME_VL482TG);
    // Step 6's plate read and frame, and the image check's plate read.
    assert!(examples.len() >= 3, "the README's CloudEvent examples were not all found: {examples:#?}");
    let garage = Garage::sqlite();
    let gate = garage.start("gate", None);
    let reader = garage.start("plate-reader", None);
    let client = reqwest::Client::new();
    for example in &examples {
        let ty = &example.headers.iter().find(|(name, _)| name == "ce-type").unwrap().1;
        // Sent where the Broker's Trigger would send it, with the reply the consumer should give.
        let (function, reply) = match ty.as_str() {
            "io.valet.plate.read.v1" => (&gate, "io.valet.session.opened.v1"),
            "io.valet.gate.frame.received.v1" => (&reader, "io.valet.plate.read.v1"),
            other => panic!("the README sends {other}, which this test does not route: {example:?}"),
        };
        let mut request = client.post(format!("{}/", function.url)).body(example.body.clone());
        for (name, value) in &example.headers {
            request = request.header(name, value);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status();
        let replied = answer.headers().get("ce-type").map(|v| v.to_str().unwrap().to_owned());
        let body = answer.text().await.unwrap();
        assert_eq!(status, 200, "{} ({}) answered {body}\n{}", example.url, ty, function.log());
        assert_eq!(replied.as_deref(), Some(reply), "{body}");
    }
}

/// A lot of `spaces` spaces on one 640×480 camera, and a frame of it.
fn grid_lot(id: &str, spaces: usize) -> (String, Vec<u8>) {
    let mut layout = valet_lot::synthetic::grid_layout(spaces, 640, 480);
    layout.id = valet_lot::LotId::new(id);
    (layout.to_toml(), valet_imaging::synthetic::photo_jpeg(640, 480, None, 7))
}

/// `valet lot add` of `toml` into the garage's database.
fn lot_add(garage: &Garage, toml: &str) -> String {
    let file = garage.dir.path().join(format!("lot-{}.toml", rand_suffix()));
    std::fs::write(&file, toml).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_valet"));
    cmd.args(["lot", "add"]).arg(&file).arg("--data").arg(garage.data("lot-admin")).env_remove("VALET_DATABASE_URL");
    if let Some(url) = garage.postgres.as_ref().and_then(|p| p.postgres_url()) {
        cmd.env("VALET_DATABASE_URL", url);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A bay camera's frame of `lot`, delivered as the broker delivers it: (status, ce-type, body).
async fn deliver_lot_frame(to: &Function, id: &str, lot: &str, jpeg: &[u8]) -> (u16, Option<String>, Value) {
    let headers = [("ce-valetlot", lot), ("content-type", "image/jpeg")];
    deliver_binary(to, id, "io.valet.lot.frame.received.v1", &headers, jpeg.to_vec()).await
}

/// `GET url` until `done(status, body)` holds or 15 s pass; the last answer.
async fn poll_until(url: &str, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let answer = client.get(url).send().await.unwrap();
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if done(status, &body) || std::time::Instant::now() > deadline {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads the server-sent events of `answer` until one named `name`; its data.
async fn next_sse(answer: &mut reqwest::Response, buffer: &mut String, name: &str) -> Option<Value> {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let named = event.lines().any(|l| l.strip_prefix("event:").is_some_and(|n| n.trim() == name));
            let data = event.lines().find_map(|l| l.strip_prefix("data:")).map(str::trim);
            if named && let Some(data) = data {
                return serde_json::from_str(data).ok();
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(15), answer.chunk()).await.ok()?.ok()??;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// The dashboard of `query` as operator `name` with `key` sees it (HTML).
async fn dashboard(query: &Function, name: &str, key: &str) -> String {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let csrf = "c".repeat(64);
    let login = client
        .post(format!("{}/ops/login", query.url))
        .header("cookie", format!("valet_csrf={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("name={name}&key={key}&csrf={csrf}"))
        .send()
        .await
        .unwrap();
    let session = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("valet_ops="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no sign-in ({})", login.status()))
        .to_owned();
    let page = client
        .get(format!("{}/ops", query.url))
        .header("cookie", format!("valet_csrf={csrf}; valet_ops={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_function_alone_serves_the_lots_occupancy_reads_from_a_layout_in_the_database() {
    let garage = Garage::sqlite();
    let (layout, jpeg) = grid_lot("level-1", 6);
    let saved = lot_add(&garage, &layout);
    assert!(saved.contains("level-1") && saved.contains("6 spaces"), "{saved}");
    let operator = add_device(&garage.data("query"), "olga", "operator");
    let occupancy = garage.start("occupancy", None);
    let query = garage.start("query", None);
    let logs = || [&occupancy, &query].map(Function::log).join("\n");
    let availability = format!("{}/v1/lots/level-1/availability", query.url);

    // Before any frame: the lot is known, every space unknown.
    let (status, body) = poll_until(&availability, |status, _| status == 200).await;
    assert_eq!(status, 200, "{body}\n{}", logs());
    assert_eq!(body["counts"]["lot"]["unknown"], 6, "{body}");
    let mut events = reqwest::Client::new().get(format!("{}/v1/lots/level-1/events", query.url)).send().await.unwrap();
    assert_eq!(events.status(), 200);
    let mut buffer = String::new();
    let first = next_sse(&mut events, &mut buffer, "availability").await.expect("the current counts at once");
    assert_eq!(first["counts"]["lot"]["unknown"], 6, "{first}");

    // The occupancy function reads a frame (its process, its reply) ...
    let (status, ty, counted) = deliver_lot_frame(&occupancy, "bay-1", "level-1", &jpeg).await;
    assert_eq!((status, ty.as_deref()), (200, Some("io.valet.lot.counted.v1")), "{counted}\n{}", logs());
    assert_eq!(counted["counts"]["lot"]["unknown"], counted["counts"]["lot"]["unsure"], "every space read: {counted}");
    // ... and the query function, which read nothing, streams it and answers with it.
    let streamed = next_sse(&mut events, &mut buffer, "counts").await.unwrap_or_else(|| panic!("{}", logs()));
    assert_eq!(streamed["counts"], counted["counts"], "{streamed}");
    assert_eq!(streamed["changes"].as_array().map(Vec::len), Some(6), "every space was first seen: {streamed}");
    let (_, body) = poll_until(&availability, |_, body| body["counts"] == counted["counts"]).await;
    assert_eq!(body["counts"], counted["counts"], "{body}\n{}", logs());
    assert!(body["at"].is_string(), "{body}");

    // The dashboard draws the lot with each space in the state the occupancy function found.
    let page = dashboard(&query, "olga", &operator).await;
    assert!(page.contains("data-lot=\"level-1\""), "no lot map on the dashboard:\n{page}");
    let drawn = page.matches("<polygon data-space=").count();
    let unknown = page.matches("data-state=\"unknown\"").count();
    assert_eq!((drawn, unknown), (6, 0), "{page}");
    let unknown = format!("{}/v1/lots/nowhere/availability", query.url);
    let (status, body) = poll_until(&unknown, |_, _| true).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["message"].as_str().unwrap_or("").contains("valet lot add"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_added_while_valet_runs_reaches_every_occupancy_replica_and_the_query_function() {
    // On PostgreSQL when one answers (each replica with its own local directory), else on the
    // SQLite file the processes share.
    let garage = match Garage::postgres().await {
        Some(garage) => garage,
        None => Garage::sqlite(),
    };
    let replicas = [garage.start("occupancy", None), garage.start("occupancy", None)];
    let query = garage.start("query", None);
    let logs = || [&replicas[0], &replicas[1], &query].map(Function::log).join("\n");
    let (layout, jpeg) = grid_lot("roof", 4);
    let (status, _, body) = deliver_lot_frame(&replicas[0], "roof-0", "roof", &jpeg).await;
    assert_eq!(status, 404, "no layout yet: {body}");

    lot_add(&garage, &layout);
    for (n, replica) in replicas.iter().enumerate() {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (status, ty, body) = deliver_lot_frame(replica, &format!("roof-{n}"), "roof", &jpeg).await;
            if status == 200 {
                assert_eq!(ty.as_deref(), Some("io.valet.lot.counted.v1"), "{body}");
                assert_eq!(
                    body["counts"]["lot"]["unknown"], body["counts"]["lot"]["unsure"],
                    "every space read: {body}"
                );
                break;
            }
            assert!(std::time::Instant::now() < deadline, "replica {n} never took the layout\n{}", logs());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let availability = format!("{}/v1/lots/roof/availability", query.url);
    let (status, body) = poll_until(&availability, |_, body| body["counts"]["lot"]["unknown"] == 0).await;
    assert_eq!((status, &body["counts"]["lot"]["unknown"]), (200, &json!(0)), "{body}\n{}", logs());

    // A changed layout (a fifth space) replaces the old one in every process.
    let (bigger, _) = grid_lot("roof", 5);
    lot_add(&garage, &bigger);
    let (_, body) = poll_until(&availability, |_, body| body["counts"]["lot"]["unknown"] == 1).await;
    assert_eq!(body["counts"]["lot"]["unknown"], 1, "the new space is unseen, the others kept: {body}\n{}", logs());

    // A layout file dropped into a replica's lots directory is picked up too.
    let (file, _) = grid_lot("annex", 2);
    let lots = garage.data("occupancy").join("lots");
    std::fs::create_dir_all(&lots).unwrap();
    std::fs::write(lots.join("annex.toml"), file).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, body) = deliver_lot_frame(&replicas[0], "annex-1", "annex", &jpeg).await;
        if status == 200 {
            assert_eq!(
                body["counts"]["lot"]["free"].as_u64().unwrap() + body["counts"]["lot"]["occupied"].as_u64().unwrap(),
                2,
                "{body}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the file was never picked up: {status} {body}\n{}", logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plate_reader_with_neither_the_gate_nor_k_sink_pulls_no_camera_and_says_why() {
    let garage = Garage::sqlite();
    let data = garage.data("plate-reader");
    let out = Command::new(env!("CARGO_BIN_EXE_valet"))
        .args(["cameras", "add", "north-exit", "--url", "http://127.0.0.1:9/mjpeg", "--direction", "exit", "--data"])
        .arg(&data)
        .env_remove("VALET_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Its passages would start chains nobody here takes: the camera is not pulled (no frame is
    // fetched), and the log says so for the process and for the camera.
    let reader = garage.start("plate-reader", None);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = reader.log();
        if log.contains("gate camera not pulled") {
            assert!(log.contains("north-exit") && log.contains("set K_SINK"), "{log}");
            assert!(!log.contains("gate camera pulled"), "{log}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no word on the camera within 20 s:\n{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
