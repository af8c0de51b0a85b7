//! `--parquet FILE`: what `embed` and `top` compute as Parquet tables (the Arrow project's
//! `parquet` writer), for pandas, polars and DuckDB: one row per image for codes; one row per
//! unit and rank for top images, and one per unit for the statistics (beside it, in
//! `STEM-stats.parquet`). The codes table is written as the rows come; a map of them goes
//! beside it (`STEM-map.parquet`), since the map is made only after the last row.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema};
use convlens_shared::methods::folder::{EmbedResult, TopResult};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

/// The encoded size of a row group of the codes table, at most.
const ROW_GROUP_BYTES: usize = 8 << 20;

use super::embed::Shown;
use super::output::OnFile;

/// The schema of `columns`.
fn schema_of(columns: &[(&str, ArrayRef, bool)]) -> Arc<Schema> {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, array, nullable)| Field::new(*name, array.data_type().clone(), *nullable))
            .collect::<Vec<_>>(),
    ))
}

/// Writes `columns` as one Parquet table to `path`.
fn write_table(path: &Path, columns: Vec<(&str, ArrayRef, bool)>) -> anyhow::Result<()> {
    let batch = RecordBatch::try_new(
        schema_of(&columns),
        columns.into_iter().map(|(_, array, _)| array).collect(),
    )?;
    let file = std::fs::File::create(path).on_file(path)?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).on_file(path)?;
    writer.write(&batch).on_file(path)?;
    writer.close().on_file(path)?;
    Ok(())
}

/// The codes table, written as the rows come: `path`, `code` (a fixed-size list of float32,
/// the layer's units), `top1_class`, `top1_label`, `top1_prob`. The writer holds one row group
/// at a time, not the table.
pub struct CodesTable {
    path: PathBuf,
    writer: Option<ArrowWriter<std::fs::File>>,
}

impl CodesTable {
    /// The table to be written at `path`.
    pub fn new(path: &Path) -> CodesTable {
        CodesTable {
            path: path.to_path_buf(),
            writer: None,
        }
    }

    /// Appends the rows of `piece` (its codes asked for) of a folder typed as `shown`.
    pub fn append(&mut self, piece: &EmbedResult, shown: &Shown) -> anyhow::Result<()> {
        let codes = piece
            .codes
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the daemon sent no codes for --parquet"))?;
        let dim = match codes.shape.as_slice() {
            [_, d] => *d,
            other => anyhow::bail!("codes of shape {other:?}, expected [images, units]"),
        };
        let paths: Vec<String> = piece.paths.iter().map(|p| shown.path(p)).collect();
        self.write(codes.to_f32()?, dim, paths, piece)
    }

    /// Writes one batch of rows.
    fn write(
        &mut self,
        codes: Vec<f32>,
        dim: usize,
        paths: Vec<String>,
        piece: &EmbedResult,
    ) -> anyhow::Result<()> {
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        let code = FixedSizeListArray::try_new(
            item,
            i32::try_from(dim)?,
            Arc::new(Float32Array::from(codes)),
            None,
        )?;
        let columns: Vec<(&str, ArrayRef, bool)> = vec![
            ("path", Arc::new(StringArray::from(paths)), false),
            ("code", Arc::new(code), false),
            (
                "top1_class",
                Arc::new(UInt32Array::from(piece.top1_class.clone())),
                false,
            ),
            (
                "top1_label",
                Arc::new(StringArray::from(piece.top1_label.clone())),
                false,
            ),
            (
                "top1_prob",
                Arc::new(Float32Array::from(piece.top1_prob.clone())),
                false,
            ),
        ];
        let schema = schema_of(&columns);
        let batch = RecordBatch::try_new(
            schema.clone(),
            columns.into_iter().map(|(_, array, _)| array).collect(),
        )?;
        let path = &self.path;
        let writer = match &mut self.writer {
            Some(w) => w,
            None => {
                let file = std::fs::File::create(path).on_file(path)?;
                // A row group is buffered until it is full: bound it, or the writer holds the
                // whole table.
                let properties = WriterProperties::builder()
                    .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
                    .build();
                self.writer
                    .insert(ArrowWriter::try_new(file, schema, Some(properties)).on_file(path)?)
            }
        };
        writer.write(&batch).on_file(path)
    }

