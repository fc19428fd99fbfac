//! MJPEG cameras on loopback: frames arrive in the slot, a restarted server is reconnected to, a
//! stall is noticed, garbage and oversize parts are refused, and nothing of it panics.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use valet_cameras::{MAX_FRAME_BYTES, SourceSettings};

use crate::source_helpers::{
    DEMO_JPEGS, Gate, SHORT_STALL, Server, config, fast, generated_jpeg, is_demo, read_request, start, write_answer,
    write_mjpeg_head, write_part,
};

const WAIT: Duration = Duration::from_secs(10);

/// Serves the demo photos for ever, 20 a second, with or without Content-Length.
async fn demo_camera(with_length: bool) -> Server {
    Server::start(move |mut stream, _| async move {
        if read_request(&mut stream).await.is_none() || write_mjpeg_head(&mut stream, "frame").await.is_err() {
            return;
        }
        for jpeg in DEMO_JPEGS.iter().cycle() {
            if write_part(&mut stream, jpeg, with_length).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mjpeg_frames_arrive_in_the_slot_as_the_camera_sent_them() {
    for with_length in [true, false] {
        let server = demo_camera(with_length).await;
        let source = start(config(&server.url("/video.mjpg")), fast());
        for _ in 0..8 {
            let frame = source.frame(WAIT).await;
            assert!(is_demo(&frame), "a frame that is not one the camera sent ({} bytes)", frame.jpeg.len());
        }
        let decoded = valet_imaging::decode(&source.frame(WAIT).await.jpeg, &Default::default()).unwrap();
        assert_eq!((decoded.source_width, decoded.source_height), (960, 720));
        let health = source.wait_for(WAIT, "fps", |h| h.fps > 1.0).await;
        assert!(health.connected && health.frames >= 9, "{health:#?}");
        assert!(health.last_frame_at.is_some());
        assert_eq!((health.errors, health.reconnects), (0, 0), "with_length {with_length}: {health:#?}");

        // A lane worker that falls behind: frames are replaced, not queued, and counted as drops.
        let before = health.frames;
        source.wait_for(WAIT, "frames nobody took", |h| h.frames >= before + 4).await;
        assert!(source.slot.try_take().is_some_and(|f| is_demo(&f)));
        assert!(source.slot.try_take().is_none(), "the slot holds one frame");
        let health = source.health.snapshot();
        assert!(health.frames_dropped >= 2, "{health:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_camera_does_not_touch_another() {
    let good = demo_camera(true).await;
    let stalls = Server::start(|mut stream, _| async move {
        let _ = read_request(&mut stream).await;
        let _ = write_mjpeg_head(&mut stream, "frame").await;
        let _ = write_part(&mut stream, b"garbage", true).await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
    })
    .await;
    let failing = start(config(&stalls.url("/")), SourceSettings { stall: SHORT_STALL, ..fast() });
    let healthy = start(config(&good.url("/")), fast());
    failing.wait_for(WAIT, "the failing camera's errors", |h| h.errors >= 3 && h.reconnects >= 1).await;
    for _ in 0..5 {
        assert!(is_demo(&healthy.frame(WAIT).await));
    }
    let health = healthy.health.snapshot();
    assert_eq!((health.errors, health.reconnects), (0, 0), "{health:#?}");
    assert!(health.connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_camera_is_reconnected_and_its_frames_resume() {
    let first = demo_camera(true).await;
    let port = first.port;
    let source = start(config(&first.url("/video.mjpg")), fast());
    assert!(is_demo(&source.frame(WAIT).await));
    drop(first);
    let down = source.wait_for(WAIT, "the disconnect", |h| !h.connected && h.errors >= 1).await;
    assert!(down.last_error.is_some());

    // Back on the same port, now sending other pictures.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let restarted = Server::on(listener, |mut stream, _| async move {
        if read_request(&mut stream).await.is_none() || write_mjpeg_head(&mut stream, "frame").await.is_err() {
            return;
        }
        for seed in 0.. {
            if write_part(&mut stream, &generated_jpeg(seed % 3), true).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if !is_demo(&source.frame(WAIT).await) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the restarted camera's frames never came");
    }
    let health = source.wait_for(WAIT, "connected again", |h| h.connected).await;
    assert!(health.reconnects >= 1 && health.errors >= 1, "{health:#?}");
    assert!(restarted.connections() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_is_an_error_and_a_reconnect() {
    // The first connection sends its head and then nothing; later ones one frame, then nothing.
    let server = Server::start(|mut stream, n| async move {
        if read_request(&mut stream).await.is_none() || write_mjpeg_head(&mut stream, "frame").await.is_err() {
            return;
        }
        if n > 0 {
            let _ = write_part(&mut stream, DEMO_JPEGS[0], true).await;
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    })
    .await;
    let source = start(config(&server.url("/")), SourceSettings { stall: SHORT_STALL, ..fast() });
    let health = source.wait_for(WAIT, "a stall", |h| h.errors >= 1).await;
    assert!(health.last_error.as_deref().unwrap().contains("stalled"), "{health:#?}");
    assert!(is_demo(&source.frame(WAIT).await), "the second connection's frame");
    let health = source.wait_for(WAIT, "the second stall", |h| h.errors >= 2 && h.reconnects >= 2).await;
    assert!(health.last_error.as_deref().unwrap().contains("no frame for 1s"), "{health:#?}");
    assert!(server.connections() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_parts_are_counted_and_the_next_good_frames_still_arrive() {
    let server = Server::start(|mut stream, _| async move {
        if read_request(&mut stream).await.is_none() || write_mjpeg_head(&mut stream, "frame").await.is_err() {
            return;
        }
        let garbage: [&[u8]; 3] = [b"<html><body>Camera busy</body></html>", &[0u8, 1, 2, 3, 4, 5], b""];
        for i in 0.. {
            let good = DEMO_JPEGS[i % DEMO_JPEGS.len()];
            let bad = garbage[i % garbage.len()];
            if write_part(&mut stream, bad, i % 2 == 0).await.is_err()
                || write_part(&mut stream, good, i % 2 == 1).await.is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    })
    .await;
    let source = start(config(&server.url("/")), fast());
    for _ in 0..6 {
        assert!(is_demo(&source.frame(WAIT).await));
    }
    let health = source.wait_for(WAIT, "garbage counted", |h| h.errors >= 3 && h.frames >= 3).await;
    assert!(health.last_error.as_deref().unwrap().contains("not a JPEG"), "{health:#?}");
    assert_eq!(health.reconnects, 0, "a bad part does not cost the connection: {health:#?}");
    assert!(health.connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_part_is_refused_and_the_camera_reconnected() {
    // Connection 0 announces a 9 MB part; connection 1 streams a part with no length and no end;
    // later connections behave.
    let server = Server::start(|mut stream, n| async move {
        if read_request(&mut stream).await.is_none() || write_mjpeg_head(&mut stream, "frame").await.is_err() {
            return;
        }
        match n {
            0 => {
                let head = format!("--frame\r\nContent-Length: {}\r\n\r\n", MAX_FRAME_BYTES + 1);
                let _ = stream.write_all(head.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            1 => {
                let _ = stream.write_all(b"--frame\r\n\r\n\xFF\xD8\xFF\xE0").await;
                let block = vec![0x42u8; 64 * 1024];
                for _ in 0..(2 * MAX_FRAME_BYTES / block.len()) {
                    if stream.write_all(&block).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            _ => loop {
                if write_part(&mut stream, DEMO_JPEGS[1], true).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            },
        }
    })
    .await;
    let source = start(config(&server.url("/")), SourceSettings { stall: WAIT, ..fast() });
    let health = source.wait_for(WAIT, "the announced oversize part", |h| h.errors >= 1).await;
    assert!(health.last_error.as_deref().unwrap().contains("8388608-byte limit"), "{health:#?}");
    let health = source.wait_for(WAIT, "the endless part", |h| h.errors >= 2).await;
    assert!(health.last_error.as_deref().unwrap().contains("8388608-byte limit"), "{health:#?}");
    assert_eq!(source.frame(WAIT).await.jpeg, DEMO_JPEGS[1]);
    let health = source.health.snapshot();
    assert_eq!(health.errors, 2, "{health:#?}");
    assert!(health.reconnects >= 2 && health.connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_is_not_a_camera_is_a_clear_error() {
    let gate = Gate::new();
    let server = Server::start({
        let gate = gate.clone();
        move |mut stream, n| {
            let gate = gate.clone();
            async move {
                if read_request(&mut stream).await.is_none() {
                    return;
                }
                gate.pass(n).await;
                let _ = match n {
                    0 => write_answer(&mut stream, "200 OK", "text/html", b"<html>login</html>", true).await,
                    1 => write_answer(&mut stream, "404 Not Found", "text/plain", b"no such stream", true).await,
                    _ => write_answer(&mut stream, "200 OK", "multipart/x-mixed-replace", b"", true).await,
                };
            }
        }
    })
    .await;
    // The stall covers the wait at the gate: only the answers may fail here.
    let source = start(config(&server.url("/")), SourceSettings { stall: WAIT, ..fast() });
    let health = source.wait_for(WAIT, "the HTML answer", |h| h.errors >= 1).await;
    let error = health.last_error.unwrap();
    assert!(error.contains("\"text/html\"") && error.contains("expected multipart/x-mixed-replace"), "{error}");
    gate.allow_next();
    let health = source.wait_for(WAIT, "the 404", |h| h.errors >= 2).await;
    assert!(health.last_error.as_deref().unwrap().contains("HTTP 404"), "{health:#?}");
    gate.open();
    let health = source.wait_for(WAIT, "the boundary-less stream", |h| h.errors >= 3).await;
    assert!(health.last_error.as_deref().unwrap().contains("no boundary"), "{health:#?}");
    assert!(!health.connected && health.frames == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_nobody_serves_is_retried_with_backoff_and_closing_the_slot_stops_it() {
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let source = start(config(&format!("http://viewer:hunter2@127.0.0.1:{port}/video.mjpg")), fast());
    let health = source.wait_for(WAIT, "a few refusals", |h| h.errors >= 3 && h.reconnects >= 2).await;
    let error = health.last_error.unwrap();
    assert!(error.contains("could not reach the camera"), "{error}");
    assert!(!error.contains("hunter2"), "the password leaked into an error: {error}");
    source.slot.close();
    tokio::time::timeout(WAIT, async {
        while !source.task.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("closing the slot stops the source");
}
