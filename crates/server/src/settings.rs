//! [`Settings`], layered: built-in defaults → TOML file → `VALET_*` environment → command-line flags.
//!
//! Every environment variable Valet reads is listed in [`ENVIRONMENT`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use valet_imaging::DecodeLimits;

use crate::functions::FunctionSet;

/// Each environment variable Valet reads, with what it sets.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("VALET_CONFIG", "path of the TOML configuration file (default: ./valet.toml when present)"),
    ("VALET_LISTEN", "address `valet serve` binds (default 127.0.0.1:8080)"),
    ("VALET_DATA_DIR", "where the SQLite database lives (default ./valet-data)"),
    ("VALET_MAX_BODY_BYTES", "largest accepted upload (default 64 MiB)"),
    ("VALET_BODY_TIMEOUT_SECS", "time a client has to send its whole body (default 60)"),
    ("VALET_HEADER_TIMEOUT_SECS", "time a client has to send its request headers (default 10)"),
    ("VALET_MAX_SOURCE_PIXELS", "largest image header accepted, in pixels (default 200 M)"),
    ("VALET_MAX_DECODED_PIXELS", "pixel budget of a decoded image; bigger JPEGs decode downscaled (default 16 M)"),
    ("VALET_DECODE_CONCURRENCY", "images decoded at once (default 2)"),
    (
        "VALET_IMAGE_QUEUE",
        "images that may wait for a decoder before more are refused with 503 (default 16; gate frames 4×)",
    ),
    ("VALET_LOG_FORMAT", "`text` or `json` (default text)"),
    ("VALET_DATABASE_URL", "PostgreSQL URL for the garage's records (default: the SQLite file in the data directory)"),
    (
        "VALET_PLATE_KEY",
        "hex secret (at least 32 hex digits) plates are HMAC'd with (default: DATA_DIR/plate.key, made on first start)",
    ),
    ("VALET_PAYMENT_GATEWAY", "`ledger` (embedded default) or `stripe`"),
    ("VALET_STRIPE_SECRET_KEY", "Stripe secret key (sk_… or rk_…), with the `stripe` gateway"),
    ("VALET_STRIPE_API_BASE", "Stripe API base URL (default https://api.stripe.com; plain http only to loopback)"),
    (
        "VALET_STRIPE_CA_FILE",
        "PEM file of CA certificates trusted for Stripe besides the built-in web roots (a TLS-inspecting proxy)",
    ),
    (
        "VALET_STRIPE_WEBHOOK_SECRET",
        "the webhook endpoint's signing secret (whsec_…): POST /v1/webhooks/stripe answers 404 without it",
    ),
    (
        "VALET_STRIPE_PUBLISHABLE_KEY",
        "Stripe publishable key (pk_…): the portal shows Stripe's own card fields, with the `stripe` gateway",
    ),
    (
        "VALET_SMTP_URL",
        "SMTP server for receipts and failed-charge notices: smtps://user:password@host or smtp://…?tls=required (default: none, no mail is sent)",
    ),
    ("VALET_MAIL_FROM", "sender of the garage's mail, e.g. `Garage <garage@example.com>` (needed with VALET_SMTP_URL)"),
    (
        "VALET_PUBLIC_URL",
        "the portal's public address, for links in mail, e.g. https://park.example.com (default: none)",
    ),
    ("VALET_TARIFF_FILE", "TOML tariff activated on first start (default: the built-in example tariff)"),
    ("VALET_REVIEW_BELOW_CONFIDENCE", "plate reads less sure than this (0..1) are queued for review (default 0.6)"),
    ("VALET_SHOW_FEE_BELOW_MINOR", "exit displays show a fee only below this, in minor units (default 5000)"),
    ("VALET_LEAVE_WITHIN_MINUTES", "minutes a paid car has to pass the exit (default 15)"),
    ("VALET_HOLD_WHEN_UNSURE", "`true`: keep the barrier down when no session can be chosen (default false)"),
    (
        "VALET_MISSED_EXIT_AFTER_HOURS",
        "stays open longer than this are raised for review as missed exits (default 72; 0: never)",
    ),
    (
        "VALET_MISSED_EXIT_POLICY",
        "`daily_maximum` (default) or `free`: how a stale stay is closed when the same car enters again",
    ),
    ("VALET_RETENTION_DAYS", "days a settled session keeps its plate, and lot history is kept (default 30)"),
    ("VALET_MQTT_BROKER", "HOST:PORT of the MQTT broker signs listen on, e.g. 127.0.0.1:1883 (default: none)"),
    ("VALET_MQTT_PREFIX", "topic prefix: counts go to PREFIX/lots/ID/availability, retained (default valet)"),
    (
        "VALET_LOTS_DIR",
        "directory of lot layouts (`*.toml`, from `valet lot import`) to guide in (default DATA_DIR/lots)",
    ),
    (
        "VALET_FUNCTIONS",
        "functions this process runs: `all` (default) or a list of ingest, plate-reader, occupancy, gate, billing, query",
    ),
    ("VALET_SINK_ATTEMPTS", "tries to hand an event to K_SINK before the error goes back to the sender (default 5)"),
    ("K_SINK", "where events for functions not in this process are posted (Knative's SinkBinding sets it)"),
    ("VALET_DEMO", "`true`: simulate cars and a bay camera through the real pipeline (`valet serve --demo`)"),
    ("PORT", "port to listen on, on all interfaces (Knative sets it); VALET_LISTEN wins when both are set"),
    ("VALET_LOG", "log filter, e.g. `info,valet_server=debug` (default info); the only name read: not `RUST_LOG`"),
    ("VALET_SERVER", "server URL for `valet send` (default http://127.0.0.1:8080)"),
    ("VALET_KEY", "device key for `valet send`"),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub max_body_bytes: u64,
    pub body_timeout_secs: u64,
    pub header_timeout_secs: u64,
    pub max_source_pixels: u64,
    pub max_decoded_pixels: u64,
    pub decode_concurrency: usize,
    pub image_queue: usize,
    pub log_format: LogFormat,
    pub database_url: Option<String>,
    pub plate_key: Option<Secret>,
    pub payment_gateway: GatewayKind,
    pub stripe_secret_key: Option<Secret>,
    pub stripe_api_base: Option<String>,
    pub stripe_ca_file: Option<PathBuf>,
    pub stripe_webhook_secret: Option<Secret>,
    /// Public by design: Stripe.js needs it in the driver's browser.
    pub stripe_publishable_key: Option<String>,
    /// With its password, if any: a secret.
    pub smtp_url: Option<Secret>,
    pub mail_from: Option<String>,
    pub public_url: Option<String>,
    pub tariff_file: Option<PathBuf>,
    pub review_below_confidence: f32,
    pub show_fee_below_minor: i64,
    pub leave_within_minutes: u32,
    pub hold_when_unsure: bool,
    pub missed_exit_after_hours: u32,
    pub missed_exit_policy: valet_garage::MissedExitPolicy,
    pub retention_days: u32,
    pub lots_dir: Option<PathBuf>,
    pub mqtt_broker: Option<String>,
    pub mqtt_prefix: String,
    pub functions: FunctionSet,
    /// `K_SINK`: where events bound for other processes' functions go.
    pub sink: Option<String>,
    pub sink_attempts: u32,
    /// Simulated cars and bay frames ([`crate::demo`]).
    pub demo: bool,
}

