//! `valet serve --demo`: what the simulated garage needs before it starts: its tariff (short stays
//! are charged, so revenue moves) and an operator key for the dashboard.

use valet_server::Settings;
use valet_store::{DeviceName, Role};

/// Sets the demo up in `settings`' data directory; returns the operator's name and key to print
/// (a new operator each start, so a demo directory can be reused).
pub async fn prepare(settings: &mut Settings) -> anyhow::Result<(String, String)> {
    settings.demo = true;
    std::fs::create_dir_all(&settings.data_dir)?;
    if settings.tariff_file.is_none() {
        let path = settings.data_dir.join("demo-tariff.toml");
        std::fs::write(&path, valet_server::demo::TARIFF)?;
        settings.tariff_file = Some(path);
    }
    let store = valet_server::garage::open_store(settings).await?;
    let name = DeviceName::parse(&format!("demo-{:04x}", rand::random::<u16>()))?;
    let (operator, key) = store.add_key(&name, Role::Admin, chrono::Utc::now()).await?;
    Ok((operator.name.as_str().to_owned(), key.expose().to_owned()))
}
