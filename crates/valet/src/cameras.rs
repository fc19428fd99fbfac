//! `valet cameras add|list|remove`: the pulled gate cameras kept in the garage's database (the
//! data directory's SQLite, or PostgreSQL when VALET_DATABASE_URL is set), which every running
//! plate reader picks up within seconds. Validation is `valet-cameras`'s, as for the API.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;
use valet_cameras::CameraConfig;
use valet_garage::Direction;
use valet_store::StoreError;

use crate::Place;

#[derive(Debug, Subcommand)]
pub enum CamerasCommand {
    /// Add a gate camera Valet pulls: rtsp:// (through ffmpeg), http:// MJPEG, or a snapshot URL
    /// polled --every. One plate read per passing car goes to the gate.
    Add {
        /// The camera's name: also the lane's barrier topic (letters, digits, `.`, `_`, `-`).
        name: String,
        /// Where its frames come from; may carry credentials (listed redacted).
        #[arg(long)]
        url: String,
        /// Which way the cars it sees are going.
        #[arg(long, value_enum)]
        direction: DirectionArg,
        /// The lane it watches, if not its own name.
        #[arg(long)]
        lane: Option<String>,
        /// The plate region the reader ranks spellings for (`us`, `eu`, …); automatic by default.
        #[arg(long)]
        region: Option<String>,
        /// How often a snapshot URL is polled: `500ms`, `2s` (a number alone is milliseconds).
        #[arg(long, default_value = "500ms", value_parser = parse_every)]
        every: Duration,
        #[command(flatten)]
        place: Place,
    },
    /// List the pulled gate cameras (URLs redacted).
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        place: Place,
    },
    /// Remove a pulled gate camera; running plate readers stop pulling it within seconds.
    Remove {
        /// The camera's name, as `valet cameras list` shows it.
        name: String,
        #[command(flatten)]
        place: Place,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DirectionArg {
    Entry,
    Exit,
}

impl From<DirectionArg> for Direction {
    fn from(direction: DirectionArg) -> Direction {
        match direction {
            DirectionArg::Entry => Direction::Entry,
            DirectionArg::Exit => Direction::Exit,
        }
    }
}

/// `500ms`, `2s`, `1.5s` or a bare number of milliseconds.
pub fn parse_every(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a duration: say e.g. 500ms or 2s");
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.trim().parse::<u64>().map(Duration::from_millis).map_err(|_| bad());
    }
    if let Some(s) = text.strip_suffix('s') {
        let seconds: f64 = s.trim().parse().map_err(|_| bad())?;
        return Duration::try_from_secs_f64(seconds).map_err(|_| bad());
    }
    text.parse::<u64>().map(Duration::from_millis).map_err(|_| bad())
}

pub async fn run(cmd: CamerasCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CamerasCommand::Add { name, url, direction, lane, region, every, place } => {
            let config = CameraConfig { name, url, direction: direction.into(), lane, region, every };
            if let Err(e) = config.validate() {
                bail!("camera {:?} not added: {e}", config.name);
            }
            let settings = place.settings()?;
            let store = valet_server::garage::open_store(&settings).await?;
            let garage = valet_server::garage::garage_store(&settings, &store)?;
            match valet_server::cameras::save_audited(&store.gate_cameras(), &garage, &config, "cli").await {
                Ok(_) => {}
                Err(e @ StoreError::CameraExists(_)) => bail!("{e}"),
                Err(e) => return Err(e.into()),
            }
            println!(
                "camera {} ({}, {}) added; running plate readers pull it within {} s",
                config.name,
                direction_name(config.direction),
                config.redacted_url(),
                valet_server::cameras::WATCH_EVERY.as_secs()
            );
            Ok(ExitCode::SUCCESS)
        }
        CamerasCommand::List { json, place } => {
            let store = valet_server::garage::open_store(&place.settings()?).await?;
            let cameras = store.gate_cameras().list().await?;
            let configs: Vec<CameraConfig> = cameras.iter().map(valet_server::cameras::config_of).collect();
            if json {
                let list: Vec<serde_json::Value> = cameras
                    .iter()
                    .zip(&configs)
                    .map(|(camera, config)| {
                        json!({
                            "name": camera.name,
                            "url": config.redacted_url(),
                            "direction": direction_name(camera.direction),
                            "lane": camera.lane,
                            "region": camera.region,
                            "every_ms": camera.every_ms,
                            "added_at": camera.added_at,
                            "added_by": camera.added_by,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(ExitCode::SUCCESS);
            }
            if cameras.is_empty() {
                println!("no pulled gate cameras; add one with `valet cameras add NAME --url URL --direction entry`");
            }
            for (camera, config) in cameras.iter().zip(&configs) {
                println!(
                    "{:<20} {:<5} {}{}{}  every {} ms, added {} by {}",
                    camera.name,
                    direction_name(camera.direction),
                    config.redacted_url(),
                    camera.lane.as_deref().map(|l| format!("  lane {l}")).unwrap_or_default(),
                    camera.region.as_deref().map(|r| format!("  region {r}")).unwrap_or_default(),
                    camera.every_ms,
                    camera.added_at.format("%Y-%m-%d %H:%M UTC"),
                    camera.added_by
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CamerasCommand::Remove { name, place } => {
            let settings = place.settings()?;
            let store = valet_server::garage::open_store(&settings).await?;
            let garage = valet_server::garage::garage_store(&settings, &store)?;
            if valet_server::cameras::remove_audited(&store.gate_cameras(), &garage, &name, "cli").await? {
                println!("removed camera {name}; running plate readers stop pulling it within seconds");
                Ok(ExitCode::SUCCESS)
            } else {
                let known: Vec<String> = store.gate_cameras().list().await?.into_iter().map(|c| c.name).collect();
                eprintln!(
                    "no pulled gate camera {name:?}; the pulled cameras are {}",
                    if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                );
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Entry => "entry",
        Direction::Exit => "exit",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_as_people_write_them() {
        assert_eq!(parse_every("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_every("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_every("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_every("250"), Ok(Duration::from_millis(250)));
        let err = parse_every("soon").unwrap_err();
        assert!(err.contains("500ms"), "{err}");
        assert!(parse_every("-1s").is_err());
    }
}
