//! `folder/embed`, `folder/top` and `folder/neighbors`: the representation of an image folder, as
//! sweep jobs. One batched pass of the engine (`summarize_files`, whose per-image summaries are
//! kept in the on-disk code cache by model weights, layer, preprocessing and file content) steps
//! the job's progress, so `$/progress` and `$/cancelRequest` work. A finished result is kept in
//! the result cache by its full parameters and the folder's listing (paths, sizes, mtimes), so an
//! unchanged folder is answered at once; its report then says no image was computed.

use std::path::{Path, PathBuf};

use convlens_models::input::Preprocess;
use convlens_models::represent::cache::{default_cache_dir, hex, model_fingerprint};
use convlens_models::represent::codes::{resolve_layer, summarize_files, LayerShape};
use convlens_models::represent::folder::walk_images;
use convlens_models::represent::map_render::{render_grid, render_scatter};
use convlens_models::represent::neighbors::nearest_by_cosine;
use convlens_models::represent::pass::{stream_files, PassInfo, Sink};
use convlens_models::represent::shard::{relative_path, write_shard, Shard};
use convlens_models::represent::shard_read::{open_shards, ShardSet};
use convlens_models::represent::top_units::{top_images, TopAccumulator};
use convlens_models::represent::unit_grid::render_top_grid;
use convlens_models::represent::unit_stats::{unit_stats, StatsAccumulator};
use convlens_models::represent::{FolderSummary, SkippedFile, SummaryOptions};
use convlens_models::{Error, Model};
use convlens_shared::array::Png;
use convlens_shared::methods::folder::{
    EmbedParams, EmbedResult, FolderEmbed, FolderNeighbors, FolderPass, FolderTop, FolderUnitStat,
    Neighbor, NeighborsParams, NeighborsResult, PassReport, TopImage, TopParams, TopResult,
    UnitTop,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::call::{cached, Call};
use super::embed_rows::{label_of, EmbedRows};
use super::router::{sweep, Router};
use crate::error::MethodError;
use crate::files::FileStamp;
use crate::registry::Loaded;
use crate::render::png;

/// The key of a shard job's model fingerprint, stamped by the daemon when it writes a shard.
const FINGERPRINT: &str = "modelFingerprint";

/// Side of the scatter plot, in pixels (as `convlens embed -o`).
const SCATTER_SIZE: u32 = 800;

/// Adds `folder/embed`, `folder/top` and `folder/neighbors`.
pub fn register(r: &mut Router) {
    r.job::<FolderEmbed>(sweep, embed);
    r.job::<FolderTop>(sweep, top);
    r.job::<FolderNeighbors>(sweep, neighbors);
}

/// The codes of the folder's images, their map and its picture.
pub fn embed(call: &Call, p: EmbedParams) -> Result<EmbedResult, MethodError> {
    let render = p.render.as_deref().map(Render::from_name).transpose()?;
    let loaded = call.service.models.acquire(&p.model_id)?;
    let model = &loaded.model;
    let preprocess = preprocess_of(model, p.pass.size)?;
    resolve_layer(model, p.pass.layer.as_deref())?;
    let folder = Folder::read(&p.pass)?;
    // Rows streamed to the client are not kept, so neither is such a result.
    let key = match p.partial_result_token {
        Some(_) => None,
        None => key_of(&p.pass, "folder/embed", &p, &folder, ""),
    };
    reuse_or(call, &loaded, key, || {
        let grid = matches!(render, Some(Render::Grid));
        let (report, dim, rows) = if p.pass.shard.is_some() {
            // A shard writes every row.
            let summary =
                folder.summarize(call, model, &p.pass, p.pass.layer.clone(), preprocess)?;
            let shard_file = folder.write_shard(model, &p.pass, &summary)?;
            let dim = summary.shape.units;
            let mut rows = EmbedRows::new(call, &p, model, loaded.version, summary.len(), grid)?;
            for (i, path) in summary.paths.iter().enumerate() {
                rows.push(
                    path,
                    &summary.codes[i * dim..(i + 1) * dim],
                    summary.top1_class[i],
                    summary.top1_prob[i],
                )?;
            }
            let report = PassReport {
                shard_file,
                ..report_of(&summary)
            };
            (report, dim, rows)
        } else {
            // The folder's pass, or the shards' rows merged, streams by.
            let mut rows = EmbedRows::new(call, &p, model, loaded.version, folder.images, grid)?;
            let report = folder.stream(
                call,
                model,
                &p.pass,
                p.pass.layer.clone(),
                preprocess,
                &mut |_, path, s| rows.push(path, &s.code, s.top1_class, s.top1_prob),
            )?;
            let dim = report.units;
            (report, dim, rows)
        };
        let label = |c: u32| label_of(model, c);
        rows.finish(report, dim, |points, classes, paths| match render {
            Some(Render::Grid) => {
                let n = points.len();
                let tile = (8192 / (n as f64).sqrt().ceil().max(1.0) as u32).clamp(8, 64);
                let seen = preprocess.unwrap_or(model.preprocess);
                let img = render_grid(points, paths, &seen, tile, call.progress)?;
                Ok(Some(picture_of(&img)?))
            }
            Some(Render::Scatter) => Ok(Some(picture_of(&render_scatter(
                points,
                classes,
                &label,
                SCATTER_SIZE,
            ))?)),
            None => Ok(None),
        })
    })
}

/// The images that excite each unit most, and every unit's statistics.
pub fn top(call: &Call, p: TopParams) -> Result<TopResult, MethodError> {
    let layer = p.pass.layer.clone().ok_or_else(|| {
        MethodError::from(Error::InvalidArgument(
            "folder/top needs `layer`: the layer whose units are ranked".into(),
        ))
    })?;
    let loaded = call.service.models.acquire(&p.model_id)?;
    let model = &loaded.model;
    let preprocess = preprocess_of(model, p.pass.size)?;
    let (layer_id, layer_name) = resolve_layer(model, Some(&layer))?;
    let folder = Folder::read(&p.pass)?;
    let key = key_of(&p.pass, "folder/top", &p, &folder, "");
    reuse_or(call, &loaded, key, || {
        let units = (!p.units.is_empty()).then_some(p.units.as_slice());
        let (report, ranking, stats) = if p.pass.shard.is_some() {
            // A shard keeps its rows, to write them.
            let summary =
                folder.summarize(call, model, &p.pass, Some(layer.clone()), preprocess)?;
            let shard_file = folder.write_shard(model, &p.pass, &summary)?;
            let report = PassReport {
                shard_file,
                ..report_of(&summary)
            };
            (
                report,
                top_images(&summary, p.k, units)?,
                unit_stats(&summary),
            )
        } else {
            // The pass (or the shards' rows merged) streams by: k images per unit and a row of
            // sums are all it keeps.
            let mut top = TopAccumulator::new(&layer_name, p.k, units);
            let mut stats = StatsAccumulator::default();
            let report = folder.stream(
                call,
                model,
                &p.pass,
                Some(layer.clone()),
                preprocess,
                &mut |_, path, s| {
                    stats.push(&s.code, &s.max);
                    top.push(path, &s.max, &s.argmax)
                },
            )?;
            let ranking = top.finish(shape_of(&report))?;
            let stats = stats.finish(&report.layer, report.units);
            (report, ranking, stats)
        };
        let picture = if p.render {
            let seen = preprocess.unwrap_or(model.preprocess);
            let img = render_top_grid(model, &seen, layer_id, &ranking, p.tile, call.progress)?;
            Some(picture_of(&img)?)
        } else {
            None
        };
        Ok(TopResult {
            version: loaded.version,
            report,
            units: ranking
                .units
                .iter()
                .map(|u| UnitTop {
                    unit: u.unit,
                    top: u
                        .top
                        .iter()
                        .map(|e| TopImage {
                            path: shown(&e.path),
                            value: e.value,
                            position: [e.y, e.x],
                        })
                        .collect(),
                })
                .collect(),
            stats: stats
                .units
                .iter()
                .map(|s| FolderUnitStat {
                    unit: s.unit,
                    mean: s.mean,
                    max: s.max,
                    active_fraction: s.active_fraction,
                })
                .collect(),
            dead: stats.dead,
            picture,
        })
    })
}

/// The folder's images whose codes are most similar to the query image's.
pub fn neighbors(call: &Call, p: NeighborsParams) -> Result<NeighborsResult, MethodError> {
    let loaded = call.service.models.acquire(&p.model_id)?;
    let model = &loaded.model;
    let preprocess = preprocess_of(model, p.pass.size)?;
    resolve_layer(model, p.pass.layer.as_deref())?;
    let query_path = PathBuf::from(&p.image);
    if !query_path.is_file() {
        let source = std::fs::metadata(&query_path)
            .err()
            .unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file"));
        return Err(Error::Io {
            path: query_path,
            source,
        }
        .into());
    }
    if p.pass.shard.is_some() || p.pass.from_shards.is_some() {
        return Err(Error::InvalidArgument(
            "folder/neighbors does not shard: shards are for embed and top".into(),
        )
        .into());
    }
    let folder = Folder::read(&p.pass)?;
    let query_stamp = format!("{:?}", FileStamp::of(&query_path));
    let key = key_of(&p.pass, "folder/neighbors", &p, &folder, &query_stamp);
    reuse_or(call, &loaded, key, || {
        let (report, paths, codes) = folder.codes_only(call, model, &p.pass, preprocess)?;
        let options = summary_options(&p.pass, p.pass.layer.clone(), preprocess);
        let query = summarize_files(
            model,
            std::slice::from_ref(&query_path),
            &options,
            &convlens_models::progress::Silent,
        )?;
        if let Some(s) = query.skipped.first() {
            return Err(Error::format(s.path.clone(), s.reason.clone()).into());
        }
        // The query itself, when it lies in the folder, is not its own neighbour.
        let canonical = std::fs::canonicalize(&query_path).ok();
        let exclude: Vec<usize> = paths
            .iter()
            .enumerate()
            .filter(|(_, f)| canonical.is_some() && std::fs::canonicalize(f).ok() == canonical)
            .map(|(i, _)| i)
            .collect();
        let found = nearest_by_cosine(
            &codes,
            report.units,
            query.code(0),
            p.k,
            &exclude,
            &model.device,
        )?;
        Ok(NeighborsResult {
            version: loaded.version,
            neighbors: found
                .iter()
                .map(|n| Neighbor {
                    path: shown(&paths[n.index]),
                    similarity: n.similarity,
                })
                .collect(),
            report,
        })
    })
}

/// Which picture of the map to draw.
#[derive(Clone, Copy)]
enum Render {
    Scatter,
    Grid,
}

impl Render {
    fn from_name(name: &str) -> Result<Render, MethodError> {
        match name {
            "scatter" => Ok(Render::Scatter),
            "grid" => Ok(Render::Grid),
            other => Err(Error::InvalidArgument(format!(
                "unknown render `{other}`: scatter or grid"
            ))
            .into()),
        }
    }
}

/// A folder as read for one request: how many images it holds, what was passed over, and what
/// identifies this state of it. Its images are walked again, one at a time, by the pass: nothing
/// holds the folder's listing.
struct Folder {
    dir: PathBuf,
    /// The share of the folder a shard pass reads.
    shard: Option<Shard>,
    /// Image files found (the shard's).
    images: usize,
    /// Entries that could not be listed (the shard's), with the reason.
    unlistable: Vec<(PathBuf, String)>,
    /// Files without an image extension (counted by shard 0 only).
    other_files: usize,
    /// A hash of every image's path, size, mtime and inode, and of the other entries.
    stamp: String,
    /// For a merge: the shards, their headers read and checked.
    shards: Option<ShardSet>,
}

impl Folder {
    /// Walks `folder` (recursively) and stamps every image; a folder that does not exist or is
    /// not a folder is refused, naming it.
    fn read(pass: &FolderPass) -> Result<Folder, MethodError> {
        if pass.shard.is_some() && pass.from_shards.is_some() {
            return Err(Error::InvalidArgument(
                "a pass either runs a shard or merges shards, not both".into(),
            )
            .into());
        }
        let shard = pass
            .shard
            .as_ref()
            .map(|run| Shard::new(run.index, run.count))
            .transpose()?;
        let mut folder = Folder {
            dir: PathBuf::from(&pass.folder),
            shard,
            images: 0,
            unlistable: Vec::new(),
            other_files: 0,
            stamp: String::new(),
            shards: None,
        };
        if let Some(from) = &pass.from_shards {
            // The rows come from the shard files; the folder is read only for pictures.
            let set = open_shards(Path::new(from))?;
            folder.images = set.len();
            folder.shards = Some(set);
            return Ok(folder);
        }
        let (dir, shard) = (folder.dir.clone(), folder.shard);
        let holds = |p: &Path| in_share(&dir, shard, p);
        let mut walk = walk_images(&dir)?;
        let mut stamp = Sha256::new();
        for image in walk.by_ref().filter(|p| holds(p)) {
            stamp.update(format!(
                "{}\t{:?}\n",
                image.display(),
                FileStamp::of(&image)
            ));
            folder.images += 1;
        }
        folder.unlistable = walk
            .unlistable
            .into_iter()
            .filter(|(p, _)| holds(p))
            .collect();
        folder.other_files = match shard {
            Some(s) if !s.counts_other_files() => 0,
            _ => walk.other_files,
        };
        stamp.update(format!("{} other files\n", folder.other_files));
        for (path, reason) in &folder.unlistable {
            stamp.update(format!("unlistable {}\t{reason}\n", path.display()));
        }
        folder.stamp = hex(&stamp.finalize());
        Ok(folder)
    }

    /// The images, walked again, one at a time.
    fn files(&self) -> Result<impl Iterator<Item = PathBuf> + Send, MethodError> {
        let (dir, shard) = (self.dir.clone(), self.shard);
        Ok(walk_images(&self.dir)?.filter(move |p| in_share(&dir, shard, p)))
    }

    /// The engine's pass over the folder's (shard's) images, collected, counted in the daemon's
    /// forward passes: what a shard writes.
    fn summarize(
        &self,
        call: &Call,
        model: &Model,
        pass: &FolderPass,
        layer: Option<String>,
        preprocess: Option<Preprocess>,
    ) -> Result<FolderSummary, MethodError> {
        let options = summary_options(pass, layer, preprocess);
        let files: Vec<PathBuf> = self.files()?.collect();
        let mut summary = summarize_files(model, &files, &options, call.progress)?;
        for _ in 0..summary.forward_passes {
            call.service.activations.count_forward();
        }
        summary.other_files = self.other_files;
        summary
            .skipped
            .extend(self.unlistable.iter().map(|(path, reason)| SkippedFile {
                path: path.clone(),
                reason: reason.clone(),
            }));
        summary.skipped.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(summary)
    }

    /// For a pass over one shard, writes its rows to the shard folder (the job stamped with the
    /// model's fingerprint, which the merge checks) and returns the file.
    fn write_shard(
        &self,
        model: &Model,
        pass: &FolderPass,
        summary: &FolderSummary,
    ) -> Result<Option<String>, MethodError> {
        let Some(run) = &pass.shard else {
            return Ok(None);
        };
        let shard = Shard::new(run.index, run.count)?;
        let mut job = run.job.clone();
        if let Some(fields) = job.as_object_mut() {
            fields.insert(FINGERPRINT.into(), model_fingerprint(model)?.into());
        }
        let file = write_shard(
            Path::new(&run.dir),
            Path::new(&pass.folder),
            shard,
            &job,
            summary,
        )?;
        Ok(Some(shown(&file)))
    }

    /// The streamed pass keeping only what `folder/neighbors` uses: each image's path and code.
    fn codes_only(
        &self,
        call: &Call,
        model: &Model,
        pass: &FolderPass,
        preprocess: Option<Preprocess>,
    ) -> Result<(PassReport, Vec<PathBuf>, Vec<f32>), MethodError> {
        let (mut paths, mut codes) = (Vec::new(), Vec::new());
        let report = self.stream(
            call,
            model,
            pass,
            pass.layer.clone(),
            preprocess,
            &mut |_, path, s| {
                paths.push(path.to_path_buf());
                codes.extend_from_slice(&s.code);
                Ok(())
            },
        )?;
        Ok((report, paths, codes))
    }

    /// The rows of the folder, each given to `sink` in the folder's order: the engine's streamed
    /// pass over its images, or, for a merge, the shards' rows (checked against `model` and
    /// `layer` first). Returns what the pass (or the shards' passes) did.
    fn stream(
        &self,
        call: &Call,
        model: &Model,
        pass: &FolderPass,
        layer: Option<String>,
        preprocess: Option<Preprocess>,
        sink: &mut Sink,
    ) -> Result<PassReport, MethodError> {
        let mut images = 0;
        if let Some(set) = &self.shards {
            check_shards(set, pass, model, layer.as_deref())?;
            let total = set.len();
            call.progress.step(0, total, "merging shards")?;
            set.stream(&self.dir, &mut |path, s| {
                images += 1;
                if images % 256 == 0 {
                    call.progress.step(images, total, "merging shards")?;
                }
                sink(images - 1, path, s)
            })?;
            let totals = set.totals(&self.dir);
            let shape = set.shape();
            return Ok(PassReport {
                layer: set.layer().to_string(),
                units: shape.units,
                positions: [shape.height, shape.width],
                images,
                computed: totals.computed,
                cached: totals.cached,
                forward_passes: totals.forward_passes,
                skipped: wire_skipped(&totals.skipped),
                other_files: totals.other_files,
                cache_file: None,
                shard_file: None,
            });
        }
        let options = summary_options(pass, layer, preprocess);
        let info = stream_files(
            model,
            &mut self.files()?,
            self.images,
            &options,
            call.progress,
            &mut |slot, path, s| {
                images += 1;
                sink(slot, path, s)
            },
        )?;
        for _ in 0..info.forward_passes {
            call.service.activations.count_forward();
        }
        Ok(self.report_of_stream(&info, images))
    }

    /// A streamed pass's unreadable files with the listing's unlistable entries, sorted.
    fn all_skipped(&self, info: &PassInfo) -> Vec<SkippedFile> {
        let mut skipped: Vec<SkippedFile> = info.skipped.clone();
        skipped.extend(self.unlistable.iter().map(|(path, reason)| SkippedFile {
            path: path.clone(),
            reason: reason.clone(),
        }));
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        skipped
    }

    /// The report of a streamed pass that gave `images` rows, with the listing's unlistable
    /// entries and other files.
    fn report_of_stream(&self, info: &PassInfo, images: usize) -> PassReport {
        let skipped = self.all_skipped(info);
        PassReport {
            layer: info.layer.clone(),
            units: info.shape.units,
            positions: [info.shape.height, info.shape.width],
            images,
            computed: info.computed,
            cached: info.cached,
            forward_passes: info.forward_passes,
            skipped: wire_skipped(&skipped),
            other_files: self.other_files,
            cache_file: info.cache_file.as_deref().map(shown),
            shard_file: None,
        }
    }
}

/// Whether `path` (under the folder `dir`) is in `shard`'s share (every path, without a shard).
fn in_share(dir: &Path, shard: Option<Shard>, path: &Path) -> bool {
    shard.is_none_or(|s| s.holds(&relative_path(dir, path)))
}

/// Refuses shards computed with other weights than `model`'s, or at another layer than `layer`
/// (the default layer when `None`).
fn check_shards(
    set: &ShardSet,
    pass: &FolderPass,
    model: &Model,
    layer: Option<&str>,
) -> Result<(), MethodError> {
    let from = pass.from_shards.as_deref().unwrap_or_default();
    let fingerprint = model_fingerprint(model)?;
    if set.job().get(FINGERPRINT).and_then(|f| f.as_str()) != Some(fingerprint.as_str()) {
        return Err(Error::InvalidArgument(format!(
            "{from}: the shards were computed with other weights than this model's"
        ))
        .into());
    }
    let (_, asked) = resolve_layer(model, layer)?;
    if asked != set.layer() {
        return Err(Error::InvalidArgument(format!(
            "{from}: the shards hold layer `{}`, not `{asked}`",
            set.layer()
        ))
        .into());
    }
    Ok(())
}

/// The layer shape a report gives.
fn shape_of(report: &PassReport) -> LayerShape {
    LayerShape {
        units: report.units,
        height: report.positions[0],
        width: report.positions[1],
    }
}

/// The engine's options for a pass: the cache folder asked for, else the default one, unless the
/// cache is off.
fn summary_options(
    pass: &FolderPass,
    layer: Option<String>,
    preprocess: Option<Preprocess>,
) -> SummaryOptions {
    SummaryOptions {
        layer,
        batch: pass.batch,
        cache_dir: if pass.cache {
            pass.cache_dir
                .as_ref()
                .map(PathBuf::from)
                .or_else(default_cache_dir)
        } else {
            None
        },
        preprocess,
        prefetch: pass.prefetch,
    }
}

/// The preprocessing for input size `size` (shorter side to ⌈S·256/224⌉, centre crop S×S, the
/// model's normalization); the model's own when `None`.
fn preprocess_of(model: &Model, size: Option<u32>) -> Result<Option<Preprocess>, MethodError> {
    match size {
        None => Ok(None),
        Some(s) if s < 8 => {
            Err(Error::InvalidArgument(format!("size {s} is too small (at least 8 pixels)")).into())
        }
        Some(s) => Ok(Some(Preprocess {
            resize: (s * 256).div_ceil(224),
            crop: s,
            ..model.preprocess
        })),
    }
}

/// The result-cache key of a request: its method, its parameters without the progress token,
/// the folder's stamp and `extra` (the query image's stamp). `None` when the cache is off.
fn key_of(
    pass: &FolderPass,
    method: &str,
    params: &impl Serialize,
    folder: &Folder,
    extra: &str,
) -> Option<String> {
    // A shard's or a merge's result depends on files the folder's stamp does not cover.
    let shards = pass.shard.is_some() || pass.from_shards.is_some();
    (pass.cache && !shards).then(|| {
        let mut params = serde_json::to_value(params).unwrap_or_default();
        if let Some(fields) = params.as_object_mut() {
            fields.remove("workDoneToken");
        }
        format!("{method} {params} {} {extra}", folder.stamp)
    })
}

/// A result with a pass report.
trait Reported {
    fn report_mut(&mut self) -> &mut PassReport;
}

impl Reported for EmbedResult {
    fn report_mut(&mut self) -> &mut PassReport {
        &mut self.report
    }
}

impl Reported for TopResult {
    fn report_mut(&mut self) -> &mut PassReport {
        &mut self.report
    }
}

impl Reported for NeighborsResult {
    fn report_mut(&mut self) -> &mut PassReport {
        &mut self.report
    }
}

/// The kept result for `key`, its report saying that this call computed nothing, or the result
/// of `compute`, kept. Without a key, `compute` runs and nothing is kept.
fn reuse_or<R: Serialize + DeserializeOwned + Reported>(
    call: &Call,
    loaded: &Loaded,
    key: Option<String>,
    compute: impl FnOnce() -> Result<R, MethodError>,
) -> Result<R, MethodError> {
    let Some(key) = key else {
        return compute();
    };
    let mut fresh = false;
    let mut result = cached(call, &loaded.key(), key, || {
        fresh = true;
        compute()
    })?;
    if !fresh {
        let report = result.report_mut();
        report.cached = report.images;
        report.computed = 0;
        report.forward_passes = 0;
    }
    Ok(result)
}

/// What the pass did, on the wire.
fn report_of(s: &FolderSummary) -> PassReport {
    PassReport {
        layer: s.layer.clone(),
        units: s.shape.units,
        positions: [s.shape.height, s.shape.width],
        images: s.len(),
        computed: s.computed,
        cached: s.cached,
        forward_passes: s.forward_passes,
        skipped: wire_skipped(&s.skipped),
        other_files: s.other_files,
        cache_file: s.cache_file.as_deref().map(shown),
        shard_file: None,
    }
}

/// Unreadable files on the wire.
fn wire_skipped(skipped: &[SkippedFile]) -> Vec<convlens_shared::methods::folder::SkippedFile> {
    skipped
        .iter()
        .map(|f| convlens_shared::methods::folder::SkippedFile {
            path: shown(&f.path),
            reason: f.reason.clone(),
        })
        .collect()
}

/// A path on the wire.
fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// A picture as a PNG on the wire.
fn picture_of(img: &image::RgbImage) -> Result<Png, MethodError> {
    png(img).map_err(|e| MethodError::internal(e.to_string()))
}
