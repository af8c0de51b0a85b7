//! The link to the daemon: the app's requests become protocol calls through
//! `convlens_shared::Client`, answers and notifications become [`Event`]s. Every call runs on a
//! thread of its own so the screen never waits; a newer request in a slot sends
//! `$/cancelRequest` for the older one still running. A request that asks for partial results
//! (`explain all`) has each piece come back as an [`Event::Partial`] of its ticket before the
//! whole answer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use convlens_shared::choices::{MethodSelection, Metric, Preset};
use convlens_shared::sync::lock;
use convlens_shared::target::TargetSpec;
use std::time::{SystemTime, UNIX_EPOCH};

use convlens_shared::methods::activations::{ActivationsParams, UnitActivations};
use convlens_shared::methods::deconv::{DeconvParams, UnitDeconv};
use convlens_shared::methods::evaluate::{EvaluateParams, EvaluateResult, ImageEvaluate};
use convlens_shared::methods::explain::{
    ExplainParams, ExplainResult, ExplanationData, ImageExplain,
};
use convlens_shared::methods::filters::{FiltersParams, LayerFilters};
use convlens_shared::methods::folder::{EmbedParams, FolderEmbed, FolderTop, TopParams};
use convlens_shared::methods::history::{AtVersionParams, ModelAtVersion, ModelVersions};
use convlens_shared::methods::images::{FolderParams, ImageList, ImagesChangedParams};
use convlens_shared::methods::maximize::{MaximizeParams, UnitMaximize};
use convlens_shared::methods::model::{
    LayersParams, LoadParams, ModelLayers, ModelLoad, ModelRef, ReloadFailedParams, ReloadedParams,
};
use convlens_shared::methods::predict::{ImagePredict, PredictParams};
use convlens_shared::methods::progress::{PartialResultParams, WorkDoneProgress};
use convlens_shared::methods::watch::{WatchAdd, WatchParams};
use convlens_shared::methods::{NotificationMethod, RequestMethod};
use convlens_shared::{Client, ClientError, Notification, RequestId};

use crate::data::{
    filter_tiles, shrink_maps, ClassScore, Evaluation, Explanation, Explanations, Faithfulness,
    FilterBank, Layer, LayerActivations, ModelView, Picture, Prediction, SkippedMethod, UnitStats,
};
use crate::event::{Connection, Event, Reply};
use crate::folder::{folder_map, layer_over_folder};
use crate::photos;
use crate::remote::Progress;
use crate::request::{Feature, Outgoing, Request, Slot, Ticket};
use crate::timeline::{self, time_of_day};

/// Feature maps are averaged down to at most this many positions a side (a grid tile shows at
/// most 8×8 pixels).
const MAX_MAP: usize = 16;

/// Pictures from the daemon are shrunk to this many pixels on their longer side.
const MAX_PICTURE: u32 = 512;

/// Images the inspector's top list holds per unit.
const TOP_K: usize = 5;

/// Tile size, in pixels, of the inspector's cropped best image.
const CROP_TILE: u32 = 128;

/// The faithfulness metrics the overlay's scores are made of.
const METRICS: [Metric; 3] = [Metric::Deletion, Metric::Insertion, Metric::RoadCombined];

/// The metrics asked for `method`: one method's scores also carry the randomization sanity
/// check (it explains the image again per block of the network, too long for every method of
/// `all` at once).
fn metrics_for(method: MethodSelection) -> Vec<Metric> {
    let mut metrics = METRICS.to_vec();
    if let MethodSelection::One(_) = method {
        metrics.push(Metric::RandomizationSpearman);
    }
    metrics
}

/// The protocol method each feature needs.
pub fn method_of(feature: Feature) -> &'static str {
    match feature {
        Feature::Model => ModelLoad::NAME,
        Feature::Images => WatchAdd::NAME,
        Feature::Predict => ImagePredict::NAME,
        Feature::Explain => ImageExplain::NAME,
        Feature::Evaluate => ImageEvaluate::NAME,
        Feature::Activations => UnitActivations::NAME,
        Feature::FolderTop => FolderTop::NAME,
        Feature::Deconv => UnitDeconv::NAME,
        Feature::Maximize => UnitMaximize::NAME,
        Feature::Filters => LayerFilters::NAME,
        Feature::Map => FolderEmbed::NAME,
        Feature::Versions => ModelVersions::NAME,
        Feature::AtVersion => ModelAtVersion::NAME,
    }
}

