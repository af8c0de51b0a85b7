//! `folder/embed`, `folder/top` and `folder/neighbors`: the representation of a whole image folder
//! (`convlens embed`, `convlens top`, `convlens neighbors`). Each runs one batched pass over the
//! folder (cached on disk by model weights, layer and file content, so a second call on an
//! unchanged folder computes no forward pass), reports `$/progress` and can be cancelled.

use serde::{Deserialize, Serialize};

use super::model::ModelId;
use super::progress::ProgressToken;
use super::request;
use crate::array::{Array, Png};
use crate::choices::MapKind;
use crate::defaults::folder as default;

request!(
    /// The CNN code of every image under a folder, and its t-SNE or PCA map.
    FolderEmbed,
    "folder/embed",
    EmbedParams,
    EmbedResult
);
request!(
    /// The images under a folder that excite each unit of a layer most, with each unit's
    /// statistics over the folder.
    FolderTop,
    "folder/top",
    TopParams,
    TopResult
);
request!(
    /// The images under a folder whose codes are closest (cosine) to one image's.
    FolderNeighbors,
    "folder/neighbors",
    NeighborsParams,
    NeighborsResult
);

/// How the folder is read: the flags `embed`, `top` and `neighbors` share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderPass {
    /// The folder, absolute path, searched recursively.
    pub folder: String,
    /// The layer (a module path); the penultimate layer, the input of the classifier, when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// Images per forward pass.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Input size S: images resized (shorter side to ⌈S·256/224⌉) and centre-cropped to S×S;
    /// the model's own preprocessing when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// Whether to read and write the on-disk code cache.
    #[serde(default = "yes")]
    pub cache: bool,
    /// The cache folder; the daemon's default (`$CONVLENS_CACHE_DIR`, else `~/.cache/convlens`)
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<String>,
    /// Run only this shard of the folder and write its rows to a shard folder (`convlens embed
    /// |top --shard I/N --shard-dir D`); the result covers the shard's images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRun>,
    /// Take the pass from the shard files in this folder instead of running the network
    /// (`convlens merge D`): the result equals an unsharded pass's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_shards: Option<String>,
    /// Whether a reader thread decodes images ahead of the network (default); `false` decodes
    /// them in turn with it, to measure what reading ahead gains.
    #[serde(default = "yes")]
    pub prefetch: bool,
}

/// One shard of a folder pass and where its rows go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardRun {
    /// Which shard, from 0.
    pub index: usize,
    /// How many shards the folder is split into.
    pub count: usize,
    /// The shard folder (absolute path): the shard's file is written there.
    pub dir: String,
    /// The job the shards belong to, kept in each shard file for `convlens merge` (the command,
    /// the model, the folder, the layer); every shard of a merge must carry the same.
    pub job: serde_json::Value,
}

impl FolderPass {
    /// The folder at the default layer, batch and preprocessing, cached.
    pub fn new(folder: impl Into<String>) -> Self {
        FolderPass {
            folder: folder.into(),
            layer: None,
            batch: default_batch(),
            size: None,
            cache: true,
            cache_dir: None,
            shard: None,
            from_shards: None,
            prefetch: true,
        }
    }
}

/// What the pass did, for every folder method.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassReport {
    /// The layer, as asked for (the penultimate layer's path when none was).
    pub layer: String,
    /// Units of the layer.
    pub units: usize,
    /// Rows × columns of positions per unit.
    pub positions: [usize; 2],
    /// Images used (every readable image under the folder).
    pub images: usize,
    /// Images that went through the network in this call.
    pub computed: usize,
    /// Images whose summary came from the cache.
    pub cached: usize,
    /// Forward passes (batches) run in this call.
    pub forward_passes: usize,
    /// Files with an image extension that could not be read or decoded.
    pub skipped: Vec<SkippedFile>,
    /// Files without an image extension that were passed over.
    pub other_files: usize,
    /// The code cache file, when the cache was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_file: Option<String>,
    /// The shard file written, for a pass over one shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_file: Option<String>,
}

