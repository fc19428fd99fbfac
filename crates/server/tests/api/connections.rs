//! The connection loop on a real loopback socket: junk, stalled clients, graceful shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use valet_server::Settings;

use crate::helpers::{TestApp, photo, spawn_app_with};

#[allow(missing_debug_implementations)]
struct Running {
    addr: SocketAddr,
    app: TestApp,
    stop: oneshot::Sender<()>,
    served: JoinHandle<std::io::Result<()>>,
}

async fn start(settings: Settings) -> Running {
    let app = spawn_app_with(settings.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let router = app.router.clone();
    let served = tokio::spawn(async move {
        valet_server::serve(listener, router, &settings, async {
            let _ = stopped.await;
        })
        .await
    });
    Running { addr, app, stop, served }
}

/// Everything the server sends until it closes the connection (or 10 s pass).
async fn read_all(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

async fn health(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: garage\r\nConnection: close\r\n\r\n").await.unwrap();
    read_all(&mut s).await
}

/// The first bytes of a real TLS 1.3 ClientHello: what an HTTPS scanner sends to a plain port.
const TLS_CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x5b, 0x90, 0x9d, 0x9b, 0x72, 0x0b, 0xbc, 0x0c,
    0xbc, 0x2b, 0x92, 0xa8, 0x48, 0x97, 0xcf, 0xbd, 0x39, 0x04, 0xcc, 0x16, 0x0a, 0x85, 0x03, 0x90, 0x9f, 0x77, 0x04,
    0x33, 0xd4, 0xde, 0x00, 0x00, 0x20, 0xc0, 0x2b, 0xc0, 0x2f,
];

#[tokio::test]
async fn junk_on_the_port_is_answered_or_dropped_and_the_server_keeps_serving() {
    let running = start(Settings::default()).await;
    let junk: [(&str, &[u8]); 4] = [
        ("tls hello", TLS_CLIENT_HELLO),
        ("random bytes", &[0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a, 0x99, 0x42]),
        ("scanner", b"GET /config/getuser?index=0 HTTP/1.1\r\nHost: 1.2.3.4\r\nConnection: close\r\n\r\n"),
        ("not http", b"HELLO valet server, send me your models\r\n\r\n"),
    ];
    for (name, bytes) in junk {
        let mut s = TcpStream::connect(running.addr).await.unwrap();
        s.write_all(bytes).await.unwrap();
        let answer = read_all(&mut s).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 404"),
            "{name}: {answer:?}"
        );
        assert!(health(running.addr).await.starts_with("HTTP/1.1 200"), "still serving after {name}");
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_body_gets_408_while_others_are_served() {
    let settings = Settings { body_timeout_secs: 1, ..Settings::default() };
    let running = start(settings).await;
    let mut stalled = TcpStream::connect(running.addr).await.unwrap();
    let head = format!(
        "POST /v1/classify HTTP/1.1\r\nHost: garage\r\nAuthorization: Bearer {}\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n",
        running.app.key
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&photo()[..1000]).await.unwrap();

    assert!(health(running.addr).await.starts_with("HTTP/1.1 200"), "others are served meanwhile");
    let answer = read_all(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    let records = running.app.store.recent_classifications(1).await.unwrap();
    assert_eq!(records[0].outcome, "body_timeout", "the refused upload is recorded");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_dropped() {
    let settings = Settings { header_timeout_secs: 1, ..Settings::default() };
    let running = start(settings).await;
    let mut s = TcpStream::connect(running.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
    let started = std::time::Instant::now();
    let answer = read_all(&mut s).await;
    assert!(started.elapsed() < Duration::from_secs(5), "dropped after the header timeout");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(health(running.addr).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_upload_finish_then_stops_accepting() {
    let running = start(Settings::default()).await;
    let jpeg = photo();
    let mut upload = TcpStream::connect(running.addr).await.unwrap();
    let head = format!(
        "POST /v1/classify HTTP/1.1\r\nHost: garage\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        running.app.key,
        jpeg.len()
    );
    upload.write_all(head.as_bytes()).await.unwrap();
    upload.write_all(&jpeg[..jpeg.len() / 2]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    running.stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    upload.write_all(&jpeg[jpeg.len() / 2..]).await.unwrap();
    let answer = read_all(&mut upload).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    tokio::time::timeout(Duration::from_secs(10), running.served).await.unwrap().unwrap().unwrap();
    assert!(TcpStream::connect(running.addr).await.is_err(), "no longer accepting");
}
