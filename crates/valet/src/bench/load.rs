//! `valet bench load`: how much each endpoint takes and what happens past it, against the demo
//! garage in a child process (`valet serve --demo`) on loopback.
//!
//! 1. **The knee.** For each endpoint, closed-loop with 1, 2, 4, … requests in flight for a few
//!    seconds each: answers per second and p99. The knee is the fewest in flight that reach 90 % of
//!    the best rate: past it, more in flight only waits longer.
//! 2. **Twice the knee.** Open-loop at twice the knee's rate (requests leave on their tick whatever
//!    the server is doing, as cameras send): every answer is timed on its own and must come within
//!    [`ANSWER_WITHIN`] as 2xx, or as 429/503 with `Retry-After` (load shed). Gate frames and plate
//!    reads are cars at a barrier, so the bench retries a shed one after its `Retry-After` (with
//!    jitter), under the same idempotency key, as a camera does; a car never accepted within [`CAR_GIVES_UP`] is a lost
//!    gate event. The child's resident memory is sampled throughout; its peak is reported.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use futures_util::future::join_all;
use valet_lot::synthetic::aerial::{self, ParkedCar};

use super::process::{Process, demo_garage};
use crate::report::{median, percentile};

/// Each answer, 2xx or shed, must come within this.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// How long a camera keeps retrying one car before it is lost.
const CAR_GIVES_UP: Duration = Duration::from_secs(30);
/// The resident-memory ceiling under twice the knee.
const RSS_CEILING_MIB: f64 = 512.0;
const IN_FLIGHT: [usize; 6] = [1, 2, 4, 8, 16, 32];

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Seconds per step of the knee search; the overload run lasts three times as long.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Only these endpoints (classify, gate-frames, plate-reads, lot-frames; default all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<Endpoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Endpoint {
    Classify,
    GateFrames,
    PlateReads,
    LotFrames,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Classify => "/v1/classify",
            Endpoint::GateFrames => "/v1/gates/{camera}/frames",
            Endpoint::PlateReads => "/v1/plate-reads",
            Endpoint::LotFrames => "/v1/lots/{id}/frames",
        }
    }

    /// A car at a barrier: retried when shed, lost when never accepted.
    fn is_a_car(self) -> bool {
        matches!(self, Endpoint::GateFrames | Endpoint::PlateReads)
    }
}

/// What the requests carry: a gate camera's frame, a bay camera's frame.
#[derive(Debug)]
struct Payloads {
    url: String,
    key: String,
    gate: Vec<u8>,
    lot: Vec<u8>,
}

impl Payloads {
    /// Request `n` to `endpoint`: cars alternate in and out (car `n / 2`), so stays open and close.
    fn request(&self, client: &reqwest::Client, endpoint: Endpoint, n: u64) -> reqwest::RequestBuilder {
        let url = &self.url;
        let direction = if n.is_multiple_of(2) { "entry" } else { "exit" };
        let builder = match endpoint {
            Endpoint::Classify => client.post(format!("{url}/v1/classify")).body(self.lot.clone()),
            Endpoint::GateFrames => client
                .post(format!("{url}/v1/gates/load-{direction}/frames?direction={direction}"))
                .body(self.gate.clone()),
            Endpoint::PlateReads => client.post(format!("{url}/v1/plate-reads")).json(&serde_json::json!({
                "camera": format!("load-{direction}"),
                "direction": direction,
                "text": format!("LD{:05}", n / 2),
                "confidence": 0.97,
            })),
            Endpoint::LotFrames => {
                client.post(format!("{url}/v1/lots/{}/frames", valet_server::demo::LOT)).body(self.lot.clone())
            }
        };
        builder.bearer_auth(&self.key).header("idempotency-key", format!("load-{endpoint:?}-{n}"))
    }
}

/// Answers of one run.
#[derive(Debug, Default)]
struct Tally {
    ok: u32,
    shed: u32,
    /// Neither 2xx nor 429/503, or no answer within the client's timeout.
    failed: u32,
    latencies_ms: Vec<f64>,
    lost_cars: u32,
}

