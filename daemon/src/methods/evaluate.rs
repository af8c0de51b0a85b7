//! `image/evaluate`: the explanation `image/explain` gives (from its cache when it has it), then
//! each metric's curve and score on the same input; `folder/evaluate`: that for every image
//! under a folder.

use std::path::Path;

use candle_core::Tensor;
use convlens_models::arch::segmentation::is_segmentation;
use convlens_models::evaluate::confidence::{cam_multiplier, confidence_change};
use convlens_models::evaluate::infidelity::{infidelity, infidelity_perturbations};
use convlens_models::evaluate::randomization::{
    cascade_groups, cascading_randomization, CascadeStep,
};
use convlens_models::evaluate::relevance::{input_attribution, pixel_relevance};
use convlens_models::evaluate::road::{road, road_combined, RoadOptions, RoadOrder, RoadScore};
use convlens_models::evaluate::sensitivity::{sensitivity_max, sensitivity_perturbations};
use convlens_models::evaluate::{causal_curve, CausalMetric, CausalOptions};
use convlens_models::explain::{explain_with_progress, ExplainOptions, TargetSpec};
use convlens_models::progress::{Progress, Silent, Stage};
use convlens_models::represent::folder::list_images;
use convlens_models::Error;
use convlens_shared::choices::Metric;
use convlens_shared::methods::evaluate::{
    EvaluateParams, EvaluateResult, FolderEvaluate, FolderEvaluateResult, ImageEvaluate,
    ImageScores, Score,
};
use convlens_shared::methods::explain::Skipped;
use convlens_shared::methods::folder::SkippedFile;

use super::call::Call;
use super::explain::{explain, explain_options};
use super::router::{interactive, sweep, Router};
use crate::error::MethodError;
use crate::files::ImageKey;

/// Adds `image/evaluate` and `folder/evaluate`.
pub fn register(r: &mut Router) {
    r.job::<ImageEvaluate>(interactive, evaluate);
    r.job::<FolderEvaluate>(sweep, evaluate_folder);
}

/// Scores every image under the folder `p.explain.image` names, one `image/evaluate` each, with
/// `$/progress` per image (and within it); a file that cannot be scored is listed, not fatal.
pub fn evaluate_folder(
    call: &Call,
    p: EvaluateParams,
) -> Result<FolderEvaluateResult, MethodError> {
    let listing = list_images(Path::new(&p.explain.image))?;
    let mut result = FolderEvaluateResult {
        skipped_files: listing
            .unlistable
            .iter()
            .map(|(path, reason)| SkippedFile {
                path: path.display().to_string(),
                reason: reason.clone(),
            })
            .collect(),
        ..FolderEvaluateResult::default()
    };
    let count = listing.images.len();
    if count == 0 {
        return Err(Error::InvalidArgument(format!(
            "{}: no images in this folder",
            p.explain.image
        ))
        .into());
    }
    for (index, path) in listing.images.iter().enumerate() {
        let name = path.display().to_string();
        let stage = Stage {
            inner: call.progress,
            index,
            count,
            name: &name,
        };
        stage.step(0, 1, "evaluate")?;
        let one = Call {
            progress: &stage,
            ..*call
        };
        let mut asked = p.clone();
        asked.explain.image = name.clone();
        match evaluate(&one, asked) {
            Ok(scored) => {
                result.version = scored.version;
                if result.randomized_layers.is_empty() {
                    result.randomized_layers = scored.randomized_layers;
                }
                result.images.push(ImageScores {
                    image: name,
                    class: scored.class,
                    label: scored.label,
                    scores: scored.scores,
                    skipped: scored.skipped,
                });
            }
            Err(err) if err.is_cancelled() => return Err(err),
            // A request that no image could satisfy (an unknown metric, a bad parameter) is the
            // request's error, said once; a bad file is that file's.
            Err(err) if result.images.is_empty() && index + 1 == count => return Err(err),
            Err(err) => result.skipped_files.push(SkippedFile {
                path: name,
                reason: err.to_string(),
            }),
        }
    }
    call.progress.step(count * 100, count * 100, "evaluate")?;
    Ok(result)
}

