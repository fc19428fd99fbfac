//! The garage behind the API: the [`GarageStore`] on SQLite or PostgreSQL, the plate key, the
//! payment gateway and the tariff, assembled into one [`Gate`] from [`Settings`]; and the
//! housekeeping that runs beside the requests (pending charges retried, old plates erased), and
//! the mailer when mail is configured.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use valet_billing::{StripeConfig, StripeGateway, StripePublishableKey, StripeSecretKey};
use valet_garage::{Barrier, GateConfig, Money, Tariff};
use valet_gate::{ConfiguredGateway, GateService, MissedExits, StoreLedger, SystemClock};
use valet_store::{GarageStore, PlateKey, Store};

use crate::Settings;
use crate::settings::GatewayKind;

/// The gate service as `valet serve` runs it.
pub type Gate = GateService<ConfiguredGateway>;

/// The tariff a new garage starts with when none is configured: an example to edit (it is
/// printed by `GET /v1/tariff` and replaced with `PUT /v1/tariff`).
pub const EXAMPLE_TARIFF: &str = include_str!("../example-tariff.toml");

/// How often pending charges (a provider that did not answer, a crash mid-charge) are reconciled,
/// and stays open too long raised as missed exits.
const RESUME_EVERY: Duration = Duration::from_secs(60);
/// How often retention looks for settled sessions past their days.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Opens the garage's records on `store`'s database (see [`open_store`]), loads or creates the
/// plate key, builds the gateway and activates a first tariff if none is.
pub async fn open(settings: &Settings, store: &Store) -> anyhow::Result<Gate> {
    let key = plate_key(settings)?;
    let garage = store.garage(key);
    let tariff = match garage.active_tariff().await? {
        Some(stored) => stored.tariff,
        None => {
            let tariff = first_tariff(settings)?;
            garage.activate_tariff(&tariff, chrono::Utc::now()).await?;
            tariff
        }
    };
    let config = GateConfig {
        review_below_confidence: settings.review_below_confidence,
        when_unsure: if settings.hold_when_unsure { Barrier::Hold } else { Barrier::Lift },
        show_fee_below: Money::new(settings.show_fee_below_minor, tariff.spec().currency),
        leave_within_minutes: settings.leave_within_minutes,
    };
    let gateway = gateway(settings, &garage)?;
    if let Some(secret) = &settings.stripe_webhook_secret {
        valet_billing::StripeWebhookSecret::parse(secret.expose())?;
    }
    tracing::info!(backend = ?garage.backend(), gateway = gateway.name(), "garage open");
    let missed_exits = MissedExits {
        flag_after: (settings.missed_exit_after_hours > 0)
            .then(|| chrono::TimeDelta::hours(i64::from(settings.missed_exit_after_hours))),
        policy: settings.missed_exit_policy,
    };
    Ok(GateService::new(garage, gateway, tariff, config, Arc::new(SystemClock)).with_missed_exits(missed_exits))
}

/// The mailer for receipts and failed-charge notices, when `smtp_url` is set; checked here, at
/// start, so a wrong URL or sender stops `valet serve` instead of failing every mail later.
pub fn mailer(settings: &Settings, store: &GarageStore) -> anyhow::Result<Option<valet_mail::Mailer>> {
    let Some(smtp_url) = &settings.smtp_url else {
        if settings.mail_from.is_some() {
            tracing::warn!("VALET_MAIL_FROM is set without VALET_SMTP_URL: no mail is sent");
        }
        return Ok(None);
    };
    let Some(from) = settings.mail_from.clone() else {
        bail!("VALET_SMTP_URL needs VALET_MAIL_FROM, the sender, e.g. \"Garage <garage@example.com>\"");
    };
    let portal = match &settings.public_url {
        Some(url) => Some(url::Url::parse(url).with_context(|| format!("VALET_PUBLIC_URL {url:?} is not a URL"))?),
        None => None,
    };
    let config = valet_mail::MailConfig { smtp_url: smtp_url.expose().to_owned(), from, portal };
    Ok(Some(valet_mail::Mailer::new(store.clone(), &config)?))
}

/// The database: PostgreSQL when `database_url` is set (then nothing is kept on local disk),
/// else the SQLite file in the data directory.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    Ok(match &settings.database_url {
        Some(url) => Store::connect_postgres(url).await.context("connecting to PostgreSQL")?,
        None => Store::open(&settings.data_dir)
            .await
            .with_context(|| format!("opening the database in {}", settings.data_dir.display()))?,
    })
}

