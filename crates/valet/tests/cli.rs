//! The `valet` binary as people use it: devices, serve, send (with retries), classify, plate, eval,
//! SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn valet() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_valet"));
    // A developer's own configuration must not leak into the tests.
    for var in ["VALET_CONFIG", "VALET_LISTEN", "VALET_DATA_DIR", "VALET_SERVER", "VALET_KEY"] {
        cmd.env_remove(var);
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn add_device(data: &Path, name: &str) -> String {
    add_key(data, name, "device")
}

/// A key for `name` with `role` (`device`, `operator`, `admin`), as `valet devices add` prints it.
fn add_key(data: &Path, name: &str, role: &str) -> String {
    let out = run(valet().args(["devices", "add", name, "--role", role, "--data"]).arg(data));
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().last().unwrap().to_owned()
}

/// A `valet serve` process on `listen`; killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data: &Path, listen: &str) -> Server {
        Server::start_with(data, listen, &[])
    }

    /// A server whose process also gets the variables in `env`.
    fn start_with(data: &Path, listen: &str, env: &[(&str, &str)]) -> Server {
        let mut child = valet()
            .args(["serve", "--listen", listen, "--data"])
            .arg(data)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("serve prints its URL").to_owned();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_photo(dir: &Path, name: &str, width: u16, height: u16) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, valet_imaging::synthetic::photo_jpeg(width, height, None, 5)).unwrap();
    path
}

#[test]
fn devices_add_prints_the_key_alone_on_the_last_line_and_list_never_shows_it() {
    let data = tempfile::tempdir().unwrap();
    let key = add_device(data.path(), "gate-1");
    assert!(key.starts_with("valet_") && !key.contains(' '), "{key:?}");
    let list = String::from_utf8(run(valet().args(["devices", "list", "--data"]).arg(data.path())).stdout).unwrap();
    assert!(list.contains("gate-1") && !list.contains(&key), "{list}");
    let dup = valet().args(["devices", "add", "gate-1", "--data"]).arg(data.path()).output().unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
}

#[test]
fn send_uploads_to_a_running_server_and_prints_its_answer_with_transfer_time() {
    let data = tempfile::tempdir().unwrap();
    let key = add_device(data.path(), "bay-cam");
    let server = Server::start(data.path(), "127.0.0.1:0");
    let photo = write_photo(data.path(), "space.jpg", 640, 480);

    let out = run(valet().arg("send").arg(&photo).args(["--server", &server.url, "--key", &key, "--json"]));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(["occupied", "free"].contains(&answer["label"].as_str().unwrap()), "{answer}");
    assert_eq!(answer["image"]["width"], 640);
    assert!(answer["transfer_ms"].as_f64().unwrap() >= 0.0);
    assert!(answer["timings_ms"]["model"].as_f64().unwrap() > 0.0);
    assert_eq!(answer["attempts"], 1);

    // The human form carries the same breakdown.
    let out = run(valet().arg("send").arg(&photo).env("VALET_SERVER", &server.url).env("VALET_KEY", &key));
    let text = String::from_utf8(out.stdout).unwrap();
    for word in ["transfer", "receive", "decode", "model", "640×480"] {
        assert!(text.contains(word), "{word} missing from {text}");
    }
}

#[test]
fn send_with_a_wrong_key_fails_and_says_why() {
    let data = tempfile::tempdir().unwrap();
    add_device(data.path(), "bay-cam");
    let server = Server::start(data.path(), "127.0.0.1:0");
    let photo = write_photo(data.path(), "space.jpg", 64, 64);
    let out = valet().arg("send").arg(&photo).args(["--server", &server.url, "--key", "valet_nope"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_api_key"));
}

#[test]
fn send_retries_until_a_late_server_comes_up() {
    let data = tempfile::tempdir().unwrap();
    let key = add_device(data.path(), "bay-cam");
    let photo = write_photo(data.path(), "space.jpg", 64, 64);
    // Reserve a free port, release it, and start the server there only after `send` began.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let sender = valet()
        .arg("send")
        .arg(&photo)
        .args(["--server", &format!("http://{listen}"), "--key", &key, "--json", "--retries", "6"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let _server = Server::start(data.path(), &listen);
    let out = sender.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(answer["attempts"].as_u64().unwrap() > 1, "{answer}");
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path(), "127.0.0.1:0");
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut waited = Duration::ZERO;
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(waited < Duration::from_secs(20), "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn classify_reads_local_files_and_reports_unreadable_ones() {
    let dir = tempfile::tempdir().unwrap();
    let photo = write_photo(dir.path(), "space.jpg", 150, 150);
    let junk = dir.path().join("notes.jpg");
    std::fs::write(&junk, "<html>not a photo</html>").unwrap();
    let out = valet().arg("classify").arg(&photo).arg(&junk).arg("--json").output().unwrap();
    assert!(!out.status.success(), "one file was unreadable");
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(["occupied", "free"].contains(&lines[0]["label"].as_str().unwrap()));
    assert!(lines[1]["message"].as_str().unwrap().contains("HTML"), "{}", lines[1]);
}

#[test]
fn eval_occupancy_scores_cnrpark_camera_a() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cnrpark-patches/CNRPark-Patches-150x150");
    if !dir.is_dir() {
        eprintln!("skipped: {} is absent (shared data is not on this machine)", dir.display());
        return;
    }
    let out = run(valet().args(["eval", "occupancy"]).arg(&dir).arg("--json"));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["n"], 6171, "{stdout}");
    // Camera A is mostly training data: this checks the Rust path end to end, not generalisation
    // (see models/README.md for held-out numbers).
    assert!(last["accuracy"].as_f64().unwrap() > 0.97, "{stdout}");
    assert!(last["ms_per_patch"].as_f64().unwrap() > 0.0);
    for row in ["accuracy", "precision", "confusion", "ms per patch"] {
        assert!(stdout.contains(row), "{row} missing");
    }
}

#[test]
fn plate_reads_no_plate_in_a_plateless_photo_and_refuses_garbage_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let photo = write_photo(dir.path(), "sky.jpg", 64, 48);
    let out = run(valet().arg("plate").arg(&photo).arg("--json"));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["plates"], serde_json::json!([]), "{answer}");
    for stage in ["decode", "detect", "rectify", "recognize", "postprocess"] {
        assert!(answer["timings_ms"][stage].as_f64().unwrap() >= 0.0, "{stage} missing from {answer}");
    }
    let text = String::from_utf8(run(valet().arg("plate").arg(&photo)).stdout).unwrap();
    assert!(text.contains("no plate found") && text.contains("detect"), "{text}");

    let junk = dir.path().join("notes.jpg");
    std::fs::write(&junk, "<html>not a photo</html>").unwrap();
    let out = valet().arg("plate").arg(&junk).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notes.jpg") && stderr.contains("HTML"), "{stderr}");
}

