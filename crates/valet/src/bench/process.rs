//! A `valet serve` child process, for the benches that measure Valet from outside as an operator
//! runs it: its own address space (so resident memory and descriptors are Valet's alone, not the
//! load generator's), its own data directory, killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The plate key every bench garage uses (a bench's plates are synthetic).
pub const PLATE_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A `valet serve …` child; killed on drop.
#[derive(Debug)]
pub struct Process {
    child: Child,
    pub url: String,
    data: PathBuf,
}

impl Process {
    /// Starts `valet serve --listen 127.0.0.1:0 --data DATA ARGS…` (e.g. `--functions gate` or
    /// `--demo`) with `K_SINK` set to `sink`, and waits until it prints the address it serves on.
    ///
    /// With `VALET_BENCH_SERVE_UNDER` set (say, to `heaptrack -o /tmp/serve`), the server runs under
    /// that command instead, to profile what a bench does to it; the figures read from
    /// `/proc` are then the wrapper's, not Valet's.
    pub fn start(exe: &Path, args: &[&str], data: &Path, sink: Option<&str>) -> anyhow::Result<Process> {
        use std::io::BufRead;

        let wrapper = std::env::var("VALET_BENCH_SERVE_UNDER").unwrap_or_default();
        let mut cmd = match wrapper.split_whitespace().collect::<Vec<_>>().split_first() {
            Some((program, wrapper_args)) => {
                let mut cmd = Command::new(program);
                cmd.args(wrapper_args).arg(exe);
                cmd
            }
            None => Command::new(exe),
        };
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(args)
            .env("VALET_PLATE_KEY", PLATE_KEY)
            .env("VALET_LOG", "warn")
            .env_remove("VALET_DATABASE_URL")
            .env_remove("K_SINK")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(sink) = sink {
            cmd.env("K_SINK", sink);
        }
        let mut child = cmd.spawn()?;
        // The first line that names an address (a wrapper may print its own lines first).
        let stdout = std::io::BufReader::new(child.stdout.take().context("no stdout")?);
        let line = stdout.lines().take(20).map_while(Result::ok).find(|line| line.contains("http://"));
        let Some(url) = line.as_deref().and_then(|line| line.split_whitespace().find(|w| w.starts_with("http://")))
        else {
            let _ = child.kill();
            bail!("`valet serve {}` did not start", args.join(" "));
        };
        Ok(Process { url: url.to_owned(), child, data: data.to_path_buf() })
    }

    /// Resident memory now, from `/proc/PID/status`.
    pub fn rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS")?;
        Ok(kb / 1024.0)
    }

    /// Open file descriptors now (sockets, database files, the log), from `/proc/PID/fd`.
    pub fn open_fds(&self) -> anyhow::Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))?.count())
    }

    /// Bytes under the data directory: the database with its write-ahead log, and anything else
    /// the garage keeps.
    pub fn data_bytes(&self) -> u64 {
        fn walk(dir: &Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        }
        walk(&self.data)
    }

    /// Whether the child is still running (a bench that outlives its server reports a crash, not
    /// a slow answer).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Registers a gate device in `data` through `valet devices add`; returns its key.
pub fn device_key(exe: &Path, data: &Path) -> anyhow::Result<String> {
    let out = Command::new(exe).args(["devices", "add", "bench-lane", "--data"]).arg(data).output()?;
    if !out.status.success() {
        bail!("devices add failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.lines().last().context("no key printed")?.to_owned())
}

/// Polls `/readyz` every 2 ms; the process printed its URL once bound, readiness may follow.
pub async fn wait_ready(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(answer) = client.get(format!("{url}/readyz")).send().await
            && answer.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    bail!("{url} was not ready within 60 s")
}

/// The demo garage (`valet serve --demo`) in a fresh data directory (removed when the first value
/// drops), ready, with a gate device's key.
pub async fn demo_garage() -> anyhow::Result<(tempfile::TempDir, Process, String)> {
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let key = device_key(&exe, &data)?;
    let server = Process::start(&exe, &["--demo"], &data, None)?;
    wait_ready(&server.url).await?;
    Ok((dir, server, key))
}
