//! MJPEG over HTTP (`multipart/x-mixed-replace`): the parts of an endless multipart answer, parsed
//! incrementally as bytes arrive, each part one JPEG.
//!
//! Cameras frame parts loosely, so the parser accepts a boundary with or without its leading
//! `--` (in the header and in the body), parts with or without headers, and finds each part's end
//! by `Content-Length` when the part says it, else by scanning for the next boundary. Every
//! buffer is bounded: a part over [`MAX_FRAME_BYTES`], 8 MB without a boundary or 16 KB of part
//! headers are errors, never growth.

use tokio::time::timeout_at;

use super::{Feed, MAX_FRAME_BYTES, SourceError, describe_start, http_error, looks_like_jpeg};

/// Part headers longer than this are not a camera's.
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// A delimiter line longer than this (boundary, dashes, whitespace) is not one.
const MAX_DELIMITER_LINE: usize = 256;

/// The `boundary` parameter of a multipart content type, without quotes or leading dashes.
pub(super) fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let token = value.trim().trim_matches('"').trim_start_matches('-');
        (!token.is_empty()).then(|| token.to_owned())
    })
}

/// Reads `response`'s parts into `feed` until the stream fails, ends or stalls.
pub(super) async fn stream(mut response: reqwest::Response, boundary: &str, feed: &mut Feed<'_>) -> SourceError {
    let mut parser = MultipartParser::new(boundary);
    loop {
        let chunk = match timeout_at(feed.deadline(), response.chunk()).await {
            Err(_) => return SourceError::Stalled(feed.stall),
            Ok(Err(error)) => return http_error("reading the MJPEG stream", error),
            Ok(Ok(None)) => return SourceError::Ended,
            Ok(Ok(Some(chunk))) => chunk,
        };
        parser.push(&chunk);
        while let Some(part) = parser.next_part() {
            match part {
                Ok(jpeg) => feed.frame(jpeg),
                Err(PartError::NotJpeg(start)) => {
                    feed.error(format!("the camera sent a part that is not a JPEG ({start})"))
                }
                Err(PartError::Fatal(error)) => return error,
            }
        }
    }
}

#[derive(Debug)]
pub(crate) enum PartError {
    /// One part was not a JPEG; the stream goes on.
    NotJpeg(String),
    /// The stream cannot go on: too big, malformed, or ended.
    Fatal(SourceError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for a delimiter line (before the first part, or after a part).
    Seek,
    /// Inside a part's headers.
    Headers,
    /// Inside a part's body: its length when the headers said it.
    Body(Option<usize>),
    /// The closing delimiter came; nothing more is parsed.
    Closed,
}

/// An incremental multipart parser: [`push`](Self::push) bytes in any chunking, take whole parts
/// out with [`next_part`](Self::next_part).
#[derive(Debug)]
pub(crate) struct MultipartParser {
    /// The boundary without leading dashes: found on a line start after any number of dashes.
    token: Vec<u8>,
    buf: Vec<u8>,
    state: State,
    /// How much of `buf` was already searched for a delimiter (so a slow stream is not rescanned).
    scanned: usize,
    /// Bytes thrown away while seeking a delimiter.
    skipped: usize,
    /// Whether `buf` starts a line, so that a boundary there is a delimiter. False after bytes were
    /// thrown away mid-line: where that cut falls depends on how the bytes arrived, and a boundary
    /// that follows the cut must not count when the same bytes in one piece would not.
    line_start: bool,
}

/// Where a delimiter line is in the buffer.
struct Delimiter {
    /// Where the part before it ends (the CRLF before the dashes belongs to the delimiter).
    body_end: usize,
    /// Just after the line's newline.
    line_end: usize,
    closing: bool,
}

enum Search {
    Found(Delimiter),
    /// A delimiter may start at this index; its line has not fully arrived.
    Partial(usize),
    NotFound,
}

impl MultipartParser {
    pub(crate) fn new(boundary: &str) -> Self {
        let token = boundary.trim_start_matches('-').as_bytes().to_vec();
        Self { token, buf: Vec::new(), state: State::Seek, scanned: 0, skipped: 0, line_start: true }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.state != State::Closed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next whole part, an error, or `None` until more bytes arrive.
    pub(crate) fn next_part(&mut self) -> Option<Result<Vec<u8>, PartError>> {
        loop {
            match self.state {
                State::Closed => return None,
                State::Seek => match self.find_delimiter(true) {
                    Search::Found(delimiter) => {
                        self.consume(delimiter.line_end);
                        if delimiter.closing {
                            self.state = State::Closed;
                            self.buf = Vec::new();
                            return Some(Err(PartError::Fatal(SourceError::Ended)));
                        }
                        self.skipped = 0;
                        self.state = State::Headers;
                    }
                    Search::Partial(at) => {
                        self.discard(at);
                        return None;
                    }
                    Search::NotFound => {
                        // Keep a tail that may be the start of a delimiter.
                        let keep = self.token.len() + MAX_DELIMITER_LINE;
                        self.discard(self.buf.len().saturating_sub(keep));
                        if self.skipped > MAX_FRAME_BYTES {
                            return Some(Err(self.fatal(SourceError::Camera(format!(
                                "no multipart boundary ({:?}) in {} bytes of the camera's stream",
                                String::from_utf8_lossy(&self.token),
                                self.skipped
                            )))));
                        }
                        return None;
                    }
                },
                State::Headers => match self.headers() {
                    Ok(Some((length, end))) => {
                        self.consume(end);
                        if let Some(length) = length
                            && length > MAX_FRAME_BYTES
                        {
                            return Some(Err(self.fatal(SourceError::TooLarge(length))));
                        }
                        self.state = State::Body(length);
                    }
                    Ok(None) => return None,
                    Err(error) => return Some(Err(self.fatal(error))),
                },
                State::Body(Some(length)) => {
                    if self.buf.len() < length {
                        return None;
                    }
                    let part = self.split_part(length);
                    self.state = State::Seek;
                    return Some(checked(part));
                }
                State::Body(None) => match self.find_delimiter(false) {
                    Search::Found(delimiter) => {
                        let part = self.split_part(delimiter.body_end);
                        // The delimiter line itself is parsed again in Seek (it may close).
                        self.state = State::Seek;
                        if part.len() > MAX_FRAME_BYTES {
                            return Some(Err(self.fatal(SourceError::TooLarge(part.len()))));
                        }
                        return Some(checked(part));
                    }
                    Search::Partial(_) | Search::NotFound => {
                        if self.buf.len() > MAX_FRAME_BYTES + self.token.len() + MAX_DELIMITER_LINE {
                            let length = self.buf.len();
                            return Some(Err(self.fatal(SourceError::TooLarge(length))));
                        }
                        return None;
                    }
                },
            }
        }
    }

    /// Takes the first `end` bytes out of the buffer.
    fn split_part(&mut self, end: usize) -> Vec<u8> {
        let rest = self.buf.split_off(end);
        self.scanned = 0;
        self.line_start = true;
        std::mem::replace(&mut self.buf, rest)
    }

    /// Takes the first `n` bytes, which end a line (a delimiter line, or part headers), out.
    fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
        self.scanned = 0;
        self.line_start = true;
    }

