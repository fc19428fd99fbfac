//! A real SMTP server for tests of any crate (feature `testing`): Python's aiosmtpd on a free
//! loopback port, storing each mail it accepts in a Maildir, stopped when dropped. It can be
//! stopped and started again on the same port, as a mail server that goes down and comes back.
//!
//! aiosmtpd comes from PyPI (`pip install aiosmtpd==1.4.6`; `.ci/run` installs it). Without it,
//! [`SmtpSink::start`] says so, and callers skip with that reason.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// aiosmtpd listening on loopback; the mails it accepted are [`SmtpSink::messages`].
#[derive(Debug)]
pub struct SmtpSink {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl SmtpSink {
    /// Starts the server, or says why it cannot (no `python3`, no aiosmtpd).
    pub fn start() -> Result<SmtpSink, String> {
        let probe = Command::new("python3").args(["-c", "import aiosmtpd"]).stderr(Stdio::null()).status();
        if !probe.is_ok_and(|s| s.success()) {
            return Err(
                "aiosmtpd is not installed for python3 (pip install aiosmtpd==1.4.6; .ci/run installs it)".into()
            );
        }
        let addr = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut sink = SmtpSink { addr, dir, child: None };
        sink.resume()?;
        Ok(sink)
    }

    /// `smtp://127.0.0.1:PORT`: plain SMTP, which Valet allows to loopback only.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Stops the server: connections are refused until [`resume`](Self::resume).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and Maildir.
    pub fn resume(&mut self) -> Result<(), String> {
        let maildir = self.dir.path().join("mail");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &self.addr.to_string(), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting aiosmtpd: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.addr).is_err() {
            if Instant::now() > deadline {
                return Err(format!("aiosmtpd did not listen on {} within 10 s", self.addr));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Every mail accepted so far, oldest first, as a person reads it: the headers decoded (a
    /// subject with "€" travels RFC 2047-encoded) and the body decoded from its transfer encoding,
    /// by Python's `email` package.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(self.dir.path().join("mail").join(sub)).ok())
            .flatten()
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
            .collect();
        files.sort();
        files.into_iter().filter_map(|(_, path)| decoded(&path)).collect()
    }

    /// Waits until at least `count` mails arrived, or `timeout` passed; returns them all.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count || Instant::now() > deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The mail in `path`, headers and body decoded; `None` when Python cannot read it.
fn decoded(path: &std::path::Path) -> Option<String> {
    const DECODE: &str = "import sys, email, email.policy\n\
        m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)\n\
        print('\\n'.join(f'{k}: {v}' for k, v in m.items()))\n\
        print()\n\
        print(m.get_content(), end='')\n";
    let out = Command::new("python3").args(["-c", DECODE]).arg(path).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}