#[test]
fn bench_plates_runs_valet_and_a_peer_alike_and_names_a_broken_peer() {
    // A benchmark folder of its own: the demo's car (plate pasted at 330,385, 300×69) and a photo
    // with no plate, both labelled.
    let dir = tempfile::tempdir().unwrap();
    let eu = dir.path().join("eu");
    std::fs::create_dir(&eu).unwrap();
    std::fs::write(eu.join("car.jpg"), include_bytes!("../../server/demo/gate-VL482TG.jpg")).unwrap();
    write_photo(&eu, "sky.jpg", 640, 480);
    std::fs::write(eu.join("labels.txt"), "car.jpg\t330\t385\t300\t69\tVL482TG\nsky.jpg\t10\t10\t100\t30\tAB123CD\n")
        .unwrap();

    // Valet as its own peer, through `valet plate --openalpr`: the same reads, so the same scores.
    let peer = format!("'{}' plate --openalpr --min-confidence 0 --region {{region}}", env!("CARGO_BIN_EXE_valet"));
    let out = run(valet().args(["bench", "plates"]).arg(dir.path()).arg("--peer").arg(&peer));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> =
        stdout.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).filter(|w| w.get(1) == Some(&"eu")).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for row in &rows {
        // reader, region, images, top-1, found: one of two plates read and found.
        assert_eq!(&row[2..7], ["2", "50.0", "%", "50.0", "%"], "{stdout}");
        assert!(row[7].parse::<f64>().unwrap() > 0.0, "{stdout}");
    }
    assert!(stdout.contains("valet against peer-1: eu "), "{stdout}");

    // A peer that is not there, or prints too little: its row says why, and the run fails.
    let out = valet().args(["bench", "plates"]).arg(dir.path()).args(["--peer", "no-such-alpr -j"]).output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("peer-1") && stdout.contains("failed") && stdout.contains("no-such-alpr"), "{stdout}");
    let out = valet().args(["bench", "plates"]).arg(dir.path()).args(["--peer", "echo '{}' #"]).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!out.status.success() && stdout.contains("1 results for 2 images"), "{stdout}");
}

#[test]
fn eval_plates_scores_the_european_benchmark_and_ends_with_json() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/openalpr-benchmarks/endtoend/eu");
    if !dir.is_dir() {
        eprintln!("skipped: {} is absent (shared data is not on this machine)", dir.display());
        return;
    }
    let out = run(valet().args(["eval", "plates"]).arg(&dir).args(["--top", "5", "--json"]));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["n"], 72, "{stdout}");
    for key in ["top1", "top1_folded", "topn", "found"] {
        let rate = last[key].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&rate), "{key} = {rate}");
    }
    assert!(last["top1_folded"].as_f64() >= last["top1"].as_f64() && last["topn"].as_f64() >= last["top1"].as_f64());
    // Mostly training data: this checks the Rust path end to end, not generalisation (the held-out
    // split is `--only models/plates-holdout.txt`).
    assert!(last["found"].as_f64().unwrap() > 0.9 && last["top1_folded"].as_f64().unwrap() > 0.8, "{stdout}");
    assert!(last["ms_per_image"].as_f64().unwrap() > 0.0);
    assert_eq!(last["per_region"]["eu"]["n"], 72);
    assert!(last["failures"].is_array());
    for word in ["top-1", "O/0", "top-5", "found", "ms/image"] {
        assert!(stdout.contains(word), "{word} missing from {stdout}");
    }

    // A list written for the benchmark's root (`eu/…`, like models/plates-holdout.txt) selects
    // within the region folder too.
    let list = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(list.path(), "# held out\neu/eu1.jpg\neu/eu2.jpg\nus/elsewhere.jpg\n").unwrap();
    let out = run(valet().args(["eval", "plates"]).arg(&dir).arg("--only").arg(list.path()).arg("--json"));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["n"], 2, "{stdout}");
}

#[test]
fn eval_gate_puts_photos_through_entry_and_exit_and_charges_no_wrong_driver() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/openalpr-benchmarks/endtoend");
    if !dir.is_dir() {
        eprintln!("skipped: {} is absent (shared data is not on this machine)", dir.display());
        return;
    }
    let list = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(list.path(), "br/GWT2180.jpg\nbr/JSC7486.jpg\neu/eu1.jpg\neu/eu2.jpg\nus/car2.jpg\n").unwrap();
    for lookalikes in [false, true] {
        let mut cmd = valet();
        cmd.args(["eval", "gate"]).arg(&dir).arg("--only").arg(list.path()).arg("--json");
        if lookalikes {
            cmd.arg("--lookalikes");
        }
        let out = run(&mut cmd);
        let stdout = String::from_utf8(out.stdout).unwrap();
        let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(last["n"], 5, "{stdout}");
        assert_eq!(last["mode"], if lookalikes { "lookalikes" } else { "signed_up" }, "{stdout}");
        let count = |key: &str| last[key].as_u64().unwrap_or_else(|| panic!("{key} missing: {last}"));
        let verdicts = ["right", "right_reviewed", "wrong", "review", "not_charged"];
        assert_eq!(verdicts.iter().map(|k| count(k)).sum::<u64>(), 5, "{last}");
        assert_eq!(count("wrong"), 0, "a car charged to a driver whose plate it is not: {stdout}");
        assert_eq!(count("false_matches"), 0, "{stdout}");
        assert_eq!(last["per_region"]["br"]["n"], 2, "{last}");
        assert!(last["misses"].is_array() && last["right_rate"].as_f64().is_some(), "{last}");
        if lookalikes {
            assert_eq!(count("right"), 0, "nobody signed up the true plates: {last}");
        } else {
            // Nearly all of these read right: most go through untouched.
            assert!(count("right") >= 3, "{stdout}");
        }
        for word in ["region", "review", "not charged", "all"] {
            assert!(stdout.contains(word), "{word} missing from {stdout}");
        }
    }
}

