//! Guessing, throttled. Every failed attempt at a credential (an API key or a driver token, the
//! dashboard's operator name and key, a driver's plate and recovery code) is counted against the
//! source address and, where the attempt names one, against the name (the operator, the plate).
//! Past [`PER_SOURCE`] or [`PER_NAME`] failures within [`WINDOW`], each further attempt from that
//! source or at that name is answered 429 with `Retry-After` before anything is checked, so a
//! guesser waits out the window whatever they send. Successes are not counted and reset nothing:
//! one good key must not wash a guessing run clean.
//!
//! The counts live in this process: each replica throttles on its own, so a guesser spread over
//! `n` replicas gets `n` times the attempts (still a few dozen per ten minutes).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Failed attempts one source address may make within [`WINDOW`].
pub const PER_SOURCE: usize = 20;
/// Failed attempts at one name (an operator, a plate) within [`WINDOW`], from anywhere.
pub const PER_NAME: usize = 10;
pub const WINDOW: Duration = Duration::from_secs(600);
/// Sources and names remembered at once; beyond it the quietest are forgotten first.
const REMEMBERED: usize = 10_000;

/// The address a request came from, when the connection loop recorded it (every real
/// connection; not a test's `oneshot`). A peer on loopback is a proxy on this host (Knative's
/// queue-proxy, a local reverse proxy): then the client is the nearest public address in
/// `X-Forwarded-For`, read from the right so that addresses a client wrote in itself, to the
/// left, are not believed; with only internal hops (a garage's LAN), the first one. Without this,
/// every client behind the proxy would share one count, and one guesser would lock all out.
#[derive(Debug, Clone, Copy)]
pub struct Source(pub Option<IpAddr>);

impl Source {
    pub fn of(parts: &Parts) -> Source {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
        Source(match peer {
            Some(peer) if peer.is_loopback() => forwarded_client(&parts.headers).or(Some(peer)),
            peer => peer,
        })
    }

    /// This source and `names` as the subjects an attempt is counted against.
    pub fn with(self, names: impl IntoIterator<Item = Subject>) -> Vec<Subject> {
        self.0.map(Subject::Source).into_iter().chain(names).collect()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Source, Self::Rejection> {
        Ok(Source::of(parts))
    }
}

fn forwarded_client(headers: &axum::http::HeaderMap) -> Option<IpAddr> {
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    hops.iter().rev().find(|ip| !is_internal(ip)).or(hops.first()).copied()
}

fn is_internal(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local
        }
    }
}

/// Who a failed attempt is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Source(IpAddr),
    /// A name with its kind (`operator:alice`, `plate:AB123CD`).
    Name(String),
}

impl Subject {
    /// A plate as typed, in the form its spellings share (case, spaces and dashes do not make a
    /// new name to guess at).
    pub fn plate(typed: &str) -> Subject {
        let canonical: String =
            typed.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect();
        Subject::name("plate", &canonical)
    }

    pub fn name(kind: &str, name: &str) -> Subject {
        // Bounded: a name is whatever a client typed.
        Subject::Name(format!("{kind}:{}", name.trim().chars().take(64).collect::<String>()))
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<Subject, VecDeque<Instant>>>,
}

impl Throttle {
    /// `Err(retry_after)` when any of `subjects` has used up its failures.
    pub fn check(&self, subjects: &[Subject]) -> Result<(), Duration> {
        self.check_at(subjects, Instant::now())
    }

    /// Counts a failed attempt against each of `subjects`.
    pub fn failed(&self, subjects: &[Subject]) {
        self.failed_at(subjects, Instant::now());
    }

    fn check_at(&self, subjects: &[Subject], now: Instant) -> Result<(), Duration> {
        let mut failures = self.failures();
        let mut wait = Duration::ZERO;
        for subject in subjects {
            let Some(times) = failures.get_mut(subject) else { continue };
            forget_before(times, now);
            if times.len() >= limit(subject) {
                // Allowed again once enough of the oldest have left the window.
                let oldest_that_counts = times[times.len() - limit(subject)];
                wait = wait.max(WINDOW.saturating_sub(now.duration_since(oldest_that_counts)));
            }
        }
        if wait.is_zero() { Ok(()) } else { Err(wait.max(Duration::from_secs(1))) }
    }

    fn failed_at(&self, subjects: &[Subject], now: Instant) {
        let mut failures = self.failures();
        if failures.len() >= REMEMBERED {
            failures.retain(|_, times| {
                forget_before(times, now);
                !times.is_empty()
            });
        }
        for subject in subjects {
            if failures.len() >= REMEMBERED && !failures.contains_key(subject) {
                tracing::warn!("too many sources and names failing at once to remember one more");
                continue;
            }
            let times = failures.entry(subject.clone()).or_default();
            times.push_back(now);
            // Only the newest `limit` matter.
            while times.len() > limit(subject) {
                times.pop_front();
            }
        }
    }

