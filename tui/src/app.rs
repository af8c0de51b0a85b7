//! The app's state and its one entry point, [`App::update`]: an event in, the requests it
//! calls for out. Nothing here touches the terminal or the socket, so tests drive it with key
//! presses and daemon answers alone.

use convlens_shared::methods::model::LoadParams;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind};
use ratatui::layout::Rect;

use crate::data::{
    Explanation, FilterBank, FolderMap, Layer, LayerActivations, LayerOverFolder, ModelView,
    Picture, Prediction, UnitOverFolder,
};
use crate::event::{Connection, Event, Reply};
use crate::keys::{self, Action};
use crate::layout;
use crate::remote::{Fetch, Progress, Remote};
use crate::request::{Feature, Outgoing, Request, Slot, Ticket};
use crate::timeline::{self, Version};
use crate::tree::{Search, TreeState};

/// Every explanation method the daemon's `image/explain` knows, in the order `m` cycles them.
pub const METHODS: &[&str] = &[
    "gradcam",
    "gradcam++",
    "xgradcam",
    "hirescam",
    "layercam",
    "scorecam",
    "ablationcam",
    "eigencam",
    "cam",
    "guided-gradcam",
    "saliency",
    "gradient",
    "input-x-gradient",
    "guided-backprop",
    "deconvnet",
    "smoothgrad",
    "smoothgrad-sq",
    "vargrad",
    "integrated-gradients",
    "occlusion",
];

/// Photos kept in memory at most (each at most 512 pixels a side).
const MAX_PHOTOS: usize = 64;

/// The panes Tab moves between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    /// The layer tree.
    Layers,
    /// The image strip.
    Images,
    /// The current view.
    Main,
    /// The unit inspector.
    Inspector,
}

/// What the main pane shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// The unit grid (and the inspector).
    Units,
    /// Explanations over the current image.
    Overlay,
    /// A convolution's filters.
    Filters,
    /// The t-SNE map of the folder.
    Map,
    /// The checkpoint timeline.
    Timeline,
}

/// The link to the daemon.
#[derive(Clone, Debug, PartialEq)]
pub enum Link {
    /// Connecting (or starting the daemon).
    Connecting,
    /// Connected to a daemon computing on `device`.
    Connected {
        /// `cpu`, `cuda:0`.
        device: String,
    },
    /// The daemon could not be reached or went away.
    Lost(String),
}

/// A unit of a layer at a checkpoint version.
pub type UnitKey = (String, usize, u64);

/// A unit's activation maximization with one preset.
pub type MaximizeKey = (UnitKey, String);

/// The activation-maximization presets the inspector offers, in the order `A` steps through
/// them: Lucid's priors first (the CLI's default), then the paper's most used Yosinski row.
pub const MAXIMIZE_PRESETS: [&str; 6] = [
    "lucid",
    "yosinski3",
    "yosinski1",
    "yosinski2",
    "yosinski4",
    "none",
];

/// The whole state of the UI.
#[derive(Debug)]
pub struct App {
    /// The model as given on the command line.
    pub model_spec: String,
    /// How to load the model beyond its path (`--graph`, `--mean`, `--std`, `--resize`); the
    /// link fills in the path and the watch.
    pub load: LoadParams,
    /// The watched folder.
    pub folder: PathBuf,
    /// The terminal's size.
    pub size: Rect,
    /// The focused pane.
    pub focus: Pane,
    /// The main pane's view.
    pub view: View,
    /// Whether the key list is shown.
    pub help: bool,
    /// Whether the user asked to leave.
    pub quit: bool,
    /// Ticks seen (animates spinners).
    pub tick: u64,
    /// The link to the daemon.
    pub link: Link,
    /// Features the daemon lacks, with the method each would need.
    pub unavailable: BTreeMap<Feature, String>,
    /// The live checkpoint version (raised by reload notices); the views show it unless an
    /// earlier one is [`App::pinned`].
    pub version: u64,
    /// The earlier version the views show instead of the live one, chosen on the timeline.
    pub pinned: Option<u64>,
    /// The model's versions (asked again at each live version).
    pub versions: Fetch<u64, Vec<Version>>,
    /// The frozen model id of the pinned version (`m1@3`), which every view then asks.
    pub frozen: Fetch<u64, String>,
    /// The model and its tree.
    pub model: Fetch<u64, ModelView>,
    /// The layer tree's cursor, folding and search.
    pub tree: TreeState,
    /// The folder's images.
    pub images: Fetch<PathBuf, Vec<PathBuf>>,
    /// Index of the current image.
    pub current: usize,
    /// Photos read from disk.
    pub photos: HashMap<PathBuf, Remote<Picture>>,
    /// The current image's top-5.
    pub prediction: Fetch<(PathBuf, u64), Prediction>,
    /// The unit grid's data.
    pub activations: Fetch<(String, PathBuf, u64), LayerActivations>,
    /// The unit under the cursor.
    pub unit: usize,
    /// Whether the inspector is open.
    pub inspector_open: bool,
    /// Every unit of the inspected layer over the folder (layer, version, image count).
    pub folder_top: Fetch<(String, u64, usize), LayerOverFolder>,
    /// The inspected unit's best top image cropped to its receptive field.
    pub top_crop: Fetch<(UnitKey, usize), Picture>,
    /// The inspected unit's reconstruction on the current image.
    pub deconv: Fetch<(UnitKey, PathBuf), Picture>,
    /// The activation maximization being computed.
    pub maximize: Fetch<MaximizeKey, Picture>,
    /// Activation-maximization images computed so far.
    pub maximized: HashMap<MaximizeKey, Picture>,
    /// The activation-maximization preset, an index into [`MAXIMIZE_PRESETS`].
    pub maximize_preset: usize,
    /// Index into [`METHODS`].
    pub method: usize,
    /// Which of the top-5 classes to explain (0 = the top one).
    pub class_rank: usize,
    /// The overlay view's data.
    pub explanation: Fetch<(PathBuf, String, Option<usize>, u64), Explanation>,
    /// The filters view's data.
    pub filters: Fetch<(String, u64), FilterBank>,
    /// The filter under the cursor.
    pub filter: usize,
    /// The map view's data.
    pub map: Fetch<(u64, usize), FolderMap>,
    /// The map cursor, each coordinate in [0, 1] across the plot.
    pub map_cursor: (f64, f64),
    /// The last checkpoint news (`checkpoint v3 loaded at 12:00:01`).
    pub checkpoint: Option<String>,
    /// The last error or notice for the status line.
    pub message: Option<String>,
    pending_maximize: Option<MaximizeKey>,
    latest: HashMap<Slot, u64>,
    next_seq: u64,
}