#[test]
fn the_37_mb_162_megapixel_photo_is_answered_by_a_server_that_stays_under_512_mb() {
    let data = tempfile::tempdir().unwrap();
    let key = add_device(data.path(), "phone");
    let server = Server::start(data.path(), "127.0.0.1:0");
    let photo = data.path().join("huge.jpg");
    let file = std::io::BufWriter::new(std::fs::File::create(&photo).unwrap());
    valet_imaging::synthetic::write_photo_jpeg(file, 15600, 10400, Some(37_000_000), 7).unwrap();

    let out = run(valet().arg("send").arg(&photo).args(["--server", &server.url, "--key", &key, "--json"]));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["image"]["width"], 15600, "{answer}");
    assert!(answer["image"]["bytes"].as_u64().unwrap() > 30_000_000);

    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()));
    let Ok(status) = status else {
        eprintln!("skipped the memory check: no /proc on this system");
        return;
    };
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/PID/status");
    eprintln!("server peak RSS after the 162 MP photo: {} MiB", peak_kb / 1024);
    assert!(peak_kb < 512 * 1024, "server peak RSS {peak_kb} kB");
}

/// `../shared/data/pklot-padova/ParkingLot_dataset`, or `None` after saying why the test skips.
fn pklot_padova() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pklot-padova/ParkingLot_dataset");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent (shared data is not on this machine)", dir.display());
        None
    }
}

#[test]
fn a_pklot_layout_imports_shows_and_reads_a_frame_into_states_counts_an_overlay_and_history() {
    let Some(root) = pklot_padova() else { return };
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("ufpr05.toml");
    let xml = root.join("sequence4/bounding_boxes/2013-04-15_07_05_01.xml");
    run(valet().args(["lot", "import", "--pklot"]).arg(&xml).arg("--out").arg(&layout));
    let shown = String::from_utf8(run(valet().args(["lot", "show"]).arg(&layout)).stdout).unwrap();
    assert!(shown.contains("40 spaces") && shown.contains("1280×720"), "{shown}");

    let frame = root.join("sequence4/frames/2013-04-15_07_05_01.png");
    let overlay = dir.path().join("overlay.png");
    let data = dir.path().join("data");
    let out = run(valet()
        .arg("occupancy")
        .arg(&frame)
        .arg("--lot")
        .arg(&layout)
        .arg("--overlay")
        .arg(&overlay)
        .arg("--record-in")
        .arg(&data)
        .arg("--json"));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["spaces"].as_array().unwrap().len(), 40, "{answer}");
    let lot = &answer["counts"]["lot"];
    // Every space is free, occupied, or unknown because its evidence is weak (unsure).
    assert_eq!(lot["unknown"], lot["unsure"], "every space was seen: {answer}");
    let said: u64 = ["free", "occupied", "unsure"].iter().map(|k| lot[*k].as_u64().unwrap()).sum();
    assert_eq!(said, 40, "{answer}");
    assert!(lot["unsure"].as_u64().unwrap() <= 4, "a few unsure spaces at most: {answer}");
    assert!(answer["spaces"][0]["confidence"].as_f64().unwrap() >= 0.5);
    assert!(std::fs::read(&overlay).unwrap().starts_with(b"\x89PNG"));
    assert!(data.join("valet.sqlite3").exists(), "the reading was recorded");

    let text = String::from_utf8(run(valet().arg("occupancy").arg(&frame).arg("--lot").arg(&layout)).stdout).unwrap();
    assert!(text.contains("zone main") && text.contains("level ground") && text.contains("confidence"), "{text}");
}

#[test]
fn a_frame_of_another_aspect_ratio_is_refused_with_the_sizes_named() {
    let Some(root) = pklot_padova() else { return };
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("ufpr05.toml");
    let xml = root.join("sequence1/bounding_boxes/2013-02-22_06_25_00.xml");
    run(valet().args(["lot", "import", "--pklot"]).arg(&xml).arg("--out").arg(&layout));
    let square = write_photo(dir.path(), "square.jpg", 720, 720);
    let out = valet().arg("occupancy").arg(&square).arg("--lot").arg(&layout).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("720×720") && stderr.contains("1280×720"), "{stderr}");
}

