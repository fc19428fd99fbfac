//! RTSP cameras through an ffmpeg child, as Frigate does: ffmpeg speaks RTSP and decodes
//! H.264/H.265, and re-encodes each frame as a JPEG on its stdout (`image2pipe`), which is split
//! here into frames by walking the JPEG markers.
//!
//! The child is killed when the connection ends for any reason, including the task being
//! aborted (`kill_on_drop`): a camera leaves no ffmpeg behind. The last lines ffmpeg wrote to
//! stderr are kept (bounded) for the error when it exits.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::time::timeout_at;

use super::{Feed, MAX_FRAME_BYTES, SourceError, describe_start};

/// Lines of ffmpeg's stderr kept for the error message, and how long each may be.
const STDERR_LINES: usize = 8;
const STDERR_LINE_CHARS: usize = 300;
/// How many skipped bytes an error quotes.
const JUNK_SHOWN: usize = 16;

/// Runs one ffmpeg for `url` and splits its frames into `feed` until it exits or stalls.
pub(super) async fn stream(url: &str, ffmpeg: &Path, feed: &mut Feed<'_>) -> SourceError {
    let mut child = match Command::new(ffmpeg)
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url])
        .args(["-an", "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "3", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return SourceError::NoFfmpeg,
        Err(error) => return SourceError::Camera(format!("could not start ffmpeg ({}): {error}", ffmpeg.display())),
    };
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return SourceError::Camera("ffmpeg started without its pipes".into());
    };
    let mut splitter = JpegSplitter::default();
    let mut tail = StderrTail::default();
    let mut out = vec![0u8; 256 * 1024];
    let mut err = vec![0u8; 4 * 1024];
    let mut stderr_open = true;
    // Read stdout and stderr in this one future, so dropping it drops everything (and the child).
    let ended = loop {
        tokio::select! {
            read = stdout.read(&mut out) => match read {
                Ok(0) => break None,
                Ok(n) => {
                    splitter.push(&out[..n]);
                    while let Some(frame) = splitter.next_frame() {
                        match frame {
                            Ok(jpeg) => feed.frame(jpeg),
                            Err(SplitError::Garbage(start)) => {
                                feed.error(format!("ffmpeg wrote something that is not a JPEG ({start})"))
                            }
                            Err(SplitError::TooLarge(_)) => break,
                        }
                    }
                    if let Some(bytes) = splitter.too_large {
                        break Some(SourceError::TooLarge(bytes));
                    }
                }
                Err(error) => break Some(SourceError::Camera(format!("reading ffmpeg's output: {error}"))),
            },
            read = stderr.read(&mut err), if stderr_open => match read {
                Ok(0) | Err(_) => stderr_open = false,
                Ok(n) => tail.push(&err[..n]),
            },
            _ = tokio::time::sleep_until(feed.deadline()) => {
                break Some(SourceError::Stalled(feed.stall).with_stderr(&tail));
            }
        }
    };
    if let Some(error) = ended {
        return error;
    }
    // stdout closed: ffmpeg is exiting. Collect the rest of what it says and its status, briefly.
    let grace = tokio::time::Instant::now() + Duration::from_secs(2);
    while stderr_open {
        match timeout_at(grace, stderr.read(&mut err)).await {
            Ok(Ok(n)) if n > 0 => tail.push(&err[..n]),
            _ => stderr_open = false,
        }
    }
    let status = match timeout_at(grace, child.wait()).await {
        Ok(Ok(status)) => status.to_string(),
        _ => "still running after closing its output".into(),
    };
    SourceError::Camera(format!("ffmpeg ended ({status})")).with_stderr(&tail)
}

impl SourceError {
    fn with_stderr(self, tail: &StderrTail) -> SourceError {
        match tail.text() {
            Some(said) => SourceError::Camera(format!("{self}; ffmpeg said: {said}")),
            None => self,
        }
    }
}

/// The last few lines of ffmpeg's stderr, each cut short: bounded whatever it writes.
#[derive(Debug, Default)]
struct StderrTail {
    lines: VecDeque<String>,
    partial: String,
}

impl StderrTail {
    fn push(&mut self, bytes: &[u8]) {
        for piece in String::from_utf8_lossy(bytes).split_inclusive('\n') {
            if self.partial.chars().count() < STDERR_LINE_CHARS {
                self.partial.push_str(piece.trim_end_matches('\n'));
            }
            if piece.ends_with('\n') {
                let mut line = std::mem::take(&mut self.partial);
                if let Some((cut, _)) = line.char_indices().nth(STDERR_LINE_CHARS) {
                    line.truncate(cut);
                }
                let line = line.trim().to_owned();
                if !line.is_empty() {
                    if self.lines.len() == STDERR_LINES {
                        self.lines.pop_front();
                    }
                    self.lines.push_back(line);
                }
            }
        }
    }

