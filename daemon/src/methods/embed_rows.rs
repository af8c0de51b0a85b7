//! What `folder/embed` makes of a pass's rows as they come: each image's path, code and top-1
//! class go out to the client in partial results (or are kept for the final result when the
//! client passed no `partialResultToken`), and the map takes what it needs: t-SNE a sample of
//! at most `tsne_max` codes, PCA its running sums and the codes spilled to a temporary file to
//! project them afterwards. So a streamed embed holds neither the folder's codes nor its paths.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use convlens_models::represent::pca_stream::PcaAccumulator;
use convlens_models::represent::tsne::{tsne, TsneOptions};
use convlens_models::{Error, Model};
use convlens_shared::array::{Array, Png};
use convlens_shared::choices::MapKind;
use convlens_shared::methods::folder::{EmbedParams, EmbedResult, PassReport};

use super::call::Call;
use crate::error::MethodError;

/// Rows per partial result.
pub const ROWS_PER_PARTIAL: usize = 256;

/// The rows of `folder/embed`, as they come.
pub struct EmbedRows<'a> {
    call: &'a Call<'a>,
    params: &'a EmbedParams,
    model: &'a Model,
    version: u64,
    /// Rows not yet sent (streamed), or every row (kept for the final result).
    rows: Rows,
    /// Rows taken so far.
    taken: usize,
    map: MapInput,
    /// The mapped rows' indices, classes and (for a grid) paths.
    mapped: Vec<usize>,
    mapped_class: Vec<u32>,
    mapped_paths: Vec<PathBuf>,
    /// Whether the grid is drawn (it needs every mapped image's path).
    grid: bool,
}

/// Per-image fields of the result.
#[derive(Default)]
struct Rows {
    paths: Vec<String>,
    codes: Vec<f32>,
    top1_class: Vec<u32>,
    top1_prob: Vec<f32>,
}

/// What the map keeps of the rows.
enum MapInput {
    None,
    /// Every `stride`-th code.
    Tsne {
        stride: usize,
        codes: Vec<f32>,
    },
    /// The running sums, and every code spilled for the projection.
    Pca {
        sums: Option<PcaAccumulator>,
        spill: BufWriter<File>,
    },
}

/// The map and its picture, when made.
pub struct Drawn {
    /// One point per mapped image.
    pub points: Option<Vec<[f32; 2]>>,
    /// The mapped rows, when the map is of a sample.
    pub mapped: Option<Vec<usize>>,
    /// The picture.
    pub picture: Option<Png>,
}

