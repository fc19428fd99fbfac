//! `valet devices add|list|revoke`.

use std::process::ExitCode;

use clap::Subcommand;
use valet_store::{DeviceName, Store};

use crate::Place;

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// Register a device; prints its API key once, alone on the last line.
    Add {
        name: String,
        #[command(flatten)]
        place: Place,
    },
    /// List registered devices (never their keys).
    List {
        #[command(flatten)]
        place: Place,
    },
    /// Revoke a device's key at once.
    Revoke {
        name: String,
        #[command(flatten)]
        place: Place,
    },
}

pub async fn run(cmd: DevicesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DevicesCommand::Add { name, place } => {
            let name = DeviceName::parse(&name)?;
            let store = Store::open(&place.settings()?.data_dir).await?;
            let (device, key) = store.add_device(&name, chrono::Utc::now()).await?;
            println!("added device {} (key {}…)", device.name.as_str(), device.key_prefix);
            println!("the key is shown only now; the device sends it as `Authorization: Bearer <key>`:");
            println!("{}", key.expose());
            Ok(ExitCode::SUCCESS)
        }
        DevicesCommand::List { place } => {
            let store = Store::open(&place.settings()?.data_dir).await?;
            let devices = store.devices().await?;
            if devices.is_empty() {
                println!("no devices; add one with `valet devices add NAME`");
            }
            for d in devices {
                let state = d.revoked_at.map_or("active".to_owned(), |t| format!("revoked {}", t.to_rfc3339()));
                println!("{:<24} {}…  added {}  {state}", d.name.as_str(), d.key_prefix, d.created_at.to_rfc3339());
            }
            Ok(ExitCode::SUCCESS)
        }
        DevicesCommand::Revoke { name, place } => {
            let name = DeviceName::parse(&name)?;
            let store = Store::open(&place.settings()?.data_dir).await?;
            if store.revoke_device(&name, chrono::Utc::now()).await? {
                println!("revoked {}", name.as_str());
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("no active device named {}", name.as_str());
                Ok(ExitCode::FAILURE)
            }
        }
    }
}
