//! Format sniffing and header-only parsing: `sniff`, `JpegHeader::parse`, `PngHeader::parse`.
//!
//! Architecture invariant: nothing here allocates in proportion to the image. These run before
//! any decoder so that a 689-byte file claiming 60000×60000 pixels costs microseconds.

use crate::DecodeError;

const JPEG_MAGIC: [u8; 3] = [0xFF, 0xD8, 0xFF];
const PNG_MAGIC: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// The two formats cameras send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// JPEG (baseline, progressive or lossless; 8-bit grayscale, YCbCr, RGB, CMYK or YCCK).
    Jpeg,
    /// PNG, any bit depth and colour type.
    Png,
}

/// Decides the format from the magic bytes alone, or explains what the bytes look like instead.
pub fn sniff(bytes: &[u8]) -> Result<ImageFormat, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.starts_with(&JPEG_MAGIC) {
        return Ok(ImageFormat::Jpeg);
    }
    if bytes.starts_with(&PNG_MAGIC) {
        return Ok(ImageFormat::Png);
    }
    // A cut-off upload can end inside the signature; that is truncation, not a foreign format.
    if JPEG_MAGIC.starts_with(bytes) || PNG_MAGIC.starts_with(bytes) {
        return Err(DecodeError::Truncated(format!(
            "only {} bytes arrived, the start of an image signature",
            bytes.len()
        )));
    }
    Err(DecodeError::UnsupportedFormat { detail: describe_foreign(bytes) })
}

/// A human guess at what non-image bytes are. Misconfigured cameras and scanners hitting the
/// upload port are the usual senders, so HTTP, HTML and TLS get named.
fn describe_foreign(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(16)];
    let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
    let hex = hex.join(" ");
    let guess = match bytes {
        [0x16, 0x03, 0x00..=0x04, ..] => {
            "this looks like a TLS handshake (an HTTPS client talking to a plain-HTTP port?)".to_owned()
        }
        [b'G', b'I', b'F', b'8', ..] => "this is a GIF; send JPEG or PNG".to_owned(),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => {
            "this is a WebP; send JPEG or PNG".to_owned()
        }
        [b'B', b'M', ..] => "this looks like a BMP; send JPEG or PNG".to_owned(),
        [b'I', b'I', 42, 0, ..] | [b'M', b'M', 0, 42, ..] => "this is a TIFF; send JPEG or PNG".to_owned(),
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => "this looks like HEIF/AVIF or MP4; send JPEG or PNG".to_owned(),
        [0xFF, 0xD8, ..] => "this starts like a JPEG but has no marker after SOI".to_owned(),
        _ if looks_like_text(bytes) => {
            let text: String = String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let kind = if starts_like_http(bytes) {
                "an HTTP request"
            } else if bytes.trim_ascii_start().starts_with(b"<") {
                "HTML/XML"
            } else if bytes.trim_ascii_start().starts_with(b"{") {
                "JSON"
            } else {
                "text"
            };
            return format!("this looks like {kind}, not a JPEG or PNG image (it starts with {:?})", text.trim_end());
        }
        _ => "unrecognised binary data, not a JPEG or PNG image".to_owned(),
    };
    format!("{guess} (first bytes: {hex})")
}

fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(64)];
    // A multi-byte character cut by the 64-byte window is still text.
    let utf8 = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    utf8 && head.iter().all(|&b| (b >= 0x20 && b != 0x7F) || matches!(b, b'\t' | b'\r' | b'\n'))
}

fn starts_like_http(bytes: &[u8]) -> bool {
    const METHODS: [&[u8]; 7] = [b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"HTTP/"];
    METHODS.iter().any(|m| bytes.starts_with(m))
}

/// What a JPEG frame header (SOFn) says, read without decoding anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JpegHeader {
    pub width: u32,
    pub height: u32,
    /// Bits per sample: 8 for baseline/progressive, 2..=16 for lossless.
    pub precision: u8,
    pub progressive: bool,
    /// SOF3/7/11/15: no DCT, so no scaled decode.
    pub lossless: bool,
    /// (horizontal, vertical) sampling factor of each component, in frame order.
    pub sampling: Vec<(u8, u8)>,
}

