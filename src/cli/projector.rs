//! `--projector DIR`: the codes as TensorBoard's embedding projector reads them, so that
//! `tensorboard --logdir DIR` shows them with its t-SNE, UMAP and PCA: `tensors.tsv` (a code per
//! line), `metadata.tsv` (a header, then per image its path, predicted class and label, and the
//! folder it lies in), `sprite.png` (the thumbnails) and `projector_config.pbtxt`, whose fields
//! are written in the order TensorBoard's own `text_format` writes them.

use std::fmt::Write as _;
use std::path::Path;

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

/// Writes the projector folder `dir` for `result` (its codes asked for) over the folder typed as
/// `shown`.
pub fn write_projector(dir: &Path, result: &EmbedResult, shown: &Shown) -> anyhow::Result<()> {
    let codes = result
        .codes
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the daemon sent no codes for --projector"))?;
    let values = codes.to_f32()?;
    let (n, dim) = match codes.shape.as_slice() {
        [n, d] => (*n, *d),
        other => anyhow::bail!("codes of shape {other:?}, expected [images, units]"),
    };
    std::fs::create_dir_all(dir).on_file(dir)?;
    let mut tensors = String::new();
    for row in values.chunks(dim.max(1)).take(n) {
        let line: Vec<String> = row.iter().map(f32::to_string).collect();
        tensors.push_str(&line.join("\t"));
        tensors.push('\n');
    }
    let file = dir.join(TENSORS);
    std::fs::write(&file, tensors).on_file(&file)?;
    let mut metadata = String::from("path\tpredicted_class\tpredicted_label\tfolder\n");
    for (i, path) in result.paths.iter().enumerate() {
        let typed = shown.path(path);
        let folder = Path::new(&typed)
            .parent()
            .and_then(|p| p.file_name())
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            metadata,
            "{}\t{}\t{}\t{}",
            cell(&typed),
            result.top1_class.get(i).copied().unwrap_or_default(),
            cell(result.top1_label.get(i).map_or("", String::as_str)),
            cell(&folder)
        );
    }
    let file = dir.join(METADATA);
    std::fs::write(&file, metadata).on_file(&file)?;
    let tile = sprite_tile(n);
    let sprite = render_sprite(&result.paths, tile, &Silent)?;
    let file = dir.join(SPRITE);
    sprite.save(&file).on_file(&file)?;
    let file = dir.join(CONFIG);
    std::fs::write(&file, config(n, dim, tile)).on_file(&file)
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
