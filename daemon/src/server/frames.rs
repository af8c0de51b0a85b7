//! Reading frames from the async socket with the rules of `convlens_shared::framing`.

use convlens_shared::framing::{FrameError, HeaderLine, HeaderReader, MAX_HEADER_LINE};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Reads one frame's body; `Ok(None)` at a clean end of stream.
pub async fn read_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = HeaderReader::new(max);
    let mut line = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        let n = (&mut *reader)
            .take(MAX_HEADER_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
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
            reader
                .read_exact(&mut body)
                .await
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
                    _ => FrameError::Io(e),
                })?;
            return Ok(Some(body));
        }
    }
}
