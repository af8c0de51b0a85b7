//! Command-line parsers for the closed sets of `convlens_shared::choices`: `--help` lists the
//! names from there (with their aliases), and a wrong name is refused with the list.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use convlens_shared::choices::ClosedSet;

/// A parser of the closed set `T`: its names and aliases, parsed with `T::from_str`.
pub fn closed_set<T: ClosedSet>() -> impl TypedValueParser<Value = T> {
    names_parser(T::names().iter().copied(), T::aliases())
}

/// A parser of `T` that accepts `names` (and `aliases`: (alias, name)) and parses them with
/// `T::from_str`.
pub fn names_parser<T>(
    names: impl IntoIterator<Item = &'static str>,
    aliases: &'static [(&'static str, &'static str)],
) -> impl TypedValueParser<Value = T>
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let values = names.into_iter().map(|name| {
        let spelled = aliases.iter().filter(|(_, n)| *n == name).map(|(a, _)| *a);
        PossibleValue::new(name).aliases(spelled)
    });
    PossibleValuesParser::new(values).try_map(|text| text.parse::<T>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use convlens_shared::choices::{Colormap, MethodSelection};

    #[derive(clap::Parser, Debug)]
    struct Flags {
        #[arg(long, value_parser = closed_set::<Colormap>())]
        cmap: Colormap,
        #[arg(long, value_parser = names_parser::<MethodSelection>(MethodSelection::names(), &[]))]
        method: MethodSelection,
    }

    #[test]
    fn names_and_aliases_parse_and_others_are_refused_with_the_list() {
        use clap::Parser;
        let f = Flags::try_parse_from(["x", "--cmap", "grey", "--method", "all"]).unwrap();
        assert_eq!((f.cmap, f.method), (Colormap::Gray, MethodSelection::All));
        let e = Flags::try_parse_from(["x", "--cmap", "plasma", "--method", "all"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("viridis, inferno, jet, gray"), "{e}");
    }
}
