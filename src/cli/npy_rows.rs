//! A float32 `.npy` file written a row at a time, for arrays whose row count is known only at
//! the end (a folder's codes as a pass makes them). The header is written first with room for
//! any count and rewritten in place when the file is finished. Hand-written because the `.npy`
//! writers at hand (candle's, `npyz`) take the whole shape, or the whole array, up front.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::output::OnFile;

/// The header's length, magic string included: a multiple of 64, as the format asks, with room
/// for a shape of two 20-digit numbers.
const HEADER_LEN: usize = 128;

/// An open `.npy` file of float32 rows of `width` values.
pub struct NpyRows {
    path: PathBuf,
    file: BufWriter<File>,
    width: usize,
    rows: usize,
}

impl NpyRows {
    /// Creates `path` for rows of `width` values.
    pub fn create(path: &Path, width: usize) -> anyhow::Result<NpyRows> {
        let file = File::create(path).on_file(path)?;
        let mut rows = NpyRows {
            path: path.to_path_buf(),
            file: BufWriter::new(file),
            width,
            rows: 0,
        };
        rows.file.write_all(&header(0, width)).on_file(path)?;
        Ok(rows)
    }

    /// Appends rows (`values.len()` a multiple of the width).
    pub fn append(&mut self, values: &[f32]) -> anyhow::Result<()> {
        if self.width == 0 || !values.len().is_multiple_of(self.width) {
            anyhow::bail!(
                "{}: {} values do not make rows of {}",
                self.path.display(),
                values.len(),
                self.width
            );
        }
        for v in values {
            self.file.write_all(&v.to_le_bytes()).on_file(&self.path)?;
        }
        self.rows += values.len() / self.width;
        Ok(())
    }

    /// Writes the header with the row count and closes the file.
    pub fn finish(mut self) -> anyhow::Result<()> {
        let path = self.path.clone();
        self.file.flush().on_file(&path)?;
        let mut file = self
            .file
            .into_inner()
            .map_err(|e| e.into_error())
            .on_file(&path)?;
        file.seek(SeekFrom::Start(0)).on_file(&path)?;
        file.write_all(&header(self.rows, self.width))
            .on_file(&path)?;
        file.sync_all().on_file(&path)
    }
}

/// The `.npy` 1.0 header of a C-ordered float32 array `rows × width`, padded with spaces to
/// [`HEADER_LEN`] bytes and ended by a newline.
fn header(rows: usize, width: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {width}), }}");
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    let text_len = HEADER_LEN - out.len() - 2;
    out.extend_from_slice(&(text_len as u16).to_le_bytes());
    let mut text = dict.into_bytes();
    text.resize(text_len - 1, b' ');
    text.push(b'\n');
    out.extend_from_slice(&text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_written_in_pieces_read_back_as_one_array() {
        let dir = std::env::temp_dir().join(format!("convlens-npy-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("codes.npy");
        let mut npy = NpyRows::create(&path, 3).unwrap();
        npy.append(&[1.0, 2.0, 3.0]).unwrap();
        npy.append(&[4.0, 5.0, 6.0, -7.5, 0.25, 1e-30]).unwrap();
        assert!(npy.append(&[1.0]).is_err(), "not a whole row");
        npy.finish().unwrap();
        let t = candle_core::Tensor::read_npy(&path).unwrap();
        assert_eq!(t.dims(), &[3, 3]);
        assert_eq!(
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -7.5, 0.25, 1e-30]
        );
        // No row: an empty array of the width.
        NpyRows::create(&path, 4).unwrap().finish().unwrap();
        assert_eq!(
            candle_core::Tensor::read_npy(&path).unwrap().dims(),
            &[0, 4]
        );
        assert_eq!(header(0, 4).len() % 64, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