impl App {
    /// A new app for `model` on the images of `folder`, in a terminal of `width × height`.
    pub fn new(
        model: impl Into<String>,
        folder: impl Into<PathBuf>,
        width: u16,
        height: u16,
    ) -> App {
        App {
            model_spec: model.into(),
            load: LoadParams::default(),
            folder: folder.into(),
            size: Rect::new(0, 0, width, height),
            focus: Pane::Layers,
            view: View::Units,
            help: false,
            quit: false,
            tick: 0,
            link: Link::Connecting,
            unavailable: BTreeMap::new(),
            version: 0,
            pinned: None,
            versions: Fetch::default(),
            frozen: Fetch::default(),
            model: Fetch::default(),
            tree: TreeState::default(),
            images: Fetch::default(),
            current: 0,
            photos: HashMap::new(),
            prediction: Fetch::default(),
            activations: Fetch::default(),
            unit: 0,
            inspector_open: false,
            folder_top: Fetch::default(),
            top_crop: Fetch::default(),
            deconv: Fetch::default(),
            maximize: Fetch::default(),
            maximized: HashMap::new(),
            maximize_preset: 0,
            method: 0,
            class_rank: 0,
            explanation: Fetch::default(),
            filters: Fetch::default(),
            filter: 0,
            map: Fetch::default(),
            map_cursor: (0.5, 0.5),
            checkpoint: None,
            message: None,
            pending_maximize: None,
            latest: HashMap::new(),
            next_seq: 1,
        }
    }