    fn discard(&mut self, n: usize) {
        if n > 0 {
            let line_start = self.buf[n - 1] == b'\n';
            self.skipped += n;
            self.consume(n);
            self.line_start = line_start;
        }
    }

    fn fatal(&mut self, error: SourceError) -> PartError {
        self.state = State::Closed;
        self.buf = Vec::new();
        PartError::Fatal(error)
    }

    /// Parses the part headers at the buffer's start: `(Content-Length, bytes they take)` once
    /// the blank line ending them has arrived.
    fn headers(&self) -> Result<Option<(Option<usize>, usize)>, SourceError> {
        // Some cameras put the JPEG right after the boundary line, with no headers and no blank line.
        match self.buf.as_slice() {
            [0xFF] => return Ok(None),
            [0xFF, 0xD8, ..] => return Ok(Some((None, 0))),
            _ => {}
        }
        let mut length = None;
        let mut at = 0;
        while let Some(newline) = self.buf[at..].iter().position(|&b| b == b'\n') {
            let line = &self.buf[at..at + newline];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            at += newline + 1;
            if line.is_empty() {
                return Ok(Some((length, at)));
            }
            let line = String::from_utf8_lossy(line);
            let Some((name, value)) = line.split_once(':') else {
                return Err(SourceError::Camera(format!("a malformed MJPEG part header: {:?}", truncate(&line))));
            };
            if name.trim().eq_ignore_ascii_case("content-length") {
                let value = value.trim();
                length = Some(value.parse::<usize>().map_err(|_| {
                    SourceError::Camera(format!("an MJPEG part with Content-Length {:?}", truncate(value)))
                })?);
            }
        }
        if self.buf.len() > MAX_HEADER_BYTES {
            return Err(SourceError::Camera(format!("MJPEG part headers over {MAX_HEADER_BYTES} bytes")));
        }
        Ok(None)
    }