    fn text(&self) -> Option<String> {
        let mut lines: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        let partial = self.partial.trim();
        if !partial.is_empty() {
            lines.push(partial);
        }
        (!lines.is_empty()).then(|| lines.join(" | "))
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SplitError {
    /// Bytes that are not a JPEG, skipped up to the next start of image.
    Garbage(String),
    /// A frame grew past [`MAX_FRAME_BYTES`]; the splitter stops.
    TooLarge(usize),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Split {
    /// Looking for a start of image (FF D8).
    #[default]
    Seek,
    /// At a marker: `pos` points at its FF.
    Marker,
    /// In entropy-coded data after a start of scan, where FF is followed by 00 or a restart.
    Entropy,
}

/// Splits concatenated JPEGs by walking their segments: a marker's length is skipped (so an EXIF
/// thumbnail's end-of-image inside APP1 does not end the frame), entropy-coded data is scanned
/// for the next real marker, and the end of image closes the frame.
#[derive(Debug, Default)]
pub(crate) struct JpegSplitter {
    buf: Vec<u8>,
    /// Where parsing resumes in `buf` (may lie past its end while a segment is still arriving).
    pos: usize,
    state: Split,
    too_large: Option<usize>,
    /// Bytes skipped before the next start of image, and the first few of them.
    junk: usize,
    junk_head: Vec<u8>,
}

impl JpegSplitter {
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.too_large.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next whole JPEG, bytes skipped as garbage, or `None` until more arrive.
    pub(crate) fn next_frame(&mut self) -> Option<Result<Vec<u8>, SplitError>> {
        if self.too_large.is_some() {
            return None;
        }
        loop {
            if self.buf.len() > MAX_FRAME_BYTES {
                let bytes = self.buf.len();
                self.too_large = Some(bytes);
                self.buf = Vec::new();
                return Some(Err(SplitError::TooLarge(bytes)));
            }
            match self.state {
                Split::Seek => {
                    let start = self.buf.windows(2).position(|w| w == [0xFF, 0xD8]);
                    // Keep the last byte while seeking: it may be the FF of a start of image.
                    let skip = start.unwrap_or(self.buf.len().saturating_sub(1));
                    if skip > 0 {
                        let room = JUNK_SHOWN.saturating_sub(self.junk_head.len());
                        self.junk_head.extend(self.buf.iter().take(skip.min(room)));
                        self.junk += skip;
                        self.buf.drain(..skip);
                    }
                    start?;
                    if self.junk > 0 {
                        // Reported once, when the next frame starts, however it was chunked.
                        let error = format!("{} bytes; {}", self.junk, describe_start(&self.junk_head));
                        self.junk = 0;
                        self.junk_head.clear();
                        return Some(Err(SplitError::Garbage(error)));
                    }
                    self.pos = 2;
                    self.state = Split::Marker;
                }
                Split::Marker => {
                    let Some(&[ff, marker]) = self.buf.get(self.pos..self.pos + 2) else { return None };
                    if ff != 0xFF {
                        return Some(Err(self.resync()));
                    }
                    match marker {
                        // Fill bytes before a marker.
                        0xFF => self.pos += 1,
                        0xD9 => {
                            let rest = self.buf.split_off(self.pos + 2);
                            self.state = Split::Seek;
                            self.pos = 0;
                            return Some(Ok(std::mem::replace(&mut self.buf, rest)));
                        }
                        0xD0..=0xD7 | 0x01 => self.pos += 2,
                        0xD8 | 0x00 => return Some(Err(self.resync())),
                        _ => {
                            let Some(&[hi, lo]) = self.buf.get(self.pos + 2..self.pos + 4) else { return None };
                            let length = usize::from(u16::from_be_bytes([hi, lo]));
                            if length < 2 {
                                return Some(Err(self.resync()));
                            }
                            self.pos += 2 + length;
                            if marker == 0xDA {
                                self.state = Split::Entropy;
                            }
                        }
                    }
                }
                Split::Entropy => {
                    // A real marker is FF followed by anything but 00 (stuffing), D0–D7 (restart) or FF (fill).
                    let from = self.pos.min(self.buf.len());
                    let mut found = None;
                    let mut i = from;
                    while let Some(offset) = self.buf.get(i..).and_then(|rest| rest.iter().position(|&b| b == 0xFF)) {
                        let at = i + offset;
                        match self.buf.get(at + 1) {
                            None => break,
                            Some(0x00 | 0xD0..=0xD7 | 0xFF) => i = at + 1,
                            Some(_) => {
                                found = Some(at);
                                break;
                            }
                        }
                    }
                    match found {
                        Some(at) => {
                            self.pos = at;
                            self.state = Split::Marker;
                        }
                        None => {
                            // Resume at the last byte: it may be an FF whose partner has not arrived.
                            self.pos = self.buf.len().saturating_sub(1).max(from);
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// The frame being walked is broken: report it and look for the next start of image after it.
    fn resync(&mut self) -> SplitError {
        let broken: Vec<u8> = self.buf.drain(..2).collect();
        self.state = Split::Seek;
        self.pos = 0;
        SplitError::Garbage(format!("a broken JPEG; {}", describe_start(&broken)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small but structurally real JPEG: SOI, APP0, an APP1 holding a thumbnail with its own
    /// EOI, SOS with stuffed FF 00 and a restart marker in the scan, EOI.
    fn jpeg(seed: u8) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8];
        bytes.extend([0xFF, 0xE0, 0x00, 0x06, b'J', b'F', b'I', b'F']);
        let thumbnail = [0xFF, 0xD8, 0xFF, 0xD9, seed];
        bytes.extend([0xFF, 0xE1, 0x00, (2 + thumbnail.len()) as u8]);
        bytes.extend(thumbnail);
        bytes.extend([0xFF, 0xDA, 0x00, 0x04, 0x01, 0x00]);
        bytes.extend([seed, 0xFF, 0x00, 0x12, 0xFF, 0xD3, 0x34, seed, 0xFF, 0xFF, 0xD9]);
        bytes
    }

    fn split(stream: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, SplitError>> {
        let mut splitter = JpegSplitter::default();
        let mut out = Vec::new();
        for piece in stream.chunks(chunk) {
            splitter.push(piece);
            while let Some(frame) = splitter.next_frame() {
                out.push(frame);
            }
        }
        out
    }

    #[test]
    fn concatenated_jpegs_split_exactly_in_any_chunking() {
        let frames = [jpeg(1), jpeg(2), jpeg(3)];
        let stream = frames.concat();
        for chunk in [1, 2, 3, 5, 8, 1000] {
            let got = split(&stream, chunk);
            assert_eq!(got, frames.iter().map(|f| Ok(f.clone())).collect::<Vec<_>>(), "chunks of {chunk}");
        }
    }

    #[test]
    fn garbage_between_frames_is_reported_and_skipped() {
        let stream = [&b"noise"[..], &jpeg(4), &[0xFF, 0xD8, 0x12, 0x34], &jpeg(5)].concat();
        let got = split(&stream, 3);
        let frames: Vec<_> = got.iter().filter_map(|f| f.as_ref().ok()).cloned().collect();
        assert_eq!(frames, vec![jpeg(4), jpeg(5)]);
        assert!(got.iter().any(|f| matches!(f, Err(SplitError::Garbage(text)) if text.contains("noise"))), "{got:?}");
        assert!(got.iter().any(|f| matches!(f, Err(SplitError::Garbage(text)) if text.contains("broken"))), "{got:?}");
    }

    #[test]
    fn a_frame_that_never_ends_is_refused_in_bounded_memory() {
        let mut splitter = JpegSplitter::default();
        splitter.push(&[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02]);
        let block = vec![0x11u8; 256 * 1024];
        let error = loop {
            splitter.push(&block);
            if let Some(frame) = splitter.next_frame() {
                break frame.unwrap_err();
            }
            assert!(splitter.buf.len() <= MAX_FRAME_BYTES + block.len());
        };
        assert!(matches!(error, SplitError::TooLarge(n) if n > MAX_FRAME_BYTES));
        splitter.push(&block);
        assert!(splitter.next_frame().is_none() && splitter.buf.is_empty());
    }

    #[test]
    fn stderr_keeps_the_last_lines_only_each_cut_short() {
        let mut tail = StderrTail::default();
        for i in 0..100 {
            tail.push(format!("line {i}\n").as_bytes());
        }
        tail.push(&vec![b'x'; 10_000]);
        tail.push(b"\nrtsp://cam: Connection refu");
        tail.push(b"sed\n");
        let text = tail.text().unwrap();
        assert!(text.ends_with("rtsp://cam: Connection refused"), "{text}");
        assert!(!text.contains("line 91"), "{text}");
        assert!(text.contains("line 99"));
        assert!(text.len() < STDERR_LINES * (STDERR_LINE_CHARS + 3));
    }
}