    fn failures(&self) -> MutexGuard<'_, HashMap<Subject, VecDeque<Instant>>> {
        // Every change is a push or a pop: a panic elsewhere cannot leave the map half-changed.
        self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn limit(subject: &Subject) -> usize {
    match subject {
        Subject::Source(_) => PER_SOURCE,
        Subject::Name(_) => PER_NAME,
    }
}

fn forget_before(times: &mut VecDeque<Instant>, now: Instant) {
    while times.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(last: u8) -> Subject {
        Subject::Source(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn a_source_is_refused_after_its_failures_until_the_oldest_leaves_the_window() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for n in 0..PER_SOURCE {
            assert_eq!(throttle.check_at(&[source(1)], start), Ok(()), "attempt {n}");
            throttle.failed_at(&[source(1)], start + Duration::from_secs(n as u64));
        }
        let now = start + Duration::from_secs(60);
        let wait = throttle.check_at(&[source(1)], now).unwrap_err();
        assert_eq!(wait, WINDOW - Duration::from_secs(60), "until the first failure is ten minutes old");
        assert_eq!(throttle.check_at(&[source(2)], now), Ok(()), "another source is not held up");
        assert_eq!(throttle.check_at(&[source(1)], start + WINDOW), Ok(()), "one failure has left the window");
    }

    #[test]
    fn a_name_is_refused_after_its_failures_from_anywhere_and_either_subject_refuses() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let alice = Subject::name("operator", "alice");
        for n in 0..PER_NAME {
            throttle.failed_at(&[source(n as u8), alice.clone()], now);
        }
        assert!(throttle.check_at(&[source(200), alice.clone()], now).is_err(), "a fresh source guessing alice");
        assert_eq!(throttle.check_at(&[source(200), Subject::name("operator", "bob")], now), Ok(()));
        assert_eq!(Subject::name("operator", &"x".repeat(500)), Subject::name("operator", &"x".repeat(64)));
    }

    /// Each row: the TCP peer, the `X-Forwarded-For` header, and the address counted.
    #[test]
    fn behind_a_proxy_on_this_host_the_nearest_public_forwarded_address_counts() {
        let table = [
            ("203.0.113.9", None, "203.0.113.9"),
            // A client's own X-Forwarded-For, straight to Valet: not believed.
            ("203.0.113.9", Some("198.51.100.1"), "203.0.113.9"),
            ("127.0.0.1", None, "127.0.0.1"),
            ("127.0.0.1", Some("198.51.100.1"), "198.51.100.1"),
            // Ingress, then the activator's cluster address: the client is the public one.
            ("127.0.0.1", Some("198.51.100.1, 10.4.0.7"), "198.51.100.1"),
            // A spoofed address written in by the client sits to the left, and is passed over.
            ("127.0.0.1", Some("1.2.3.4, 198.51.100.1, 10.4.0.7"), "198.51.100.1"),
            // A garage's LAN: only internal hops, the first is the client.
            ("127.0.0.1", Some("192.168.1.20, 10.0.0.1"), "192.168.1.20"),
            ("::1", Some("2001:db8::5, fd00::1"), "2001:db8::5"),
            ("127.0.0.1", Some("not an address"), "127.0.0.1"),
        ];
        for (peer, forwarded, counted) in table {
            let mut request = axum::http::Request::builder();
            if let Some(forwarded) = forwarded {
                request = request.header("x-forwarded-for", forwarded);
            }
            let (mut parts, ()) = request.body(()).unwrap().into_parts();
            let peer: IpAddr = peer.parse().unwrap();
            parts.extensions.insert(ConnectInfo(SocketAddr::new(peer, 40000)));
            assert_eq!(Source::of(&parts).0, Some(counted.parse().unwrap()), "{peer} {forwarded:?}");
        }
    }

    #[test]
    fn memory_is_bounded_and_expired_subjects_are_forgotten_first() {
        let throttle = Throttle::default();
        let long_ago = Instant::now();
        for n in 0..REMEMBERED {
            throttle.failed_at(&[Subject::name("plate", &n.to_string())], long_ago);
        }
        let later = long_ago + WINDOW;
        throttle.failed_at(&[source(1)], later);
        assert_eq!(throttle.failures().len(), 1, "the expired were forgotten to make room");
    }
}