/// A configured secret (the plate key, a Stripe key): `Debug` never prints it, so settings can be
/// logged whole.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayKind {
    Ledger,
    Stripe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Settings {
    fn default() -> Settings {
        let limits = DecodeLimits::default();
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("valet-data"),
            max_body_bytes: 64 * 1024 * 1024,
            body_timeout_secs: 60,
            header_timeout_secs: 10,
            max_source_pixels: limits.max_source_pixels,
            max_decoded_pixels: limits.max_output_pixels,
            decode_concurrency: 2,
            image_queue: 16,
            log_format: LogFormat::Text,
            database_url: None,
            plate_key: None,
            payment_gateway: GatewayKind::Ledger,
            stripe_secret_key: None,
            stripe_api_base: None,
            stripe_ca_file: None,
            stripe_webhook_secret: None,
            stripe_publishable_key: None,
            smtp_url: None,
            mail_from: None,
            public_url: None,
            tariff_file: None,
            review_below_confidence: 0.6,
            show_fee_below_minor: 5000,
            leave_within_minutes: 15,
            hold_when_unsure: false,
            missed_exit_after_hours: 72,
            missed_exit_policy: valet_garage::MissedExitPolicy::DailyMaximum,
            retention_days: valet_store::DEFAULT_RETENTION_DAYS,
            lots_dir: None,
            mqtt_broker: None,
            mqtt_prefix: "valet".to_owned(),
            functions: FunctionSet::all(),
            sink: None,
            sink_attempts: 5,
            demo: false,
        }
    }
}