/// A file that could not be used, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// The file.
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

/// `folder/embed`'s parameters: the `convlens embed` flags, with the same defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbedParams {
    /// The model.
    pub model_id: ModelId,
    /// The folder and how it is read.
    #[serde(flatten)]
    pub pass: FolderPass,
    /// The map.
    #[serde(default = "default_map")]
    pub map: MapKind,
    /// t-SNE perplexity.
    #[serde(default = "default_perplexity")]
    pub perplexity: f32,
    /// t-SNE iterations.
    #[serde(default = "default_iterations")]
    pub iterations: usize,
    /// Threads for t-SNE: 1 gives the same map on every run; 0 uses every core.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Seed of the map's initialisation.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The most images t-SNE maps; beyond, it maps every s-th image, and the result says which
    /// (`mapped`).
    #[serde(default = "default_tsne_max")]
    pub tsne_max: usize,
    /// Whether to return the codes [N, D].
    #[serde(default)]
    pub codes: bool,
    /// A picture of the map: `scatter` (coloured by predicted class, with a legend) or `grid`
    /// (thumbnails snapped to a lattice); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<String>,
    /// Where to send `$/progress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_done_token: Option<ProgressToken>,
    /// With it, the rows (`paths`, `top1*`, `codes`) go out as partial results (`$/progress` to
    /// this token) in order as the pass makes them, a few hundred at a time, and the final
    /// result holds none: a client writes them as they come, and neither side holds the folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_result_token: Option<ProgressToken>,
}

fn default_tsne_max() -> usize {
    default::TSNE_MAX_POINTS
}

impl EmbedParams {
    /// The parameters of `convlens embed MODEL DIR` with no other flag (a t-SNE map, no codes,
    /// no picture).
    pub fn new(model_id: impl Into<ModelId>, folder: impl Into<String>) -> Self {
        EmbedParams {
            model_id: model_id.into(),
            pass: FolderPass::new(folder),
            map: default_map(),
            perplexity: default_perplexity(),
            iterations: default_iterations(),
            threads: default::THREADS,
            seed: default::SEED,
            tsne_max: default::TSNE_MAX_POINTS,
            codes: false,
            render: None,
            work_done_token: None,
            partial_result_token: None,
        }
    }
}

/// `folder/embed`'s result. Row `i` of every per-image field belongs to `paths[i]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbedResult {
    /// The model version that answered.
    pub version: u64,
    /// What the pass did.
    pub report: PassReport,
    /// The images, sorted.
    pub paths: Vec<String>,
    /// The map's point per image, when a map was asked for (per image of `mapped`, when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<[f32; 2]>>,
    /// The rows (image indices, in order) the points belong to, when the map is of a sample:
    /// t-SNE beyond `tsne_max` images maps every s-th. Absent when every image has a point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped: Option<Vec<usize>>,
    /// Top-1 class per image.
    pub top1_class: Vec<u32>,
    /// Its label per image.
    pub top1_label: Vec<String>,
    /// Its softmax probability per image.
    pub top1_prob: Vec<f32>,
    /// The codes [N, D], when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes: Option<Array>,
    /// The map's picture, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<Png>,
}

/// `folder/top`'s parameters: the `convlens top` flags, with the same defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopParams {
    /// The model.
    pub model_id: ModelId,
    /// The folder and how it is read (`layer` is required here: the layer whose units are
    /// ranked).
    #[serde(flatten)]
    pub pass: FolderPass,
    /// Units to rank; every unit of the layer when empty.
    #[serde(default)]
    pub units: Vec<usize>,
    /// Images per unit.
    #[serde(default = "default_k_top")]
    pub k: usize,
    /// Whether to return a picture: each unit's top images cropped to its receptive field, one
    /// row per unit.
    #[serde(default)]
    pub render: bool,
    /// Tile size of the picture, in pixels.
    #[serde(default = "default_tile")]
    pub tile: u32,
    /// Where to send `$/progress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_done_token: Option<ProgressToken>,
}

