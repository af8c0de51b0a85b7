//! What an explanation explains: one class, or the sum of several, each named by its index or
//! its label (`285`, `tabby`, `281+282`, `tabby+tiger cat`), as `--target` and the protocol's
//! `target` take it.

use std::fmt;
use std::str::FromStr;

/// The sign that joins classes whose logits are summed.
const JOIN: char = '+';

/// One class, by index or by label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClassRef {
    /// The class's index in the model's output.
    Index(usize),
    /// The class's label, as the model's label list spells it (case ignored).
    Label(String),
}

/// The classes whose logits an explanation sums (one, most of the time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSpec {
    /// The classes, at least one, in the order given.
    pub classes: Vec<ClassRef>,
}

impl TargetSpec {
    /// One class by index.
    pub fn class(index: usize) -> Self {
        TargetSpec {
            classes: vec![ClassRef::Index(index)],
        }
    }

    /// The class index when the target is one class given by index.
    pub fn single_index(&self) -> Option<usize> {
        match self.classes.as_slice() {
            [ClassRef::Index(i)] => Some(*i),
            _ => None,
        }
    }
}

impl From<usize> for TargetSpec {
    fn from(index: usize) -> Self {
        TargetSpec::class(index)
    }
}

/// A target that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadTarget(pub String);

impl fmt::Display for BadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad target `{}`: give a class index or label, or several joined by `+` (281+282)",
            self.0
        )
    }
}

impl std::error::Error for BadTarget {}

impl FromStr for TargetSpec {
    type Err = BadTarget;

    fn from_str(text: &str) -> Result<Self, BadTarget> {
        let classes = text
            .split(JOIN)
            .map(str::trim)
            .map(|part| {
                if part.is_empty() {
                    Err(BadTarget(text.to_string()))
                } else if let Ok(index) = part.parse::<usize>() {
                    Ok(ClassRef::Index(index))
                } else {
                    Ok(ClassRef::Label(part.to_string()))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TargetSpec { classes })
    }
}

impl fmt::Display for ClassRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClassRef::Index(i) => write!(f, "{i}"),
            ClassRef::Label(l) => f.write_str(l),
        }
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, class) in self.classes.iter().enumerate() {
            if i > 0 {
                write!(f, "{JOIN}")?;
            }
            write!(f, "{class}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for TargetSpec {
    /// A number for one class by index (the protocol's first form), else the text.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.single_index() {
            Some(i) => s.serialize_u64(i as u64),
            None => s.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for TargetSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Index(usize),
            Text(String),
        }
        match Wire::deserialize(d)? {
            Wire::Index(i) => Ok(TargetSpec::class(i)),
            Wire::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_print_and_travel() {
        let t: TargetSpec = "281+282".parse().unwrap();
        assert_eq!(t.classes, vec![ClassRef::Index(281), ClassRef::Index(282)]);
        assert_eq!(t.to_string(), "281+282");
        let t: TargetSpec = "tabby + tiger cat".parse().unwrap();
        assert_eq!(
            t.classes,
            vec![
                ClassRef::Label("tabby".into()),
                ClassRef::Label("tiger cat".into())
            ]
        );
        assert!("281+".parse::<TargetSpec>().is_err());
        assert!("".parse::<TargetSpec>().is_err());
        // One index is a number on the wire, as before; anything else is text.
        assert_eq!(serde_json::to_value(TargetSpec::class(3)).unwrap(), 3);
        let t: TargetSpec = serde_json::from_value(serde_json::json!("3+tabby")).unwrap();
        assert_eq!(serde_json::to_value(&t).unwrap(), "3+tabby");
        let t: TargetSpec = serde_json::from_value(serde_json::json!(7)).unwrap();
        assert_eq!(t.single_index(), Some(7));
        assert!(serde_json::from_value::<TargetSpec>(serde_json::json!(-1)).is_err());
    }
}