#[test]
fn a_cnr_ext_csv_imports_scaled_and_renders_over_its_frame() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cnr-ext-sample/results");
    if !dir.is_dir() {
        eprintln!("skipped: {} is absent (shared data is not on this machine)", dir.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("cnr.toml");
    run(valet()
        .args(["lot", "import", "--cnr-csv"])
        .arg(dir.join("camera1.csv"))
        .args(["--frame-size", "1000x750", "--out"])
        .arg(&layout));
    let toml = std::fs::read_to_string(&layout).unwrap();
    assert!(toml.contains("camera1") && toml.contains("width = 1000"), "{toml}");
    let png = tmp.path().join("render.png");
    let frame = dir.join("FULL_IMAGE_1000x750/OVERCAST/2015-11-16/camera1/2015-11-16_0910.jpg");
    let out = run(valet().args(["lot", "render"]).arg(&layout).arg(&frame).arg("--out").arg(&png));
    assert!(String::from_utf8_lossy(&out.stdout).contains("35 spaces"));
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
}

#[test]
fn eval_lot_scores_pklot_padova_frames_and_ends_with_json() {
    let Some(root) = pklot_padova() else { return };
    let out = run(valet().args(["eval", "lot"]).arg(&root).arg("--json"));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!((last["n"].as_u64(), last["frames"].as_u64()), (Some(1200), Some(30)), "{stdout}");
    // The classifier is being retrained for ≥ 97 % here; this holds a sane floor.
    assert!(last["accuracy"].as_f64().unwrap() >= 0.85, "{stdout}");
    assert!(last["ms_per_frame"].as_f64().unwrap() > 0.0);
    for row in ["accuracy", "precision", "confusion", "ms per frame", "sequence5"] {
        assert!(stdout.contains(row), "{row} missing");
    }
    // The misread spaces account for at most every error, each within its frames, most first.
    let worst = last["most_misread"].as_array().unwrap();
    let wrong: Vec<u64> = worst.iter().map(|w| w["wrong"].as_u64().unwrap()).collect();
    let counts = &last["confusion"]["counts"];
    let errors = counts[0][1].as_u64().unwrap() + counts[1][0].as_u64().unwrap();
    assert!(worst.len() <= 10 && stdout.contains("misread most often") != worst.is_empty(), "{stdout}");
    assert!(wrong.windows(2).all(|w| w[0] >= w[1]) && wrong.iter().sum::<u64>() <= errors, "{stdout}");
    assert!(worst.iter().all(|w| w["wrong"].as_u64() <= w["frames"].as_u64() && w["frames"] == 30), "{stdout}");
}

#[test]
fn serve_demo_drives_cars_and_a_bay_camera_through_the_real_pipeline() {
    let mut child = valet()
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut serving, mut demo) = (String::new(), String::new());
    stdout.read_line(&mut serving).unwrap();
    stdout.read_line(&mut demo).unwrap();
    let mut server =
        Server { child, url: serving.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned() };
    let key = demo.split_whitespace().last().unwrap().to_owned();
    assert!(demo.contains("/ops") && key.starts_with("valet_"), "{demo}");
    // Within a few ticks: the demo lot has been read and cars have passed the gates.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (lot, sessions) = runtime.block_on(async {
        let client = reqwest::Client::new();
        for _ in 0..60 {
            let lot: serde_json::Value = client
                .get(format!("{}/v1/lots/demo/availability", server.url))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let sessions: serde_json::Value = client
                .get(format!("{}/v1/sessions", server.url))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if lot["at"].is_string() && sessions.as_array().is_some_and(|s| s.len() >= 2) {
                return (lot, sessions);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("the demo garage did not come to life within 30 s");
    });
    // Every bay was read: the only unknown ones are those the model is unsure of (a rendered car
    // it reads near 50 %), never a bay no frame has covered.
    assert_eq!(lot["counts"]["lot"]["unknown"], lot["counts"]["lot"]["unsure"], "{lot}");
    assert!(sessions.as_array().unwrap().iter().all(|s| s["plate"].is_string()), "{sessions}");
    let _ = server.child.kill();
}

#[test]
fn serve_says_where_the_dashboard_is_and_how_to_make_an_operator_key() {
    let data = tempfile::tempdir().unwrap();
    let mut child = valet()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut said = String::new();
    for _ in 0..3 {
        reader.read_line(&mut said).unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(said.contains("dashboard: http://127.0.0.1:") && said.contains("/ops"), "{said}");
    assert!(said.contains("valet devices add NAME --role operator --data"), "{said}");
}

#[test]
fn a_port_already_taken_fails_before_anything_is_written_to_disk() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    let out = valet().args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"]).arg(&data).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("binding 127.0.0.1:{port}")), "{stderr}");
    assert!(!data.exists(), "the data directory was made before the port was checked");
}

#[test]
fn devices_list_has_headers_and_times_people_read() {
    let data = tempfile::tempdir().unwrap();
    add_device(data.path(), "gate-1");
    let list = String::from_utf8(run(valet().args(["devices", "list", "--data"]).arg(data.path())).stdout).unwrap();
    let mut lines = list.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "ROLE", "KEY", "ADDED", "STATE"], "{list}");
    let row = lines.next().unwrap();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(row.starts_with("gate-1") && row.contains(&today) && row.contains(" UTC"), "{row}");
    assert!(!row.contains("+00:00"), "no RFC 3339 stamps: {row}");
}

/// Every subcommand's path, from `valet`'s own help: `["lot", "import"]`, `["serve"]`, …
fn subcommands(path: &[String]) -> Vec<Vec<String>> {
    let help = String::from_utf8(run(valet().args(path).arg("--help")).stdout).unwrap();
    let mut found = vec![path.to_vec()];
    let Some(commands) = help.split("Commands:\n").nth(1) else { return found };
    for line in commands.lines().take_while(|l| l.starts_with("  ")) {
        let name = line.split_whitespace().next().unwrap();
        if name != "help" {
            let mut sub = path.to_vec();
            sub.push(name.to_owned());
            found.extend(subcommands(&sub));
        }
    }
    found
}

#[test]
fn every_positional_argument_in_help_has_a_description() {
    let all = subcommands(&[]);
    assert!(all.len() > 15, "{all:?}");
    for path in all {
        let help = String::from_utf8(run(valet().args(&path).arg("--help")).stdout).unwrap();
        let Some(arguments) = help.split("Arguments:\n").nth(1) else { continue };
        let lines: Vec<&str> = arguments.lines().take_while(|l| l.starts_with("  ")).collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(argument) = line.trim_start().strip_prefix('<') else { continue };
            // Short help puts the text beside the name; long help on the lines below it.
            let beside = argument.split_once("  ").is_some_and(|(_, text)| !text.trim().is_empty());
            let below =
                lines.get(i + 1).is_some_and(|next| !next.trim().is_empty() && !next.trim_start().starts_with('<'));
            assert!(beside || below, "`valet {}`: {line:?} has no description", path.join(" "));
        }
    }
}

#[test]
fn serve_refuses_ingest_alone_without_a_sink_and_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (functions, missing) in [
        ("ingest", &["K_SINK", "plate-reader", "occupancy", "io.valet.gate.frame.received.v1"][..]),
        ("ingest,plate-reader,occupancy", &["K_SINK", "gate", "io.valet.plate.read.v1"][..]),
    ] {
        let out = valet()
            .args(["serve", "--listen", "127.0.0.1:0", "--functions", functions, "--data"])
            .arg(&data)
            .env_remove("K_SINK")
            .env_remove("VALET_FUNCTIONS")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{functions} started without a sink\n{stderr}");
        assert!(out.stdout.is_empty(), "it never said it was serving: {}", String::from_utf8_lossy(&out.stdout));
        for word in missing {
            assert!(stderr.contains(word), "{functions}: {word:?} not named in:\n{stderr}");
        }
    }
    assert!(!data.exists(), "refused before anything was written");
}