/// Every feature.
const FEATURES: &[Feature] = &[
    Feature::Model,
    Feature::Images,
    Feature::Predict,
    Feature::Explain,
    Feature::Evaluate,
    Feature::Activations,
    Feature::FolderTop,
    Feature::Deconv,
    Feature::Maximize,
    Feature::Filters,
    Feature::Map,
    Feature::Versions,
    Feature::AtVersion,
];

/// Where events go (the UI's channel).
pub type Emit = Arc<dyn Fn(Event) + Send + Sync>;

/// Opens the connection to the daemon (starting one when none runs).
pub type Connect = Box<dyn FnOnce() -> Result<Client, String> + Send>;

/// The UI's handle: send requests here.
pub struct Link {
    requests: Sender<Outgoing>,
}

impl Link {
    /// Connects on a thread of its own (the UI shows "connecting" meanwhile) and serves
    /// requests from then on.
    pub fn start(connect: Connect, emit: Emit) -> Link {
        let (requests, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("convlens-link".into())
            .spawn({
                let emit = emit.clone();
                move || serve(connect, rx, emit)
            });
        if let Err(e) = spawned {
            emit(Event::Disconnected(format!(
                "cannot start the link thread: {e}"
            )));
        }
        Link { requests }
    }

    /// Sends the app's requests.
    pub fn send(&self, requests: Vec<Outgoing>) {
        for r in requests {
            let _ = self.requests.send(r);
        }
    }
}

/// Turns a partial result's `value` into the reply piece it is.
type DecodePartial = fn(serde_json::Value) -> Result<Reply, String>;

/// What the link threads share.
struct Shared {
    client: Client,
    emit: Emit,
    /// The request running in each slot: its ticket and protocol id.
    running: Mutex<HashMap<Slot, (u64, RequestId)>>,
    /// Progress tokens to tickets.
    tokens: Mutex<HashMap<String, Ticket>>,
    /// Partial-result tokens to tickets, with how to read their pieces.
    partials: Mutex<HashMap<String, (Ticket, DecodePartial)>>,
    /// The open model's id (to pick out its reload notices).
    model_id: Mutex<Option<String>>,
}

fn serve(connect: Connect, requests: Receiver<Outgoing>, emit: Emit) {
    let client = match connect() {
        Ok(c) => c,
        Err(e) => {
            emit(Event::Disconnected(e));
            return;
        }
    };
    let methods: Vec<String> = client
        .server()
        .map(|s| s.capabilities.methods.clone())
        .unwrap_or_default();
    let device = client
        .server()
        .map_or_else(|| "?".into(), |s| s.capabilities.device.clone());
    let notifications = client.take_notifications();
    let shared = Arc::new(Shared {
        client,
        emit: emit.clone(),
        running: Mutex::new(HashMap::new()),
        tokens: Mutex::new(HashMap::new()),
        partials: Mutex::new(HashMap::new()),
        model_id: Mutex::new(None),
    });
    emit(Event::Connected(Connection {
        device,
        unavailable: unavailable(&methods),
    }));
    if let Some(rx) = notifications {
        let shared = Arc::clone(&shared);
        let _ = std::thread::Builder::new()
            .name("convlens-link-notices".into())
            .spawn(move || {
                while let Ok(n) = rx.recv() {
                    on_notification(&shared, n);
                }
                (shared.emit)(Event::Disconnected(
                    "the daemon closed the connection".into(),
                ));
            });
    }
    while let Ok(outgoing) = requests.recv() {
        dispatch(&shared, &methods, outgoing);
    }
}

/// Features the daemon lacks, with the method each needs.
pub fn unavailable(methods: &[String]) -> Vec<(Feature, String)> {
    FEATURES
        .iter()
        .filter(|f| {
            let name = method_of(**f);
            let images_fallback =
                **f == Feature::Images && methods.iter().any(|m| m == ImageList::NAME);
            !methods.iter().any(|m| m == name) && !images_fallback
        })
        .map(|f| (*f, method_of(*f).to_string()))
        .collect()
}

fn dispatch(shared: &Arc<Shared>, methods: &[String], outgoing: Outgoing) {
    let Outgoing { ticket, request } = outgoing;
    if let Request::LoadPhoto { path } = &request {
        let (emit, path) = (shared.emit.clone(), path.clone());
        let _ = std::thread::Builder::new()
            .name("convlens-photo".into())
            .spawn(move || match photos::load(&path) {
                Ok(p) => emit(Event::Reply(ticket, Reply::Photo(p))),
                Err(e) => emit(Event::Failed(ticket, e)),
            });
        return;
    }
    let shared = Arc::clone(shared);
    let watch = methods.iter().any(|m| m == WatchAdd::NAME);
    let _ = std::thread::Builder::new()
        .name("convlens-call".into())
        .spawn(move || {
            let result = call(&shared, &ticket, request, watch);
            {
                let mut running = lock(&shared.running);
                if running
                    .get(&ticket.slot)
                    .is_some_and(|(seq, _)| *seq == ticket.seq)
                {
                    running.remove(&ticket.slot);
                }
            }
            lock(&shared.tokens).remove(&token(&ticket));
            lock(&shared.partials).remove(&partial_token(&ticket));
            (shared.emit)(match result {
                Ok(reply) => Event::Reply(ticket, reply),
                Err(e) => Event::Failed(ticket, e),
            });
        });
}

/// The progress token of a ticket.
fn token(ticket: &Ticket) -> String {
    format!("tui-{}", ticket.seq)
}

/// A progress token for `ticket`, registered so that its `$/progress` reaches the ticket's view.
fn watch_progress(shared: &Shared, ticket: &Ticket) -> RequestId {
    let token = token(ticket);
    lock(&shared.tokens).insert(token.clone(), ticket.clone());
    RequestId::String(token)
}

/// The partial-result token of a ticket.
fn partial_token(ticket: &Ticket) -> String {
    format!("tui-{}-partial", ticket.seq)
}

/// A partial-result token for `ticket`, registered so that each piece sent to it reaches the
/// ticket's view as an [`Event::Partial`], read by `decode`.
fn watch_partials(shared: &Shared, ticket: &Ticket, decode: DecodePartial) -> RequestId {
    let token = partial_token(ticket);
    lock(&shared.partials).insert(token.clone(), (ticket.clone(), decode));
    RequestId::String(token)
}

/// The text a token is registered under.
fn token_key(token: &RequestId) -> String {
    match token {
        RequestId::String(s) => s.clone(),
        RequestId::Number(n) => n.to_string(),
    }
}

/// Starts `M`, first cancelling the request still running in the ticket's slot.
fn start<M: RequestMethod>(
    shared: &Shared,
    ticket: &Ticket,
    params: &M::Params,
) -> Result<M::Result, String> {
    let pending = shared.client.start::<M>(params).map_err(describe)?;
    let older =
        lock(&shared.running).insert(ticket.slot.clone(), (ticket.seq, pending.id().clone()));
    if let Some((seq, id)) = older {
        if seq < ticket.seq {
            let _ = shared.client.cancel(&id);
        }
    }
    pending.wait().map_err(describe)
}

fn describe(e: ClientError) -> String {
    e.to_string()
}

/// Absolute form of a path (the daemon runs in its own folder).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn text(path: &Path) -> String {
    absolute(path).display().to_string()
}