impl Tally {
    fn record(&mut self, answer: &reqwest::Result<reqwest::Response>, took: Duration) {
        self.latencies_ms.push(took.as_secs_f64() * 1000.0);
        match answer.as_ref().map(|a| a.status().as_u16()) {
            Ok(200..=299) => self.ok += 1,
            Ok(429 | 503) => self.shed += 1,
            _ => self.failed += 1,
        }
    }
}

pub async fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    if args.seconds <= 0.0 {
        bail!("--seconds must be positive");
    }
    let endpoints = if args.only.is_empty() {
        vec![Endpoint::Classify, Endpoint::GateFrames, Endpoint::PlateReads, Endpoint::LotFrames]
    } else {
        args.only.clone()
    };
    let (_data, mut server, key) = demo_garage().await?;
    let parked = [ParkedCar { bay: 1, car: 1 }, ParkedCar { bay: 6, car: 2 }];
    let payloads = Arc::new(Payloads {
        url: server.url.clone(),
        key,
        gate: valet_server::demo::CARS[0].1.to_vec(),
        lot: valet_imaging::encode_jpeg(&aerial::frame(&parked, 1), 85)?,
    });
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).pool_max_idle_per_host(64).build()?;
    let step = Duration::from_secs_f64(args.seconds);
    let mut missed = Vec::new();

    println!("the knee: closed-loop, {} s per step; answers/s counts 2xx only", args.seconds);
    println!(
        "{:<28} {:>9} {:>10} {:>8} {:>9} {:>6} {:>7}",
        "endpoint", "in flight", "answers/s", "p50 ms", "p99 ms", "shed", "failed"
    );
    let mut knees = Vec::new();
    let mut n = 0u64;
    for &endpoint in &endpoints {
        let mut steps = Vec::new();
        for in_flight in IN_FLIGHT {
            let tally = closed_loop(&client, &payloads, endpoint, in_flight, step, &mut n).await;
            let rate = f64::from(tally.ok) / step.as_secs_f64();
            println!(
                "{:<28} {in_flight:>9} {rate:>10.1} {:>8.1} {:>9.1} {:>6} {:>7}",
                endpoint.path(),
                median(&tally.latencies_ms),
                percentile(&tally.latencies_ms, 0.99),
                tally.shed,
                tally.failed
            );
            steps.push((in_flight, rate));
        }
        let best = steps.iter().map(|s| s.1).fold(0.0, f64::max);
        let knee = steps.iter().copied().find(|s| s.1 >= 0.9 * best).unwrap_or(steps[0]);
        knees.push((endpoint, knee));
    }

    println!();
    println!(
        "twice the knee: open-loop for {} s; each answer within {} s as 2xx or shed (429/503); cars retried after Retry-After, lost after {} s",
        3.0 * args.seconds,
        ANSWER_WITHIN.as_secs(),
        CAR_GIVES_UP.as_secs()
    );
    println!(
        "{:<28} {:>6} {:>9} {:>7} {:>6} {:>6} {:>7} {:>8} {:>8} {:>9} {:>5}",
        "endpoint", "knee", "sent/s", "sent", "2xx", "shed", "failed", "p99 ms", "max ms", "peak RSS", "lost"
    );
    for (endpoint, (knee_in_flight, knee_rate)) in knees {
        let rate = (2.0 * knee_rate).max(1.0);
        let (tally, sent, peak_rss) =
            open_loop(&client, &payloads, &mut server, endpoint, rate, 3 * step, &mut n).await?;
        let max = tally.latencies_ms.iter().copied().fold(0.0, f64::max);
        println!(
            "{:<28} {:>6} {rate:>9.1} {sent:>7} {:>6} {:>6} {:>7} {:>8.1} {max:>8.1} {:>8.1}M {:>5}",
            endpoint.path(),
            knee_in_flight,
            tally.ok,
            tally.shed,
            tally.failed,
            percentile(&tally.latencies_ms, 0.99),
            peak_rss,
            tally.lost_cars
        );
        if tally.failed > 0
            || tally.lost_cars > 0
            || max > ANSWER_WITHIN.as_secs_f64() * 1000.0
            || peak_rss > RSS_CEILING_MIB
        {
            missed.push(endpoint.path());
        }
    }
    println!();
    println!(
        "targets under twice the knee: every answer 2xx or shed within {} s, 0 failed, 0 lost cars, peak RSS ≤ {RSS_CEILING_MIB} MiB",
        ANSWER_WITHIN.as_secs()
    );
    if missed.is_empty() {
        println!("all met");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("missed by: {}", missed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// `in_flight` workers, each sending its next request as soon as the last is answered, for `step`.
async fn closed_loop(
    client: &reqwest::Client,
    payloads: &Arc<Payloads>,
    endpoint: Endpoint,
    in_flight: usize,
    step: Duration,
    n: &mut u64,
) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let end = Instant::now() + step;
    let base = *n;
    *n += 1_000_000;
    let workers = (0..in_flight as u64).map(|worker| {
        let (client, payloads, tally) = (client.clone(), payloads.clone(), tally.clone());
        async move {
            let mut i = 0;
            while Instant::now() < end {
                // Worker w sends w, w + in_flight, … so each car's entry and exit keep their order.
                let request = payloads.request(&client, endpoint, base + worker + i * in_flight as u64);
                i += 1;
                let began = Instant::now();
                let answer = request.send().await;
                tally.lock().unwrap().record(&answer, began.elapsed());
            }
        }
    });
    join_all(workers).await;
    std::mem::take(&mut *tally.lock().unwrap())
}

/// `rate` requests a second for `length`, each on its own task; shed cars are retried. Returns the
/// tally, how many were sent (first tries) and the server's peak resident memory in MiB.
async fn open_loop(
    client: &reqwest::Client,
    payloads: &Arc<Payloads>,
    server: &mut Process,
    endpoint: Endpoint,
    rate: f64,
    length: Duration,
    n: &mut u64,
) -> anyhow::Result<(Tally, u64, f64)> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let end = Instant::now() + length;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sample = tokio::time::interval(Duration::from_millis(200));
    let (mut tasks, mut sent, mut peak_rss) = (Vec::new(), 0u64, server.rss_mib()?);
    while Instant::now() < end {
        tokio::select! {
            _ = tick.tick() => {
                let (client, payloads, tally, number) = (client.clone(), payloads.clone(), tally.clone(), *n);
                *n += 1;
                sent += 1;
                tasks.push(tokio::spawn(async move { send_until_accepted(&client, &payloads, endpoint, number, &tally).await }));
            }
            _ = sample.tick() => peak_rss = peak_rss.max(server.rss_mib()?),
        }
    }
    // The stragglers: retried cars may take up to CAR_GIVES_UP more.
    let all = join_all(tasks);
    let mut all = std::pin::pin!(all);
    loop {
        tokio::select! {
            _ = &mut all => break,
            _ = sample.tick() => peak_rss = peak_rss.max(server.rss_mib()?),
        }
    }
    if !server.is_running() {
        bail!("the server died under twice the knee of {}", endpoint.path());
    }
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    Ok((tally, sent, peak_rss))
}