#[test]
fn lot_layouts_are_added_listed_and_removed_in_the_database_and_import_can_save_there() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut layout = valet_lot::synthetic::grid_layout(3, 640, 480);
    layout.id = valet_lot::LotId::new("north");
    let file = dir.path().join("north.toml");
    std::fs::write(&file, layout.to_toml()).unwrap();
    let stdout = |out: Output| String::from_utf8(out.stdout).unwrap();

    let added = stdout(run(valet().args(["lot", "add"]).arg(&file).arg("--data").arg(&data)));
    assert!(added.contains("lot north: 3 spaces") && added.contains("(version 1)"), "{added}");
    // From stdin, as a one-off pod is fed; a second save is the next version.
    let mut child = valet()
        .args(["lot", "add", "-", "--data"])
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), layout.to_toml().as_bytes()).unwrap();
    let again = child.wait_with_output().unwrap();
    assert!(again.status.success() && stdout(again).contains("(version 2)"));

    // PKLot XML straight into the database, no file.
    let xml = dir.path().join("south.xml");
    std::fs::write(
        &xml,
        r#"<parking id="south"><space id="1" occupied="0"><contour>
           <point x="10" y="10"/><point x="110" y="12"/><point x="108" y="90"/><point x="12" y="88"/>
           </contour></space></parking>"#,
    )
    .unwrap();
    run(valet().args(["lot", "import", "--pklot"]).arg(&xml).args(["--lot", "south", "--data"]).arg(&data));
    let listed = stdout(run(valet().args(["lot", "list", "--data"]).arg(&data)));
    let lines: Vec<&str> = listed.lines().collect();
    assert!(lines.len() == 2 && lines[0].starts_with("north") && lines[1].starts_with("south"), "{listed}");
    assert!(lines[0].contains("version 2") && lines[0].contains("3 spaces"), "{listed}");
    assert!(lines[1].contains("version 1") && lines[1].contains("1 spaces"), "{listed}");

    // A broken layout is refused before anything is saved; import needs somewhere to put it.
    std::fs::write(&file, "id = \"north\"\n[[spaces]]\n").unwrap();
    assert!(!valet().args(["lot", "add"]).arg(&file).arg("--data").arg(&data).output().unwrap().status.success());
    let nowhere = valet().args(["lot", "import", "--pklot"]).arg(&xml).output().unwrap();
    assert!(!nowhere.status.success() && String::from_utf8_lossy(&nowhere.stderr).contains("--out"));

    run(valet().args(["lot", "remove", "north", "--data"]).arg(&data));
    let gone = valet().args(["lot", "remove", "north", "--data"]).arg(&data).output().unwrap();
    assert!(!gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("no layout saved for lot north"));
    let listed = stdout(run(valet().args(["lot", "list", "--data"]).arg(&data)));
    assert!(listed.starts_with("south") && !listed.contains("north"), "{listed}");
}

#[test]
fn plate_drops_reads_far_below_the_gates_threshold_unless_asked() {
    let photo = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/openalpr-benchmarks/endtoend/us/car2.jpg"
    ));
    if !photo.exists() {
        eprintln!("skipping: {} is absent (../shared/data)", photo.display());
        return;
    }
    // The photo has the car's plate and, above it, lettering the detector boxes and reads as `L1`
    // with no confidence at all.
    let shown = String::from_utf8(run(valet().arg("plate").arg(&photo)).stdout).unwrap();
    assert!(shown.contains("1 plate") && shown.contains("1 more read below 0.10"), "{shown}");
    assert!(!shown.contains("  L1 "), "{shown}");
    let all = String::from_utf8(run(valet().args(["plate", "--min-confidence", "0"]).arg(&photo)).stdout).unwrap();
    assert!(all.contains("2 plates") && all.contains("  L1 "), "{all}");
    let json = run(valet().args(["plate", "--json"]).arg(&photo));
    let answer: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!((answer["plates"].as_array().unwrap().len(), answer["dropped"].as_u64()), (1, Some(1)), "{answer}");
    let refused = valet().args(["plate", "--min-confidence", "7"]).arg(&photo).output().unwrap();
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("between 0 and 1"));
}

/// A frame of the rendered `aerial` lot with cars in `bays` and, on bay A1's ground, a painted
/// car (an advert) that the universal model calls occupied and the operator labels free.
fn mural_frame(dir: &Path, name: &str, bays: &[usize], seed: u64) -> PathBuf {
    use valet_lot::synthetic::aerial::{self, ParkedCar};
    let cars: Vec<ParkedCar> = bays.iter().map(|&bay| ParkedCar { bay, car: bay as u64 * 7 + 1 }).collect();
    let mut frame = aerial::frame(&cars, seed);
    let painted = aerial::frame(&[ParkedCar { bay: 0, car: 99 }], 1);
    let [[x0, y0], _, [x1, y1], _] = aerial::bay_quad(0);
    for y in y0 as u32..y1 as u32 {
        for x in x0 as u32..x1 as u32 {
            frame.put_pixel(x, y, *painted.get_pixel(x, y));
        }
    }
    let path = dir.join(name);
    frame.save(&path).unwrap();
    path
}