    /// Looks for a delimiter line: the token at a line start after any number of dashes, then
    /// optional `--` (closing) and whitespace up to the newline. `at_start` lets a delimiter
    /// begin the buffer (when seeking; inside a body the line must follow a newline).
    fn find_delimiter(&mut self, at_start: bool) -> Search {
        let token = &self.token;
        let from = self.scanned.saturating_sub(token.len() + MAX_DELIMITER_LINE);
        let mut search_at = from;
        while let Some(found) = find(&self.buf[search_at..], token) {
            let i = search_at + found;
            search_at = i + 1;
            let mut line_start = i;
            while line_start > 0 && self.buf[line_start - 1] == b'-' {
                line_start -= 1;
            }
            let body_end = if line_start == 0 {
                if !at_start || !self.line_start {
                    continue;
                }
                0
            } else if self.buf[line_start - 1] == b'\n' {
                let newline = line_start - 1;
                if newline > 0 && self.buf[newline - 1] == b'\r' { newline - 1 } else { newline }
            } else {
                continue;
            };
            let after = i + token.len();
            let Some(newline) = self.buf[after..].iter().take(MAX_DELIMITER_LINE).position(|&b| b == b'\n') else {
                if self.buf.len() - after < MAX_DELIMITER_LINE {
                    self.scanned = body_end;
                    return Search::Partial(body_end);
                }
                continue;
            };
            let rest = &self.buf[after..after + newline];
            let closing = rest.starts_with(b"--");
            let rest = if closing { &rest[2..] } else { rest };
            if rest.iter().all(|b| b.is_ascii_whitespace()) {
                return Search::Found(Delimiter { body_end, line_end: after + newline + 1, closing });
            }
        }
        self.scanned = self.buf.len();
        Search::NotFound
    }
}

/// Parses a whole `stream` pushed in chunks of `chunk` bytes (at least 1): each part, or its
/// error in words. The tests and `fuzz/` check with it that the chunking never changes the parts.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn parse_in_chunks(boundary: &str, stream: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, String>> {
    let mut parser = MultipartParser::new(boundary);
    let mut out = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        parser.push(piece);
        while let Some(part) = parser.next_part() {
            out.push(part.map_err(|e| match e {
                PartError::NotJpeg(start) => format!("not jpeg {start}"),
                PartError::Fatal(error) => error.to_string(),
            }));
        }
    }
    out
}

fn checked(part: Vec<u8>) -> Result<Vec<u8>, PartError> {
    if looks_like_jpeg(&part) { Ok(part) } else { Err(PartError::NotJpeg(describe_start(&part))) }
}

