//! The unit inspector's state: whether it is open, and what it shows of the unit under the
//! grid's cursor: the layer's pass over the folder (the unit's numbers and top images), the best
//! top image cropped to the unit's receptive field, the deconvnet reconstruction on the current
//! image, and activation maximizations with the chosen preset.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::data::{LayerOverFolder, Picture, UnitOverFolder};
use crate::layout;
use crate::remote::{Fetch, Remote};
use crate::request::{Feature, Outgoing, Request, Slot};
use crate::state::requester::Requester;
use crate::state::shown::Shown;
use crate::state::units::UnitKey;
use convlens_shared::choices::Preset;
use convlens_shared::defaults;

/// A unit's activation maximization with one preset.
pub type MaximizeKey = (UnitKey, Preset);

/// The inspector's data, preset and pending maximization.
#[derive(Debug)]
pub struct InspectorState {
    /// Whether the inspector is open.
    pub open: bool,
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
    /// The activation-maximization preset.
    pub maximize_preset: Preset,
    /// The maximization asked for with `A`, sent at the next refresh.
    pending_maximize: Option<MaximizeKey>,
}

impl Default for InspectorState {
    /// Closed, nothing fetched, the protocol's default preset.
    fn default() -> Self {
        InspectorState {
            open: false,
            folder_top: Fetch::default(),
            top_crop: Fetch::default(),
            deconv: Fetch::default(),
            maximize: Fetch::default(),
            maximized: HashMap::new(),
            maximize_preset: defaults::maximize::PRESET,
            pending_maximize: None,
        }
    }
}

impl InspectorState {
    /// The chosen activation-maximization preset's name.
    pub fn maximize_preset_name(&self) -> &'static str {
        self.maximize_preset.name()
    }

    /// Chooses the next preset in the CLI's order, wrapping around (and opens the inspector to
    /// show it).
    pub fn next_preset(&mut self) {
        let at = Preset::ALL
            .iter()
            .position(|p| *p == self.maximize_preset)
            .unwrap_or(0);
        self.maximize_preset = Preset::ALL[(at + 1) % Preset::ALL.len()];
        self.open = true;
    }

    /// The maximization of `unit` with the chosen preset.
    pub fn maximize_key(&self, unit: UnitKey) -> MaximizeKey {
        (unit, self.maximize_preset)
    }

    /// Opens the inspector and asks for the maximization `key` at the next refresh, unless it
    /// is there or on its way.
    pub fn ask_maximize(&mut self, key: MaximizeKey) {
        self.open = true;
        let failed = matches!(self.maximize.state, Remote::Failed(_));
        if self.maximized.contains_key(&key) || (self.maximize.is_for(&key) && !failed) {
            return;
        }
        // The request itself goes out from `refresh`, which sees the wanted key.
        self.maximize.key = None;
        self.maximize.state = Remote::Idle;
        self.pending_maximize = Some(key);
    }

    /// Takes a maximization, kept for when its unit and preset are shown again.
    pub fn on_maximized(&mut self, picture: Picture) {
        if let Some(key) = self.maximize.key.clone() {
            self.maximized.insert(key, picture.clone());
        }
        self.maximize.state = Remote::Ready(picture);
    }

    /// `unit` over the folder, once its layer's pass is there.
    pub fn unit_over_folder(&self, unit: &UnitKey) -> Option<&UnitOverFolder> {
        let (layer, channel, version) = unit;
        let (asked, at, _) = self.folder_top.key.as_ref()?;
        if asked != layer || at != version {
            return None;
        }
        self.folder_top.state.ready()?.unit(*channel)
    }

    /// Sends the maximization asked for, and, while open, asks for what it shows of the unit
    /// under the cursor: the layer's pass over the folder, then the best top image cropped
    /// (where there is room for it) and the top images' photos, and the reconstruction.
    pub fn refresh(&mut self, shown: &Shown, requester: &mut Requester) -> Vec<Outgoing> {
        let mut out = Vec::new();
        // Like the grid, nothing without a layer and an image.
        let (Some(_), Some(image)) = (&shown.layer, &shown.image) else {
            return out;
        };
        if let Some(key) = self.pending_maximize.take() {
            let request = Request::Maximize {
                model_id: shown.model_id.clone(),
                layer: key.0 .0.clone(),
                unit: key.0 .1,
                preset: key.1,
            };
            out.extend(requester.fetch(
                &mut self.maximize,
                Feature::Maximize,
                Slot::Maximize,
                key,
                request,
            ));
        }
        if !self.open {
            return out;
        }
        let Some(unit) = &shown.unit else {
            return out;
        };
        let count = shown.image_count;
        let (layer, channel, _) = unit.clone();
        // One pass over the folder for the whole layer: every unit's numbers and ranking.
        let key = (layer.clone(), shown.version, count);
        if !self.folder_top.is_for(&key) {
            let request = Request::FolderTop {
                model_id: shown.model_id.clone(),
                layer: layer.clone(),
                folder: shown.folder.clone(),
            };
            out.extend(requester.fetch(
                &mut self.folder_top,
                Feature::FolderTop,
                Slot::FolderTop,
                key,
                request,
            ));
        }
        let tops: Vec<PathBuf> = self
            .unit_over_folder(unit)
            .map(|u| u.top.iter().take(3).map(|t| t.image.clone()).collect())
            .unwrap_or_default();
        // The best image cropped to the receptive field, where the inspector has room for it;
        // asked once the layer's pass is there, so that it only reads the cached pass.
        let crop_key = (unit.clone(), count);
        if layout::is_large(shown.size) && !tops.is_empty() && !self.top_crop.is_for(&crop_key) {
            let request = Request::TopCrop {
                model_id: shown.model_id.clone(),
                layer: layer.clone(),
                unit: channel,
                folder: shown.folder.clone(),
            };
            out.extend(requester.fetch(
                &mut self.top_crop,
                Feature::FolderTop,
                Slot::TopCrop,
                crop_key,
                request,
            ));
        }
        for path in tops {
            out.extend(requester.photo(&path, shown.image.as_ref()));
        }
        let key = (unit.clone(), image.clone());
        if !self.deconv.is_for(&key) {
            let request = Request::Deconv {
                model_id: shown.model_id.clone(),
                layer,
                unit: channel,
                image: image.clone(),
            };
            out.extend(requester.fetch(
                &mut self.deconv,
                Feature::Deconv,
                Slot::Deconv,
                key,
                request,
            ));
        }
        out
    }

    /// Whether any of its data is on its way.
    pub fn is_loading(&self) -> bool {
        self.folder_top.state.is_loading()
            || self.top_crop.state.is_loading()
            || self.deconv.state.is_loading()
            || self.maximize.state.is_loading()
    }

    /// Forgets its data (not the maximizations kept), so that the next refresh asks again.
    pub fn reset(&mut self) {
        self.folder_top.reset();
        self.top_crop.reset();
        self.deconv.reset();
        self.maximize.reset();
    }
}