#[test]
fn lot_label_stores_labels_from_frames_and_patches_fits_the_adapter_and_refuses_bad_labels() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let layout = dir.path().join("aerial.toml");
    std::fs::write(&layout, valet_lot::synthetic::aerial::layout().to_toml()).unwrap();
    run(valet().args(["lot", "add"]).arg(&layout).arg("--data").arg(&data));
    let label = |args: &[&str]| {
        let mut cmd = valet();
        cmd.args(["lot", "label", "aerial"]).args(args).arg("--data").arg(&data);
        cmd.output().unwrap()
    };
    let text = |out: &Output| String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);

    // One frame: both states, but nothing yet to judge an adapter on.
    let first = mural_frame(dir.path(), "0800.png", &[2, 6], 1);
    let out = label(&["--frame", first.to_str().unwrap(), "--occupied", "A3,B2", "--free", "rest"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("10 labels stored (8 free, 2 occupied) on 1 frame(s)"), "{}", text(&out));
    assert!(
        text(&out).contains("refused: version 1 saved inactive"),
        "one frame cannot be cross-validated: {}",
        text(&out)
    );

    // Patches cut from two more frames, CNRPark's way: busy/ and free/, FRAME_BAY.png.
    let patches = dir.path().join("patches");
    for (stem, bays, seed) in [("0900", [3usize, 7], 2u64), ("1000", [1, 8], 3)] {
        let frame = image::open(mural_frame(dir.path(), "tmp.png", &bays, seed)).unwrap().to_rgb8();
        for (bay, space) in valet_lot::synthetic::aerial::layout().spaces.iter().enumerate() {
            // The bay's box, turned as the pipeline warps it: the bay's back at the top.
            let quad = space.quad().unwrap();
            let (xs, ys) = (quad.map(|p| p[0] as u32), quad.map(|p| p[1] as u32));
            let (left, top) = (*xs.iter().min().unwrap(), *ys.iter().min().unwrap());
            let (w, h) = (xs.iter().max().unwrap() - left, ys.iter().max().unwrap() - top);
            let mut patch = image::imageops::crop_imm(&frame, left, top, w, h).to_image();
            if quad[0][1] > quad[2][1] {
                patch = image::imageops::rotate180(&patch);
            }
            let id = &space.id;
            let folder = patches.join(if bays.contains(&bay) { "busy" } else { "free" });
            std::fs::create_dir_all(&folder).unwrap();
            patch.save(folder.join(format!("{stem}_{id}.png"))).unwrap();
        }
    }
    let out = label(&["--patches", patches.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("20 labels stored (16 free, 4 occupied) on 2 frame(s)"), "{said}");
    assert!(said.contains("fitted on 30 labels of 3 frames") && said.contains("universal model"), "{said}");
    assert!(said.contains("kept: version 2 is camera cam1's adapter now"), "the mural is learnt: {said}");

    // An empty lot on a fourth frame: labels of every bay, and a new version.
    let empty = mural_frame(dir.path(), "1100.png", &[], 4);
    let out = label(&["--frame", empty.to_str().unwrap(), "--empty"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("fitted on 40 labels of 4 frames"), "{}", text(&out));
    assert!(text(&out).contains("version 3"), "{}", text(&out));

    // Bad labels: refused with the store's or the layout's words, and a failing exit.
    let out = label(&["--frame", first.to_str().unwrap(), "--occupied", "A3"]);
    assert!(
        !out.status.success() && text(&out).contains("already labelled"),
        "the same bay of the same frame: {}",
        text(&out)
    );
    let second = mural_frame(dir.path(), "1200.png", &[2], 5);
    let out = label(&["--frame", second.to_str().unwrap(), "--occupied", "Z9"]);
    assert!(!out.status.success() && text(&out).contains("Z9") && text(&out).contains("B5"), "{}", text(&out));
    let square = dir.path().join("square.png");
    image::RgbImage::new(480, 480).save(&square).unwrap();
    let out = label(&["--frame", square.to_str().unwrap(), "--empty"]);
    assert!(!out.status.success() && text(&out).contains("aspect"), "{}", text(&out));
    let out = valet()
        .args(["lot", "label", "nowhere", "--empty", "--frame"])
        .arg(&square)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success() && text(&out).contains("valet lot add"), "{}", text(&out));
}

#[test]
fn cameras_refuse_a_typod_direction_and_an_unknown_name_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let typo = valet()
        .args(["cameras", "add", "north", "--url", "rtsp://10.0.0.7/s", "--direction", "exti", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&typo.stderr);
    assert!(!typo.status.success(), "{stderr}");
    assert!(stderr.contains("exti") && stderr.contains("entry") && stderr.contains("exit"), "{stderr}");
    let every = valet()
        .args(["cameras", "add", "north", "--url", "http://h/snap.jpg", "--direction", "entry", "--every", "soon"])
        .output()
        .unwrap();
    assert!(!every.status.success() && String::from_utf8_lossy(&every.stderr).contains("500ms"));

    let listed = run(valet().args(["cameras", "list", "--data"]).arg(&data));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("no pulled gate cameras"));
    let json = run(valet().args(["cameras", "list", "--json", "--data"]).arg(&data));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&json.stdout).unwrap(), serde_json::json!([]));
    let gone = valet().args(["cameras", "remove", "north", "--data"]).arg(&data).output().unwrap();
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no pulled gate camera \"north\""));
}

/// Needs the real `valet-cameras` (validation and redaction).
#[test]
fn cameras_are_added_listed_redacted_and_removed_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stdout = |out: Output| String::from_utf8(out.stdout).unwrap();
    let add = |name: &str, url: &str, direction: &str| {
        let mut cmd = valet();
        cmd.args(["cameras", "add", name, "--url", url, "--direction", direction, "--data"]).arg(&data);
        cmd
    };

    let added =
        stdout(run(add("north-exit", "rtsp://admin:hunter2@10.0.0.7/stream1", "exit")
            .args(["--lane", "north", "--region", "eu"])));
    assert!(added.contains("north-exit") && !added.contains("hunter2"), "{added}");
    run(add("south-entry", "http://10.0.0.8/snap.jpg", "entry").args(["--every", "2s"]));

    let listed = stdout(run(valet().args(["cameras", "list", "--data"]).arg(&data)));
    let lines: Vec<&str> = listed.lines().collect();
    assert!(lines.len() == 2 && lines[0].starts_with("north-exit") && lines[1].starts_with("south-entry"), "{listed}");
    assert!(!listed.contains("hunter2") && lines[0].contains("***") && lines[0].contains("exit"), "{listed}");
    assert!(lines[1].contains("every 2000 ms"), "{listed}");
    let json: serde_json::Value =
        serde_json::from_slice(&run(valet().args(["cameras", "list", "--json", "--data"]).arg(&data)).stdout).unwrap();
    assert_eq!(json[0]["name"], "north-exit");
    assert_eq!((json[0]["lane"].as_str(), json[0]["region"].as_str()), (Some("north"), Some("eu")));
    assert!(!json.to_string().contains("hunter2"), "{json}");

    // The same name again is refused, saying so, and the first camera stays as it was.
    let twice = add("north-exit", "http://elsewhere/mjpeg", "entry").output().unwrap();
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already exists"), "{twice:?}");
    // A URL the cameras cannot take is refused before anything is saved.
    let ftp = add("ftp-cam", "ftp://10.0.0.9/x", "entry").output().unwrap();
    assert!(!ftp.status.success() && String::from_utf8_lossy(&ftp.stderr).contains("ftp-cam"), "{ftp:?}");

    run(valet().args(["cameras", "remove", "north-exit", "--data"]).arg(&data));
    let gone = valet().args(["cameras", "remove", "north-exit", "--data"]).arg(&data).output().unwrap();
    assert!(!gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("south-entry"));
    let listed = stdout(run(valet().args(["cameras", "list", "--data"]).arg(&data)));
    assert!(listed.starts_with("south-entry") && !listed.contains("north-exit"), "{listed}");

    // Each change is in the audit log, by `cli`, the password redacted; the refusals are not.
    let key = std::fs::read_to_string(data.join("plate.key")).unwrap();
    let key = valet_store::PlateKey::new(&hex::decode(key.trim()).unwrap()).unwrap();
    let events = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = valet_store::Store::open(&data).await.unwrap();
        store.garage(key).audit_events(chrono::DateTime::UNIX_EPOCH).await.unwrap()
    });
    let changes: Vec<String> = events
        .iter()
        .map(|e| {
            assert_eq!(e.who.0, "cli");
            serde_json::to_string(&e.what).unwrap()
        })
        .collect();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(changes[0].contains("gate_camera_added") && changes[0].contains("admin:***@10.0.0.7"), "{changes:?}");
    assert!(changes[1].contains("gate_camera_added") && changes[1].contains("south-entry"), "{changes:?}");
    assert!(changes[2].contains("gate_camera_removed") && changes[2].contains("north-exit"), "{changes:?}");
    assert!(!changes.concat().contains("hunter2"));
}

