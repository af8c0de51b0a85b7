//! The IDX files of the MNIST family: a big-endian header (two zero bytes, a type code, the
//! number of dimensions, then each dimension as a u32) followed by the values, gzip-compressed
//! or not.
//!
//! Hand-written rather than taken from a crate: the format is a few bytes of header, and the
//! crates that read it (`mnist`, `idx-decoder`, ...) either fix the file names and layout,
//! download, or trust the header's sizes; this reader checks the magic and dimensions and bounds
//! every size before it allocates.

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// The IDX type code of unsigned bytes, the only one the MNIST family uses.
const TYPE_U8: u8 = 0x08;

/// The gzip magic number.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The values in row-major order (`dims` multiplied together of them).
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes (gzip-compressed or plain, told apart by the gzip magic)
/// holding at most `max_values` values.
pub fn read_idx(path: &Path, max_values: usize) -> Result<IdxArray> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let limit = (max_values as u64).saturating_add(4 + 4 * 255);
    let mut head = Vec::with_capacity(2);
    (&mut file).take(2).read_to_end(&mut head).map_err(io)?;
    let gzipped = head == GZIP_MAGIC;
    let stream = std::io::Cursor::new(head).chain(file);
    let mut bytes = Vec::new();
    if gzipped {
        flate2::read::GzDecoder::new(stream)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::format(path, format!("not a readable gzip file: {e}")))?;
    } else {
        stream.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    }
    if bytes.len() as u64 > limit {
        return Err(Error::format(
            path,
            format!("larger than the {max_values} values expected of it"),
        ));
    }
    parse_idx(&bytes, max_values).map_err(|message| Error::format(path, message))
}

/// Parses the bytes of an uncompressed IDX file of unsigned bytes; the error says what is wrong.
pub fn parse_idx(bytes: &[u8], max_values: usize) -> std::result::Result<IdxArray, String> {
    let [zero0, zero1, type_code, rank, rest @ ..] = bytes else {
        return Err(format!(
            "not an IDX file: {} bytes, shorter than the 4-byte magic",
            bytes.len()
        ));
    };
    if (*zero0, *zero1) != (0, 0) {
        return Err(format!(
            "not an IDX file: the magic begins {zero0:#04x} {zero1:#04x}, not 0x00 0x00"
        ));
    }
    if *type_code != TYPE_U8 {
        return Err(format!(
            "IDX type code {type_code:#04x} is not supported (only 0x08, unsigned bytes)"
        ));
    }
    let rank = usize::from(*rank);
    if rank == 0 {
        return Err("IDX header declares no dimensions".into());
    }
    let header = 4 * rank;
    if rest.len() < header {
        return Err(format!(
            "truncated IDX header: {rank} dimensions need {header} bytes, {} present",
            rest.len()
        ));
    }
    let dims: Vec<usize> = rest[..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= max_values)
        .ok_or_else(|| format!("IDX dimensions {dims:?} exceed {max_values} values"))?;
    let values = &rest[header..];
    if values.len() != count {
        return Err(format!(
            "IDX dimensions {dims:?} need {count} values, the file holds {}",
            values.len()
        ));
    }
    Ok(IdxArray {
        dims,
        data: values.to_vec(),
    })
}