impl<'a> EmbedRows<'a> {
    /// Ready for the rows of a pass over at most `total` images of `model` (version `version`),
    /// for a request `params` whose picture is a grid when `grid`.
    pub fn new(
        call: &'a Call<'a>,
        params: &'a EmbedParams,
        model: &'a Model,
        version: u64,
        total: usize,
        grid: bool,
    ) -> Result<EmbedRows<'a>, MethodError> {
        let map = match params.map {
            MapKind::None => MapInput::None,
            MapKind::Tsne => {
                if params.tsne_max < 4 {
                    return Err(Error::InvalidArgument(format!(
                        "tsneMax {}: t-SNE needs at least 4 images",
                        params.tsne_max
                    ))
                    .into());
                }
                MapInput::Tsne {
                    stride: total.div_ceil(params.tsne_max).max(1),
                    codes: Vec::new(),
                }
            }
            MapKind::Pca => {
                let spill = tempfile::tempfile().map_err(|source| Error::Io {
                    path: std::env::temp_dir(),
                    source,
                })?;
                MapInput::Pca {
                    sums: None,
                    spill: BufWriter::new(spill),
                }
            }
        };
        Ok(EmbedRows {
            call,
            params,
            model,
            version,
            rows: Rows::default(),
            taken: 0,
            map,
            mapped: Vec::new(),
            mapped_class: Vec::new(),
            mapped_paths: Vec::new(),
            grid,
        })
    }

    /// Takes the next image's row.
    pub fn push(
        &mut self,
        path: &Path,
        code: &[f32],
        top1_class: u32,
        top1_prob: f32,
    ) -> convlens_models::Result<()> {
        let row = self.taken;
        self.taken += 1;
        let mapped = match &mut self.map {
            MapInput::None => false,
            MapInput::Tsne { stride, codes } => {
                let sampled = row.is_multiple_of(*stride);
                if sampled {
                    codes.extend_from_slice(code);
                }
                sampled
            }
            MapInput::Pca { sums, spill } => {
                sums.get_or_insert_with(|| PcaAccumulator::new(code.len(), &self.model.device))
                    .push(code)?;
                for v in code {
                    spill.write_all(&v.to_le_bytes()).map_err(spill_error)?;
                }
                true
            }
        };
        if mapped {
            self.mapped.push(row);
            self.mapped_class.push(top1_class);
            if self.grid {
                self.mapped_paths.push(path.to_path_buf());
            }
        }
        self.rows.paths.push(path.display().to_string());
        if self.params.codes {
            self.rows.codes.extend_from_slice(code);
        }
        self.rows.top1_class.push(top1_class);
        self.rows.top1_prob.push(top1_prob);
        if self.params.partial_result_token.is_some() && self.rows.paths.len() >= ROWS_PER_PARTIAL {
            self.send();
        }
        Ok(())
    }

    /// Sends the rows not yet sent as a partial result.
    fn send(&mut self) {
        let Some(token) = &self.params.partial_result_token else {
            return;
        };
        if self.rows.paths.is_empty() {
            return;
        }
        let dim = self.rows.codes.len() / self.rows.paths.len();
        let piece = self.take_rows(PassReport::default(), dim);
        if let Ok(value) = serde_json::to_value(&piece) {
            self.call.partial.send(token, value);
        }
    }

    /// The rows held (codes of `dim` values), as a result (with `report`), leaving none.
    fn take_rows(&mut self, report: PassReport, dim: usize) -> EmbedResult {
        let rows = std::mem::take(&mut self.rows);
        let n = rows.paths.len();
        EmbedResult {
            version: self.version,
            report,
            top1_label: rows
                .top1_class
                .iter()
                .map(|&c| label_of(self.model, c))
                .collect(),
            codes: self
                .params
                .codes
                .then(|| Array::from_f32(&[n, dim], &rows.codes)),
            paths: rows.paths,
            points: None,
            mapped: None,
            top1_class: rows.top1_class,
            top1_prob: rows.top1_prob,
            picture: None,
        }
    }

    /// After the last row: sends what is left (streamed), makes the map and its picture, and
    /// returns the final result with `report` (holding the rows when none were streamed).
    pub fn finish(
        mut self,
        report: PassReport,
        dim: usize,
        draw: impl FnOnce(&[[f32; 2]], &[u32], &[PathBuf]) -> Result<Option<Png>, MethodError>,
    ) -> Result<EmbedResult, MethodError> {
        self.send();
        let n = self.taken;
        let map = std::mem::replace(&mut self.map, MapInput::None);
        let points: Option<Vec<[f32; 2]>> = match map {
            _ if n == 0 => None,
            MapInput::None => None,
            MapInput::Tsne { codes, .. } => {
                let options = TsneOptions {
                    perplexity: self.params.perplexity,
                    epochs: self.params.iterations,
                    seed: self.params.seed,
                    threads: self.params.threads,
                    ..TsneOptions::default()
                };
                let map = tsne(
                    &codes,
                    dim,
                    &options,
                    &self.model.device,
                    self.call.progress,
                )?;
                Some(map.points)
            }
            MapInput::Pca { sums, spill } => {
                let Some(sums) = sums else {
                    return Err(MethodError::internal("PCA took no row"));
                };
                let fit = sums.fit(2.min(dim).min(n), self.params.seed)?;
                let mut file = spill
                    .into_inner()
                    .map_err(|e| spill_error(e.into_error()))?;
                file.rewind().map_err(spill_error)?;
                let mut reader = BufReader::new(file);
                let mut bytes = vec![0u8; dim * 4];
                let mut code = vec![0f32; dim];
                let mut points = Vec::with_capacity(n);
                for _ in 0..n {
                    reader.read_exact(&mut bytes).map_err(spill_error)?;
                    for (v, b) in code.iter_mut().zip(bytes.chunks_exact(4)) {
                        *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    }
                    let p = fit.project(&code);
                    points.push([p[0], p.get(1).copied().unwrap_or(0.0)]);
                }
                Some(points)
            }
        };
        let picture = match &points {
            Some(points) => draw(points, &self.mapped_class, &self.mapped_paths)?,
            None => None,
        };
        let sampled = points.is_some() && self.mapped.len() < n;
        let mapped = sampled.then(|| std::mem::take(&mut self.mapped));
        let mut result = self.take_rows(report, dim);
        if self.params.partial_result_token.is_some() {
            // The rows went out as partial results.
            result.codes = None;
        }
        result.points = points;
        result.mapped = mapped;
        result.picture = picture;
        Ok(result)
    }
}

/// An error of the spill file.
fn spill_error(source: std::io::Error) -> Error {
    Error::Io {
        path: std::env::temp_dir(),
        source,
    }
}

/// Class `c`'s label, or `class c` for a model without one.
pub fn label_of(model: &Model, c: u32) -> String {
    model
        .labels
        .get(c as usize)
        .cloned()
        .unwrap_or_else(|| format!("class {c}"))
}
