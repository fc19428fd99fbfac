//! Frame sources. (i18-passages' placeholder so that `pull` compiles before the merge: the RTSP,
//! MJPEG and snapshot sources are built on branch i18-sources, whose `source` module replaces this
//! file. Until then a pulled camera says so in its health and yields no frames.)

use crate::{CameraConfig, FrameSlot, HealthRecorder};

/// Reads `config`'s camera into `slot` for ever. Here: records that this build has no sources.
pub async fn run_source(config: CameraConfig, slot: FrameSlot, health: HealthRecorder) {
    health.connected(false);
    health.error(format!("{}: this build has no frame sources (merge i18-sources)", config.name));
    let _ = slot;
    std::future::pending::<()>().await
}
