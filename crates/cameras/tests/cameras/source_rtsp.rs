//! RTSP cameras through ffmpeg: frames from a real RTSP server (GStreamer's, from Debian's
//! packages, serving H.264 that ffmpeg made from the demo photos), cars through a pulled RTSP
//! camera as passages, a URL nobody serves, ffmpeg missing, and no ffmpeg left running once the
//! camera stops.
//!
//! Tests that need ffmpeg, GStreamer's RTSP server or `pgrep` say so and skip without them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use valet_cameras::SourceSettings;

use crate::source_helpers::{DEMO_JPEGS, config, fast, start};

const WAIT: Duration = Duration::from_secs(20);
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

fn have_ffmpeg() -> bool {
    let found = std::process::Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIP: ffmpeg is not installed (Debian: apt-get install ffmpeg)");
    }
    found
}

/// Whether Debian's GStreamer RTSP server (and the elements the test server uses) is installed.
fn have_rtsp_server() -> bool {
    let check = std::process::Command::new(SYSTEM_PYTHON).arg(server_script()).arg("--check").output();
    match check {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!(
                "SKIP: GStreamer's RTSP server is not usable: {} (Debian: apt-get install python3-gi \
                 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)",
                String::from_utf8_lossy(&out.stdout).trim()
            );
            false
        }
        Err(error) => {
            eprintln!("SKIP: no {SYSTEM_PYTHON} to run the RTSP test server ({error})");
            false
        }
    }
}

fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rtsp_server.py")
}

/// 30 frames (the demo photos, five times over) encoded by ffmpeg as a 10 fps H.264 MP4.
fn h264_of_demo_photos(dir: &Path) -> Result<PathBuf, String> {
    let frames: Vec<&[u8]> = DEMO_JPEGS.iter().copied().cycle().take(30).collect();
    h264_of(dir, &frames)
}

/// `frames` (JPEGs of one size) encoded by ffmpeg as a 10 fps H.264 MP4 in `dir`.
fn h264_of(dir: &Path, frames: &[&[u8]]) -> Result<PathBuf, String> {
    for (i, jpeg) in frames.iter().enumerate() {
        std::fs::write(dir.join(format!("frame{i:03}.jpg")), jpeg).map_err(|e| e.to_string())?;
    }
    let video = dir.join("lane.mp4");
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-framerate", "10", "-i"])
        .arg(dir.join("frame%03d.jpg"))
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "10"])
        .arg(&video)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(video)
}