fn call(shared: &Shared, ticket: &Ticket, request: Request, watch: bool) -> Result<Reply, String> {
    match request {
        Request::OpenModel { model, load } => {
            let path = if model == "demo" || model.starts_with("random:") {
                model
            } else {
                text(Path::new(&model))
            };
            let params = LoadParams {
                path,
                watch: Some(true),
                ..load
            };
            let loaded = start::<ModelLoad>(shared, ticket, &params)?;
            let id = loaded.model.model_id.clone();
            let note = loaded.note.clone();
            *lock(&shared.model_id) = Some(id.clone());
            let layers = start::<ModelLayers>(
                shared,
                ticket,
                &LayersParams {
                    model_id: id.clone(),
                    input_size: loaded.model.input_size,
                },
            )?;
            Ok(Reply::Model(ModelView {
                model_id: id,
                arch: layers.arch,
                source: layers.source,
                version: layers.version.max(loaded.model.version),
                classes: loaded.model.classes,
                total_params: layers.total_params,
                layers: layers
                    .layers
                    .into_iter()
                    .map(|l| Layer {
                        path: l.path,
                        class_name: l.class_name,
                        depth: l.depth,
                        output_shape: l.output_shape,
                        params: l.params,
                        is_leaf: l.is_leaf,
                    })
                    .collect(),
                note,
            }))
        }
        Request::ListImages { folder } => {
            let images = if watch {
                start::<WatchAdd>(
                    shared,
                    ticket,
                    &WatchParams {
                        path: text(&folder),
                    },
                )?
                .images
            } else {
                start::<ImageList>(
                    shared,
                    ticket,
                    &FolderParams {
                        folder: text(&folder),
                    },
                )?
                .images
            };
            Ok(Reply::Images(
                images.into_iter().map(PathBuf::from).collect(),
            ))
        }
        Request::Predict { model_id, image } => {
            let params = PredictParams {
                model_id,
                images: vec![text(&image)],
                top: 5,
                logits: false,
            };
            let result = start::<ImagePredict>(shared, ticket, &params)?;
            let p = result
                .predictions
                .into_iter()
                .next()
                .ok_or("the daemon answered no prediction")?;
            Ok(Reply::Predict(Prediction {
                image,
                top: p
                    .top
                    .into_iter()
                    .map(|c| ClassScore {
                        class: c.class,
                        label: c.label,
                        prob: c.prob,
                    })
                    .collect(),
            }))
        }
        Request::Explain {
            model_id,
            image,
            method,
            class,
            layer,
        } => {
            let mut params = explain_params(model_id, &image, method, class, layer);
            params.work_done_token = Some(watch_progress(shared, ticket));
            if method == MethodSelection::All {
                // Each method's overlay as it is done (cheapest first), then all of them.
                params.partial_result_token = Some(watch_partials(shared, ticket, explain_piece));
                let result = start::<ImageExplain>(shared, ticket, &params)?;
                return explanations(result).map(Reply::ExplainAll);
            }
            let result = start::<ImageExplain>(shared, ticket, &params)?;
            let e = result.explanations.into_iter().next().ok_or_else(|| {
                match result.skipped.first() {
                    Some(s) => format!("{}: {}", s.method, s.error),
                    None => "the daemon answered no explanation".to_string(),
                }
            })?;
            let mut e = explanation(e)?;
            e.segmentation = result
                .segmentation
                .map(|png| {
                    let bytes = png.to_bytes().map_err(|e| e.to_string())?;
                    Picture::decode(&bytes, MAX_PICTURE)
                })
                .transpose()?;
            Ok(Reply::Explain(e))
        }
        Request::Evaluate {
            model_id,
            image,
            method,
            class,
            layer,
        } => {
            // The overlay's own explanation parameters, so that the daemon can take the
            // explanation from its cache.
            let mut explain = explain_params(model_id, &image, method, class, layer);
            explain.work_done_token = Some(watch_progress(shared, ticket));
            let params = EvaluateParams::new(explain, metrics_for(method));
            let result = start::<ImageEvaluate>(shared, ticket, &params)?;
            evaluation(result, method).map(Reply::Evaluate)
        }
        Request::LoadPhoto { path } => photos::load(&path).map(Reply::Photo),
        Request::Activations {
            model_id,
            layer,
            image,
        } => {
            let params = ActivationsParams::new(model_id, text(&image), layer.clone());
            let result = start::<UnitActivations>(shared, ticket, &params)?;
            let [channels, h, w] = result.shape;
            let maps = result
                .maps
                .ok_or("the daemon sent no maps")?
                .to_f32()
                .map_err(|e| e.to_string())?;
            let (maps, height, width) = shrink_maps(&maps, channels, h, w, MAX_MAP)?;
            Ok(Reply::Activations(LayerActivations {
                layer,
                image,
                height,
                width,
                maps,
                stats: result
                    .channels
                    .iter()
                    .map(|c| UnitStats {
                        mean: c.mean,
                        max: c.max,
                        frac_active: c.active_fraction,
                    })
                    .collect(),
            }))
        }
        Request::Deconv {
            model_id,
            layer,
            unit,
            image,
        } => {
            let mut params = DeconvParams::new(model_id, text(&image), layer, vec![unit]);
            params.signals = false;
            params.render = true;
            params.work_done_token = Some(watch_progress(shared, ticket));
            let result = start::<UnitDeconv>(shared, ticket, &params)?;
            let png = result
                .picture
                .ok_or("the daemon sent no reconstruction picture")?;
            let bytes = png.to_bytes().map_err(|e| e.to_string())?;
            Ok(Reply::Deconv(Picture::decode(&bytes, MAX_PICTURE)?))
        }
        Request::Filters { model_id, layer } => {
            let mut params = FiltersParams::new(model_id, Some(layer.clone()));
            params.weights = true;
            params.render = false;
            let result = start::<LayerFilters>(shared, ticket, &params)?;
            let kernel = result.weights.ok_or("the daemon sent no kernel")?;
            let values = kernel.to_f32().map_err(|e| e.to_string())?;
            let max_inputs = convlens_shared::defaults::filters::MAX_INPUTS;
            let tiles = filter_tiles(&values, &kernel.shape, result.rgb, max_inputs)?;
            let inputs = kernel.shape.get(1).copied().unwrap_or(0);
            let note = if result.rgb {
                "RGB of the 3 input channels, mid-grey = 0".to_string()
            } else if inputs <= 1 {
                "one input channel, mid-grey = 0".to_string()
            } else if inputs <= max_inputs {
                format!("each of its {inputs} input channels, mid-grey = 0")
            } else {
                format!("its first {max_inputs} of {inputs} input channels, mid-grey = 0")
            };
            Ok(Reply::Filters(FilterBank { layer, tiles, note }))
        }
        Request::Maximize {
            model_id,
            layer,
            unit,
            preset,
        } => {
            // The preset's own steps (500–1000): minutes on a CPU, so the inspector shows the
            // daemon's step progress as a gauge meanwhile.
            let mut params = MaximizeParams::channel(model_id, layer, unit);
            // The pixel presets stay near the mean image: shown stretched, as the toolbox does.
            params.stretch = preset != Preset::Lucid;
            params.preset = preset;
            params.render = true;
            params.work_done_token = Some(watch_progress(shared, ticket));
            let result = start::<UnitMaximize>(shared, ticket, &params)?;
            let png = result
                .pictures
                .into_iter()
                .next()
                .ok_or("the daemon sent no maximization picture")?;
            let bytes = png.to_bytes().map_err(|e| e.to_string())?;
            Ok(Reply::Maximize(Picture::decode(&bytes, MAX_PICTURE)?))
        }
        Request::FolderTop {
            model_id,
            layer,
            folder,
        } => {
            // Every unit in one pass: the inspector then moves between units with no request.
            let mut params = TopParams::new(model_id, text(&folder), layer);
            params.k = TOP_K;
            params.work_done_token = Some(watch_progress(shared, ticket));
            let result = start::<FolderTop>(shared, ticket, &params)?;
            layer_over_folder(result).map(Reply::FolderTop)
        }
        Request::TopCrop {
            model_id,
            layer,
            unit,
            folder,
        } => {
            // The layer's pass is cached by now (asked after its folder/top answer): this only
            // reads and crops the one image.
            let mut params = TopParams::new(model_id, text(&folder), layer);
            params.units = vec![unit];
            params.k = 1;
            params.render = true;
            params.tile = CROP_TILE;
            let result = start::<FolderTop>(shared, ticket, &params)?;
            let png = result
                .picture
                .ok_or("the daemon sent no top-image picture")?;
            let bytes = png.to_bytes().map_err(|e| e.to_string())?;
            Ok(Reply::TopCrop(Picture::decode(&bytes, MAX_PICTURE)?))
        }
        Request::Versions { model_id } => {
            let result = start::<ModelVersions>(shared, ticket, &ModelRef { model_id })?;
            Ok(Reply::Versions(timeline::versions(result)))
        }
        Request::AtVersion { model_id, version } => {
            let params = AtVersionParams { model_id, version };
            let loaded = start::<ModelAtVersion>(shared, ticket, &params)?;
            Ok(Reply::AtVersion(loaded.model.model_id))
        }
        Request::Map {
            model_id,
            layer,
            folder,
        } => {
            let mut params = EmbedParams::new(model_id, text(&folder));
            params.pass.layer = layer;
            params.map = convlens_shared::choices::MapKind::Tsne;
            params.work_done_token = Some(watch_progress(shared, ticket));
            let result = start::<FolderEmbed>(shared, ticket, &params)?;
            folder_map(result).map(Reply::Map)
        }
    }
}

