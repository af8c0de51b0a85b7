//! The layer tree's cursor, folding and search, over the model's modules in pre-order.

use std::collections::HashSet;

use crate::data::Layer;

/// Which modules are unfolded, which one is under the cursor, and the search.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TreeState {
    /// Paths of unfolded containers.
    pub expanded: HashSet<String>,
    /// Path of the module under the cursor.
    pub cursor: Option<String>,
    /// The search, while one is open.
    pub search: Option<Search>,
}

/// A layer-name search.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Search {
    /// What was typed.
    pub query: String,
    /// Whether keys still go to the query (until Enter or Esc).
    pub editing: bool,
}

/// Indices (into `layers`) of the modules shown: those whose every ancestor is unfolded.
pub fn visible(layers: &[Layer], expanded: &HashSet<String>) -> Vec<usize> {
    let mut rows = Vec::new();
    let mut hidden_below: Option<usize> = None;
    for (i, layer) in layers.iter().enumerate() {
        if let Some(depth) = hidden_below {
            if layer.depth > depth {
                continue;
            }
            hidden_below = None;
        }
        rows.push(i);
        if !layer.is_leaf && !expanded.contains(&layer.path) {
            hidden_below = Some(layer.depth);
        }
    }
    rows
}

/// Index of the parent of `layers[i]` (the nearest earlier module one level up).
pub fn parent(layers: &[Layer], i: usize) -> Option<usize> {
    let depth = layers.get(i)?.depth;
    (0..i).rev().find(|&j| layers[j].depth + 1 == depth)
}

impl TreeState {
    /// The state for a freshly opened model: top-level containers unfolded, the cursor on the
    /// first module (or kept where it was when that module still exists).
    pub fn reset_for(&mut self, layers: &[Layer]) {
        if self.expanded.is_empty() {
            self.expanded = layers
                .iter()
                .filter(|l| l.depth == 0 && !l.is_leaf)
                .map(|l| l.path.clone())
                .collect();
        }
        let kept = self
            .cursor
            .as_ref()
            .is_some_and(|c| layers.iter().any(|l| &l.path == c));
        if !kept {
            self.cursor = layers.first().map(|l| l.path.clone());
        }
    }

    /// Index (into `layers`) of the module under the cursor.
    pub fn cursor_index(&self, layers: &[Layer]) -> Option<usize> {
        let c = self.cursor.as_ref()?;
        layers.iter().position(|l| &l.path == c)
    }

    /// Row of the cursor among the visible rows.
    pub fn cursor_row(&self, layers: &[Layer], rows: &[usize]) -> usize {
        self.cursor_index(layers)
            .and_then(|i| rows.iter().position(|&r| r == i))
            .unwrap_or(0)
    }

    /// Moves the cursor by `delta` visible rows (clamped).
    pub fn move_by(&mut self, layers: &[Layer], delta: isize) {
        let rows = visible(layers, &self.expanded);
        if rows.is_empty() {
            return;
        }
        let row = self.cursor_row(layers, &rows) as isize + delta;
        let row = row.clamp(0, rows.len() as isize - 1) as usize;
        self.cursor = Some(layers[rows[row]].path.clone());
    }

    /// Moves to the first (`false`) or last (`true`) visible row.
    pub fn move_to_end(&mut self, layers: &[Layer], last: bool) {
        let rows = visible(layers, &self.expanded);
        let row = if last { rows.last() } else { rows.first() };
        if let Some(&i) = row {
            self.cursor = Some(layers[i].path.clone());
        }
    }

    /// Unfolds the container under the cursor, or steps into it when already unfolded.
    pub fn right(&mut self, layers: &[Layer]) {
        let Some(i) = self.cursor_index(layers) else {
            return;
        };
        if layers[i].is_leaf {
            return;
        }
        if self.expanded.insert(layers[i].path.clone()) {
            return;
        }
        if layers.get(i + 1).is_some_and(|c| c.depth > layers[i].depth) {
            self.cursor = Some(layers[i + 1].path.clone());
        }
    }

    /// Folds the container under the cursor, or steps out to the parent.
    pub fn left(&mut self, layers: &[Layer]) {
        let Some(i) = self.cursor_index(layers) else {
            return;
        };
        if !layers[i].is_leaf && self.expanded.remove(&layers[i].path) {
            return;
        }
        if let Some(p) = parent(layers, i) {
            self.cursor = Some(layers[p].path.clone());
        }
    }

