//! Deterministic test images: photo-like JPEGs of any size ([`photo_jpeg`]) and tiny hostile
//! files whose headers claim huge dimensions ([`bomb_jpeg`], [`bomb_png`]).
//!
//! Used by this crate's tests and benches and by `valet bench` to recreate the prototype's
//! problem files ([`PROTOTYPE_FILES`]) without shipping 60 MB of JPEGs. Architecture
//! invariant: the photo generator streams, holding one MCU row of pixels at a time, so making
//! the 162 MP file costs a few MB of memory, not the 486 MB its raster would.

mod bomb;
mod photo;

pub use bomb::{bomb_jpeg, bomb_png, bomb_progressive_jpeg};
pub use photo::{noise_for_target, photo_jpeg, write_photo_jpeg};

/// One of the files that broke or slowed the prototype, described so it can be regenerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrototypeFile {
    /// Short name, usable as a file stem or bench id.
    pub name: &'static str,
    /// Pixel width.
    pub width: u16,
    /// Pixel height.
    pub height: u16,
    /// Compressed size to aim for, in bytes (the generator lands within about 15 %).
    pub target_bytes: u64,
}

/// The prototype's four test files: a camera frame, a phone photo, a 48 MP photo, and the
/// 37 MB / 162 MP photo that crashed it.
pub const PROTOTYPE_FILES: [PrototypeFile; 4] = [
    PrototypeFile { name: "frame-205k", width: 1920, height: 1080, target_bytes: 205_000 },
    PrototypeFile { name: "photo-1m", width: 2592, height: 1944, target_bytes: 1_190_000 },
    PrototypeFile { name: "photo-22m", width: 8000, height: 6000, target_bytes: 22_000_000 },
    PrototypeFile { name: "photo-162mp-37m", width: 15600, height: 10400, target_bytes: 37_000_000 },
];
