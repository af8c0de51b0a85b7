//! Where a dense target sums its class on a segmentation model's output: a box of pixels
//! (`x0,y0,x1,y1`, ends exclusive) or a mask image (its non-zero pixels), as `--region` and the
//! protocol's `region` take it. Without one, the class is summed over the pixels the model
//! assigns to it (pytorch-grad-cam's `SemanticSegmentationTarget` with the predicted mask).

use std::fmt;
use std::str::FromStr;

/// A region of the output's pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegionSpec {
    /// Columns x0..x1 of rows y0..y1 (ends exclusive), in the model input's pixels.
    Box {
        /// First column.
        x0: usize,
        /// First row.
        y0: usize,
        /// One past the last column.
        x1: usize,
        /// One past the last row.
        y1: usize,
    },
    /// A mask image of the input's size: its non-zero pixels (a path; the daemon's own file
    /// system).
    Mask(String),
}

impl FromStr for RegionSpec {
    type Err = String;

    /// `x0,y0,x1,y1` (four integers) is a box; anything else a mask file's path.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the region is empty: give x0,y0,x1,y1 or a mask image".into());
        }
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        if parts.len() == 4
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '-'))
        {
            let numbers: Result<Vec<usize>, _> = parts.iter().map(|p| p.parse::<usize>()).collect();
            let Ok(n) = numbers else {
                return Err(format!("the region `{text}` has a negative coordinate"));
            };
            if n[0] >= n[2] || n[1] >= n[3] {
                return Err(format!(
                    "the region `{text}` is empty: x0 < x1 and y0 < y1 are needed (ends exclusive)"
                ));
            }
            return Ok(RegionSpec::Box {
                x0: n[0],
                y0: n[1],
                x1: n[2],
                y1: n[3],
            });
        }
        Ok(RegionSpec::Mask(text.to_string()))
    }
}

impl fmt::Display for RegionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegionSpec::Box { x0, y0, x1, y1 } => write!(f, "{x0},{y0},{x1},{y1}"),
            RegionSpec::Mask(path) => f.write_str(path),
        }
    }
}

impl serde::Serialize for RegionSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RegionSpec::Box { x0, y0, x1, y1 } => [*x0, *y0, *x1, *y1].serialize(s),
            RegionSpec::Mask(path) => s.serialize_str(path),
        }
    }
}

impl<'de> serde::Deserialize<'de> for RegionSpec {
    /// `[x0, y0, x1, y1]` or a mask image's path.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Box([usize; 4]),
            Mask(String),
        }
        match Wire::deserialize(d)? {
            Wire::Box([x0, y0, x1, y1]) => format!("{x0},{y0},{x1},{y1}")
                .parse()
                .map_err(serde::de::Error::custom),
            Wire::Mask(path) => Ok(RegionSpec::Mask(path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_numbers_are_a_box_and_anything_else_a_mask() {
        assert_eq!(
            "16,8,48,40".parse::<RegionSpec>().unwrap(),
            RegionSpec::Box {
                x0: 16,
                y0: 8,
                x1: 48,
                y1: 40
            }
        );
        assert_eq!(
            "masks/cat.png".parse::<RegionSpec>().unwrap(),
            RegionSpec::Mask("masks/cat.png".into())
        );
        assert!("5,5,5,9".parse::<RegionSpec>().is_err());
        assert!("1,-2,3,4".parse::<RegionSpec>().is_err());
        let json = serde_json::to_value(RegionSpec::Box {
            x0: 1,
            y0: 2,
            x1: 3,
            y1: 4,
        })
        .unwrap();
        assert_eq!(json, serde_json::json!([1, 2, 3, 4]));
        let back: RegionSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back.to_string(), "1,2,3,4");
    }
}