    /// Folds or unfolds the container under the cursor; `false` when it is a leaf.
    pub fn toggle(&mut self, layers: &[Layer]) -> bool {
        let Some(i) = self.cursor_index(layers) else {
            return false;
        };
        if layers[i].is_leaf {
            return false;
        }
        let path = &layers[i].path;
        if !self.expanded.remove(path) {
            self.expanded.insert(path.clone());
        }
        true
    }

    /// Indices of the modules whose path contains the query (any case).
    pub fn matches(&self, layers: &[Layer]) -> Vec<usize> {
        let Some(search) = &self.search else {
            return vec![];
        };
        if search.query.is_empty() {
            return vec![];
        }
        let q = search.query.to_lowercase();
        layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.path.to_lowercase().contains(&q))
            .map(|(i, _)| i)
            .collect()
    }

    /// Moves to the next match after the cursor (`forward`) or before it, wrapping; `include`
    /// counts the cursor's own module (while typing, the match under the cursor stays).
    pub fn jump(&mut self, layers: &[Layer], forward: bool, include: bool) -> bool {
        let matches = self.matches(layers);
        if matches.is_empty() {
            return false;
        }
        let at = self.cursor_index(layers).unwrap_or(0);
        let target = if forward {
            matches
                .iter()
                .find(|&&m| if include { m >= at } else { m > at })
                .or(matches.first())
        } else {
            matches.iter().rev().find(|&&m| m < at).or(matches.last())
        };
        let Some(&target) = target else {
            return false;
        };
        self.reveal(layers, target);
        self.cursor = Some(layers[target].path.clone());
        true
    }

    /// Unfolds every ancestor of `layers[i]`.
    pub fn reveal(&mut self, layers: &[Layer], i: usize) {
        let mut at = i;
        while let Some(p) = parent(layers, at) {
            self.expanded.insert(layers[p].path.clone());
            at = p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(path: &str, depth: usize, is_leaf: bool) -> Layer {
        Layer {
            path: path.into(),
            class_name: if is_leaf { "Conv2d" } else { "Module" }.into(),
            depth,
            output_shape: vec![1, 8, 4, 4],
            params: 1,
            is_leaf,
        }
    }

    fn layers() -> Vec<Layer> {
        vec![
            layer("stem", 0, true),
            layer("blocks", 0, false),
            layer("blocks.0", 1, false),
            layer("blocks.0.conv", 2, true),
            layer("blocks.1", 1, false),
            layer("blocks.1.conv", 2, true),
            layer("head", 0, true),
        ]
    }

    #[test]
    fn folding_hides_descendants() {
        let l = layers();
        let mut t = TreeState::default();
        t.reset_for(&l);
        assert_eq!(visible(&l, &t.expanded), vec![0, 1, 2, 4, 6]);
        t.cursor = Some("blocks.1".into());
        t.right(&l);
        assert_eq!(visible(&l, &t.expanded), vec![0, 1, 2, 4, 5, 6]);
        t.right(&l);
        assert_eq!(t.cursor.as_deref(), Some("blocks.1.conv"));
        t.left(&l);
        assert_eq!(t.cursor.as_deref(), Some("blocks.1"));
        t.left(&l);
        assert_eq!(visible(&l, &t.expanded), vec![0, 1, 2, 4, 6]);
        t.left(&l);
        assert_eq!(t.cursor.as_deref(), Some("blocks"));
    }

    #[test]
    fn search_reveals_and_wraps() {
        let l = layers();
        let mut t = TreeState::default();
        t.reset_for(&l);
        t.search = Some(Search {
            query: "CONV".into(),
            editing: false,
        });
        assert!(t.jump(&l, true, false));
        assert_eq!(t.cursor.as_deref(), Some("blocks.0.conv"));
        assert!(t.expanded.contains("blocks.0"));
        assert!(t.jump(&l, true, false));
        assert_eq!(t.cursor.as_deref(), Some("blocks.1.conv"));
        assert!(t.jump(&l, true, false));
        assert_eq!(t.cursor.as_deref(), Some("blocks.0.conv"));
        assert!(t.jump(&l, false, false));
        assert_eq!(t.cursor.as_deref(), Some("blocks.1.conv"));
    }
}
