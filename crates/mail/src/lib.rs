//! Receipts and failed-charge notices by e-mail, for drivers who gave an address.
//!
//! A [`Mailer`] works the garage's outbox (`mail_outbox`, in `valet-store`) in passes
//! ([`Mailer::pass`], every [`PASS_EVERY`] when [`Mailer::spawn`]ed):
//! 1. it owes the mail that what the garage recorded calls for (a receipt written, a stay left
//!    unpaid), once per stay and only to addresses given before it happened;
//! 2. it claims what is due, under a lease, renders each mail from the stored receipt or stay
//!    ([`letter`]), and sends it over SMTP ([`lettre`]);
//! 3. it records each as sent, skipped (nothing left to say: the stay was paid meanwhile, or the
//!    driver removed the address), retried later with backoff (the server or the network said
//!    "not now"), or given up (the server refused it for good, or [`MAX_ATTEMPTS`] failed).
//!
//! Invariants:
//! - mail never blocks the garage: it is owed from what was recorded and sent beside it, so an SMTP
//!   server that is down delays mail and nothing else, and what was owed waits in the database;
//! - a mail is owed once: receipts written again, replayed webhooks and repeated passes owe
//!   nothing more. Sending is at least once: a sender that dies after the server took a mail and
//!   before recording it sends it again when its lease ends, under the same `Message-ID`;
//! - no password travels in clear: a plain `smtp://` URL is refused unless the server is on this
//!   machine (`?tls=required` is STARTTLS, `smtps://` is TLS from the start).

pub mod letter;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use valet_garage::{ChargeState, EmailAddress, SessionState};
use valet_store::{GarageStore, MailKind, MailRetry, OwedMail, StoreError};

pub use letter::Letter;

/// How often a spawned mailer owes and sends.
pub const PASS_EVERY: Duration = Duration::from_secs(5);
/// How far back a pass looks for receipts and unpaid stays that may still be owed mail.
pub const OWE_WITHIN: TimeDelta = TimeDelta::days(7);
/// How long a claimed mail is its sender's: longer than an SMTP conversation may take
/// ([`SMTP_TIMEOUT`] per command).
pub const LEASE: TimeDelta = TimeDelta::minutes(2);
/// Tries before a mail the server keeps deferring is given up (with backoff up to an hour, about
/// fifteen hours of trying).
pub const MAX_ATTEMPTS: u32 = 20;
/// Mails sent per pass at most.
const BATCH: u32 = 50;
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach the SMTP server and whom mail is from.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `smtp://[user:password@]host[:port][?tls=required]` or `smtps://…` (TLS from the start).
    pub smtp_url: String,
    /// The sender, e.g. `Valet Garage <garage@example.com>`.
    pub from: String,
    /// The portal's public address, for the links in mail (`https://park.example.com`).
    pub portal: Option<url::Url>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the SMTP URL is not a URL: {0}")]
    Url(#[from] url::ParseError),
    #[error(
        "a plain smtp:// URL to {0} would send mail (and any password) in clear: use smtps:// or add ?tls=required; plain smtp is only for a server on this machine"
    )]
    Cleartext(String),
    #[error("the SMTP URL must start smtp:// or smtps://, not {0}://")]
    Scheme(String),
    #[error("the sender address {0:?} is not a mailbox such as Garage <garage@example.com>: {1}")]
    From(String, String),
    #[error("the SMTP transport: {0}")]
    Transport(#[from] SmtpError),
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub owed: u64,
    pub sent: u32,
    pub skipped: u32,
    pub deferred: u32,
    pub given_up: u32,
}

/// Works the outbox of one garage through one SMTP server.
#[derive(Debug, Clone)]
pub struct Mailer {
    store: GarageStore,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    portal: Option<url::Url>,
}

impl Mailer {
    pub fn new(store: GarageStore, config: &MailConfig) -> Result<Mailer, MailError> {
        let (transport, from) = transport(config)?;
        Ok(Mailer { store, transport, from, portal: config.portal.clone() })
    }

    /// Owes, then sends what is due at `now`: see the crate's docs. A store error ends the pass
    /// (the next one starts over); an SMTP error is recorded on its mail.
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<Pass, StoreError> {
        let mut pass = Pass { owed: self.store.owe_mail(now - OWE_WITHIN, now).await?, ..Pass::default() };
        for mail in self.store.claim_due_mail(now, LEASE, BATCH).await? {
            let (Some(to), Some(letter)) = (mail.recipient.clone(), self.letter(&mail).await?) else {
                self.store.mail_sent(&mail.id, None, now).await?;
                pass.skipped += 1;
                continue;
            };
            match self.send(&mail, &to, letter).await {
                Ok(()) => {
                    self.store.mail_sent(&mail.id, Some(&to), now).await?;
                    tracing::info!(mail = %mail.id, "mail sent");
                    pass.sent += 1;
                }
                Err(error) => {
                    let retry = retry_after(error.is_permanent(), mail.attempts, now);
                    let text = error.to_string();
                    match retry {
                        MailRetry::GiveUp => {
                            tracing::error!(mail = %mail.id, attempts = mail.attempts, error = %text, "mail given up");
                            pass.given_up += 1;
                        }
                        MailRetry::At(at) => {
                            tracing::warn!(mail = %mail.id, attempts = mail.attempts, retry_at = %at, error = %text, "mail deferred");
                            pass.deferred += 1;
                        }
                    }
                    self.store.mail_failed(&mail.id, &text, retry, now).await?;
                }
            }
        }
        Ok(pass)
    }