/// Scores the explanation of one image by each metric asked for.
pub fn evaluate(call: &Call, p: EvaluateParams) -> Result<EvaluateResult, MethodError> {
    if p.metrics.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "no metric asked for; known: {}",
            Metric::NAMES.join(", ")
        ))
        .into());
    }
    if let Some(target) = p.explain.target.as_ref().filter(|t| t.classes.len() > 1) {
        return Err(Error::InvalidArgument(format!(
            "evaluate scores one class's probability; the target `{target}` sums several \
             (explain it with `image/explain`, or score each class)"
        ))
        .into());
    }
    if p.explain.target_image.is_some() {
        return Err(Error::InvalidArgument(
            "evaluate scores a class's probability; a similarity to a reference image has none, \
             so it is explained (`image/explain`), not scored"
                .into(),
        )
        .into());
    }
    if p.explain.region.is_some() {
        return Err(Error::InvalidArgument(
            "evaluate scores a class's probability; a region of a segmentation has none, so it \
             is explained (`image/explain`), not scored"
                .into(),
        )
        .into());
    }
    {
        let loaded = call.service.models.acquire(&p.explain.model_id)?;
        if is_segmentation(&loaded.model.arch) {
            return Err(Error::InvalidArgument(format!(
                "evaluate scores a classifier's class probability; {} is a segmentation model \
                 (explain its regions with `image/explain`)",
                loaded.model.arch
            ))
            .into());
        }
    }
    // The explanation as `image/explain` gives it for these parameters (kept with its maps, so
    // an overlay already drawn is not computed again).
    let mut asked = p.explain.clone();
    asked.map = true;
    asked.partial_result_token = None;
    let explained = explain(call, asked)?;
    let loaded = call.service.models.acquire(&p.explain.model_id)?;
    let model = &loaded.model;
    let image = ImageKey::of(Path::new(&p.explain.image));
    let input = call
        .service
        .inputs
        .get_or_load(&loaded.key(), model, &image)?;
    let (height, width) = (input.dim(2)?, input.dim(3)?);
    // Parameters no map can fix are the request's error; the perturbations are the same for
    // every method (one seed), so they are drawn once.
    let asks = |m: Metric| p.metrics.contains(&m);
    let road_options = RoadOptions {
        percentiles: p.road_percentiles.clone(),
        noise: p.road_noise,
        seed: p.explain.seed,
        batch: p.explain.batch,
    };
    road_options.check()?;
    let infidelity_noise = if asks(Metric::Infidelity) {
        infidelity_perturbations(
            input.dims(),
            p.perturbations,
            p.infidelity_noise,
            p.explain.seed,
            &model.device,
        )?
    } else {
        Vec::new()
    };
    let sensitivity_deltas = if asks(Metric::SensitivityMax) {
        sensitivity_perturbations(
            input.dims(),
            p.perturbations,
            p.sensitivity_radius,
            p.explain.seed,
            &model.device,
        )?
    } else {
        Vec::new()
    };
    let mut scores = Vec::new();
    let mut skipped = Vec::new();
    let mut randomized_layers = Vec::new();
    for e in &explained.explanations {
        let map = e
            .map
            .as_ref()
            .ok_or_else(|| MethodError::internal("image/explain returned no map"))?;
        let values = map
            .to_f32()
            .map_err(|err| MethodError::internal(err.to_string()))?;
        let map = Tensor::from_vec(values, map.shape.as_slice(), &model.device)?;
        let relevance = pixel_relevance(&map, height, width)?;
        let mut skip = |metric: Metric, err: MethodError| {
            skipped.push(Skipped {
                method: e.method,
                error: format!("{metric}: {err}"),
            })
        };
        // ROAD's two orders, each computed once for however many ROAD metrics ask.
        let ranks_by_road = p.metrics.iter().any(|m| {
            matches!(
                m,
                Metric::RoadMorf | Metric::RoadLerf | Metric::RoadCombined
            )
        });
        let cam = if ranks_by_road {
            Some(cam_multiplier(&map, height, width)?)
        } else {
            None
        };
        let mut orders: [Option<RoadScore>; 2] = [None, None];
        let mut road_of = |order: RoadOrder| -> Result<RoadScore, MethodError> {
            let slot = &mut orders[usize::from(order == RoadOrder::LeastRelevantFirst)];
            if let Some(score) = slot {
                return Ok(score.clone());
            }
            let cam = cam
                .as_ref()
                .ok_or_else(|| MethodError::internal("ROAD asked for without its map"))?;
            let score = road(
                model,
                &input,
                cam,
                e.class,
                order,
                &road_options,
                call.progress,
            )?;
            *slot = Some(score.clone());
            Ok(score)
        };
        // The randomization cascade, computed once for both of its metrics.
        let mut cascade: Option<Vec<CascadeStep>> = None;
        let mut cascade_of = || -> Result<Vec<CascadeStep>, MethodError> {
            if let Some(steps) = &cascade {
                return Ok(steps.clone());
            }
            // The same method and parameters, for the class the trained model's map explains.
            let options = ExplainOptions {
                method: e.method,
                target: Some(TargetSpec::class(e.class)),
                ..explain_options(&p.explain)
            };
            // One stage of the progress per block re-initialized (each may be cancelled).
            let count = cascade_groups(&model.graph).len();
            let mut index = 0;
            let mut relevance_of = |randomized: &convlens_models::Model| {
                let stage = Stage {
                    inner: call.progress,
                    index,
                    count,
                    name: "randomization",
                };
                index += 1;
                let map = explain_with_progress(randomized, &input, &options, &stage)?.map;
                pixel_relevance(&map, height, width)
            };
            let steps = cascading_randomization(
                model,
                &relevance,
                &mut relevance_of,
                p.explain.seed,
                &Silent,
            )?;
            cascade = Some(steps.clone());
            Ok(steps)
        };
        for &metric in &p.metrics {
            let curve_of = |kind: CausalMetric| {
                let options = CausalOptions {
                    step: p.step,
                    batch: p.explain.batch,
                    ..CausalOptions::new(kind)
                };
                causal_curve(model, &input, &relevance, e.class, &options, call.progress)
            };
            // A map a metric cannot judge (for ROAD, one flat at its minimum over more of the
            // image than a percentile) skips that metric for that method, as `all` skips a
            // method that does not apply; the rest go on.
            let mut score = || -> Result<(f32, Vec<f32>), MethodError> {
                Ok(match metric {
                    Metric::Deletion | Metric::Insertion => {
                        let kind = if metric == Metric::Deletion {
                            CausalMetric::Deletion
                        } else {
                            CausalMetric::Insertion
                        };
                        let curve = curve_of(kind)?;
                        (curve.auc, curve.probabilities)
                    }
                    Metric::ConfidenceChange => {
                        let cam = cam_multiplier(&map, height, width)?;
                        (confidence_change(model, &input, &cam, e.class)?, Vec::new())
                    }
                    Metric::RoadMorf | Metric::RoadLerf => {
                        let score = road_of(if metric == Metric::RoadMorf {
                            RoadOrder::MostRelevantFirst
                        } else {
                            RoadOrder::LeastRelevantFirst
                        })?;
                        (score.mean, score.changes)
                    }
                    Metric::RoadCombined => {
                        let most = road_of(RoadOrder::MostRelevantFirst)?;
                        let least = road_of(RoadOrder::LeastRelevantFirst)?;
                        (road_combined(&most, &least), Vec::new())
                    }
                    Metric::Infidelity => {
                        let channels = input.dim(1)?;
                        let attribution = input_attribution(&map, channels, height, width)?;
                        let value = infidelity(
                            model,
                            &input,
                            &attribution,
                            e.class,
                            &infidelity_noise,
                            p.infidelity_normalize,
                            p.explain.batch,
                        )?;
                        (value, Vec::new())
                    }
                    Metric::SensitivityMax => {
                        let deltas = &sensitivity_deltas;
                        // The same method and parameters, for the class explained.
                        let options = ExplainOptions {
                            method: e.method,
                            target: Some(TargetSpec::class(e.class)),
                            ..explain_options(&p.explain)
                        };
                        let mut index = 0;
                        let mut again = |x: &Tensor| {
                            let stage = Stage {
                                inner: call.progress,
                                index,
                                count: deltas.len(),
                                name: "sensitivity",
                            };
                            index += 1;
                            Ok(explain_with_progress(model, x, &options, &stage)?.map)
                        };
                        let value =
                            sensitivity_max(&mut again, &input, &map, deltas, call.progress)?;
                        (value, Vec::new())
                    }
                    Metric::RandomizationSpearman | Metric::RandomizationSsim => {
                        let steps = cascade_of()?;
                        if randomized_layers.is_empty() {
                            randomized_layers = steps.iter().map(|s| s.layer.clone()).collect();
                        }
                        let curve: Vec<f32> = steps
                            .iter()
                            .map(|s| {
                                if metric == Metric::RandomizationSpearman {
                                    s.spearman
                                } else {
                                    s.ssim
                                }
                            })
                            .collect();
                        let mean = curve.iter().sum::<f32>() / curve.len().max(1) as f32;
                        (mean, curve)
                    }
                })
            };
            match score() {
                Ok((value, curve)) => scores.push(Score {
                    method: e.method,
                    metric,
                    value,
                    curve,
                }),
                Err(err) if err.is_cancelled() => return Err(err),
                Err(err) => skip(metric, err),
            }
        }
    }
    let first = explained.explanations.first();
    Ok(EvaluateResult {
        version: explained.version,
        class: first.map_or(
            p.explain
                .target
                .as_ref()
                .and_then(TargetSpec::single_index)
                .unwrap_or_default(),
            |e| e.class,
        ),
        label: first.and_then(|e| e.label.clone()),
        scores,
        skipped: [explained.skipped.clone(), skipped].concat(),
        randomized_layers,
    })
}