/// The parameters of the overlay's explanation of `image`: one method's or `all`'s, for
/// `class` (the top one when `None`), a CAM at `layer` (the daemon's default when `None`),
/// rendered, without the raw maps.
fn explain_params(
    model_id: String,
    image: &Path,
    method: MethodSelection,
    class: Option<usize>,
    layer: Option<String>,
) -> ExplainParams {
    let mut params = ExplainParams::new(model_id, text(image));
    params.method = method;
    params.target = class.map(TargetSpec::class);
    params.layer = layer;
    params.map = false;
    params.render = true;
    params
}

/// The scores of `method`'s explanation (or every method's), each method's metrics together,
/// in the daemon's order (display order); an error when the one method asked for was skipped.
fn evaluation(result: EvaluateResult, method: MethodSelection) -> Result<Evaluation, String> {
    let mut methods: Vec<(String, Faithfulness)> = Vec::new();
    for score in result.scores {
        let name = score.method.name();
        let at = match methods.iter().position(|(m, _)| m == name) {
            Some(at) => at,
            None => {
                methods.push((name.to_string(), Faithfulness::default()));
                methods.len() - 1
            }
        };
        // Only the metrics asked for are read (another metric, if sent, is not shown).
        let f = &mut methods[at].1;
        match score.metric {
            Metric::Deletion => f.deletion = Some(score.value),
            Metric::Insertion => f.insertion = Some(score.value),
            Metric::RoadCombined => f.road = Some(score.value),
            Metric::RandomizationSpearman => f.randomization = Some(score.value),
            _ => {}
        }
    }
    if let MethodSelection::One(m) = method {
        if !methods.iter().any(|(name, _)| name == m.name()) {
            return Err(match result.skipped.first() {
                Some(s) => format!("{}: {}", s.method, s.error),
                None => "the daemon answered no score".to_string(),
            });
        }
    }
    Ok(Evaluation {
        class: result.class,
        label: result.label,
        methods,
        skipped: result
            .skipped
            .into_iter()
            .map(|s| SkippedMethod {
                method: s.method.name().to_string(),
                error: s.error,
            })
            .collect(),
    })
}