    /// Closes the table; with no row written, an empty table of codes of `dim` values.
    pub fn finish(mut self, dim: usize, version: u64) -> anyhow::Result<()> {
        if self.writer.is_none() {
            let empty = EmbedResult {
                version,
                report: Default::default(),
                paths: vec![],
                points: None,
                mapped: None,
                top1_class: vec![],
                top1_label: vec![],
                top1_prob: vec![],
                codes: None,
                picture: None,
            };
            self.write(vec![], dim, vec![], &empty)?;
        }
        if let Some(writer) = self.writer.take() {
            writer.close().on_file(&self.path)?;
        }
        Ok(())
    }
}

/// The map file beside a codes table: `STEM-map.parquet`.
pub fn map_path(path: &Path) -> PathBuf {
    beside(path, "map")
}

/// The map as a table (`path`, `x`, `y`, one row per mapped image) at [`map_path`] of `path`.
/// Returns the file.
pub fn write_map(path: &Path, paths: Vec<String>, points: &[[f32; 2]]) -> anyhow::Result<PathBuf> {
    let file = map_path(path);
    let axis = |a: usize| Arc::new(Float32Array::from_iter_values(points.iter().map(|p| p[a])));
    write_table(
        &file,
        vec![
            ("path", Arc::new(StringArray::from(paths)), false),
            ("x", axis(0), false),
            ("y", axis(1), false),
        ],
    )?;
    Ok(file)
}

/// `STEM-WHAT.parquet` beside `path`.
fn beside(path: &Path, what: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}-{what}.parquet"))
}

/// The statistics file beside a top table: `STEM-stats.parquet`.
pub fn stats_path(path: &Path) -> PathBuf {
    beside(path, "stats")
}

/// Top images as a table, one row per unit and rank (`unit`, `rank` from 1, `path`, `value`,
/// `y`, `x` of the maximum), and the units' statistics beside it ([`stats_path`]: `unit`,
/// `mean`, `max`, `active_fraction`, `dead`). Returns the statistics file.
pub fn write_top(path: &Path, result: &TopResult, shown: &Shown) -> anyhow::Result<PathBuf> {
    let rows = result.units.iter().flat_map(|u| {
        u.top
            .iter()
            .enumerate()
            .map(move |(rank, e)| (u.unit, rank + 1, e))
    });
    let (mut unit, mut rank, mut paths, mut value, mut y, mut x) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (u, r, e) in rows {
        unit.push(u32::try_from(u)?);
        rank.push(u32::try_from(r)?);
        paths.push(shown.path(&e.path));
        value.push(e.value);
        y.push(u32::try_from(e.position[0])?);
        x.push(u32::try_from(e.position[1])?);
    }
    write_table(
        path,
        vec![
            ("unit", Arc::new(UInt32Array::from(unit)), false),
            ("rank", Arc::new(UInt32Array::from(rank)), false),
            ("path", Arc::new(StringArray::from(paths)), false),
            ("value", Arc::new(Float32Array::from(value)), false),
            ("y", Arc::new(UInt32Array::from(y)), false),
            ("x", Arc::new(UInt32Array::from(x)), false),
        ],
    )?;
    let stats = stats_path(path);
    let s = &result.stats;
    let units = s
        .iter()
        .map(|s| u32::try_from(s.unit))
        .collect::<Result<Vec<u32>, _>>()?;
    write_table(
        &stats,
        vec![
            ("unit", Arc::new(UInt32Array::from(units)), false),
            (
                "mean",
                Arc::new(Float32Array::from_iter_values(s.iter().map(|s| s.mean))),
                false,
            ),
            (
                "max",
                Arc::new(Float32Array::from_iter_values(s.iter().map(|s| s.max))),
                false,
            ),
            (
                "active_fraction",
                Arc::new(Float32Array::from_iter_values(
                    s.iter().map(|s| s.active_fraction),
                )),
                false,
            ),
            (
                "dead",
                Arc::new(BooleanArray::from(
                    s.iter()
                        .map(|s| result.dead.contains(&s.unit))
                        .collect::<Vec<bool>>(),
                )),
                false,
            ),
        ],
    )?;
    Ok(stats)
}
