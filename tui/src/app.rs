//! The app's state and its one entry point, [`App::update`]: an event in, the requests it
//! calls for out. Nothing here touches the terminal or the socket, so tests drive it with key
//! presses and daemon answers alone.
//!
//! [`App`] holds what every view shares (the model, its tree, the link, the focus, the photos)
//! and one state per view from [`crate::state`] (the strip, the unit grid, the inspector, the
//! overlay, the filters, the map, the timeline). Each view's state asks for what it needs in its
//! own `refresh`; [`App`]'s refresh, run after every event, only dispatches to them.

use convlens_shared::methods::model::LoadParams;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind};
use ratatui::layout::Rect;

use crate::data::{Layer, ModelView, Picture, UnitOverFolder};
use crate::event::{Connection, Event, Reply};
use crate::keys::{self, Action};
use crate::layout;
use crate::remote::{Fetch, Progress, Remote};
use crate::request::{Feature, Outgoing, Request, Slot, Ticket};
use crate::state::{
    FiltersState, InspectorState, MapState, MaximizeKey, OverlayState, Requester, Shown,
    StripState, Tickets, TimelineState, UnitKey, UnitsState,
};
use crate::timeline::{self, Version};
use crate::tree::{Search, TreeState};

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
    /// The live checkpoint version (raised by reload notices); the views show it unless the
    /// timeline pins an earlier one ([`TimelineState::pinned`]).
    pub version: u64,
    /// The model and its tree.
    pub model: Fetch<u64, ModelView>,
    /// The layer tree's cursor, folding and search.
    pub tree: TreeState,
    /// Photos read from disk (the strip's, the inspector's top images, the map's nearest).
    pub photos: HashMap<PathBuf, Remote<Picture>>,
    /// The image strip: the folder's images, the current one, its top-5.
    pub strip: StripState,
    /// The unit grid: the layer's activations and the unit under the cursor.
    pub units: UnitsState,
    /// The unit inspector.
    pub inspector: InspectorState,
    /// The overlay view: method, class and explanation.
    pub overlay: OverlayState,
    /// The filters view.
    pub filters: FiltersState,
    /// The t-SNE map view.
    pub map: MapState,
    /// The checkpoint timeline: versions, the pinned one and its frozen model.
    pub timeline: TimelineState,
    /// The last checkpoint news (`checkpoint v3 loaded at 12:00:01`).
    pub checkpoint: Option<String>,
    /// The last error or notice for the status line.
    pub message: Option<String>,
    tickets: Tickets,
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
            model: Fetch::default(),
            tree: TreeState::default(),
            photos: HashMap::new(),
            strip: StripState::default(),
            units: UnitsState::default(),
            inspector: InspectorState::default(),
            overlay: OverlayState::default(),
            filters: FiltersState::default(),
            map: MapState::default(),
            timeline: TimelineState::default(),
            checkpoint: None,
            message: None,
            tickets: Tickets::default(),
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
                if self.tickets.is_current(&ticket) {
                    self.on_reply(ticket, reply);
                }
            }
            Event::Partial(ticket, piece) => {
                if self.tickets.is_current(&ticket) {
                    self.on_partial(piece);
                }
            }
            Event::Failed(ticket, error) => {
                if self.tickets.is_current(&ticket) {
                    self.on_failed(&ticket.slot, error);
                }
            }
            Event::Progress(ticket, progress) => {
                if self.tickets.is_current(&ticket) {
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
        self.strip.image_list()
    }

    /// The current image.
    pub fn current_image(&self) -> Option<&PathBuf> {
        self.strip.current_image()
    }

    /// The explanation method chosen (`all` for every method).
    pub fn method_name(&self) -> &'static str {
        self.overlay.method_name()
    }

    /// The class the overlay explains (`None`: the top one).
    pub fn explained_class(&self) -> Option<usize> {
        self.overlay
            .explained_class(self.strip.prediction.state.ready())
    }

    /// The unit under the cursor: the selected layer's channel at the current version.
    pub fn unit_key(&self) -> Option<UnitKey> {
        let layer = self.selected_layer()?;
        (self.units.cursor < layer.channels())
            .then(|| (layer.path.clone(), self.units.cursor, self.shown_version()))
    }

    /// The inspected unit over the folder, once its layer's pass is there.
    pub fn unit_over_folder(&self) -> Option<&UnitOverFolder> {
        self.inspector.unit_over_folder(&self.unit_key()?)
    }

    /// The maximization of the unit under the cursor with the chosen preset.
    pub fn maximize_key(&self) -> Option<MaximizeKey> {
        Some(self.inspector.maximize_key(self.unit_key()?))
    }

    /// The checkpoint version the views show: the pinned one, else the live one.
    pub fn shown_version(&self) -> u64 {
        self.timeline.shown_version(self.version)
    }

    /// The model's versions, when listed.
    pub fn version_list(&self) -> &[Version] {
        self.timeline.version_list()
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
            || self.strip.is_loading()
            || self.units.is_loading()
            || self.inspector.is_loading()
            || self.overlay.is_loading()
            || self.filters.is_loading()
            || self.map.is_loading()
            || self.timeline.is_loading()
            || self.photos.values().any(Remote::is_loading)
    }

    fn on_connected(&mut self, connection: Connection) {
        self.link = Link::Connected {
            device: connection.device,
        };
        self.unavailable = connection.unavailable.into_iter().collect();
        // A new daemon knows no frozen models of the old one.
        self.timeline.pinned = None;
        self.forget_answers();
    }

    /// Forgets every answer of the daemon (not the photos, read from disk), so that the next
    /// refresh asks again.
    fn forget_answers(&mut self) {
        self.model.reset();
        self.strip.reset();
        self.units.reset();
        self.inspector.reset();
        self.overlay.reset();
        self.filters.reset();
        self.map.reset();
        self.timeline.reset();
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
            Reply::Images(list) => self.strip.on_listing(list),
            Reply::Photo(picture) => {
                if let Slot::Photo(path) = ticket.slot {
                    self.photos.insert(path, Remote::Ready(picture));
                }
            }
            Reply::Predict(p) => self.strip.prediction.state = Remote::Ready(p),
            Reply::Activations(a) => self.units.on_activations(a),
            Reply::FolderTop(t) => self.inspector.folder_top.state = Remote::Ready(t),
            Reply::TopCrop(p) => self.inspector.top_crop.state = Remote::Ready(p),
            Reply::Deconv(p) => self.inspector.deconv.state = Remote::Ready(p),
            Reply::Maximize(p) => self.inspector.on_maximized(p),
            Reply::Explain(e) => self.overlay.explanation.state = Remote::Ready(e),
            Reply::ExplainAll(all) => self.overlay.all.on_result(all),
            Reply::Evaluate(e) => self.overlay.on_scored(e),
            Reply::Filters(f) => self.filters.on_bank(f),
            Reply::Map(m) => self.map.folder_map.state = Remote::Ready(m),
            Reply::Versions(v) => self.timeline.versions.state = Remote::Ready(v),
            Reply::AtVersion(id) => self.timeline.frozen.state = Remote::Ready(id),
        }
    }

    /// A piece of an answer still coming: only `all`'s explanations come in pieces.
    fn on_partial(&mut self, piece: Reply) {
        if let Reply::ExplainAll(piece) = piece {
            self.overlay.all.on_piece(piece);
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
            Slot::Images => fail(&mut self.strip.images.state, e),
            Slot::Photo(path) => {
                self.photos.insert(path.clone(), Remote::Failed(error));
            }
            Slot::Predict => fail(&mut self.strip.prediction.state, e),
            Slot::Activations => fail(&mut self.units.activations.state, e),
            Slot::FolderTop => fail(&mut self.inspector.folder_top.state, e),
            Slot::TopCrop => fail(&mut self.inspector.top_crop.state, e),
            Slot::Deconv => fail(&mut self.inspector.deconv.state, e),
            Slot::Maximize => fail(&mut self.inspector.maximize.state, e),
            Slot::Explain => self.overlay.on_failed(e),
            Slot::Evaluate => self.overlay.on_scores_failed(e),
            Slot::Filters => fail(&mut self.filters.bank.state, e),
            Slot::Map => fail(&mut self.map.folder_map.state, e),
            Slot::Versions => fail(&mut self.timeline.versions.state, e),
            Slot::AtVersion => {
                // The version cannot be had (dropped from the history): back to the live one.
                if let Some(v) = self.timeline.pinned.take() {
                    self.message = Some(format!("checkpoint v{v}: {error}"));
                }
                self.timeline.frozen.reset();
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
            Slot::Activations => set(&mut self.units.activations.state, progress),
            Slot::FolderTop => set(&mut self.inspector.folder_top.state, progress),
            Slot::TopCrop => set(&mut self.inspector.top_crop.state, progress),
            Slot::Deconv => set(&mut self.inspector.deconv.state, progress),
            Slot::Explain => {
                set(&mut self.overlay.explanation.state, progress.clone());
                set(&mut self.overlay.all.fetch.state, progress);
            }
            Slot::Evaluate => set(&mut self.overlay.scores.state, progress),
            Slot::Filters => set(&mut self.filters.bank.state, progress),
            Slot::Map => set(&mut self.map.folder_map.state, progress),
            Slot::Maximize => set(&mut self.inspector.maximize.state, progress),
            Slot::Model
            | Slot::Images
            | Slot::Photo(_)
            | Slot::Predict
            | Slot::Versions
            | Slot::AtVersion => {}
        }
    }

    fn on_images_changed(&mut self, added: Vec<PathBuf>, removed: Vec<PathBuf>) {
        if self.strip.on_images_changed(added, &removed) {
            for p in &removed {
                self.photos.remove(p);
            }
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
            Action::PrevImage => self.strip.step(-1),
            Action::NextImage => self.strip.step(1),
            Action::Refresh => {
                self.forget_answers();
                self.photos.clear();
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
                if self.tree.search.take().is_none() && self.inspector.open {
                    self.inspector.open = false;
                    if self.focus == Pane::Inspector {
                        self.focus = Pane::Main;
                    }
                }
            }
            Action::NextMethod | Action::PrevMethod if self.view == View::Overlay => {
                self.overlay.step_method(action == Action::NextMethod)
            }
            Action::NextClass | Action::PrevClass if self.view == View::Overlay => {
                self.overlay.step_class(
                    action == Action::NextClass,
                    self.strip.prediction.state.ready(),
                )
            }
            Action::Score if self.view == View::Overlay => self.ask_scores(),
            Action::Maximize if self.view == View::Units => {
                if let Some(key) = self.maximize_key() {
                    self.inspector.ask_maximize(key);
                }
            }
            Action::NextPreset if self.view == View::Units => self.inspector.next_preset(),
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
        if self.view == View::Units && self.inspector.open {
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
            None if self.timeline.versions.state.ready().is_some() => {
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
        self.timeline.show(version, self.version);
        self.message = None;
    }

    /// Asks for the faithfulness scores of the overlay's explanation (or `all` of them), unless
    /// the daemon cannot give them.
    fn ask_scores(&mut self) {
        if let Err(method) = self.offers(Feature::Evaluate) {
            self.message = Some(format!(
                "no faithfulness scores from this daemon (it has no `{method}` method)"
            ));
            return;
        }
        self.overlay.ask_scores();
    }

    fn toggle_inspector(&mut self) {
        self.inspector.open = !self.inspector.open;
        if !self.inspector.open && self.focus == Pane::Inspector {
            self.focus = Pane::Main;
        }
    }

    fn on_pane_action(&mut self, action: Action) {
        match (self.focus, self.view) {
            (Pane::Layers, _) => self.on_tree_action(action),
            (Pane::Images, _) => match action {
                Action::Up | Action::Left => self.strip.step(-1),
                Action::Down | Action::Right => self.strip.step(1),
                Action::Home => self.strip.current = 0,
                Action::End => self.strip.current = self.image_list().len().saturating_sub(1),
                _ => {}
            },
            (Pane::Main | Pane::Inspector, View::Units) => self.on_grid_action(action),
            (Pane::Main, View::Overlay) => {
                let prediction = self.strip.prediction.state.ready();
                match action {
                    Action::Left => self.overlay.step_method(false),
                    Action::Right => self.overlay.step_method(true),
                    Action::Up => self.overlay.step_class(false, prediction),
                    Action::Down => self.overlay.step_class(true, prediction),
                    _ => {}
                }
            }
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
        let page = (layout::inner(layout::areas(self.size, self.view, self.inspector.open).layers)
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
        let Some(channels) = self.units.activations.state.ready().map(|a| a.channels()) else {
            return;
        };
        if channels == 0 {
            return;
        }
        let (cols, rows) =
            layout::grid_shape(self.size, View::Units, self.inspector.open, channels);
        self.units.cursor = move_in_grid(self.units.cursor, channels, cols, rows, action);
        if action == Action::Enter {
            self.toggle_inspector();
        }
    }

    fn on_filters_action(&mut self, action: Action) {
        let Some(n) = self.filters.bank.state.ready().map(|f| f.tiles.len()) else {
            return;
        };
        if n == 0 {
            return;
        }
        let (cols, rows) = layout::grid_shape(self.size, View::Filters, false, n);
        self.filters.cursor = move_in_grid(self.filters.cursor, n, cols, rows, action);
    }

    fn on_map_action(&mut self, action: Action) {
        if action != Action::Enter {
            self.map.move_cursor(action);
            return;
        }
        // Enter: the image of the nearest point becomes the current one.
        let image = self.map.nearest_image();
        if let Some(i) = image.and_then(|img| self.strip.position_of(img)) {
            self.strip.current = i;
        }
    }

    /// Asks for whatever the visible views want and do not have: the declarative core that makes
    /// a changed layer, image, unit or checkpoint version fetch anew and supersede the old. Each
    /// view's state knows what it wants; this only says which views are visible.
    fn refresh(&mut self) -> Vec<Outgoing> {
        if !matches!(self.link, Link::Connected { .. }) {
            return Vec::new();
        }
        let mut out = self.refresh_model();
        let Some(shown) = self.shown() else {
            return out;
        };
        let mut requester = Requester::new(&mut self.tickets, &self.unavailable, &mut self.photos);
        out.extend(self.strip.refresh(&shown, &mut requester));
        match self.view {
            View::Units => {
                out.extend(self.units.refresh(&shown, &mut requester));
                out.extend(self.inspector.refresh(&shown, &mut requester));
            }
            View::Overlay => {
                let prediction = self.strip.prediction.state.ready();
                out.extend(self.overlay.refresh(&shown, prediction, &mut requester));
            }
            View::Filters => out.extend(self.filters.refresh(&shown, &mut requester)),
            View::Map => out.extend(self.map.refresh(&shown, &mut requester)),
            // The timeline's versions are asked by `refresh_model`, whatever the view.
            View::Timeline => {}
        }
        out
    }

    /// Asks for what every view stands on: the model at the live version, the folder's images,
    /// and, once the model is there, its versions and the pinned version's frozen model.
    fn refresh_model(&mut self) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let mut requester = Requester::new(&mut self.tickets, &self.unavailable, &mut self.photos);
        if !self.model.is_for(&self.version) {
            self.model.revalidate(self.version);
            let request = Request::OpenModel {
                model: self.model_spec.clone(),
                load: self.load.clone(),
            };
            out.push(requester.issue(Slot::Model, request));
        }
        out.extend(self.strip.refresh_listing(&self.folder, &mut requester));
        if let Some(live) = self.model.state.ready() {
            out.extend(
                self.timeline
                    .refresh(&live.model_id, self.version, &mut requester),
            );
        }
        out
    }

    /// What the views show, once the model (and a pinned version's frozen model) is there.
    fn shown(&self) -> Option<Shown> {
        let live = self.model_view()?;
        Some(Shown {
            model_id: self.timeline.model_id(&live.model_id)?,
            version: self.shown_version(),
            folder: self.folder.clone(),
            image: self.current_image().cloned(),
            image_count: self.image_list().len(),
            layer: self.selected_layer().cloned(),
            unit: self.unit_key(),
            size: self.size,
        })
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