/// Secrets never reach the log. A full run at debug level (a camera's reads, a sign-up, the
/// driver's token used, a recovery-code sign-in, an operator's dashboard login, a wrong key
/// tried) must not print any key, token, recovery code, login cookie or the plate key.
#[test]
fn no_key_token_code_or_cookie_reaches_the_log_of_a_full_run() {
    const WRONG_KEY: &str = "valet_not_a_real_key_0123456789";
    let data = tempfile::tempdir().unwrap();
    let camera_key = add_device(data.path(), "gate-cam");
    let operator_key = add_key(data.path(), "alice", "admin");
    let mut server = Server::start_with(data.path(), "127.0.0.1:0", &[("VALET_LOG", "debug")]);
    let url = server.url.clone();
    let csrf = "c".repeat(64);

    let secrets = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let post_json = |path: &str, body: serde_json::Value| {
            let request = client.post(format!("{url}{path}")).json(&body).send();
            async move { request.await.unwrap().json::<serde_json::Value>().await.unwrap() }
        };
        let sign_up = serde_json::json!({ "plates": ["SK123ET"], "payment_method": "pm_card_visa" });
        let signed = post_json("/v1/drivers", sign_up).await;
        let token = signed["token"].as_str().unwrap().to_owned();
        let code = signed["recovery_code"].as_str().unwrap().to_owned();
        for direction in ["entry", "exit"] {
            let camera = format!("{direction}-1");
            let read = serde_json::json!({
                "camera": camera, "direction": direction, "text": "SK123ET", "confidence": 0.97
            });
            let answer = client.post(format!("{url}/v1/plate-reads")).bearer_auth(&camera_key).json(&read).send();
            assert_eq!(answer.await.unwrap().status(), 200);
        }
        let me = client.get(format!("{url}/v1/me")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(me.status(), 200);
        let again =
            post_json("/v1/drivers/sign-in", serde_json::json!({ "plate": "SK123ET", "recovery_code": code })).await;
        let new_token = again["token"].as_str().unwrap().to_owned();
        let new_code = again["recovery_code"].as_str().unwrap().to_owned();
        let wrong = client.get(format!("{url}/v1/sessions")).bearer_auth(WRONG_KEY).send().await.unwrap();
        assert_eq!(wrong.status(), 401);
        let login = client
            .post(format!("{url}/ops/login"))
            .header("cookie", format!("valet_csrf={csrf}"))
            .form(&[("csrf", csrf.as_str()), ("name", "alice"), ("key", operator_key.as_str())])
            .send()
            .await
            .unwrap();
        let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
        let login_token = cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
        let ops = client.get(format!("{url}/ops")).header("cookie", format!("valet_ops={login_token}")).send();
        assert_eq!(ops.await.unwrap().status(), 200);
        let keys = [camera_key.clone(), operator_key.clone(), WRONG_KEY.to_owned()];
        keys.into_iter().chain([token, code, new_token, new_code, login_token]).collect::<Vec<_>>()
    });

    let _ = server.child.kill();
    let _ = server.child.wait();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut server.child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(log.lines().count() > 20, "the run logged: {log}");
    let plate_key = std::fs::read_to_string(data.path().join("plate.key")).unwrap();
    for secret in secrets.iter().chain([&plate_key.trim().to_owned()]) {
        assert!(secret.len() >= 16, "{secret:?} is too short to be a meaningful search");
        assert!(!log.contains(secret.as_str()), "a secret reached the log: {secret}");
    }
}