/// Sends request `number`; a car that is shed is sent again under the same idempotency key, as a
/// camera does: after `Retry-After` (1 s when absent), spread by ±50 % so that the shed do not all
/// come back at once; until accepted or [`CAR_GIVES_UP`]. (Doubling the wait up to 8 s lost four
/// times as many cars: fewer tries fit in the time a car waits.)
async fn send_until_accepted(
    client: &reqwest::Client,
    payloads: &Payloads,
    endpoint: Endpoint,
    number: u64,
    tally: &Mutex<Tally>,
) {
    let first = Instant::now();
    loop {
        let began = Instant::now();
        let answer = payloads.request(client, endpoint, number).send().await;
        tally.lock().unwrap().record(&answer, began.elapsed());
        let retry_after = match &answer {
            Ok(a) if a.status().is_success() => return,
            Ok(a) if matches!(a.status().as_u16(), 429 | 503) => a
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .unwrap_or(1),
            // A failure is counted as one; a car is not retried past it.
            _ => return,
        };
        if !endpoint.is_a_car() {
            return;
        }
        let wait = Duration::from_secs_f64(retry_after as f64 * rand::random_range(0.5..1.5));
        if first.elapsed() + wait > CAR_GIVES_UP {
            tally.lock().unwrap().lost_cars += 1;
            return;
        }
        tokio::time::sleep(wait).await;
    }
}