    /// Handles one event and returns the requests it calls for.
    pub fn update(&mut self, event: Event) -> Vec<Outgoing> {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Resize(w, h) => self.size = Rect::new(0, 0, w, h),
            Event::Tick => self.tick = self.tick.wrapping_add(1),
            Event::Connected(connection) => self.on_connected(connection),
            Event::Disconnected(why) => {
                self.link = Link::Lost(why.clone());
                self.message = Some(format!("daemon: {why}"));
            }
            Event::Reply(ticket, reply) => {
                if self.is_current(&ticket) {
                    self.on_reply(ticket, reply);
                }
            }
            Event::Failed(ticket, error) => {
                if self.is_current(&ticket) {
                    self.on_failed(&ticket.slot, error);
                }
            }
            Event::Progress(ticket, progress) => {
                if self.is_current(&ticket) {
                    self.on_progress(&ticket.slot, progress);
                }
            }
            Event::ImagesChanged { added, removed } => self.on_images_changed(added, removed),
            Event::ModelReloaded { version, at } => {
                self.version = self.version.max(version);
                self.checkpoint = Some(format!("checkpoint v{version} loaded at {at}"));
            }
            Event::ReloadFailed { error, at } => {
                let shown = self.model.state.ready().map_or(0, |m| m.version);
                self.checkpoint = Some(format!(
                    "checkpoint reload failed at {at}: {error} (still v{shown})"
                ));
            }
        }
        self.refresh()
    }

    /// The open model, when loaded.
    pub fn model_view(&self) -> Option<&ModelView> {
        self.model.state.ready()
    }

    /// The model's modules (empty until loaded).
    pub fn layers(&self) -> &[Layer] {
        self.model_view().map_or(&[], |m| &m.layers)
    }

    /// The module under the tree's cursor.
    pub fn selected_layer(&self) -> Option<&Layer> {
        let i = self.tree.cursor_index(self.layers())?;
        self.layers().get(i)
    }

    /// The folder's images (empty until listed).
    pub fn image_list(&self) -> &[PathBuf] {
        self.images.state.ready().map_or(&[], |v| v)
    }

    /// The current image.
    pub fn current_image(&self) -> Option<&PathBuf> {
        self.image_list().get(self.current)
    }

    /// The explanation method chosen.
    pub fn method_name(&self) -> &'static str {
        METHODS[self.method % METHODS.len()]
    }

    /// The class the overlay explains (`None`: the top one).
    pub fn explained_class(&self) -> Option<usize> {
        if self.class_rank == 0 {
            return None;
        }
        let p = self.prediction.state.ready()?;
        p.top.get(self.class_rank).map(|c| c.class)
    }

    /// The unit under the cursor: the selected layer's channel at the current version.
    pub fn unit_key(&self) -> Option<UnitKey> {
        let layer = self.selected_layer()?;
        (self.unit < layer.channels())
            .then(|| (layer.path.clone(), self.unit, self.shown_version()))
    }

    /// The inspected unit over the folder, once its layer's pass is there.
    pub fn unit_over_folder(&self) -> Option<&UnitOverFolder> {
        let (layer, unit, version) = self.unit_key()?;
        let (asked, at, _) = self.folder_top.key.as_ref()?;
        if *asked != layer || *at != version {
            return None;
        }
        self.folder_top.state.ready()?.unit(unit)
    }

    /// The checkpoint version the views show: the pinned one, else the live one.
    pub fn shown_version(&self) -> u64 {
        self.pinned.unwrap_or(self.version)
    }

    /// The model's versions, when listed.
    pub fn version_list(&self) -> &[Version] {
        self.versions.state.ready().map_or(&[], |v| v)
    }

    /// The map point nearest to the cursor.
    pub fn map_nearest(&self) -> Option<usize> {
        let map = self.map.state.ready()?;
        let (bx, by) = map.bounds();
        let x = bx[0] + self.map_cursor.0 * (bx[1] - bx[0]);
        let y = by[0] + self.map_cursor.1 * (by[1] - by[0]);
        map.nearest(x, y)
    }

    /// Whether the daemon offers `feature`; `Err` carries the missing method's name.
    pub fn offers(&self, feature: Feature) -> Result<(), &str> {
        match self.unavailable.get(&feature) {
            Some(method) => Err(method),
            None => Ok(()),
        }
    }

    /// Whether anything is being computed (the spinner turns).
    pub fn is_busy(&self) -> bool {
        self.model.state.is_loading()
            || self.images.state.is_loading()
            || self.prediction.state.is_loading()
            || self.activations.state.is_loading()
            || self.folder_top.state.is_loading()
            || self.top_crop.state.is_loading()
            || self.deconv.state.is_loading()
            || self.maximize.state.is_loading()
            || self.explanation.state.is_loading()
            || self.filters.state.is_loading()
            || self.map.state.is_loading()
            || self.versions.state.is_loading()
            || self.frozen.state.is_loading()
            || self.photos.values().any(Remote::is_loading)
    }

    fn is_current(&self, ticket: &Ticket) -> bool {
        self.latest.get(&ticket.slot) == Some(&ticket.seq)
    }

    fn issue(&mut self, slot: Slot, request: Request) -> Outgoing {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.latest.insert(slot.clone(), seq);
        Outgoing {
            ticket: Ticket { slot, seq },
            request,
        }
    }

    fn on_connected(&mut self, connection: Connection) {
        self.link = Link::Connected {
            device: connection.device,
        };
        self.unavailable = connection.unavailable.into_iter().collect();
        self.model.reset();
        self.images.reset();
        // A new daemon knows no frozen models of the old one.
        self.pinned = None;
        self.versions.reset();
        self.frozen.reset();
        self.reset_views();
    }

    fn reset_views(&mut self) {
        self.prediction.reset();
        self.activations.reset();
        self.folder_top.reset();
        self.top_crop.reset();
        self.deconv.reset();
        self.maximize.reset();
        self.explanation.reset();
        self.filters.reset();
        self.map.reset();
    }

    fn on_reply(&mut self, ticket: Ticket, reply: Reply) {
        match reply {
            Reply::Model(model) => {
                if let Some(note) = &model.note {
                    self.message = Some(note.clone());
                }
                self.version = self.version.max(model.version);
                self.tree.reset_for(&model.layers);
                self.model.state = Remote::Ready(model);
            }
            Reply::Images(mut list) => {
                list.sort();
                self.images.state = Remote::Ready(list);
                self.current = self.current.min(self.image_list().len().saturating_sub(1));
            }
            Reply::Photo(picture) => {
                if let Slot::Photo(path) = ticket.slot {
                    self.photos.insert(path, Remote::Ready(picture));
                }
            }
            Reply::Predict(p) => self.prediction.state = Remote::Ready(p),
            Reply::Activations(a) => {
                self.unit = self.unit.min(a.channels().saturating_sub(1));
                self.activations.state = Remote::Ready(a);
            }
            Reply::FolderTop(t) => self.folder_top.state = Remote::Ready(t),
            Reply::TopCrop(p) => self.top_crop.state = Remote::Ready(p),
            Reply::Deconv(p) => self.deconv.state = Remote::Ready(p),
            Reply::Maximize(p) => {
                if let Some(key) = self.maximize.key.clone() {
                    self.maximized.insert(key, p.clone());
                }
                self.maximize.state = Remote::Ready(p);
            }
            Reply::Explain(e) => self.explanation.state = Remote::Ready(e),
            Reply::Filters(f) => {
                self.filter = self.filter.min(f.tiles.len().saturating_sub(1));
                self.filters.state = Remote::Ready(f);
            }
            Reply::Map(m) => self.map.state = Remote::Ready(m),
            Reply::Versions(v) => self.versions.state = Remote::Ready(v),
            Reply::AtVersion(id) => self.frozen.state = Remote::Ready(id),
        }
    }

    fn on_failed(&mut self, slot: &Slot, error: String) {
        fn fail<T>(r: &mut Remote<T>, error: &str) {
            *r = Remote::Failed(error.to_string());
        }
        let e = error.as_str();
        match slot {
            Slot::Model => {
                fail(&mut self.model.state, e);
                self.message = Some(format!("model: {error}"));
            }
            Slot::Images => fail(&mut self.images.state, e),
            Slot::Photo(path) => {
                self.photos.insert(path.clone(), Remote::Failed(error));
            }
            Slot::Predict => fail(&mut self.prediction.state, e),
            Slot::Activations => fail(&mut self.activations.state, e),
            Slot::FolderTop => fail(&mut self.folder_top.state, e),
            Slot::TopCrop => fail(&mut self.top_crop.state, e),
            Slot::Deconv => fail(&mut self.deconv.state, e),
            Slot::Maximize => fail(&mut self.maximize.state, e),
            Slot::Explain => fail(&mut self.explanation.state, e),
            Slot::Filters => fail(&mut self.filters.state, e),
            Slot::Map => fail(&mut self.map.state, e),
            Slot::Versions => fail(&mut self.versions.state, e),
            Slot::AtVersion => {
                // The version cannot be had (dropped from the history): back to the live one.
                if let Some(v) = self.pinned.take() {
                    self.message = Some(format!("checkpoint v{v}: {error}"));
                }
                self.frozen.reset();
            }
        }
    }

    fn on_progress(&mut self, slot: &Slot, progress: Progress) {
        fn set<T>(r: &mut Remote<T>, progress: Progress) {
            if r.is_loading() {
                *r = Remote::Loading(progress);
            }
        }
        match slot {
            Slot::Activations => set(&mut self.activations.state, progress),
            Slot::FolderTop => set(&mut self.folder_top.state, progress),
            Slot::TopCrop => set(&mut self.top_crop.state, progress),
            Slot::Deconv => set(&mut self.deconv.state, progress),
            Slot::Explain => set(&mut self.explanation.state, progress),
            Slot::Filters => set(&mut self.filters.state, progress),
            Slot::Map => set(&mut self.map.state, progress),
            Slot::Maximize => set(&mut self.maximize.state, progress),
            Slot::Model
            | Slot::Images
            | Slot::Photo(_)
            | Slot::Predict
            | Slot::Versions
            | Slot::AtVersion => {}
        }
    }

    fn on_images_changed(&mut self, added: Vec<PathBuf>, removed: Vec<PathBuf>) {
        let current = self.current_image().cloned();
        let Remote::Ready(list) = &mut self.images.state else {
            return;
        };
        list.retain(|p| !removed.contains(p));
        for p in added {
            if !list.contains(&p) {
                list.push(p);
            }
        }
        list.sort();
        self.current = current
            .and_then(|c| list.iter().position(|p| *p == c))
            .unwrap_or(self.current.min(list.len().saturating_sub(1)));
        for p in &removed {
            self.photos.remove(p);
        }
    }

    fn on_key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        if self.tree.search.as_ref().is_some_and(|s| s.editing) {
            self.on_search_key(key);
            return;
        }
        let action = keys::action(key);
        if self.help {
            match action {
                Some(Action::Quit) => self.quit = true,
                _ => self.help = false,
            }
            return;
        }
        let Some(action) = action else {
            return;
        };
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.help = true,
            Action::NextPane => self.cycle_focus(true),
            Action::PrevPane => self.cycle_focus(false),
            Action::ViewUnits => self.show(View::Units),
            Action::ViewOverlay => self.show(View::Overlay),
            Action::ViewFilters => self.show(View::Filters),
            Action::ViewMap => self.show(View::Map),
            Action::ViewTimeline => self.show(View::Timeline),
            Action::EarlierVersion => self.step_version(false),
            Action::LaterVersion => self.step_version(true),
            Action::PrevImage => self.step_image(-1),
            Action::NextImage => self.step_image(1),
            Action::Refresh => {
                self.model.reset();
                self.images.reset();
                self.versions.reset();
                self.frozen.reset();
                self.photos.clear();
                self.reset_views();
                self.message = None;
            }
            Action::Search => {
                self.focus = Pane::Layers;
                self.tree.search = Some(Search {
                    query: String::new(),
                    editing: true,
                });
            }
            Action::SearchNext | Action::SearchPrev => {
                let layers = self.layers().to_vec();
                self.tree.jump(&layers, action == Action::SearchNext, false);
            }
            Action::Back => {
                if self.tree.search.take().is_none() && self.inspector_open {
                    self.inspector_open = false;
                    if self.focus == Pane::Inspector {
                        self.focus = Pane::Main;
                    }
                }
            }
            Action::NextMethod | Action::PrevMethod if self.view == View::Overlay => {
                self.step_method(action == Action::NextMethod)
            }
            Action::NextClass | Action::PrevClass if self.view == View::Overlay => {
                self.step_class(action == Action::NextClass)
            }
            Action::Maximize if self.view == View::Units => self.ask_maximize(),
            Action::NextPreset if self.view == View::Units => {
                self.maximize_preset = (self.maximize_preset + 1) % MAXIMIZE_PRESETS.len();
                self.inspector_open = true;
            }
            Action::Inspect if self.view == View::Units => self.toggle_inspector(),
            _ => self.on_pane_action(action),
        }
    }

    fn on_search_key(&mut self, key: KeyEvent) {
        let Some(search) = self.tree.search.as_mut() else {
            return;
        };
        match key.code {
            KeyCode::Esc => {
                self.tree.search = None;
                return;
            }
            KeyCode::Enter => {
                search.editing = false;
                return;
            }
            KeyCode::Backspace => {
                search.query.pop();
            }
            KeyCode::Char(c) => search.query.push(c),
            _ => return,
        }
        let layers = self.layers().to_vec();
        self.tree.jump(&layers, true, true);
    }

    fn show(&mut self, view: View) {
        self.view = view;
        self.focus = Pane::Main;
    }

    fn cycle_focus(&mut self, forward: bool) {
        let mut panes = vec![Pane::Layers, Pane::Images, Pane::Main];
        if self.view == View::Units && self.inspector_open {
            panes.push(Pane::Inspector);
        }
        let at = panes.iter().position(|p| *p == self.focus).unwrap_or(0);
        let n = panes.len();
        self.focus = panes[if forward {
            (at + 1) % n
        } else {
            (at + n - 1) % n
        }];
    }

    fn step_image(&mut self, delta: isize) {
        let n = self.image_list().len();
        if n == 0 {
            return;
        }
        self.current = (self.current as isize + delta).rem_euclid(n as isize) as usize;
    }

    /// Shows the kept version before or after the one shown; every view follows.
    fn step_version(&mut self, forward: bool) {
        if let Err(method) = self.offers(Feature::AtVersion) {
            self.message = Some(format!(
                "no checkpoint history from this daemon (it has no `{method}` method)"
            ));
            return;
        }
        match timeline::step(self.version_list(), self.shown_version(), forward) {
            Some(v) => self.show_version(v),
            None if self.versions.state.ready().is_some() => {
                self.message = Some(if forward {
                    format!("v{} is the newest checkpoint", self.shown_version())
                } else {
                    format!("no kept checkpoint before v{}", self.shown_version())
                });
            }
            None => {}
        }
    }

    /// Shows `version`: the live one follows reloads, an earlier one is pinned.
    fn show_version(&mut self, version: u64) {
        self.pinned = (version < self.version).then_some(version);
        self.message = None;
    }

    fn step_method(&mut self, forward: bool) {
        let n = METHODS.len();
        self.method = if forward {
            (self.method + 1) % n
        } else {
            (self.method + n - 1) % n
        };
    }

    fn step_class(&mut self, forward: bool) {
        let n = self
            .prediction
            .state
            .ready()
            .map_or(1, |p| p.top.len().max(1));
        self.class_rank = if forward {
            (self.class_rank + 1) % n
        } else {
            (self.class_rank + n - 1) % n
        };
    }

    fn toggle_inspector(&mut self) {
        self.inspector_open = !self.inspector_open;
        if !self.inspector_open && self.focus == Pane::Inspector {
            self.focus = Pane::Main;
        }
    }

    /// The chosen activation-maximization preset's name.
    pub fn maximize_preset_name(&self) -> &'static str {
        MAXIMIZE_PRESETS[self.maximize_preset % MAXIMIZE_PRESETS.len()]
    }

    /// The maximization of the unit under the cursor with the chosen preset.
    pub fn maximize_key(&self) -> Option<MaximizeKey> {
        Some((self.unit_key()?, self.maximize_preset_name().to_string()))
    }

    fn ask_maximize(&mut self) {
        let Some(key) = self.maximize_key() else {
            return;
        };
        self.inspector_open = true;
        let failed = matches!(self.maximize.state, Remote::Failed(_));
        if self.maximized.contains_key(&key) || (self.maximize.is_for(&key) && !failed) {
            return;
        }
        // The request itself goes out from `refresh`, which sees the wanted key.
        self.maximize.key = None;
        self.maximize.state = Remote::Idle;
        self.pending_maximize = Some(key);
    }

    fn on_pane_action(&mut self, action: Action) {
        match (self.focus, self.view) {
            (Pane::Layers, _) => self.on_tree_action(action),
            (Pane::Images, _) => match action {
                Action::Up | Action::Left => self.step_image(-1),
                Action::Down | Action::Right => self.step_image(1),
                Action::Home => self.current = 0,
                Action::End => self.current = self.image_list().len().saturating_sub(1),
                _ => {}
            },
            (Pane::Main | Pane::Inspector, View::Units) => self.on_grid_action(action),
            (Pane::Main, View::Overlay) => match action {
                Action::Left => self.step_method(false),
                Action::Right => self.step_method(true),
                Action::Up => self.step_class(false),
                Action::Down => self.step_class(true),
                _ => {}
            },
            (Pane::Main, View::Filters) => self.on_filters_action(action),
            (Pane::Main, View::Map) => self.on_map_action(action),
            (Pane::Main, View::Timeline) => match action {
                Action::Up | Action::Left => self.step_version(false),
                Action::Down | Action::Right => self.step_version(true),
                Action::Home => {
                    let first = self.version_list().iter().find(|v| v.kept);
                    if let Some(v) = first.map(|v| v.version) {
                        self.show_version(v);
                    }
                }
                Action::End => self.show_version(self.version),
                _ => {}
            },
            (Pane::Inspector, _) => {}
        }
    }

    fn on_tree_action(&mut self, action: Action) {
        let layers = self.layers().to_vec();
        let page = (layout::inner(layout::areas(self.size, self.view, self.inspector_open).layers)
            .height as isize)
            .max(1);
        match action {
            Action::Up => self.tree.move_by(&layers, -1),
            Action::Down => self.tree.move_by(&layers, 1),
            Action::PageUp => self.tree.move_by(&layers, -page),
            Action::PageDown => self.tree.move_by(&layers, page),
            Action::Home => self.tree.move_to_end(&layers, false),
            Action::End => self.tree.move_to_end(&layers, true),
            Action::Right => self.tree.right(&layers),
            Action::Left => self.tree.left(&layers),
            Action::Enter if !self.tree.toggle(&layers) => self.focus = Pane::Main,
            _ => {}
        }
    }

    fn on_grid_action(&mut self, action: Action) {
        let Some(channels) = self.activations.state.ready().map(|a| a.channels()) else {
            return;
        };
        if channels == 0 {
            return;
        }
        let cols = layout::grid_columns(self.size, View::Units, self.inspector_open);
        let rows = layout::grid_rows(self.size, View::Units, self.inspector_open);
        self.unit = move_in_grid(self.unit, channels, cols, rows, action);
        if action == Action::Enter {
            self.toggle_inspector();
        }
    }

    fn on_filters_action(&mut self, action: Action) {
        let Some(n) = self.filters.state.ready().map(|f| f.tiles.len()) else {
            return;
        };
        if n == 0 {
            return;
        }
        let cols = layout::grid_columns(self.size, View::Filters, false);
        let rows = layout::grid_rows(self.size, View::Filters, false);
        self.filter = move_in_grid(self.filter, n, cols, rows, action);
    }

    fn on_map_action(&mut self, action: Action) {
        const STEP: f64 = 0.04;
        let (x, y) = &mut self.map_cursor;
        match action {
            Action::Left => *x -= STEP,
            Action::Right => *x += STEP,
            Action::Up => *y += STEP,
            Action::Down => *y -= STEP,
            Action::PageUp => *y += STEP * 5.0,
            Action::PageDown => *y -= STEP * 5.0,
            Action::Enter => {
                let image = self
                    .map_nearest()
                    .and_then(|i| self.map.state.ready()?.points.get(i))
                    .map(|p| p.image.clone());
                if let Some(i) = image.and_then(|img| self.position_of(&img)) {
                    self.current = i;
                }
            }
            _ => {}
        }
        self.map_cursor = (
            self.map_cursor.0.clamp(0.0, 1.0),
            self.map_cursor.1.clamp(0.0, 1.0),
        );
    }

    /// Where `image` is in the folder's list: the same path, else the only file of that name
    /// (the daemon may spell the folder another way).
    fn position_of(&self, image: &std::path::Path) -> Option<usize> {
        let list = self.image_list();
        list.iter().position(|p| p == image).or_else(|| {
            let name = image.file_name()?;
            let mut same = list
                .iter()
                .enumerate()
                .filter(|(_, p)| p.file_name() == Some(name));
            match (same.next(), same.next()) {
                (Some((i, _)), None) => Some(i),
                _ => None,
            }
        })
    }

    /// Asks for whatever the visible views want and do not have: the declarative core that makes
    /// a changed layer, image, unit or checkpoint version fetch anew and supersede the old.
    fn refresh(&mut self) -> Vec<Outgoing> {
        let mut out = Vec::new();
        if !matches!(self.link, Link::Connected { .. }) {
            return out;
        }
        let version = self.version;
        if !self.model.is_for(&version) {
            self.model.revalidate(version);
            let request = Request::OpenModel {
                model: self.model_spec.clone(),
                load: self.load.clone(),
            };
            out.push(self.issue(Slot::Model, request));
        }
        if !self.images.is_for(&self.folder) {
            self.images.start(self.folder.clone());
            let request = Request::ListImages {
                folder: self.folder.clone(),
            };
            out.push(self.issue(Slot::Images, request));
        }
        let Some(model) = self.model_view() else {
            return out;
        };
        let live_id = model.model_id.clone();
        if !self.versions.is_for(&version) {
            // Asked again at each reload, the old list kept meanwhile (the version keys use it).
            match self.unavailable.get(&Feature::Versions).cloned() {
                Some(method) => self.versions.unavailable(version, &method),
                None => {
                    self.versions.revalidate(version);
                    let request = Request::Versions {
                        model_id: live_id.clone(),
                    };
                    out.push(self.issue(Slot::Versions, request));
                }
            }
        }
        // An earlier version: every view asks its frozen model, once the daemon has made it.
        let model_id = match self.pinned {
            None => live_id,
            Some(pinned) => {
                if !self.frozen.is_for(&pinned) {
                    let request = Request::AtVersion {
                        model_id: live_id,
                        version: pinned,
                    };
                    self.fetch(
                        Feature::AtVersion,
                        Slot::AtVersion,
                        pinned,
                        request,
                        &mut out,
                        |a| &mut a.frozen,
                    );
                }
                match self.frozen.state.ready() {
                    Some(id) => id.clone(),
                    None => return out,
                }
            }
        };
        let version = self.shown_version();
        let image = self.current_image().cloned();
        let layer = self.selected_layer().map(|l| l.path.clone());

        if let Some(image) = &image {
            self.want_photo(image, &mut out);
            let key = (image.clone(), version);
            if !self.prediction.is_for(&key) {
                let request = Request::Predict {
                    model_id: model_id.clone(),
                    image: image.clone(),
                };
                self.fetch(
                    Feature::Predict,
                    Slot::Predict,
                    key,
                    request,
                    &mut out,
                    |a| &mut a.prediction,
                );
            }
        }
        match self.view {
            View::Units => self.refresh_units(&model_id, layer, image, &mut out),
            View::Overlay => {
                if let Some(image) = image {
                    let class = self.explained_class();
                    let method = self.method_name().to_string();
                    let key = (image.clone(), method.clone(), class, version);
                    if !self.explanation.is_for(&key) {
                        let request = Request::Explain {
                            model_id,
                            image,
                            method,
                            class,
                        };
                        self.fetch(
                            Feature::Explain,
                            Slot::Explain,
                            key,
                            request,
                            &mut out,
                            |a| &mut a.explanation,
                        );
                    }
                }
            }
            View::Filters => {
                let conv = self
                    .selected_layer()
                    .filter(|l| l.is_conv())
                    .map(|l| l.path.clone());
                if let Some(layer) = conv {
                    let key = (layer.clone(), version);
                    if !self.filters.is_for(&key) {
                        let request = Request::Filters { model_id, layer };
                        self.fetch(
                            Feature::Filters,
                            Slot::Filters,
                            key,
                            request,
                            &mut out,
                            |a| &mut a.filters,
                        );
                    }
                }
            }
            View::Map => {
                let key = (version, self.image_list().len());
                if !self.map.is_for(&key) && !self.image_list().is_empty() {
                    let request = Request::Map {
                        model_id,
                        layer: None,
                        folder: self.folder.clone(),
                    };
                    self.fetch(Feature::Map, Slot::Map, key, request, &mut out, |a| {
                        &mut a.map
                    });
                }
                let nearest = self
                    .map_nearest()
                    .and_then(|i| self.map.state.ready()?.points.get(i))
                    .map(|p| p.image.clone());
                if let Some(path) = nearest {
                    self.want_photo(&path, &mut out);
                }
            }
            // The list is asked for above, whatever the view: the status line and the
            // version keys need it.
            View::Timeline => {}
        }
        out
    }

    fn refresh_units(
        &mut self,
        model_id: &str,
        layer: Option<String>,
        image: Option<PathBuf>,
        out: &mut Vec<Outgoing>,
    ) {
        let version = self.shown_version();
        let (Some(layer), Some(image)) = (layer, image) else {
            return;
        };
        let key = (layer.clone(), image.clone(), version);
        if !self.activations.is_for(&key) {
            let request = Request::Activations {
                model_id: model_id.into(),
                layer,
                image: image.clone(),
            };
            self.fetch(
                Feature::Activations,
                Slot::Activations,
                key,
                request,
                out,
                |a| &mut a.activations,
            );
        }
        if let Some(unit) = self.pending_maximize.take() {
            let request = Request::Maximize {
                model_id: model_id.into(),
                layer: unit.0 .0.clone(),
                unit: unit.0 .1,
                preset: unit.1.clone(),
            };
            self.fetch(Feature::Maximize, Slot::Maximize, unit, request, out, |a| {
                &mut a.maximize
            });
        }
        if !self.inspector_open {
            return;
        }
        let Some(unit) = self.unit_key() else {
            return;
        };
        let count = self.image_list().len();
        let (layer, channel, _) = unit.clone();
        // One pass over the folder for the whole layer: every unit's numbers and ranking.
        let key = (layer.clone(), version, count);
        if !self.folder_top.is_for(&key) {
            let request = Request::FolderTop {
                model_id: model_id.into(),
                layer: layer.clone(),
                folder: self.folder.clone(),
            };
            self.fetch(
                Feature::FolderTop,
                Slot::FolderTop,
                key,
                request,
                out,
                |a| &mut a.folder_top,
            );
        }
        let tops: Vec<PathBuf> = self
            .unit_over_folder()
            .map(|u| u.top.iter().take(3).map(|t| t.image.clone()).collect())
            .unwrap_or_default();
        // The best image cropped to the receptive field, where the inspector has room for it;
        // asked once the layer's pass is there, so that it only reads the cached pass.
        let crop_key = (unit.clone(), count);
        if layout::is_large(self.size) && !tops.is_empty() && !self.top_crop.is_for(&crop_key) {
            let request = Request::TopCrop {
                model_id: model_id.into(),
                layer: layer.clone(),
                unit: channel,
                folder: self.folder.clone(),
            };
            self.fetch(
                Feature::FolderTop,
                Slot::TopCrop,
                crop_key,
                request,
                out,
                |a| &mut a.top_crop,
            );
        }
        for path in tops {
            self.want_photo(&path, out);
        }
        let key = (unit, image.clone());
        if !self.deconv.is_for(&key) {
            let request = Request::Deconv {
                model_id: model_id.into(),
                layer,
                unit: channel,
                image,
            };
            self.fetch(Feature::Deconv, Slot::Deconv, key, request, out, |a| {
                &mut a.deconv
            });
        }
    }

    /// Starts `fetch` for `key`: a request when the daemon offers `feature`, else the
    /// "not available" state.
    fn fetch<K: PartialEq, T>(
        &mut self,
        feature: Feature,
        slot: Slot,
        key: K,
        request: Request,
        out: &mut Vec<Outgoing>,
        field: fn(&mut App) -> &mut Fetch<K, T>,
    ) {
        match self.unavailable.get(&feature).cloned() {
            Some(method) => field(self).unavailable(key, &method),
            None => {
                field(self).start(key);
                out.push(self.issue(slot, request));
            }
        }
    }

    fn want_photo(&mut self, path: &PathBuf, out: &mut Vec<Outgoing>) {
        if self.photos.contains_key(path) {
            return;
        }
        if self.photos.len() >= MAX_PHOTOS {
            // Browsing a big folder: forget every photo but the current one (they are read
            // again from disk when shown again).
            let current = self.current_image().cloned();
            self.photos.retain(|p, _| Some(p) == current.as_ref());
        }
        self.photos
            .insert(path.clone(), Remote::Loading(Progress::default()));
        let request = Request::LoadPhoto { path: path.clone() };
        out.push(self.issue(Slot::Photo(path.clone()), request));
    }
}

/// The cursor `at` moved by `action` in a grid of `n` tiles, `cols` a row, `rows` rows shown.
fn move_in_grid(at: usize, n: usize, cols: usize, rows: usize, action: Action) -> usize {
    let last = n - 1;
    let page = cols * rows.max(1);
    match action {
        Action::Left => at.saturating_sub(1),
        Action::Right => (at + 1).min(last),
        Action::Up => at.checked_sub(cols).unwrap_or(at),
        Action::Down if at + cols <= last => at + cols,
        Action::PageUp => at.saturating_sub(page),
        Action::PageDown => (at + page).min(last),
        Action::Home => 0,
        Action::End => last,
        _ => at,
    }
}