/// `valet serve` with SMTP settings mails a signed-up driver's receipt on its own: the mailer runs
/// beside the gate, and a second stay is mailed too, each once.
#[test]
fn serve_mails_each_receipt_once_to_a_driver_who_gave_an_address() {
    let sink = match valet_mail::testing::SmtpSink::start() {
        Ok(sink) => sink,
        Err(why) => return eprintln!("skipping: {why}"),
    };
    let data = tempfile::tempdir().unwrap();
    let camera_key = add_device(data.path(), "gate-cam");
    let smtp_url = sink.url();
    let env = [("VALET_SMTP_URL", smtp_url.as_str()), ("VALET_MAIL_FROM", "Garage <garage@example.com>")];
    let server = Server::start_with(data.path(), "127.0.0.1:0", &env);
    let url = server.url.clone();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mails = runtime.block_on(async {
        let client = reqwest::Client::new();
        let sign_up =
            serde_json::json!({ "plates": ["ML482TG"], "payment_method": "pm_card_visa", "email": "ana@example.com" });
        let signed = client.post(format!("{url}/v1/drivers")).json(&sign_up).send().await.unwrap();
        assert_eq!(signed.status(), 201);
        for (stay, hours) in [(1, 3), (2, 2)] {
            for direction in ["entry", "exit"] {
                let mut read = serde_json::json!({
                    "camera": format!("{direction}-1"), "direction": direction, "text": "ML482TG", "confidence": 0.97
                });
                if direction == "entry" {
                    read["at"] = serde_json::json!(chrono::Utc::now() - chrono::TimeDelta::hours(hours));
                }
                let answer = client.post(format!("{url}/v1/plate-reads")).bearer_auth(&camera_key).json(&read).send();
                assert_eq!(answer.await.unwrap().status(), 200);
            }
            // The mailer's pass runs every 5 s.
            let mails = sink.wait_for(stay, Duration::from_secs(20)).await;
            assert_eq!(mails.len(), stay, "{mails:?}");
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        sink.messages()
    });
    assert_eq!(mails.len(), 2, "each receipt once: {mails:?}");
    assert!(
        mails.iter().all(|m| m.contains("Subject: Parking receipt") && m.contains("To: ana@example.com")),
        "{mails:?}"
    );
}

#[test]
fn bench_soak_reports_a_row_per_period_and_fits_a_slope() {
    // 24 s at 4 requests/s with a row every 4 s: the demo garage answers every request, the
    // rows carry memory, descriptors and data size, and the closing lines fit both slopes.
    let out = run(valet().args(["bench", "soak", "--minutes", "0.4", "--rate", "4", "--every", "4"]));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<f64>> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().map(|w| w.parse::<f64>().ok()).collect::<Option<Vec<f64>>>())
        .filter(|r| r.len() == 10)
        .collect();
    assert!(rows.len() >= 5, "{stdout}");
    for row in &rows {
        let (requests, ok, failed, rss, fds) = (row[1], row[2], row[4], row[7], row[8]);
        assert!(requests >= 8.0 && ok >= 1.0, "{stdout}");
        assert_eq!(failed, 0.0, "{stdout}");
        assert!(rss > 10.0 && rss < 512.0 && fds > 3.0, "{stdout}");
    }
    assert!(stdout.contains("RSS: slope ") && stdout.contains("open descriptors: slope "), "{stdout}");
    assert!(stdout.contains("; 0 failed"), "{stdout}");
}

#[test]
fn bench_load_finds_a_knee_and_twice_it_every_read_is_answered_or_shed_in_time() {
    // Plate reads need no image work, so a short run fits a test; each endpoint runs the same code.
    // Whether every car got in depends on what else this box runs (the bench's exit status says),
    // so the test holds the server to what it controls: every answer 2xx or shed, in time, in
    // bounded memory.
    let out = valet().args(["bench", "load", "--seconds", "1", "--only", "plate-reads"]).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("all met") || stdout.contains("missed by"), "{stdout}");
    let rows: Vec<Vec<&str>> =
        stdout.lines().filter(|l| l.starts_with("/v1/plate-reads")).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 6 + 1, "six knee steps and one overload row\n{stdout}");
    let overload = &rows[6];
    let number = |i: usize| overload[i].trim_end_matches('M').parse::<f64>().unwrap();
    let (sent, ok, shed, failed, max_ms, peak_rss) = (number(3), number(4), number(5), number(6), number(8), number(9));
    assert!(ok > 0.0 && ok + shed >= sent, "every read answered, shed ones retried: {stdout}");
    assert_eq!(failed, 0.0, "{stdout}");
    assert!(max_ms < 5000.0 && peak_rss < 512.0, "{stdout}");
}

/// `st` (schemathesis, `pip install schemathesis==3.39.16 hypothesis==6.122.3`; `.ci/run` installs
/// it), or why the schema fuzzer cannot run here.
fn schemathesis() -> Result<(), String> {
    match Command::new("st").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => Err("schemathesis (`st`) is not installed (pip install schemathesis==3.39.16 hypothesis==6.122.3)".into()),
    }
}

/// A schemathesis hook: image bodies are sent as the raw bytes generated for them.
const SEND_IMAGE_BYTES: &str = r#"
import schemathesis


def raw(value):
    value = getattr(value, "data", value)
    return value if isinstance(value, bytes) else str(value).encode()


class ImageBytes:
    def as_requests(self, context, value):
        return {"data": raw(value)}

    def as_werkzeug(self, context, value):
        return {"data": raw(value)}


for media_type in ("image/jpeg", "image/png"):
    schemathesis.serializer(media_type)(ImageBytes)
"#;

#[test]
fn the_schema_fuzzer_gets_no_server_error_and_answers_match_the_document() {
    if let Err(why) = schemathesis() {
        eprintln!("skipping: {why}");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let admin = add_key(data.path(), "fuzz-admin", "admin");
    let camera = add_device(data.path(), "fuzz-camera");
    let mut child = valet()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .env("VALET_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let server = Server { url: line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned(), child };

    // Image bodies (frames, photos) go as the bytes schemathesis generates for `format: binary`;
    // it sends JSON and forms by itself, but a media type like `image/jpeg` needs saying how.
    let hooks = tempfile::tempdir().unwrap();
    std::fs::write(hooks.path().join("valet_images.py"), SEND_IMAGE_BYTES).unwrap();

    // Every documented operation, with an admin's key and with a camera's, from the document alone:
    // every check schemathesis has (no 5xx, status codes, content types and bodies as documented,
    // malformed input refused, credentials not ignored).
    let mut requests = 0;
    for (key, examples) in [(&admin, "40"), (&camera, "15")] {
        let out = Command::new("st")
            .args(["run", &format!("{}/openapi.json", server.url), "--experimental=openapi-3.1", "--checks", "all"])
            .args(["--hypothesis-phases=generate", "--hypothesis-seed=7", "--hypothesis-max-examples", examples])
            .args(["-H", &format!("Authorization: Bearer {key}")])
            .env("NO_COLOR", "1")
            .env("SCHEMATHESIS_HOOKS", "valet_images")
            .env("PYTHONPATH", hooks.path())
            // Hypothesis keeps its example database in the working directory.
            .current_dir(data.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "schemathesis found failures:\n{stdout}");
        let checked = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("not_a_server_error")?.split_whitespace().next()?.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
        requests += checked;
    }
    assert!(requests >= 1000, "only {requests} generated requests");
    eprintln!("schemathesis: {requests} generated requests, no failure");
}