/// One method's overlay: the view's explanation.
fn explanation(e: ExplanationData) -> Result<Explanation, String> {
    let png = e.overlay.ok_or("the daemon sent no overlay picture")?;
    let bytes = png.to_bytes().map_err(|e| e.to_string())?;
    Ok(Explanation {
        method: e.method.name().to_string(),
        layer: e.layer,
        flat: e.flat,
        class: e.class,
        label: e.label,
        overlay: Picture::decode(&bytes, MAX_PICTURE)?,
        segmentation: None,
    })
}

/// Several methods' overlays (the whole of `all`, or a piece of it), with the photo if sent.
fn explanations(result: ExplainResult) -> Result<Explanations, String> {
    let photo = match result.photo {
        Some(png) => {
            let bytes = png.to_bytes().map_err(|e| e.to_string())?;
            Some(Picture::decode(&bytes, MAX_PICTURE)?)
        }
        None => None,
    };
    Ok(Explanations {
        photo,
        explanations: result
            .explanations
            .into_iter()
            .map(explanation)
            .collect::<Result<_, _>>()?,
        skipped: result
            .skipped
            .into_iter()
            .map(|s| SkippedMethod {
                method: s.method.name().to_string(),
                error: s.error,
            })
            .collect(),
    })
}

/// A partial result of `all`: the methods just done.
fn explain_piece(value: serde_json::Value) -> Result<Reply, String> {
    let piece = serde_json::from_value::<ExplainResult>(value).map_err(|e| e.to_string())?;
    explanations(piece).map(Reply::ExplainAll)
}

