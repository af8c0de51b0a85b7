//! One version of a model on the device, as a request holds it.

use convlens_models::Model;
use convlens_shared::methods::history::parse_frozen_id;

use crate::cache::VersionKey;

/// One version of a model on the device. A request holds an `Arc<Loaded>` while it runs.
#[derive(Debug)]
pub struct Loaded {
    /// The model's id.
    pub id: String,
    /// The version.
    pub version: u64,
    /// The network.
    pub model: Model,
}

impl Loaded {
    /// Its cache key. A frozen version (`m1@3`) shares the caches of the version it freezes
    /// (the same weights), and they go when that model's old versions' caches go.
    pub fn key(&self) -> VersionKey {
        let model = parse_frozen_id(&self.id).map_or(self.id.as_str(), |(m, _)| m);
        VersionKey {
            model: model.to_string(),
            version: self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use convlens_models::LoadOptions;
    use convlens_shared::methods::history::frozen_id;

    #[test]
    fn frozen_versions_share_the_caches_of_their_model() {
        let model = Model::load("random:small-vgg", &LoadOptions::default(), &Device::Cpu).unwrap();
        let loaded = Loaded {
            id: frozen_id("m3", 2),
            version: 2,
            model,
        };
        assert_eq!(
            loaded.key(),
            VersionKey {
                model: "m3".into(),
                version: 2
            }
        );
    }
}
