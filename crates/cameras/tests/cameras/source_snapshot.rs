//! Snapshot cameras on loopback: polled at the configured interval over one kept-alive
//! connection; a garbage snapshot, an HTTP error, a wrong content type, an oversize or a
//! never-answered snapshot are errors the camera recovers from.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use valet_cameras::{MAX_FRAME_BYTES, SourceSettings};

use crate::source_helpers::{
    DEMO_JPEGS, Gate, SHORT_STALL, Server, config, fast, is_demo, read_request, start, write_answer,
};

const WAIT: Duration = Duration::from_secs(10);

/// A snapshot camera answering request number k (over all connections) with `answer(k)`.
async fn snapshot_camera<F, Fut>(answer: F) -> (Server, Arc<AtomicUsize>)
where
    F: Fn(TcpStream, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Option<TcpStream>> + Send + 'static,
{
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let server = Server::start(move |mut stream, _| {
        let (answer, counted) = (answer.clone(), counted.clone());
        async move {
            // Keep-alive: one connection serves request after request until the client leaves.
            while read_request(&mut stream).await.is_some() {
                let k = counted.fetch_add(1, Ordering::SeqCst);
                match answer(stream, k).await {
                    Some(kept) => stream = kept,
                    None => return,
                }
            }
        }
    })
    .await;
    (server, requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_url_is_polled_at_its_interval() {
    let (server, requests) = snapshot_camera(|mut stream, k| async move {
        let jpeg = DEMO_JPEGS[k % DEMO_JPEGS.len()];
        write_answer(&mut stream, "200 OK", "image/jpeg", jpeg, false).await.ok().map(|()| stream)
    })
    .await;
    let mut camera = config(&server.url("/snapshot.jpg"));
    camera.every = Duration::from_millis(200);
    let source = start(camera, fast());
    let mut seen = Vec::new();
    for _ in 0..4 {
        let frame = source.frame(WAIT).await;
        assert!(is_demo(&frame));
        seen.push(frame.jpeg);
    }
    seen.dedup();
    assert_eq!(seen.len(), 4, "each poll brought the camera's next picture");

    // Polled at about five a second: neither hammered nor forgotten.
    let before = requests.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let polls = requests.load(Ordering::SeqCst) - before;
    assert!((2..=8).contains(&polls), "{polls} polls in a second at every=200ms");
    let health = source.health.snapshot();
    assert!(health.connected && health.fps > 0.0, "{health:#?}");
    assert_eq!((health.errors, health.reconnects), (0, 0), "{health:#?}");
    assert!(server.connections() <= 2, "{} connections for one kept-alive camera", server.connections());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_snapshots_are_errors_and_polling_recovers() {
    let gate = Gate::new();
    let waits = gate.clone();
    let (server, _) = snapshot_camera(move |mut stream, k| {
        let gate = waits.clone();
        async move {
            gate.pass(k).await;
            let answer = match k {
                0 | 2 => write_answer(&mut stream, "200 OK", "image/jpeg", DEMO_JPEGS[k], false).await,
                1 => write_answer(&mut stream, "200 OK", "image/jpeg", b"Service Unavailable", false).await,
                3 => write_answer(&mut stream, "500 Internal Server Error", "text/plain", b"oops", true).await,
                4 => write_answer(&mut stream, "200 OK", "text/html; charset=utf-8", b"<html>", true).await,
                _ => write_answer(&mut stream, "200 OK", "image/jpg", DEMO_JPEGS[5], false).await,
            };
            answer.ok().map(|()| stream)
        }
    })
    .await;
    // The stall covers the wait at the gate: only the answers may fail here.
    let source = start(config(&server.url("/snapshot.jpg")), SourceSettings { stall: WAIT, ..fast() });
    assert_eq!(source.frame(WAIT).await.jpeg, DEMO_JPEGS[0]);
    gate.allow_next();
    let health = source.wait_for(WAIT, "the garbage snapshot", |h| h.errors >= 1).await;
    assert!(health.last_error.as_deref().unwrap().contains("not a JPEG (it starts \"Service Unavai"), "{health:#?}");
    gate.allow_next();
    assert_eq!(source.frame(WAIT).await.jpeg, DEMO_JPEGS[2], "polling went on after the garbage");
    gate.allow_next();
    let health = source.wait_for(WAIT, "the 500", |h| h.errors >= 2).await;
    assert!(health.last_error.as_deref().unwrap().contains("HTTP 500"), "{health:#?}");
    gate.allow_next();
    let health = source.wait_for(WAIT, "the HTML", |h| h.errors >= 3).await;
    assert!(health.last_error.as_deref().unwrap().contains("text/html"), "{health:#?}");
    gate.open();
    assert_eq!(source.frame(WAIT).await.jpeg, DEMO_JPEGS[5], "`image/jpg` is a JPEG too");
    let health = source.wait_for(WAIT, "connected again", |h| h.connected).await;
    assert_eq!(health.errors, 3, "{health:#?}");
    assert!(health.reconnects >= 2, "{health:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_or_unanswered_snapshot_is_refused_and_retried() {
    let (server, _) = snapshot_camera(|mut stream, k| async move {
        match k {
            0 => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                    MAX_FRAME_BYTES + 1
                );
                let _ = stream.write_all(head.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                None
            }
            1 => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                None
            }
            _ => write_answer(&mut stream, "200 OK", "image/jpeg", DEMO_JPEGS[3], false).await.ok().map(|()| stream),
        }
    })
    .await;
    let source = start(config(&server.url("/snapshot.jpg")), SourceSettings { stall: SHORT_STALL, ..fast() });
    let health = source.wait_for(WAIT, "the oversize snapshot", |h| h.errors >= 1).await;
    assert!(health.last_error.as_deref().unwrap().contains("8388608-byte limit"), "{health:#?}");
    let health = source.wait_for(WAIT, "the unanswered poll", |h| h.errors >= 2).await;
    assert!(health.last_error.as_deref().unwrap().contains("stalled"), "{health:#?}");
    assert_eq!(source.frame(WAIT).await.jpeg, DEMO_JPEGS[3]);
}