impl JpegHeader {
    /// Walks the marker segments up to the first SOFn. Only segment lengths are followed, so
    /// the cost is one step per segment whatever the claimed dimensions.
    pub fn parse(bytes: &[u8]) -> Result<JpegHeader, DecodeError> {
        let truncated = || DecodeError::Truncated("the JPEG ends before its frame header (SOF)".to_owned());
        let mut pos = 2; // after SOI
        loop {
            if *bytes.get(pos).ok_or_else(truncated)? != 0xFF {
                return Err(DecodeError::Malformed(format!(
                    "expected a JPEG marker at byte {pos}, found 0x{:02x}",
                    bytes[pos]
                )));
            }
            // Any number of 0xFF fill bytes may precede a marker code.
            while *bytes.get(pos).ok_or_else(truncated)? == 0xFF {
                pos += 1;
            }
            let marker = bytes[pos];
            pos += 1;
            match marker {
                // Standalone markers carry no length.
                0x01 | 0xD0..=0xD8 => continue,
                0xD9 | 0xDA => {
                    return Err(DecodeError::Malformed(
                        "the JPEG has no frame header (SOF) before its image data".to_owned(),
                    ));
                }
                _ => {}
            }
            let len_bytes = bytes.get(pos..pos + 2).ok_or_else(truncated)?;
            let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
            if len < 2 {
                return Err(DecodeError::Malformed(format!(
                    "JPEG segment 0xFF{marker:02X} has an impossible length {len}"
                )));
            }
            // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC) which share the range.
            let is_sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
            if !is_sof {
                pos += len;
                continue;
            }
            let seg = bytes.get(pos + 2..pos + len).ok_or_else(truncated)?;
            return Self::from_sof(marker, seg);
        }
    }

    fn from_sof(marker: u8, seg: &[u8]) -> Result<JpegHeader, DecodeError> {
        let malformed = |why: &str| DecodeError::Malformed(format!("JPEG frame header: {why}"));
        let [precision, h0, h1, w0, w1, count, rest @ ..] = seg else {
            return Err(malformed("too short"));
        };
        let height = u32::from(u16::from_be_bytes([*h0, *h1]));
        let width = u32::from(u16::from_be_bytes([*w0, *w1]));
        if width == 0 || height == 0 {
            // Height 0 means "given later in a DNL marker", which the decoder does not support.
            return Err(malformed(&format!("dimensions {width}×{height}")));
        }
        let count = usize::from(*count);
        if rest.len() < count * 3 || count == 0 {
            return Err(malformed("component list is cut short"));
        }
        let sampling = rest[..count * 3].chunks_exact(3).map(|c| (c[1] >> 4, c[1] & 0x0F)).collect::<Vec<_>>();
        if sampling.iter().any(|&(h, v)| !(1..=4).contains(&h) || !(1..=4).contains(&v)) {
            return Err(malformed("sampling factor outside 1..=4"));
        }
        Ok(JpegHeader {
            width,
            height,
            // SOF2, SOF6, SOF10, SOF14 are the progressive processes.
            precision: *precision,
            progressive: matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE),
            lossless: matches!(marker, 0xC3 | 0xC7 | 0xCB | 0xCF),
            sampling,
        })
    }

    /// Bytes jpeg-decoder allocates up front for a progressive JPEG: one i16 per DCT
    /// coefficient of every component at full resolution (scaling does not shrink it).
    pub fn progressive_coefficient_bytes(&self) -> u64 {
        let h_max = u64::from(self.sampling.iter().map(|s| s.0).max().unwrap_or(1));
        let v_max = u64::from(self.sampling.iter().map(|s| s.1).max().unwrap_or(1));
        let mcus_x = u64::from(self.width).div_ceil(8 * h_max);
        let mcus_y = u64::from(self.height).div_ceil(8 * v_max);
        self.sampling.iter().map(|&(h, v)| mcus_x * u64::from(h) * mcus_y * u64::from(v) * 64 * 2).sum()
    }
}

/// What a PNG's IHDR chunk says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PngHeader {
    pub width: u32,
    pub height: u32,
    /// Bytes per pixel of the buffer the `png` decoder produces (palette and low bit depths
    /// are expanded to 8 bits per channel, 16-bit stays 16-bit).
    pub decoded_bytes_per_pixel: u64,
}

impl PngHeader {
    /// IHDR must be the first chunk, so the header sits at a fixed offset.
    pub fn parse(bytes: &[u8]) -> Result<PngHeader, DecodeError> {
        let Some(ihdr) = bytes.get(8..29) else {
            return Err(DecodeError::Truncated("the PNG ends inside its header (IHDR)".to_owned()));
        };
        if &ihdr[4..8] != b"IHDR" {
            return Err(DecodeError::Malformed("the PNG does not start with an IHDR chunk".to_owned()));
        }
        let be = |at: usize| u32::from_be_bytes([ihdr[at], ihdr[at + 1], ihdr[at + 2], ihdr[at + 3]]);
        let (width, height, depth, color) = (be(8), be(12), ihdr[16], ihdr[17]);
        if width == 0 || height == 0 {
            return Err(DecodeError::Malformed(format!("the PNG header claims {width}×{height} pixels")));
        }
        let channels = match color {
            0 => 1, // grayscale
            2 => 3, // RGB
            3 => 4, // palette: expanded to RGB, or RGBA when a tRNS chunk exists
            4 => 2, // grayscale + alpha
            6 => 4, // RGBA
            _ => {
                return Err(DecodeError::Malformed(format!("the PNG header has an invalid colour type {color}")));
            }
        };
        let bytes_per_sample = if depth == 16 { 2 } else { 1 };
        Ok(PngHeader { width, height, decoded_bytes_per_pixel: channels * bytes_per_sample })
    }
}