fn truncate(text: &str) -> &str {
    text.char_indices().nth(80).map_or(text, |(cut, _)| &text[..cut])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut at = 0;
    while let Some(offset) = haystack[at..=haystack.len() - needle.len()].iter().position(|&b| b == first) {
        let i = at + offset;
        if &haystack[i..i + needle.len()] == needle {
            return Some(i);
        }
        at = i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(seed: u8, len: usize) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
        bytes.extend((0..len).map(|i| seed.wrapping_add(i as u8) % 0xF0));
        bytes.extend([0xFF, 0xD9]);
        bytes
    }

    fn parse(boundary: &str, stream: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, String>> {
        parse_in_chunks(boundary, stream, chunk)
    }

    fn every_chunking(boundary: &str, stream: &[u8]) -> Vec<Result<Vec<u8>, String>> {
        let whole = parse(boundary, stream, stream.len());
        for chunk in [1, 2, 3, 5, 7, 13, 64, 1000] {
            assert_eq!(parse(boundary, stream, chunk), whole, "chunks of {chunk} bytes");
        }
        whole
    }

    #[test]
    fn parts_with_content_length_in_any_chunking() {
        let frames = [jpeg(1, 300), jpeg(2, 10), jpeg(3, 700)];
        let mut stream = Vec::new();
        for frame in &frames {
            stream.extend(
                format!("--myboundary\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", frame.len()).bytes(),
            );
            stream.extend(frame);
            stream.extend(b"\r\n");
        }
        let parts = every_chunking("myboundary", &stream);
        assert_eq!(parts, frames.iter().map(|f| Ok(f.clone())).collect::<Vec<_>>());
    }

    #[test]
    fn parts_without_length_headers_or_dashes_are_found_by_scanning() {
        let frames = [jpeg(4, 500), jpeg(5, 40)];
        // No Content-Length, LF only, the boundary written without its dashes, a preamble.
        let mut stream = b"preamble junk\n".to_vec();
        for frame in &frames {
            stream.extend(b"frame\nContent-Type: image/jpeg\n\n");
            stream.extend(frame);
            stream.extend(b"\n");
        }
        stream.extend(b"frame\n");
        assert_eq!(every_chunking("--frame", &stream), frames.iter().map(|f| Ok(f.clone())).collect::<Vec<_>>());

        // No part headers at all (with and without the blank line), boundary header with dashes.
        let mut stream = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            stream.extend(if i == 0 { &b"--frame\r\n\r\n"[..] } else { b"--frame\r\n" });
            stream.extend(frame);
            stream.extend(b"\r\n");
        }
        stream.extend(b"--frame\r\n");
        assert_eq!(every_chunking("frame", &stream), frames.iter().map(|f| Ok(f.clone())).collect::<Vec<_>>());
    }

    #[test]
    fn a_garbage_part_is_an_error_and_the_next_part_still_arrives() {
        let good = jpeg(6, 100);
        let mut stream = Vec::new();
        for body in [&b"<html>oops</html>"[..], &good] {
            stream.extend(format!("--b\r\nContent-Length: {}\r\n\r\n", body.len()).bytes());
            stream.extend(body);
            stream.extend(b"\r\n");
        }
        let parts = every_chunking("b", &stream);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].as_ref().unwrap_err().starts_with("not jpeg it starts \"<html>oops</html"), "{parts:?}");
        assert_eq!(parts[1], Ok(good));
    }

    #[test]
    fn oversize_parts_and_endless_parts_are_refused_without_buffering_them() {
        let parts = parse("b", format!("--b\r\nContent-Length: {}\r\n\r\n", MAX_FRAME_BYTES + 1).as_bytes(), 7);
        assert_eq!(parts.len(), 1);
        assert!(parts[0].as_ref().unwrap_err().contains("over the 8388608-byte limit"), "{parts:?}");

        let mut parser = MultipartParser::new("b");
        parser.push(b"--b\r\n\r\n\xFF\xD8\xFF");
        assert!(parser.next_part().is_none());
        let block = vec![0u8; 64 * 1024];
        let mut pushed = 0;
        let error = loop {
            parser.push(&block);
            pushed += block.len();
            assert!(parser.buf.len() <= MAX_FRAME_BYTES + 2 * block.len(), "the buffer grew past the limit");
            if let Some(part) = parser.next_part() {
                break part.unwrap_err();
            }
            assert!(pushed < 2 * MAX_FRAME_BYTES, "never refused");
        };
        assert!(matches!(error, PartError::Fatal(SourceError::TooLarge(_))), "{error:?}");
        parser.push(&block);
        assert!(parser.next_part().is_none() && parser.buf.is_empty(), "nothing is kept after a fatal error");
    }

    #[test]
    fn a_stream_without_boundaries_is_refused_in_bounded_memory() {
        let mut parser = MultipartParser::new("b");
        let block = vec![b'x'; 64 * 1024];
        let error = loop {
            parser.push(&block);
            assert!(parser.buf.len() <= block.len() + 300);
            if let Some(part) = parser.next_part() {
                break part.unwrap_err();
            }
        };
        assert!(format!("{error:?}").contains("no multipart boundary"), "{error:?}");
    }

    #[test]
    fn malformed_headers_and_the_closing_boundary_end_the_stream() {
        let parts = parse("b", b"--b\r\nContent-Length: lots\r\n\r\n", 3);
        assert!(parts[0].as_ref().unwrap_err().contains("Content-Length \"lots\""), "{parts:?}");
        let parts = parse("b", &[b"--b\r\n".as_ref(), &vec![b'h'; MAX_HEADER_BYTES + 10]].concat(), 4096);
        assert!(parts[0].as_ref().unwrap_err().contains("headers over"), "{parts:?}");
        let frame = jpeg(7, 20);
        let stream = [b"--b\r\n\r\n".as_ref(), &frame, b"\r\n--b--\r\n"].concat();
        assert_eq!(every_chunking("b", &stream), vec![Ok(frame), Err("the camera ended the stream".into())]);
    }

    /// Found by `fuzz/` (mjpeg_stream): while seeking, the parser throws away all but the last few
    /// hundred bytes, and the byte after the cut counted as a line start, so a boundary in the
    /// middle of a line was taken for a delimiter when the stream came one byte at a time, and not
    /// when it came in one piece.
    #[test]
    fn a_boundary_mid_line_is_no_delimiter_however_the_bytes_arrive() {
        let mut stream = b"-\rb\n-Content-".to_vec();
        stream.extend(vec![0u8; 250]);
        stream.extend(b"Length: lots\r\njunk\r\n");
        assert_eq!(every_chunking("b", &stream), vec![]);
    }

    #[test]
    fn the_boundary_parameter() {
        assert_eq!(boundary("multipart/x-mixed-replace; boundary=myboundary").as_deref(), Some("myboundary"));
        assert_eq!(boundary("multipart/x-mixed-replace;boundary=\"--frame\"").as_deref(), Some("frame"));
        assert_eq!(boundary("multipart/x-mixed-replace; charset=x; BOUNDARY=--ab").as_deref(), Some("ab"));
        assert_eq!(boundary("multipart/x-mixed-replace"), None);
        assert_eq!(boundary("multipart/x-mixed-replace; boundary=--"), None);
    }
}