/// Starts the RTSP server on `video`; its port once it listens. Killed when the child is dropped.
async fn rtsp_server(video: &Path) -> (Child, u16) {
    let mut child = Command::new(SYSTEM_PYTHON)
        .arg(server_script())
        .arg(video)
        .arg("/lane")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the RTSP test server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line()).await.expect("the RTSP server started").unwrap();
    let port = line.as_deref().and_then(|l| l.strip_prefix("PORT ")).and_then(|p| p.parse().ok());
    (child, port.unwrap_or_else(|| panic!("the RTSP server said {line:?}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_come_from_a_real_rtsp_server_as_jpegs() {
    if !have_ffmpeg() || !have_rtsp_server() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let video = match h264_of_demo_photos(dir.path()) {
        Ok(video) => video,
        Err(why) => return eprintln!("SKIP: this ffmpeg cannot encode H.264 with libx264: {why}"),
    };
    let (_server, port) = rtsp_server(&video).await;
    let source = start(config(&format!("rtsp://127.0.0.1:{port}/lane")), SourceSettings { stall: WAIT, ..fast() });
    for _ in 0..5 {
        let frame = source.frame(WAIT).await;
        assert!(frame.jpeg.starts_with(&[0xFF, 0xD8]) && frame.jpeg.ends_with(&[0xFF, 0xD9]), "not a whole JPEG");
        let decoded = valet_imaging::decode(&frame.jpeg, &Default::default()).expect("ffmpeg's JPEG decodes");
        assert_eq!((decoded.source_width, decoded.source_height), (960, 720));
    }
    let health = source.health.snapshot();
    assert!(health.connected && health.frames >= 5, "{health:#?}");
    assert_eq!(health.errors, 0, "{health:#?}");

    // The file ends, the server ends the stream: an error, a reconnect, and frames again.
    let health = source.wait_for(WAIT, "the end of the stream", |h| h.errors >= 1 && h.reconnects >= 1).await;
    assert!(health.last_error.as_deref().unwrap().contains("ffmpeg ended"), "{health:#?}");
    let frames = health.frames;
    source.wait_for(WAIT, "frames after reconnecting", |h| h.frames > frames + 3).await;
}

/// The whole camera over RTSP: an empty lane, two cars driving through it one after the other, an
/// empty lane again; then the file ends, the server ends the stream, and the camera reconnects to
/// the same cars from the start. Exactly one passage per car, with its plate and a crop; the replay
/// after the reconnect is the same cars within the cool-down and adds none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cars_through_a_pulled_rtsp_camera_are_one_passage_each_even_across_a_reconnect() {
    if !have_ffmpeg() || !have_rtsp_server() {
        return;
    }
    let cars = [("VL482TG", DEMO_JPEGS[4]), ("KR552TE", DEMO_JPEGS[3])];
    let lanes: Vec<Vec<u8>> = (0..4).map(empty_lane).collect();
    let mut frames: Vec<&[u8]> = Vec::new();
    for (i, (_, car)) in cars.iter().enumerate() {
        frames.extend(lanes.iter().cycle().skip(i).take(12).map(Vec::as_slice));
        frames.extend(std::iter::repeat_n(*car, 15));
    }
    frames.extend(lanes.iter().cycle().take(12).map(Vec::as_slice));
    let dir = tempfile::tempdir().unwrap();
    let video = match h264_of(dir.path(), &frames) {
        Ok(video) => video,
        Err(why) => return eprintln!("SKIP: this ffmpeg cannot encode H.264 with libx264: {why}"),
    };
    let (_server, port) = rtsp_server(&video).await;

    let reader = std::sync::Arc::new(valet_plates::PlateReader::bundled().unwrap());
    let (sender, mut passages) = tokio::sync::mpsc::channel(16);
    let camera =
        valet_cameras::pull(config(&format!("rtsp://127.0.0.1:{port}/lane")), reader, Default::default(), sender)
            .unwrap();
    // The stream runs 6.6 s; wait for it to end, the reconnect, and both cars of the replay.
    let deadline = tokio::time::Instant::now() + 2 * WAIT;
    let mut replay_from = None;
    loop {
        let health = camera.health();
        if health.reconnects > 0 && replay_from.is_none() {
            replay_from = Some(health.frames);
        }
        if replay_from.is_some_and(|from| health.frames >= from + 58) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the stream did not end and come back: {health:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut got = Vec::new();
    while let Ok(passage) = passages.try_recv() {
        got.push(passage);
    }
    let plates: Vec<&str> = got.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(plates, ["VL482TG", "KR552TE"], "{:#?}", camera.health());
    assert_ne!(got[0].id, got[1].id);
    for passage in &got {
        assert!(passage.crop_jpeg.as_ref().is_some_and(|c| c.starts_with(&[0xFF, 0xD8])), "{passage:?}");
        assert!(passage.reads >= 1 && passage.frames >= 1, "{passage:?}");
    }
    let health = camera.health();
    assert_eq!(health.passages, 2, "{health:#?}");
    assert!(health.frames_read < health.frames / 2, "gating should leave the empty lane unread: {health:#?}");
}

/// A 960×720 empty lane: tarmac grey with a little noise.
fn empty_lane(seed: u32) -> Vec<u8> {
    let lane = image::RgbImage::from_fn(960, 720, |x, y| {
        let noise = ((x * 7 + y * 13 + seed * 31) % 7) as u8;
        image::Rgb([88 + noise, 90 + noise, 94 + noise])
    });
    valet_imaging::encode_jpeg(&lane, 85).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtsp_url_nobody_serves_is_retried_and_its_password_never_shown() {
    if !have_ffmpeg() {
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let settings = SourceSettings { stall: WAIT, ..fast() };
    let source = start(config(&format!("rtsp://admin:hunter2@127.0.0.1:{port}/lane")), settings);
    let health = source.wait_for(WAIT, "a few refusals", |h| h.errors >= 3 && h.reconnects >= 2).await;
    let error = health.last_error.unwrap();
    assert!(error.contains("ffmpeg ended") && error.contains("ffmpeg said"), "{error}");
    assert!(!error.contains("hunter2"), "the password leaked into an error: {error}");
    assert!(!health.connected && health.frames == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ffmpeg_is_a_clear_error() {
    let settings = SourceSettings { ffmpeg: "/nonexistent/valet-test/ffmpeg".into(), ..fast() };
    let source = start(config("rtsp://127.0.0.1:1/lane"), settings);
    let health = source.wait_for(WAIT, "the error", |h| h.errors >= 2).await;
    assert_eq!(
        health.last_error.as_deref(),
        Some("rtsp:// cameras need ffmpeg on PATH; install it (Debian: apt-get install ffmpeg)")
    );
}

fn ffmpegs_for(url: &str) -> Option<usize> {
    let out = std::process::Command::new("pgrep").args(["-f", url]).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).lines().count())
}

async fn wait_for_ffmpegs(url: &str, count: impl Fn(usize) -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let running = ffmpegs_for(url).unwrap();
        if count(running) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {running} ffmpeg running for {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_camera_leaves_no_ffmpeg_behind() {
    if !have_ffmpeg() {
        return;
    }
    if ffmpegs_for("valet-no-such-process").is_none() {
        return eprintln!("SKIP: pgrep is not installed (Debian: apt-get install procps)");
    }
    // A "camera" that accepts the connection and never answers: ffmpeg waits on it for ever.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let unique = format!("valet-orphan-{}-{}", std::process::id(), port);
    for stop in ["abort", "close"] {
        let url = format!("rtsp://127.0.0.1:{port}/{unique}-{stop}");
        let settings = SourceSettings { stall: Duration::from_secs(3600), ..fast() };
        let source = start(config(&url), settings);
        wait_for_ffmpegs(&url, |n| n == 1, "ffmpeg started").await;
        match stop {
            "abort" => source.task.abort(),
            _ => source.slot.close(),
        }
        wait_for_ffmpegs(&url, |n| n == 0, &format!("ffmpeg still running after {stop}")).await;
        assert!(
            tokio::time::timeout(WAIT, async {
                while !source.task.is_finished() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .is_ok()
        );
    }
}
