//! `valet bench soak`: the demo garage (`valet serve --demo`, a child process) under a fixed rate
//! of the traffic a garage sees — demo cars in at one gate and out at another, bay camera frames
//! of the demo lot, classifications and availability reads — for half an hour, with a report row
//! every minute: answers, p99, resident memory, open descriptors and the data directory's size.
//! A leak shows as a slope; the closing lines fit one (least squares, first row left out as the
//! warm-up) and print it beside the spread of the rows.
//!
//! The load is open-loop: each request leaves on its tick whether or not the ones before it were
//! answered, as cameras do, so a slow server gets more in flight, not fewer requests.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use valet_lot::synthetic::aerial::{self, ParkedCar};

use super::process::demo_garage;
use crate::report::percentile;

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// How long to run, in minutes.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Requests per second (the bench's; the demo adds its own car and bay camera every 3 s).
    #[arg(long, default_value_t = 4.0)]
    rate: f64,
    /// Seconds between report rows.
    #[arg(long, default_value_t = 60)]
    every: u64,
}

/// Answers over one report period.
#[derive(Debug, Default)]
struct Period {
    ok: u32,
    /// 429 or 503: load shed with a Retry-After, which a camera honours.
    shed: u32,
    /// Anything else, or no answer at all: what must stay zero.
    failed: u32,
    latencies_ms: Vec<f64>,
}

/// One report row.
#[derive(Debug, Clone, Copy)]
struct Row {
    minute: f64,
    rss_mib: f64,
    fds: f64,
}

pub async fn run(args: SoakArgs) -> anyhow::Result<ExitCode> {
    if args.rate <= 0.0 || args.minutes <= 0.0 || args.every == 0 {
        bail!("--rate, --minutes and --every must be positive");
    }
    let (_data, mut server, key) = demo_garage().await?;
    let requests = Arc::new(mix(&server.url)?);

    println!(
        "{} min at {} requests/s against the demo garage ({}); a row every {} s",
        args.minutes, args.rate, server.url, args.every
    );
    println!(
        "{:>6} {:>8} {:>6} {:>6} {:>6} {:>8} {:>8} {:>9} {:>5} {:>10}",
        "minute", "requests", "2xx", "shed", "failed", "p50 ms", "p99 ms", "RSS MiB", "fds", "data MiB"
    );
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let period = Arc::new(Mutex::new(Period::default()));
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(args.minutes * 60.0);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut report = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(args.every),
        Duration::from_secs(args.every),
    );
    let (mut rows, mut failed, mut sent) = (Vec::new(), 0u32, 0u64);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let request = requests[sent as usize % requests.len()].clone();
                let (client, key, period) = (client.clone(), key.clone(), period.clone());
                sent += 1;
                tokio::spawn(async move {
                    let began = Instant::now();
                    let answer = request.send(&client, &key, sent).await;
                    let mut period = period.lock().unwrap();
                    period.latencies_ms.push(began.elapsed().as_secs_f64() * 1000.0);
                    match answer.map(|a| a.status().as_u16()) {
                        Ok(200..=299) => period.ok += 1,
                        Ok(429 | 503) => period.shed += 1,
                        _ => period.failed += 1,
                    }
                });
            }
            _ = report.tick() => {
                let done = std::mem::take(&mut *period.lock().unwrap());
                if !server.is_running() {
                    bail!("the server died after {:.1} min", started.elapsed().as_secs_f64() / 60.0);
                }
                let row = Row {
                    minute: started.elapsed().as_secs_f64() / 60.0,
                    rss_mib: server.rss_mib()?,
                    fds: server.open_fds()? as f64,
                };
                failed += done.failed;
                println!(
                    "{:>6.1} {:>8} {:>6} {:>6} {:>6} {:>8.1} {:>8.1} {:>9.1} {:>5} {:>10.1}",
                    row.minute,
                    done.latencies_ms.len(),
                    done.ok,
                    done.shed,
                    done.failed,
                    percentile(&done.latencies_ms, 0.5),
                    percentile(&done.latencies_ms, 0.99),
                    row.rss_mib,
                    row.fds,
                    server.data_bytes() as f64 / (1024.0 * 1024.0),
                );
                rows.push(row);
                if Instant::now() >= end {
                    break;
                }
            }
        }
    }

    let warm: Vec<Row> = rows.iter().skip(1).copied().collect();
    let hours = |r: &Row| r.minute / 60.0;
    for (name, unit, value) in
        [("RSS", "MiB", (|r: &Row| r.rss_mib) as fn(&Row) -> f64), ("open descriptors", "", |r: &Row| r.fds)]
    {
        let points: Vec<(f64, f64)> = warm.iter().map(|r| (hours(r), value(r))).collect();
        let values: Vec<f64> = points.iter().map(|p| p.1).collect();
        let spread = values.iter().copied().fold(f64::MIN, f64::max) - values.iter().copied().fold(f64::MAX, f64::min);
        match slope(&points) {
            Some(per_hour) => {
                println!(
                    "{name}: slope {per_hour:+.2} {unit}/h after the first row; spread of the rows {spread:.2} {unit}"
                )
            }
            None => println!("{name}: too few rows for a slope (run longer or report more often)"),
        }
    }
    println!("{sent} requests sent; {failed} failed (neither 2xx nor load shed with Retry-After)");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// One request of the mix, cloned for each send.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    body: Option<Arc<Vec<u8>>>,
}