impl TopParams {
    /// The parameters of `convlens top MODEL DIR --layer LAYER` with no other flag.
    pub fn new(
        model_id: impl Into<ModelId>,
        folder: impl Into<String>,
        layer: impl Into<String>,
    ) -> Self {
        let mut pass = FolderPass::new(folder);
        pass.layer = Some(layer.into());
        TopParams {
            model_id: model_id.into(),
            pass,
            units: Vec::new(),
            k: default_k_top(),
            render: false,
            tile: default_tile(),
            work_done_token: None,
        }
    }
}

/// One image in a unit's ranking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopImage {
    /// The image file.
    pub path: String,
    /// The unit's maximum over positions on this image.
    pub value: f32,
    /// Where that maximum is, [row, column] in the layer's positions.
    pub position: [usize; 2],
}

/// A unit's top images (best first) and its statistics over the folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitTop {
    /// The unit (channel).
    pub unit: usize,
    /// Its top images, best first; ties go to the earlier path.
    pub top: Vec<TopImage>,
}

/// One unit's statistics over the folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderUnitStat {
    /// The unit (channel).
    pub unit: usize,
    /// Mean activation over images and positions.
    pub mean: f32,
    /// Largest activation over images and positions.
    pub max: f32,
    /// Fraction of images on which the unit is active (its maximum above 0).
    pub active_fraction: f32,
}

/// `folder/top`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopResult {
    /// The model version that answered.
    pub version: u64,
    /// What the pass did.
    pub report: PassReport,
    /// One ranking per unit asked for.
    pub units: Vec<UnitTop>,
    /// Every unit's statistics over the folder, in unit order.
    pub stats: Vec<FolderUnitStat>,
    /// Units never active on any image.
    pub dead: Vec<usize>,
    /// The picture, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<Png>,
}

/// `folder/neighbors`' parameters: the `convlens neighbors` flags, with the same defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NeighborsParams {
    /// The model.
    pub model_id: ModelId,
    /// The folder and how it is read.
    #[serde(flatten)]
    pub pass: FolderPass,
    /// The query image, absolute path (inside the folder or not; never its own neighbour).
    pub image: String,
    /// How many neighbours.
    #[serde(default = "default_k_neighbors")]
    pub k: usize,
    /// Where to send `$/progress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_done_token: Option<ProgressToken>,
}

impl NeighborsParams {
    /// The parameters of `convlens neighbors MODEL DIR IMAGE` with no other flag.
    pub fn new(
        model_id: impl Into<ModelId>,
        folder: impl Into<String>,
        image: impl Into<String>,
    ) -> Self {
        NeighborsParams {
            model_id: model_id.into(),
            pass: FolderPass::new(folder),
            image: image.into(),
            k: default_k_neighbors(),
            work_done_token: None,
        }
    }
}

/// A neighbouring image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Neighbor {
    /// The image file.
    pub path: String,
    /// Cosine similarity of its code to the query's (1 = same direction).
    pub similarity: f32,
}

/// `folder/neighbors`' result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NeighborsResult {
    /// The model version that answered.
    pub version: u64,
    /// What the pass did.
    pub report: PassReport,
    /// The nearest images, most similar first; ties go to the earlier path.
    pub neighbors: Vec<Neighbor>,
}

fn yes() -> bool {
    true
}
fn default_threads() -> usize {
    default::THREADS
}
fn default_seed() -> u64 {
    default::SEED
}
fn default_batch() -> usize {
    default::BATCH
}
fn default_map() -> MapKind {
    default::MAP
}
fn default_perplexity() -> f32 {
    default::PERPLEXITY
}
fn default_iterations() -> usize {
    default::ITERATIONS
}
fn default_k_top() -> usize {
    default::TOP_K
}
fn default_k_neighbors() -> usize {
    default::NEIGHBORS_K
}
fn default_tile() -> u32 {
    default::TILE
}
