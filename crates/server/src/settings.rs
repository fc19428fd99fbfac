//! [`Settings`], layered: built-in defaults → TOML file → `VALET_*` environment → command-line flags.
//!
//! Every environment variable Valet reads is listed in [`ENVIRONMENT`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use valet_imaging::DecodeLimits;

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
    ("VALET_LOG_FORMAT", "`text` or `json` (default text)"),
    ("VALET_LOG", "log filter, e.g. `info,valet_server=debug` (default info)"),
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
    pub log_format: LogFormat,
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
            log_format: LogFormat::Text,
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
        figment.merge(Env::prefixed("VALET_").only(&KEYS)).extract().map_err(Box::new)
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
const KEYS: [&str; 9] = [
    "listen",
    "data_dir",
    "max_body_bytes",
    "body_timeout_secs",
    "header_timeout_secs",
    "max_source_pixels",
    "max_decoded_pixels",
    "decode_concurrency",
    "log_format",
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
    fn every_settings_key_is_documented_as_an_environment_variable() {
        for key in KEYS {
            let var = format!("VALET_{}", key.to_uppercase());
            assert!(ENVIRONMENT.iter().any(|(name, _)| *name == var), "{var} is not listed");
        }
    }
}