/// Reconciles pending charges and raises missed exits every minute, and runs retention every hour (settled plates, lot
/// history, the inbox), until the process ends. Errors are logged and retried on the next tick: housekeeping never stops the gate.
pub fn spawn_housekeeping(gate: Arc<Gate>, retention_days: u32) {
    tokio::spawn(async move {
        let mut resume = tokio::time::interval(RESUME_EVERY);
        let mut retention = tokio::time::interval(RETENTION_EVERY);
        loop {
            tokio::select! {
                _ = resume.tick() => {
                    match gate.resume_pending().await {
                        Ok(settled) if !settled.is_empty() => tracing::info!(count = settled.len(), "pending charges settled"),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "retrying pending charges failed"),
                    }
                    if let Err(e) = gate.flag_missed_exits().await {
                        tracing::error!(error = %e, "raising missed exits for review failed");
                    }
                }
                _ = retention.tick() => retain(gate.store(), retention_days).await,
            }
        }
    });
}

/// Retention: settled plates erased, lot history, occupancy labels and the functions' inbox
/// trimmed. Each part logs its own failure and the others still run.
async fn retain(store: &GarageStore, retention_days: u32) {
    let now = chrono::Utc::now();
    match store.erase_settled_plates(now, retention_days).await {
        Ok(0) => {}
        Ok(erased) => tracing::info!(erased, retention_days, "retention erased settled plates"),
        Err(e) => tracing::error!(error = %e, "retention of plates failed"),
    }
    let cutoff = now - chrono::TimeDelta::days(i64::from(retention_days));
    match store.lot_history().forget_before(cutoff).await {
        Ok(0) => {}
        Ok(frames) => tracing::info!(frames, retention_days, "retention forgot old lot frames"),
        Err(e) => tracing::error!(error = %e, "retention of lot history failed"),
    }
    match store.occupancy_calibration().forget_labels_before(cutoff).await {
        Ok(0) => {}
        Ok(labels) => tracing::info!(labels, retention_days, "retention forgot old occupancy labels"),
        Err(e) => tracing::error!(error = %e, "retention of occupancy labels failed"),
    }
    // A broker stops redelivering within hours; a day of ids is plenty to recognise duplicates.
    if let Err(e) = store.forget_handled_events(now - INBOX_KEEPS).await {
        tracing::error!(error = %e, "trimming the functions' inbox failed");
    }
}

/// How long the inbox remembers a handled event's id.
const INBOX_KEEPS: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// The configured key, or the one in `DATA_DIR/plate.key`, made on first start. Losing it makes
/// every stored plate unmatchable, so it is never regenerated over an existing file.
/// The garage's records (drivers, sessions, the audit log) in `store`, under this garage's plate
/// key: for commands that record what an operator did without running the gate.
pub fn garage_store(settings: &Settings, store: &Store) -> anyhow::Result<valet_store::GarageStore> {
    Ok(store.garage(plate_key(settings)?))
}

fn plate_key(settings: &Settings) -> anyhow::Result<PlateKey> {
    let hex_key = match &settings.plate_key {
        Some(secret) => secret.expose().trim().to_owned(),
        None => {
            if settings.database_url.is_some() {
                bail!("with a PostgreSQL database every replica needs the same plate key: set VALET_PLATE_KEY");
            }
            key_file(&settings.data_dir.join("plate.key"))?
        }
    };
    let bytes = hex::decode(&hex_key).context("the plate key must be hex digits")?;
    Ok(PlateKey::new(&bytes)?)
}

fn key_file(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
            let text = hex::encode(secret);
            write_private(path, &text).with_context(|| format!("writing a new plate key to {}", path.display()))?;
            tracing::info!(path = %path.display(), "made a new plate key; back it up with the database");
            Ok(text)
        }
        Err(e) => Err(e).with_context(|| format!("reading the plate key {}", path.display())),
    }
}

/// Creates `path` readable by its owner only; refuses to overwrite.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

fn first_tariff(settings: &Settings) -> anyhow::Result<Tariff> {
    match &settings.tariff_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Tariff::from_toml(&text).with_context(|| format!("tariff {}", path.display()))
        }
        None => Ok(Tariff::from_toml(EXAMPLE_TARIFF)?),
    }
}

fn gateway(settings: &Settings, garage: &GarageStore) -> anyhow::Result<ConfiguredGateway> {
    Ok(match settings.payment_gateway {
        GatewayKind::Ledger => ConfiguredGateway::Ledger(StoreLedger::new(garage.clone())),
        GatewayKind::Stripe => {
            let key =
                settings.stripe_secret_key.as_ref().context("the stripe gateway needs VALET_STRIPE_SECRET_KEY")?;
            let mut config = StripeConfig::new(StripeSecretKey::parse(key.expose())?);
            if let Some(base) = &settings.stripe_api_base {
                config.api_base = base.clone();
            }
            if let Some(path) = &settings.stripe_ca_file {
                let pem = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                config.extra_roots_pem = Some(pem);
            }
            if let Some(key) = &settings.stripe_publishable_key {
                StripePublishableKey::parse(key)?;
            }
            ConfiguredGateway::Stripe(StripeGateway::new(config)?)
        }
    })
}