/// The event a `$/progress` is for the ticket its token was registered for: a piece of the
/// answer when the token is a partial-result one (`partial` finds it), else the request's
/// work-done progress (`work` finds it); none for an unknown token, the end of the work, or a
/// piece that cannot be read (the whole answer still comes).
fn progress_event(
    params: serde_json::Value,
    partial: impl Fn(&str) -> Option<(Ticket, DecodePartial)>,
    work: impl Fn(&str) -> Option<Ticket>,
) -> Option<Event> {
    // Both kinds are `{token, value}`; only the value's type differs.
    let p = serde_json::from_value::<PartialResultParams<serde_json::Value>>(params).ok()?;
    let key = token_key(&p.token);
    if let Some((ticket, decode)) = partial(&key) {
        return decode(p.value)
            .ok()
            .map(|piece| Event::Partial(ticket, piece));
    }
    let ticket = work(&key)?;
    let progress = match serde_json::from_value::<WorkDoneProgress>(p.value).ok()? {
        WorkDoneProgress::Begin {
            message,
            percentage,
            ..
        }
        | WorkDoneProgress::Report {
            message,
            percentage,
        } => Progress {
            percentage,
            message,
        },
        WorkDoneProgress::End { .. } => return None,
    };
    Some(Event::Progress(ticket, progress))
}

