//! LSP framing: `Content-Length: N\r\n` (other headers such as `Content-Type` allowed and
//! ignored), an empty line, then N bytes of UTF-8 JSON.
//!
//! Hand-written because it is small and the length limit must be checked before the body is
//! allocated. [`HeaderReader`] holds the rules; [`read_frame`] applies them to a blocking reader,
//! and the daemon applies the same [`HeaderReader`] to its async reader.

use std::io::{self, BufRead, Write};

/// The largest frame accepted by default (64 MiB).
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// The longest header line accepted, so that bytes without a newline cannot grow a buffer.
pub const MAX_HEADER_LINE: usize = 1024;

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The transport failed.
    Io(io::Error),
    /// A header line that is not `Name: value`, a `Content-Length` that is not a number, or a
    /// header line longer than [`MAX_HEADER_LINE`].
    BadHeader(String),
    /// The headers ended without a `Content-Length`.
    MissingLength,
    /// A `Content-Length` over the limit; the body was not read.
    TooLarge {
        /// The length announced.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// The stream ended inside a frame.
    Truncated,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "transport: {e}"),
            FrameError::BadHeader(m) => write!(f, "bad frame header: {m}"),
            FrameError::MissingLength => write!(f, "bad frame header: no Content-Length"),
            FrameError::TooLarge { length, max } => write!(
                f,
                "frame of {length} bytes is over the limit of {max} bytes"
            ),
            FrameError::Truncated => write!(f, "the stream ended inside a frame"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// What one header line said.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderLine {
    /// More headers follow.
    More,
    /// The empty line: the body of this many bytes follows.
    Body(usize),
}

/// Reads the header block of one frame, line by line.
#[derive(Debug)]
pub struct HeaderReader {
    max: usize,
    length: Option<usize>,
    lines: usize,
}

impl HeaderReader {
    /// A reader for frames of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        HeaderReader {
            max,
            length: None,
            lines: 0,
        }
    }

    /// Takes one line (with its `\r\n` or `\n`) and says whether the body starts.
    pub fn line(&mut self, raw: &[u8]) -> Result<HeaderLine, FrameError> {
        self.lines += 1;
        if raw.len() > MAX_HEADER_LINE || self.lines > 32 {
            return Err(FrameError::BadHeader("header too long".into()));
        }
        let text = std::str::from_utf8(raw)
            .map_err(|_| FrameError::BadHeader("header is not ASCII".into()))?;
        let text = text.trim_end_matches('\n').trim_end_matches('\r');
        if text.is_empty() {
            return match self.length {
                Some(n) if n > self.max => Err(FrameError::TooLarge {
                    length: n,
                    max: self.max,
                }),
                Some(n) => Ok(HeaderLine::Body(n)),
                None => Err(FrameError::MissingLength),
            };
        }
        let (name, value) = text.split_once(':').ok_or_else(|| {
            FrameError::BadHeader(format!("`{}` is not `Name: value`", clip(text)))
        })?;
        if name.trim().eq_ignore_ascii_case("content-length") {
            let n = value.trim().parse::<usize>().map_err(|_| {
                FrameError::BadHeader(format!(
                    "Content-Length `{}` is not a number",
                    clip(value.trim())
                ))
            })?;
            if n > self.max {
                return Err(FrameError::TooLarge {
                    length: n,
                    max: self.max,
                });
            }
            self.length = Some(n);
        }
        Ok(HeaderLine::More)
    }
}

/// At most 40 characters of `s`, for error messages about garbage.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Reads one frame's body from `reader`; `Ok(None)` at a clean end of stream (between frames).
pub fn read_frame<R: BufRead>(reader: &mut R, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = HeaderReader::new(max);
    let mut line = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        let n = io::Read::take(&mut *reader, MAX_HEADER_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return if first {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        first = false;
        if line.last() != Some(&b'\n') && line.len() <= MAX_HEADER_LINE {
            return Err(FrameError::Truncated);
        }
        if let HeaderLine::Body(length) = header.line(&line)? {
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => FrameError::Truncated,
                _ => FrameError::Io(e),
            })?;
            return Ok(Some(body));
        }
    }
}

/// The frame carrying `body`.
pub fn encode_frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Writes one frame carrying `body` and flushes.
pub fn write_frame<W: Write>(writer: &mut W, body: &[u8]) -> io::Result<()> {
    writer.write_all(&encode_frame(body))?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], max: usize) -> Vec<Result<Option<Vec<u8>>, String>> {
        let mut reader = io::BufReader::new(bytes);
        let mut out = Vec::new();
        loop {
            let r = read_frame(&mut reader, max).map_err(|e| e.to_string());
            let stop = !matches!(r, Ok(Some(_)));
            out.push(r);
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn frames_round_trip_with_extra_headers() {
        let mut bytes = encode_frame(b"{\"a\":1}");
        bytes.extend_from_slice(
            b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: 2\r\n\r\n[]",
        );
        let got = read_all(&bytes, 100);
        assert_eq!(got[0], Ok(Some(b"{\"a\":1}".to_vec())));
        assert_eq!(got[1], Ok(Some(b"[]".to_vec())));
        assert_eq!(got[2], Ok(None));
    }

    #[test]
    fn bad_headers_are_refused_with_a_reason() {
        let cases: [(&[u8], &str); 5] = [
            (b"hello world\r\n\r\n", "not `Name: value`"),
            (b"Content-Length: ten\r\n\r\n", "not a number"),
            (b"Content-Type: x\r\n\r\n", "no Content-Length"),
            (b"Content-Length: 5\r\n\r\nab", "ended inside a frame"),
            (&[b'x'; 5000], "header too long"),
        ];
        for (bytes, needle) in cases {
            let got = read_all(bytes, 100);
            let err = got.last().unwrap().clone().unwrap_err();
            assert!(err.contains(needle), "{err} should say {needle}");
        }
    }

    #[test]
    fn an_oversized_length_is_refused_before_the_body_is_read() {
        let got = read_all(b"Content-Length: 999999999999\r\n\r\n", 1 << 20);
        let err = got[0].clone().unwrap_err();
        assert!(err.contains("over the limit"), "{err}");
    }
}
