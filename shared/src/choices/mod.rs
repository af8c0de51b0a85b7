//! The closed sets of names that the CLI, the protocol, the engine and the TUI share: methods,
//! baselines, colormaps, presets, activation scales, unit positions, backward rules, maps, faithfulness metrics. Each is an enum whose names are written once, in its
//! [`closed_set!`] table: the command line parses them, the protocol (de)serializes them as
//! those strings, and the TUI lists them.

pub mod baseline;
pub mod colormap;
pub mod map_kind;
pub mod method;
pub mod metric;
pub mod position;
pub mod preset;
pub mod rule;
pub mod scale;

pub use baseline::Baseline;
pub use colormap::Colormap;
pub use map_kind::MapKind;
pub use method::{Method, MethodKind, MethodSelection};
pub use metric::Metric;
pub use position::UnitPosition;
pub use preset::Preset;
pub use rule::BackwardRule;
pub use scale::ActivationScale;

/// A name that is not in its set; says which names are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// What was being named (`method`, `colormap`).
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The names there are.
    pub known: Vec<&'static str>,
}

impl std::fmt::Display for UnknownName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown {} `{}`; known: {}",
            self.what,
            self.name,
            self.known.join(", ")
        )
    }
}

impl std::error::Error for UnknownName {}

/// A closed set's names, for parsers that list them (clap's possible values).
pub trait ClosedSet: std::str::FromStr<Err = UnknownName> + Copy + Send + Sync + 'static {
    /// Every name, in display order.
    fn names() -> &'static [&'static str];
    /// Other spellings accepted: (alias, name).
    fn aliases() -> &'static [(&'static str, &'static str)];
}

/// Declares a closed set: the enum, its names (each with optional aliases), `ALL`, `NAMES`,
/// `name()`, `FromStr`, `Display`, and serde as the name.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        $set:ident, $what:literal {
            $( $(#[$variant_meta:meta])* $variant:ident = $name:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $set {
            $( $(#[$variant_meta])* $variant ),+
        }

        impl $set {
            /// Every value, in display order.
            pub const ALL: &'static [$set] = &[$($set::$variant),+];
            /// Every name, in display order.
            pub const NAMES: &'static [&'static str] = &[$($name),+];
            /// Other spellings accepted: (alias, name).
            pub const ALIASES: &'static [(&'static str, &'static str)] = &[$($(($alias, $name),)*)+];

            /// Its name on the command line and in the protocol.
            pub fn name(self) -> &'static str {
                match self {
                    $($set::$variant => $name),+
                }
            }
        }

        impl $crate::choices::ClosedSet for $set {
            fn names() -> &'static [&'static str] {
                Self::NAMES
            }
            fn aliases() -> &'static [(&'static str, &'static str)] {
                Self::ALIASES
            }
        }

        impl std::str::FromStr for $set {
            type Err = $crate::choices::UnknownName;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($name $(| $alias)* => Ok($set::$variant),)+
                    _ => Err($crate::choices::UnknownName {
                        what: $what,
                        name: text.to_string(),
                        known: Self::NAMES.to_vec(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $set {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl serde::Serialize for $set {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $set {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use closed_set;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>(), Ok(*m));
            let json = serde_json::to_value(m).unwrap();
            assert_eq!(json, serde_json::json!(m.name()));
            assert_eq!(serde_json::from_value::<Method>(json).unwrap(), *m);
        }
        assert_eq!("grey".parse::<Colormap>(), Ok(Colormap::Gray));
        assert_eq!(Colormap::Gray.name(), "gray");
        let e = "plasma".parse::<Colormap>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown colormap `plasma`; known: viridis, inferno, jet, gray"
        );
        let e = serde_json::from_value::<Preset>(serde_json::json!("yosinski5")).unwrap_err();
        assert!(e.to_string().contains("unknown preset `yosinski5`"), "{e}");
    }

    #[test]
    fn a_selection_is_one_method_or_all() {
        assert_eq!("all".parse(), Ok(MethodSelection::All));
        assert_eq!(
            "gradcam++".parse(),
            Ok(MethodSelection::One(Method::GradCamPlusPlus))
        );
        let json = serde_json::to_value(MethodSelection::All).unwrap();
        assert_eq!(json, serde_json::json!("all"));
        let e = "gradcan"
            .parse::<MethodSelection>()
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("guided-gradcam, all"), "{e}");
        assert_eq!(MethodSelection::All.methods(), Method::ALL);
    }
}
