//! `embed`'s rows as they come (the daemon's partial results, a few hundred rows at a time):
//! written to `--out`, `--parquet` and `--projector` at once, and kept only where an output
//! needs them at the end (`--csv` and `--json` list every image; the map's table names each
//! mapped one). So `embed --out codes.npy` over a million images holds no million codes.

use std::path::{Path, PathBuf};

use convlens_shared::methods::folder::EmbedResult;

use super::embed::{EmbedOutputs, Shown};
use super::npy_rows::NpyRows;
use super::parquet::CodesTable;
use super::projector::Projector;

/// Where the rows go.
pub struct RowWriters<'a> {
    shown: &'a Shown,
    npy_path: Option<PathBuf>,
    npy: Option<NpyRows>,
    table: Option<CodesTable>,
    projector: Option<Projector>,
    /// The rows kept for the outputs written at the end.
    pub kept: Option<KeptRows>,
    /// The first error, if any (a partial result cannot return one).
    pub error: Option<anyhow::Error>,
}

/// Rows kept for the outputs written at the end.
#[derive(Default)]
pub struct KeptRows {
    /// The images, as sent.
    pub paths: Vec<String>,
    /// Top-1 class per image.
    pub top1_class: Vec<u32>,
    /// Its probability per image.
    pub top1_prob: Vec<f32>,
}

impl<'a> RowWriters<'a> {
    /// Opens what `outputs` and `parquet` ask for; keeps the rows when `keep`.
    pub fn open(
        outputs: &EmbedOutputs,
        parquet: Option<&Path>,
        shown: &'a Shown,
        keep: bool,
    ) -> anyhow::Result<RowWriters<'a>> {
        Ok(RowWriters {
            shown,
            npy_path: outputs.out.clone(),
            npy: None,
            table: parquet.map(CodesTable::new),
            projector: outputs
                .projector
                .as_deref()
                .map(Projector::create)
                .transpose()?,
            kept: keep.then(KeptRows::default),
            error: None,
        })
    }

    /// Takes a partial result's rows (after an error, nothing more).
    pub fn take(&mut self, piece: &EmbedResult) {
        if self.error.is_none() {
            if let Err(e) = self.write(piece) {
                self.error = Some(e);
            }
        }
    }

    fn write(&mut self, piece: &EmbedResult) -> anyhow::Result<()> {
        if let Some(path) = &self.npy_path {
            let codes = piece
                .codes
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("the daemon sent no codes for --out"))?;
            let npy = match &mut self.npy {
                Some(npy) => npy,
                None => self.npy.insert(NpyRows::create(
                    path,
                    codes.shape.get(1).copied().unwrap_or(0),
                )?),
            };
            npy.append(&codes.to_f32()?)?;
        }
        if let Some(table) = &mut self.table {
            table.append(piece, self.shown)?;
        }
        if let Some(projector) = &mut self.projector {
            projector.append(piece, self.shown)?;
        }
        if let Some(kept) = &mut self.kept {
            kept.paths.extend(piece.paths.iter().cloned());
            kept.top1_class.extend(&piece.top1_class);
            kept.top1_prob.extend(&piece.top1_prob);
        }
        Ok(())
    }

    /// Closes the files (codes of `dim` values when no row came); returns the kept rows.
    pub fn finish(self, dim: usize, version: u64) -> anyhow::Result<Option<KeptRows>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        match (self.npy, &self.npy_path) {
            (Some(npy), _) => npy.finish()?,
            (None, Some(path)) => NpyRows::create(path, dim)?.finish()?,
            (None, None) => {}
        }
        if let Some(table) = self.table {
            table.finish(dim, version)?;
        }
        if let Some(projector) = self.projector {
            projector.finish(dim)?;
        }
        Ok(self.kept)
    }
}