fn on_notification(shared: &Shared, n: Notification) {
    let emit = &shared.emit;
    match n.method.as_str() {
        m if m == convlens_shared::methods::progress::Progress::NAME => {
            let event = progress_event(
                n.params,
                |key| lock(&shared.partials).get(key).cloned(),
                |key| lock(&shared.tokens).get(key).cloned(),
            );
            if let Some(event) = event {
                emit(event);
            }
        }
        m if m == convlens_shared::methods::images::ImagesChanged::NAME => {
            if let Ok(p) = serde_json::from_value::<ImagesChangedParams>(n.params) {
                emit(Event::ImagesChanged {
                    added: p.added.into_iter().map(PathBuf::from).collect(),
                    removed: p.removed.into_iter().map(PathBuf::from).collect(),
                });
            }
        }
        m if m == convlens_shared::methods::model::ModelReloaded::NAME => {
            if let Ok(p) = serde_json::from_value::<ReloadedParams>(n.params) {
                if is_ours(shared, &p.model_id) {
                    emit(Event::ModelReloaded {
                        version: p.version,
                        at: clock(),
                    });
                }
            }
        }
        m if m == convlens_shared::methods::model::ModelReloadFailed::NAME => {
            if let Ok(p) = serde_json::from_value::<ReloadFailedParams>(n.params) {
                if is_ours(shared, &p.model_id) {
                    emit(Event::ReloadFailed {
                        error: p.error,
                        at: clock(),
                    });
                }
            }
        }
        _ => {}
    }
}

fn is_ours(shared: &Shared, model_id: &str) -> bool {
    lock(&shared.model_id).as_deref() == Some(model_id)
}