impl Request {
    async fn send(&self, client: &reqwest::Client, key: &str, n: u64) -> reqwest::Result<reqwest::Response> {
        match &self.body {
            Some(body) => {
                client
                    .post(&self.path)
                    .bearer_auth(key)
                    .header("idempotency-key", format!("soak-{n}"))
                    .body(body.as_ref().clone())
                    .send()
                    .await
            }
            None => client.get(&self.path).bearer_auth(key).send().await,
        }
    }
}

/// The traffic: each demo car in and out (its gate frame), between them bay camera frames of the
/// demo lot with a few cars parked, a classification and an availability read.
fn mix(url: &str) -> anyhow::Result<Vec<Request>> {
    let lot = |cars: &[usize], seed: u64| -> anyhow::Result<Request> {
        let parked: Vec<ParkedCar> = cars.iter().map(|&bay| ParkedCar { bay, car: bay as u64 }).collect();
        let jpeg = valet_imaging::encode_jpeg(&aerial::frame(&parked, seed), 85)?;
        Ok(Request { path: format!("{url}/v1/lots/{}/frames", valet_server::demo::LOT), body: Some(Arc::new(jpeg)) })
    };
    let mut mix = Vec::new();
    for (n, (_, jpeg)) in valet_server::demo::CARS.iter().enumerate() {
        let frame = Arc::new(jpeg.to_vec());
        let gate = |direction: &str| Request {
            path: format!("{url}/v1/gates/soak-{direction}/frames?direction={direction}"),
            body: Some(frame.clone()),
        };
        mix.push(gate("entry"));
        mix.push(lot(&[n, (n + 3) % 10], n as u64)?);
        mix.push(Request { path: format!("{url}/v1/classify"), body: Some(frame.clone()) });
        mix.push(gate("exit"));
        mix.push(Request { path: format!("{url}/v1/lots/{}/availability", valet_server::demo::LOT), body: None });
    }
    Ok(mix)
}

/// Least-squares slope of `(x, y)` points; `None` below three points or with every x equal.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slope_is_fitted_and_flat_rows_have_none() {
        let rising: Vec<(f64, f64)> = (0..10).map(|i| (f64::from(i), 2.0 * f64::from(i) + 5.0)).collect();
        assert!((slope(&rising).unwrap() - 2.0).abs() < 1e-9);
        let flat: Vec<(f64, f64)> = (0..10).map(|i| (f64::from(i), 7.0)).collect();
        assert_eq!(slope(&flat), Some(0.0));
        assert_eq!(slope(&rising[..2]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]), None);
    }
}
