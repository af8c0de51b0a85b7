//! `--projector DIR`: the codes as TensorBoard's embedding projector reads them, so that
//! `tensorboard --logdir DIR` shows them with its t-SNE, UMAP and PCA: `tensors.tsv` (a code per
//! line), `metadata.tsv` (a header, then per image its path, predicted class and label, and the
//! folder it lies in), `sprite.png` (the thumbnails) and `projector_config.pbtxt`, whose fields
//! are written in the order TensorBoard's own `text_format` writes them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use convlens_models::progress::Silent;
use convlens_models::represent::sprite::{render_sprite, sprite_tile};
use convlens_shared::methods::folder::EmbedResult;

use super::embed::Shown;
use super::output::OnFile;

/// The projector's file names.
pub const TENSORS: &str = "tensors.tsv";
/// The metadata file.
pub const METADATA: &str = "metadata.tsv";
/// The thumbnails.
pub const SPRITE: &str = "sprite.png";
/// The file TensorBoard looks for in the log folder.
pub const CONFIG: &str = "projector_config.pbtxt";

/// The projector folder, written as the rows come: codes and metadata line by line; the sprite
/// and the config (which need the count) when the last row is in. Each image's path is kept
/// for the sprite (which TensorBoard caps at 8192² pixels, so a projector is for folders of
/// up to some hundred thousand images).
pub struct Projector {
    dir: PathBuf,
    tensors: BufWriter<File>,
    metadata: BufWriter<File>,
    /// The images, as sent (for the sprite).
    paths: Vec<String>,
    dim: Option<usize>,
}

impl Projector {
    /// Creates the folder `dir` and its codes and metadata files.
    pub fn create(dir: &Path) -> anyhow::Result<Projector> {
        std::fs::create_dir_all(dir).on_file(dir)?;
        let open = |name: &str| -> anyhow::Result<BufWriter<File>> {
            let path = dir.join(name);
            Ok(BufWriter::new(File::create(&path).on_file(&path)?))
        };
        let mut projector = Projector {
            dir: dir.to_path_buf(),
            tensors: open(TENSORS)?,
            metadata: open(METADATA)?,
            paths: Vec::new(),
            dim: None,
        };
        let file = dir.join(METADATA);
        writeln!(
            projector.metadata,
            "path\tpredicted_class\tpredicted_label\tfolder"
        )
        .on_file(&file)?;
        Ok(projector)
    }

    /// Appends the rows of `piece` (its codes asked for) of a folder typed as `shown`.
    pub fn append(&mut self, piece: &EmbedResult, shown: &Shown) -> anyhow::Result<()> {
        let codes = piece
            .codes
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the daemon sent no codes for --projector"))?;
        let values = codes.to_f32()?;
        let (n, dim) = match codes.shape.as_slice() {
            [n, d] => (*n, *d),
            other => anyhow::bail!("codes of shape {other:?}, expected [images, units]"),
        };
        self.dim = Some(dim);
        let file = self.dir.join(TENSORS);
        for row in values.chunks(dim.max(1)).take(n) {
            let line: Vec<String> = row.iter().map(f32::to_string).collect();
            writeln!(self.tensors, "{}", line.join("\t")).on_file(&file)?;
        }
        let file = self.dir.join(METADATA);
        for (i, path) in piece.paths.iter().enumerate() {
            let typed = shown.path(path);
            let folder = Path::new(&typed)
                .parent()
                .and_then(|p| p.file_name())
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            writeln!(
                self.metadata,
                "{}\t{}\t{}\t{}",
                cell(&typed),
                piece.top1_class.get(i).copied().unwrap_or_default(),
                cell(piece.top1_label.get(i).map_or("", String::as_str)),
                cell(&folder)
            )
            .on_file(&file)?;
            self.paths.push(path.clone());
        }
        Ok(())
    }

    /// Draws the sprite and writes the config (codes of `dim` values when no row came).
    pub fn finish(mut self, dim: usize) -> anyhow::Result<()> {
        for (writer, name) in [(&mut self.tensors, TENSORS), (&mut self.metadata, METADATA)] {
            writer.flush().on_file(&self.dir.join(name))?;
        }
        let n = self.paths.len();
        let tile = sprite_tile(n);
        let sprite = render_sprite(&self.paths, tile, &Silent)?;
        let file = self.dir.join(SPRITE);
        sprite.save(&file).on_file(&file)?;
        let file = self.dir.join(CONFIG);
        std::fs::write(&file, config(n, self.dim.unwrap_or(dim), tile)).on_file(&file)
    }
}

/// The projector's config: one embedding, its tensor, metadata and sprite, in field-number order
/// (`tensor_name` 1, `metadata_path` 2, `tensor_shape` 4, `sprite` 5, `tensor_path` 6).
pub fn config(n: usize, dim: usize, tile: u32) -> String {
    format!(
        "embeddings {{\n  tensor_name: \"codes\"\n  metadata_path: \"{METADATA}\"\n  \
         tensor_shape: {n}\n  tensor_shape: {dim}\n  sprite {{\n    image_path: \"{SPRITE}\"\n    \
         single_image_dim: {tile}\n    single_image_dim: {tile}\n  }}\n  tensor_path: \
         \"{TENSORS}\"\n}}\n"
    )
}

/// A TSV cell: tabs and line breaks (which would break the table) become spaces.
fn cell(text: &str) -> String {
    text.replace(['\t', '\n', '\r'], " ")
}
