//! `valet devices add|list|revoke`: the API keys of cameras and gates, and of operators.

use std::process::ExitCode;

use clap::Subcommand;
use valet_store::{DeviceName, Role};

use crate::Place;

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// Register a device; prints its API key once, alone on the last line.
    Add {
        /// The name its key is known and audited by: a camera's (`gate-1`) or a person's (`alice`).
        name: String,
        /// `device` (a camera or gate), `operator` (a person running the garage: reviews, refunds,
        /// barriers) or `admin` (an operator who may also change the tariff, lists and permits).
        #[arg(long, default_value = "device", value_parser = ["device", "operator", "admin"])]
        role: String,
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
        /// The device or operator whose key stops working.
        name: String,
        #[command(flatten)]
        place: Place,
    },
}

pub async fn run(cmd: DevicesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DevicesCommand::Add { name, role, place } => {
            let name = DeviceName::parse(&name)?;
            let role = match role.as_str() {
                "operator" => Role::Operator,
                "admin" => Role::Admin,
                _ => Role::Device,
            };
            let store = valet_server::garage::open_store(&place.settings()?).await?;
            let (device, key) = store.add_key(&name, role, chrono::Utc::now()).await?;
            println!("added {} {} (key {}…)", role.as_str(), device.name.as_str(), device.key_prefix);
            println!("the key is shown only now; send it as `Authorization: Bearer <key>`:");
            println!("{}", key.expose());
            Ok(ExitCode::SUCCESS)
        }
        DevicesCommand::List { place } => {
            let store = valet_server::garage::open_store(&place.settings()?).await?;
            let devices = store.devices().await?;
            if devices.is_empty() {
                println!("no devices; add one with `valet devices add NAME`");
                return Ok(ExitCode::SUCCESS);
            }
            let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
            println!("{:<24} {:<8} {:<14} {:<20} STATE", "NAME", "ROLE", "KEY", "ADDED");
            for d in devices {
                let state = d.revoked_at.map_or("active".to_owned(), |t| format!("revoked {}", when(t)));
                let (name, role, key) = (d.name.as_str(), d.role.as_str(), format!("{}…", d.key_prefix));
                println!("{name:<24} {role:<8} {key:<14} {:<20} {state}", when(d.created_at));
            }
            Ok(ExitCode::SUCCESS)
        }
        DevicesCommand::Revoke { name, place } => {
            let name = DeviceName::parse(&name)?;
            let store = valet_server::garage::open_store(&place.settings()?).await?;
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
