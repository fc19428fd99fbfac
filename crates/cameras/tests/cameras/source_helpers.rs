//! What the source tests share: test frames, fast settings, a tiny loopback HTTP camera, and
//! waiting on a camera's health or slot with a deadline.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use valet_cameras::{CameraConfig, Frame, FrameSlot, Health, HealthRecorder, SourceSettings, run_source_with};
use valet_garage::Direction;

/// The demo's gate photos: real 960×720 JPEGs of cars with plates.
pub const DEMO_JPEGS: [&[u8]; 6] = [
    include_bytes!("../../../server/demo/gate-BV310NP.jpg"),
    include_bytes!("../../../server/demo/gate-DM104AX.jpg"),
    include_bytes!("../../../server/demo/gate-GT468WS.jpg"),
    include_bytes!("../../../server/demo/gate-KR552TE.jpg"),
    include_bytes!("../../../server/demo/gate-VL482TG.jpg"),
    include_bytes!("../../../server/demo/gate-ZH927LC.jpg"),
];

/// A generated frame unlike any demo photo, to tell one server's frames from another's.
pub fn generated_jpeg(seed: u64) -> Vec<u8> {
    valet_imaging::synthetic::photo_jpeg(320, 240, None, seed)
}

pub fn config(url: &str) -> CameraConfig {
    CameraConfig {
        name: "lane-1-entry".into(),
        url: url.into(),
        direction: Direction::Entry,
        lane: Some("1".into()),
        region: None,
        every: Duration::from_millis(100),
    }
}

/// The contract's settings with the backoff shortened, so a reconnect costs a test little. The
/// stall stays long enough that a busy machine never fakes one; the stall tests shorten it.
pub fn fast() -> SourceSettings {
    SourceSettings {
        stall: Duration::from_secs(5),
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        ..SourceSettings::default()
    }
}

/// A running source; aborted when dropped, so a failing test leaves nothing behind.
pub struct Source {
    pub slot: FrameSlot,
    pub health: HealthRecorder,
    pub task: JoinHandle<()>,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn start(config: CameraConfig, settings: SourceSettings) -> Source {
    let (slot, health) = (FrameSlot::new(), HealthRecorder::new());
    let task = tokio::spawn(run_source_with(config, slot.clone(), health.clone(), settings));
    Source { slot, health, task }
}

impl Source {
    /// Waits up to `within` for `done` to hold of the camera's health; panics with it otherwise.
    pub async fn wait_for(&self, within: Duration, what: &str, done: impl Fn(&Health) -> bool) -> Health {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let health = self.health.snapshot();
            if done(&health) {
                return health;
            }
            assert!(tokio::time::Instant::now() < deadline, "waited {within:?} for {what}; health: {health:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The next frame within `within`.
    pub async fn frame(&self, within: Duration) -> Frame {
        match tokio::time::timeout(within, self.slot.take()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => panic!("the slot closed"),
            Err(_) => panic!("no frame within {within:?}; health: {:#?}", self.health.snapshot()),
        }
    }
}

/// The stall time of the tests about stalls.
pub const SHORT_STALL: Duration = Duration::from_secs(1);

/// Lets a test server answer request n only once the test has seen what request n - 1 caused,
/// so a test can check each step of a sequence however slow the machine.
#[derive(Clone)]
pub struct Gate(Arc<watch::Sender<usize>>);

impl Gate {
    /// Request 0 may be answered.
    pub fn new() -> Gate {
        Gate(Arc::new(watch::channel(1).0))
    }

    /// Waits until request `n` may be answered.
    pub async fn pass(&self, n: usize) {
        let _ = self.0.subscribe().wait_for(|allowed| *allowed > n).await;
    }

    /// The next request may be answered.
    pub fn allow_next(&self) {
        self.0.send_modify(|allowed| *allowed += 1);
    }

    /// Every request may be answered from now on.
    pub fn open(&self) {
        self.0.send_replace(usize::MAX);
    }
}

/// A loopback HTTP "camera": each connection is handed to `serve` with its number (0, 1, …).
/// Dropping it closes the listener and every connection, like a camera switched off.
pub struct Server {
    pub port: u16,
    pub connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start<F, Fut>(serve: F) -> Server
    where
        F: Fn(TcpStream, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::on(TcpListener::bind("127.0.0.1:0").await.unwrap(), serve)
    }

    pub fn on<F, Fut>(listener: TcpListener, serve: F) -> Server
    where
        F: Fn(TcpStream, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            // Connection tasks live in the set, so aborting the server drops them all.
            let mut open = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let n = counted.fetch_add(1, Ordering::SeqCst);
                open.spawn(serve(stream, n));
            }
        });
        Server { port, connections, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Reads one HTTP request's head; `None` when the client closed the connection.
pub async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 || head.len() > 16 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Answers a request with an MJPEG stream's head.
pub async fn write_mjpeg_head(stream: &mut TcpStream, boundary: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary={boundary}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await
}

/// Writes one MJPEG part, with or without its Content-Length.
pub async fn write_part(stream: &mut TcpStream, body: &[u8], with_length: bool) -> std::io::Result<()> {
    let mut part = b"--frame\r\nContent-Type: image/jpeg\r\n".to_vec();
    if with_length {
        part.extend(format!("Content-Length: {}\r\n", body.len()).bytes());
    }
    part.extend(b"\r\n");
    part.extend(body);
    part.extend(b"\r\n");
    stream.write_all(&part).await
}

/// Writes a whole HTTP answer; with `close`, the server closes the connection after it.
pub async fn write_answer(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    close: bool,
) -> std::io::Result<()> {
    let connection = if close { "close" } else { "keep-alive" };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await
}

pub fn is_demo(frame: &Frame) -> bool {
    DEMO_JPEGS.contains(&frame.jpeg.as_slice())
}