impl Settings {
    /// Defaults, then `config_file` (or `$VALET_CONFIG`, or `./valet.toml` if it exists), then the
    /// `VALET_*` environment. A named file that does not exist is an error; the implicit one is not.
    pub fn load(config_file: Option<&Path>) -> Result<Settings, Box<figment::Error>> {
        let named = config_file.map(Path::to_path_buf).or_else(|| std::env::var_os("VALET_CONFIG").map(PathBuf::from));
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match named {
            Some(path) => {
                if !path.is_file() {
                    return Err(Box::new(figment::Error::from(format!(
                        "configuration file {} does not exist",
                        path.display()
                    ))));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None if Path::new(IMPLICIT_CONFIG).is_file() => figment = figment.merge(Toml::file_exact(IMPLICIT_CONFIG)),
            None => {}
        }
        // Knative's contract: `PORT` to listen on, `K_SINK` to send events to.
        if let Ok(port) = std::env::var("PORT")
            && std::env::var_os("VALET_LISTEN").is_none()
        {
            let port: u16 = port.parse().map_err(|_| figment::Error::from(format!("PORT={port:?} is not a port")))?;
            figment = figment.merge(Serialized::default("listen", SocketAddr::from(([0, 0, 0, 0], port))));
        }
        figment
            .merge(Env::raw().only(&["K_SINK"]).map(|_| "sink".into()))
            .merge(Env::prefixed("VALET_").only(&KEYS))
            .extract()
            .map_err(Box::new)
    }

    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_source_pixels: self.max_source_pixels,
            max_output_pixels: self.max_decoded_pixels,
            ..DecodeLimits::default()
        }
    }
}

/// Read when present in the working directory and no file is named.
const IMPLICIT_CONFIG: &str = "valet.toml";

/// The settings keys the environment may set (`VALET_SERVER` and `VALET_KEY` belong to the client).
const KEYS: [&str; 35] = [
    "listen",
    "data_dir",
    "max_body_bytes",
    "body_timeout_secs",
    "header_timeout_secs",
    "max_source_pixels",
    "max_decoded_pixels",
    "decode_concurrency",
    "image_queue",
    "log_format",
    "database_url",
    "plate_key",
    "payment_gateway",
    "stripe_secret_key",
    "stripe_api_base",
    "stripe_ca_file",
    "stripe_webhook_secret",
    "stripe_publishable_key",
    "smtp_url",
    "mail_from",
    "public_url",
    "tariff_file",
    "review_below_confidence",
    "show_fee_below_minor",
    "leave_within_minutes",
    "hold_when_unsure",
    "missed_exit_after_hours",
    "missed_exit_policy",
    "retention_days",
    "lots_dir",
    "mqtt_broker",
    "mqtt_prefix",
    "functions",
    "sink_attempts",
    "demo",
];

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return its own large error type
mod tests {
    use super::*;

    #[test]
    fn the_environment_overrides_the_file_which_overrides_the_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("garage.toml", "listen = \"0.0.0.0:9000\"\nmax_body_bytes = 1000\n")?;
            jail.set_env("VALET_MAX_BODY_BYTES", "2000");
            let s = Settings::load(Some(Path::new("garage.toml"))).map_err(|e| *e)?;
            assert_eq!(s.listen, "0.0.0.0:9000".parse().unwrap());
            assert_eq!(s.max_body_bytes, 2000);
            assert_eq!(s.body_timeout_secs, Settings::default().body_timeout_secs);
            Ok(())
        });
    }

    #[test]
    fn without_a_config_file_the_defaults_apply() {
        figment::Jail::expect_with(|_| {
            assert_eq!(Settings::load(None).map_err(|e| *e)?, Settings::default());
            Ok(())
        });
    }

    #[test]
    fn a_named_config_file_that_is_missing_is_an_error() {
        figment::Jail::expect_with(|_| {
            let err = Settings::load(Some(Path::new("nope.toml"))).unwrap_err();
            assert!(err.to_string().contains("nope.toml"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn knatives_port_and_sink_are_read_and_valet_listen_wins_over_port() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PORT", "9123");
            jail.set_env("K_SINK", "http://broker.valet.svc/");
            jail.set_env("VALET_FUNCTIONS", "gate,billing");
            let s = Settings::load(None).map_err(|e| *e)?;
            assert_eq!(s.listen, "0.0.0.0:9123".parse().unwrap());
            assert_eq!(s.sink.as_deref(), Some("http://broker.valet.svc/"));
            assert_eq!(String::from(s.functions), "gate,billing");
            jail.set_env("VALET_LISTEN", "127.0.0.1:7000");
            assert_eq!(Settings::load(None).map_err(|e| *e)?.listen, "127.0.0.1:7000".parse().unwrap());
            jail.set_env("VALET_FUNCTIONS", "gate,parking");
            assert!(Settings::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    fn every_settings_key_is_documented_as_an_environment_variable() {
        for key in KEYS {
            let var = format!("VALET_{}", key.to_uppercase());
            assert!(ENVIRONMENT.iter().any(|(name, _)| *name == var), "{var} is not listed");
        }
    }
}
