//! `valet-cameras`' integration tests, one binary: each source (MJPEG, snapshot, RTSP) against a
//! real server on loopback, including the unhappy paths (restart, stall, garbage, oversize).

// A crate root's modules live beside it; these live in `tests/cameras/`.
#[path = "cameras/pull_mjpeg.rs"]
mod pull_mjpeg;
#[path = "cameras/source_helpers.rs"]
mod source_helpers;
#[path = "cameras/source_mjpeg.rs"]
mod source_mjpeg;
#[path = "cameras/source_rtsp.rs"]
mod source_rtsp;
#[path = "cameras/source_snapshot.rs"]
mod source_snapshot;