    /// The mail's words, or `None` when there is nothing left to say: the receipt or the stay is
    /// gone (retention), or an unpaid stay has been paid since.
    async fn letter(&self, mail: &OwedMail) -> Result<Option<Letter>, StoreError> {
        let portal = self.portal.as_ref();
        Ok(match mail.kind {
            MailKind::Receipt => self.store.receipt(mail.session).await?.map(|r| letter::receipt(&r, portal)),
            MailKind::ChargeFailed => {
                let Some(stay) = self.store.session(mail.session).await? else { return Ok(None) };
                let SessionState::Unpaid { exit, .. } = &stay.state else { return Ok(None) };
                let reason =
                    self.store.charges_for_session(mail.session).await?.into_iter().rev().find_map(|c| {
                        match c.charge.state() {
                            ChargeState::Failed { reason, .. } => Some(reason.clone()),
                            _ => None,
                        }
                    });
                let plate = stay.plate.as_ref().map(|p| p.masked()).unwrap_or_else(|| "(erased)".into());
                Some(letter::charge_failed(&plate, stay.entry, exit, reason.as_deref(), portal))
            }
        })
    }

    async fn send(&self, mail: &OwedMail, to: &EmailAddress, letter: Letter) -> Result<(), SendError> {
        let to: Mailbox =
            to.as_str().parse().map_err(|e: lettre::address::AddressError| SendError::Address(e.to_string()))?;
        let domain = self.from.email.domain();
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(letter.subject)
            // The same id on every try, so a mail sent twice (see the invariants) is one mail.
            .message_id(Some(format!("<{}@{domain}>", mail.id.replace(':', "."))))
            .header(ContentType::TEXT_PLAIN)
            .body(letter.body)
            .map_err(|e| SendError::Address(e.to_string()))?;
        self.transport.send(message).await.map_err(SendError::Smtp)?;
        Ok(())
    }

    /// Runs passes every [`PASS_EVERY`] until the process ends, telling `on_pass` what each did; a
    /// failed pass is logged and the next one starts over.
    pub fn spawn(self, on_pass: impl Fn(&Pass) + Send + 'static) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PASS_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match self.pass(Utc::now()).await {
                    Ok(pass) => on_pass(&pass),
                    Err(e) => tracing::error!(error = %e, "mail pass failed; mail waits in the outbox"),
                }
            }
        });
    }
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    /// The address or message cannot be sent by anyone: retrying changes nothing.
    #[error("the mail cannot be built: {0}")]
    Address(String),
    #[error("SMTP: {0}")]
    Smtp(SmtpError),
}

impl SendError {
    /// Whether trying again cannot help: a mail that cannot be built, or a 5xx refusal.
    fn is_permanent(&self) -> bool {
        match self {
            SendError::Address(_) => true,
            SendError::Smtp(e) => e.is_permanent(),
        }
    }
}

/// When to try a failed mail again: never after a permanent refusal, else after a backoff that
/// doubles from a minute to an hour, until [`MAX_ATTEMPTS`].
fn retry_after(permanent: bool, attempts: u32, now: DateTime<Utc>) -> MailRetry {
    if permanent || attempts >= MAX_ATTEMPTS {
        return MailRetry::GiveUp;
    }
    let minutes = 1i64 << attempts.saturating_sub(1).min(6);
    MailRetry::At(now + TimeDelta::minutes(minutes.min(60)))
}

/// The SMTP transport and the sender `config` names, refusing what would send a password in clear.
fn transport(config: &MailConfig) -> Result<(AsyncSmtpTransport<Tokio1Executor>, Mailbox), MailError> {
    let url = url::Url::parse(&config.smtp_url)?;
    match url.scheme() {
        "smtps" => {}
        "smtp" if url.query_pairs().any(|(k, v)| k == "tls" && v == "required") => {}
        "smtp" if is_loopback(&url) => {}
        "smtp" => return Err(MailError::Cleartext(url.host_str().unwrap_or_default().to_owned())),
        other => return Err(MailError::Scheme(other.to_owned())),
    }
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::From(config.from.clone(), e.to_string()))?;
    let transport =
        AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)?.timeout(Some(SMTP_TIMEOUT)).build();
    Ok((transport, from))
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        // smtp is not a scheme the URL standard knows, so its host stays text, addresses included.
        Some(url::Host::Domain(name)) => {
            name == "localhost"
                || name.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_tls_or_this_machine_gets_a_password() {
        let table = [
            ("smtps://u:p@mail.example.com", true),
            ("smtp://u:p@mail.example.com:587?tls=required", true),
            ("smtp://u:p@mail.example.com:587?tls=opportunistic", false),
            ("smtp://u:p@mail.example.com", false),
            ("smtp://127.0.0.1:2525", true),
            ("smtp://localhost:25", true),
            ("smtp://[::1]:25", true),
            ("http://mail.example.com", false),
            ("mail.example.com:25", false),
        ];
        for (url, accepted) in table {
            let config = MailConfig { smtp_url: url.into(), from: "Garage <garage@example.com>".into(), portal: None };
            let made = transport(&config).map(|_| ());
            assert_eq!(made.is_ok(), accepted, "{url}: {made:?}");
        }
        let config = MailConfig { smtp_url: "smtp://127.0.0.1".into(), from: "garage at example".into(), portal: None };
        assert!(matches!(transport(&config), Err(MailError::From(..))));
    }

    #[test]
    fn permanent_refusals_stop_and_the_rest_back_off_up_to_an_hour() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(retry_after(true, 1, now), MailRetry::GiveUp);
        let table = [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (19, 60)];
        for (attempts, minutes) in table {
            assert_eq!(
                retry_after(false, attempts, now),
                MailRetry::At(now + TimeDelta::minutes(minutes)),
                "{attempts}"
            );
        }
        assert_eq!(retry_after(false, MAX_ATTEMPTS, now), MailRetry::GiveUp);
    }
}