/// The time of day (UTC), `HH:MM:SS UTC`.
fn clock() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    time_of_day(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use convlens_shared::array::Png;
    use convlens_shared::choices::Method;
    use convlens_shared::methods::explain::Skipped;
    use convlens_shared::methods::progress::ProgressParams;

    fn png(width: u32, height: u32) -> Png {
        let mut bytes = Vec::new();
        image::RgbImage::new(width, height)
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
        Png::from_bytes(width, height, &bytes)
    }

    /// A partial result of `all` reaches its ticket as a piece; work-done progress on the
    /// same notification reaches its own; other tokens reach nothing.
    #[test]
    fn progress_notifications_are_routed_by_token() {
        let ticket = Ticket {
            slot: Slot::Explain,
            seq: 3,
        };
        let partials: HashMap<String, (Ticket, DecodePartial)> =
            HashMap::from([(partial_token(&ticket), (ticket.clone(), explain_piece as _))]);
        let tokens = HashMap::from([(token(&ticket), ticket.clone())]);
        let route = |params: serde_json::Value| {
            progress_event(
                params,
                |k| partials.get(k).cloned(),
                |k| tokens.get(k).cloned(),
            )
        };
        let piece = ExplainResult {
            version: 1,
            photo: Some(png(8, 6)),
            segmentation: None,
            explanations: vec![ExplanationData {
                method: Method::EigenCam,
                class: 281,
                classes: Vec::new(),
                label: Some("tabby".into()),
                logit: 9.0,
                prob: 0.5,
                layer: Some("_conv_head".into()),
                shape: vec![7, 7],
                convergence_delta: None,
                flat: true,
                map: None,
                overlay: Some(png(8, 6)),
            }],
            skipped: vec![Skipped {
                method: Method::Cam,
                error: "no GAP head".into(),
            }],
        };
        let partial = PartialResultParams {
            token: RequestId::String(partial_token(&ticket)),
            value: piece,
        };
        let Some(Event::Partial(to, Reply::ExplainAll(e))) =
            route(serde_json::to_value(&partial).unwrap())
        else {
            panic!("not a piece");
        };
        assert_eq!(to, ticket);
        assert_eq!(e.photo.map(|p| p.size()), Some((8, 6)));
        assert_eq!(e.explanations.len(), 1);
        assert_eq!(e.explanations[0].method, "eigencam");
        assert!(e.explanations[0].flat);
        assert_eq!(
            e.skipped,
            vec![SkippedMethod {
                method: "cam".into(),
                error: "no GAP head".into(),
            }]
        );
        let report = ProgressParams {
            token: RequestId::String(token(&ticket)),
            value: WorkDoneProgress::Report {
                message: Some("gradcam (3 of 20): explain".into()),
                percentage: Some(15),
            },
        };
        assert_eq!(
            route(serde_json::to_value(&report).unwrap()),
            Some(Event::Progress(
                ticket.clone(),
                Progress {
                    percentage: Some(15),
                    message: Some("gradcam (3 of 20): explain".into()),
                }
            ))
        );
        let stranger = ProgressParams {
            token: RequestId::String("tui-99".into()),
            ..report
        };
        assert_eq!(route(serde_json::to_value(&stranger).unwrap()), None);
    }

    /// Each method's deletion, insertion and ROAD land together under its name, in the daemon's
    /// order; a metric not asked for is not read; a single method skipped is an error.
    #[test]
    fn scores_are_grouped_by_method() {
        use convlens_shared::methods::evaluate::Score;
        let score = |method, metric, value| Score {
            method,
            metric,
            value,
            curve: vec![0.5, 0.1],
        };
        let result = EvaluateResult {
            version: 1,
            class: 285,
            label: Some("Egyptian cat".into()),
            scores: vec![
                score(Method::Gradient, Metric::Deletion, 0.3),
                score(Method::Gradient, Metric::Insertion, 0.6),
                score(Method::GradCam, Metric::Deletion, 0.21),
                score(Method::GradCam, Metric::Insertion, 0.72),
                score(Method::GradCam, Metric::RoadCombined, -0.04),
                // A metric the overlay does not show is not read.
                score(Method::GradCam, Metric::Infidelity, 0.5),
            ],
            skipped: vec![Skipped {
                method: Method::Cam,
                error: "no GAP head".into(),
            }],
            randomized_layers: Vec::new(),
        };
        let e = evaluation(result.clone(), MethodSelection::All).unwrap();
        assert_eq!((e.class, e.label.as_deref()), (285, Some("Egyptian cat")));
        let names: Vec<&str> = e.methods.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(names, ["gradient", "gradcam"]);
        assert_eq!(
            e.of("gradcam"),
            Some(&Faithfulness {
                deletion: Some(0.21),
                insertion: Some(0.72),
                road: Some(-0.04),
                randomization: None,
            })
        );
        assert_eq!(e.of("gradient").and_then(|f| f.insertion), Some(0.6));
        assert_eq!(e.of("cam"), None);
        assert_eq!(e.skipped[0].method, "cam");
        let one = evaluation(result.clone(), MethodSelection::One(Method::GradCam)).unwrap();
        assert_eq!(one.of("gradcam").and_then(|f| f.deletion), Some(0.21));
        let skipped = evaluation(
            EvaluateResult {
                scores: vec![],
                ..result
            },
            MethodSelection::One(Method::Cam),
        );
        assert_eq!(skipped, Err("cam: no GAP head".into()));
    }

    #[test]
    fn features_without_their_method_are_unavailable() {
        let methods: Vec<String> = ["model/load", "model/layers", "image/list", "image/predict"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let missing = unavailable(&methods);
        let features: Vec<Feature> = missing.iter().map(|(f, _)| *f).collect();
        assert!(!features.contains(&Feature::Model));
        assert!(
            !features.contains(&Feature::Images),
            "image/list stands in for watch/add"
        );
        assert!(!features.contains(&Feature::Predict));
        assert!(features.contains(&Feature::Explain));
        assert!(missing.contains(&(Feature::Explain, "image/explain".into())));
        assert!(missing.contains(&(Feature::Evaluate, "image/evaluate".into())));
        assert!(
            features.contains(&Feature::Activations),
            "no unit/activations here"
        );
        assert!(features.contains(&Feature::Deconv));
        assert!(missing.contains(&(Feature::Map, "folder/embed".into())));
        assert!(missing.contains(&(Feature::FolderTop, "folder/top".into())));
        assert!(missing.contains(&(Feature::Versions, "model/versions".into())));
        assert!(missing.contains(&(Feature::AtVersion, "model/atVersion".into())));
        let more: Vec<String> = methods
            .iter()
            .cloned()
            .chain(
                [
                    "folder/embed",
                    "folder/top",
                    "model/versions",
                    "model/atVersion",
                ]
                .map(String::from),
            )
            .collect();
        let missing: Vec<Feature> = unavailable(&more).into_iter().map(|(f, _)| f).collect();
        for f in [
            Feature::Map,
            Feature::FolderTop,
            Feature::Versions,
            Feature::AtVersion,
        ] {
            assert!(!missing.contains(&f), "{f:?}");
        }
    }
}
