//! Decompression-bomb headers: valid-looking JPEG/PNG files of a few hundred bytes that claim
//! an enormous raster. A decoder that trusts the header allocates width × height before it
//! discovers there is no data.

/// A baseline grayscale JPEG claiming `width`×`height` with a few bytes of scan data.
pub fn bomb_jpeg(width: u16, height: u16) -> Vec<u8> {
    jpeg_with_frame(0xC0, width, height)
}

/// Like [`bomb_jpeg`] but progressive (SOF2): a naive decoder allocates a full-size DCT
/// coefficient store (2 bytes per pixel) up front, whatever scale it decodes at.
pub fn bomb_progressive_jpeg(width: u16, height: u16) -> Vec<u8> {
    jpeg_with_frame(0xC2, width, height)
}

fn jpeg_with_frame(sof: u8, width: u16, height: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let mut segment = |marker: u8, body: &[u8]| {
        out.extend_from_slice(&[0xFF, marker]);
        let len = u16::try_from(body.len() + 2).expect("segments here are tiny");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(body);
    };
    // Quantisation table 0: all ones.
    segment(0xDB, &[&[0u8][..], &[1; 64]].concat());
    let [h0, h1] = height.to_be_bytes();
    let [w0, w1] = width.to_be_bytes();
    // 8-bit, one component (id 1, 1×1 sampling, table 0).
    segment(sof, &[8, h0, h1, w0, w1, 1, 1, 0x11, 0]);
    // DC and AC Huffman tables with a single 1-bit code for symbol 0: every block is "0 0".
    let mut one_code = [0u8; 16];
    one_code[0] = 1;
    segment(0xC4, &[&[0x00][..], &one_code, &[0]].concat());
    segment(0xC4, &[&[0x10][..], &one_code, &[0]].concat());
    let spectral_end = if sof == 0xC2 { 0 } else { 63 };
    segment(0xDA, &[1, 1, 0x00, 0, spectral_end, 0]);
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// An 8-bit RGB PNG claiming `width`×`height` whose image data is an empty zlib stream.
pub fn bomb_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let ihdr = [
        &width.to_be_bytes()[..],
        &height.to_be_bytes(),
        &[8, 2, 0, 0, 0], // depth 8, RGB, deflate, adaptive filter, no interlace
    ]
    .concat();
    write_chunk(&mut out, b"IHDR", &ihdr);
    write_chunk(&mut out, b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    write_chunk(&mut out, b"IEND", &[]);
    out
}

pub(crate) fn write_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let len = u32::try_from(data.len()).expect("PNG chunks here are small");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[&kind[..], data].concat()).to_be_bytes());
}

/// CRC-32 (IEEE), bitwise: only a few tiny chunks are ever checksummed here.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_png_specification_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn bombs_are_a_few_hundred_bytes() {
        assert!(bomb_jpeg(60000, 60000).len() < 300);
        assert!(bomb_png(60000, 60000).len() < 100);
    }
}
