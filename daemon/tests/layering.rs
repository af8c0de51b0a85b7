//! The daemon's modules import downwards only: no file of `daemon/src` imports one of its
//! importers, and the top-level modules keep the layer order written in [`LAYERS`].
//!
//! The imports are read from the source text (`crate::`, `super::`, `self::` paths, grouped or
//! not, in `use` lines and in code, and a parent's uses of its child modules); a parent's
//! `pub use child::Item` is its public face, not a dependency, and is left out. Importing an
//! item through the crate root's re-exports (`crate::Service`) is refused: it hides the layer
//! the item comes from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules, highest layer first: each may import only from modules after it in
/// this list. Modules on one line are one layer and do not import each other.
const LAYERS: &[&[&str]] = &[
    &["in_process", "server"],
    &["methods"],
    &["service"],
    &["registry"],
    &["history", "watch"],
    &["cache", "clients", "jobs", "render"],
    &[
        "config",
        "device_name",
        "error",
        "files",
        "logging",
        "memory",
        "timing",
    ],
];

/// A module: its path from the crate root (`["watch", "checkpoint"]`).
type ModulePath = Vec<String>;

/// The source folder of the daemon crate.
fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module file of the crate, by module path.
fn modules(root: &Path) -> BTreeMap<ModulePath, PathBuf> {
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let mut parts: ModulePath = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            found.insert(parts, path);
        }
    }
    found
}

/// `text` without comments, string literals and `#[cfg(test)]` modules at the end of a file
/// (a test may reach anywhere).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    let mut out = String::new();
    for line in text.lines() {
        let line = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        let mut in_string = false;
        let mut previous = ' ';
        for c in line.chars() {
            if c == '"' && previous != '\\' {
                in_string = !in_string;
            } else if !in_string {
                out.push(c);
            }
            previous = c;
        }
        out.push('\n');
    }
    out
}

/// The paths a `{...}` group (starting after the `{`) expands to, each joined to `prefix`;
/// returns them and the length of the group's text.
fn expand_group(text: &str, prefix: &str) -> (Vec<String>, usize) {
    let mut paths = Vec::new();
    let mut depth = 0;
    let mut item = String::new();
    for (i, c) in text.char_indices() {
        match c {
            '{' => {
                depth += 1;
                item.push(c);
            }
            '}' if depth == 0 => {
                paths.extend(expand_item(&item, prefix));
                return (paths, i + 1);
            }
            '}' => {
                depth -= 1;
                item.push(c);
            }
            ',' if depth == 0 => {
                paths.extend(expand_item(&item, prefix));
                item.clear();
            }
            _ => item.push(c),
        }
    }
    (paths, text.len())
}

/// One item of a group: a path, or a path ending in a group of its own.
fn expand_item(item: &str, prefix: &str) -> Vec<String> {
    let item: String = item.split_whitespace().collect();
    if item.is_empty() {
        return Vec::new();
    }
    match item.find('{') {
        Some(at) => expand_group(&item[at + 1..], &format!("{prefix}{}", &item[..at])).0,
        None => vec![format!("{prefix}{item}")],
    }
}

/// The module paths written in `code` that start with `start` (`crate::`, `super::`,
/// `self::` or `child::`), each as its `::`-separated words after `start`.
fn paths_after(code: &str, start: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(at) = code[from..].find(start) {
        let begin = from + at;
        from = begin + start.len();
        let boundary = begin == 0 || {
            let b = bytes[begin - 1];
            !(b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        };
        if !boundary {
            continue;
        }
        let rest = &code[from..];
        let paths = if let Some(group) = rest.strip_prefix('{') {
            expand_group(group, "").0
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let path = &rest[..end];
            match rest[end..].strip_prefix('{') {
                Some(group) if path.ends_with("::") => expand_group(group, path).0,
                _ => vec![path.to_string()],
            }
        };
        for path in paths {
            let words: Vec<String> = path
                .split("::")
                .filter(|w| !w.is_empty())
                .map(|w| w.split(" as ").next().unwrap_or(w).to_string())
                .collect();
            out.push(words);
        }
    }
    out
}

/// The longest module of `known` that `base` followed by `words` names.
fn resolve(base: &[String], words: &[String], known: &BTreeMap<ModulePath, PathBuf>) -> ModulePath {
    let mut module: ModulePath = base.to_vec();
    for word in words {
        let mut next = module.clone();
        next.push(word.clone());
        if known.contains_key(&next) {
            module = next;
        } else {
            break;
        }
    }
    module
}

/// The child modules `code` declares (`mod x;`, `pub mod x;`).
fn children(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect()
}

/// Every import between two modules of the crate: (importer, imported).
fn imports(
    known: &BTreeMap<ModulePath, PathBuf>,
) -> (BTreeSet<(ModulePath, ModulePath)>, Vec<String>) {
    let mut edges = BTreeSet::new();
    let mut through_root = Vec::new();
    for (module, file) in known {
        let text = std::fs::read_to_string(file).unwrap();
        let code = code_of(&text);
        // A parent's re-exports are its public face, not what it depends on.
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("pub use "))
            .map(|l| format!("{l}\n"))
            .collect();
        let parent: ModulePath = module[..module.len().saturating_sub(1)].to_vec();
        let mut targets = Vec::new();
        for words in paths_after(&code, "crate::") {
            let target = resolve(&[], &words, known);
            if target.is_empty() && !module.is_empty() {
                through_root.push(format!("{}: crate::{}", file.display(), words.join("::")));
            }
            targets.push(target);
        }
        for words in paths_after(&code, "super::") {
            targets.push(resolve(&parent, &words, known));
        }
        for words in paths_after(&code, "self::") {
            targets.push(resolve(module, &words, known));
        }
        for child in children(&code) {
            let mut child_module = module.clone();
            child_module.push(child.clone());
            for words in paths_after(&code, &format!("{child}::")) {
                targets.push(resolve(&child_module, &words, known));
            }
        }
        for target in targets {
            if &target != module && !target.is_empty() {
                edges.insert((module.clone(), target));
            }
        }
    }
    (edges, through_root)
}

/// A cycle in `edges`, if there is one.
fn find_cycle(edges: &BTreeSet<(ModulePath, ModulePath)>) -> Option<Vec<ModulePath>> {
    let mut next: BTreeMap<&ModulePath, Vec<&ModulePath>> = BTreeMap::new();
    for (from, to) in edges {
        next.entry(from).or_default().push(to);
    }
    // Depth-first search with colours: 1 = on the current path, 2 = done.
    fn visit<'a>(
        node: &'a ModulePath,
        next: &BTreeMap<&'a ModulePath, Vec<&'a ModulePath>>,
        colour: &mut BTreeMap<&'a ModulePath, u8>,
        path: &mut Vec<&'a ModulePath>,
    ) -> Option<Vec<ModulePath>> {
        colour.insert(node, 1);
        path.push(node);
        for &to in next.get(node).map(Vec::as_slice).unwrap_or(&[]) {
            match colour.get(to) {
                Some(1) => {
                    let start = path.iter().position(|p| *p == to).unwrap_or(0);
                    let mut cycle: Vec<ModulePath> =
                        path[start..].iter().map(|p| (*p).clone()).collect();
                    cycle.push(to.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(to, next, colour, path) {
                        return Some(c);
                    }
                }
            }
        }
        path.pop();
        colour.insert(node, 2);
        None
    }
    let mut colour = BTreeMap::new();
    let nodes: Vec<&ModulePath> = next.keys().copied().collect();
    for node in nodes {
        if !colour.contains_key(node) {
            if let Some(c) = visit(node, &next, &mut colour, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

fn shown(module: &ModulePath) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

#[test]
fn no_module_imports_one_of_its_importers() {
    let known = modules(&source_root());
    assert!(known.len() > 20, "read {} modules", known.len());
    let (edges, through_root) = imports(&known);
    assert!(
        through_root.is_empty(),
        "import from the module that defines it, not through the crate root:\n{}",
        through_root.join("\n")
    );
    if let Some(cycle) = find_cycle(&edges) {
        let cycle: Vec<String> = cycle.iter().map(shown).collect();
        panic!("import circle: {}", cycle.join(" -> "));
    }
}

#[test]
fn top_level_modules_import_only_lower_layers() {
    let known = modules(&source_root());
    let layer_of = |name: &str| LAYERS.iter().position(|l| l.contains(&name));
    let top: BTreeSet<&str> = known
        .keys()
        .filter(|m| m.len() == 1)
        .map(|m| m[0].as_str())
        .collect();
    let unplaced: Vec<&&str> = top.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "modules missing from LAYERS: {unplaced:?}"
    );
    let (edges, _) = imports(&known);
    let mut upward = Vec::new();
    for (from, to) in &edges {
        let (Some(a), Some(b)) = (from.first(), to.first()) else {
            continue;
        };
        if a == b {
            continue;
        }
        let (Some(la), Some(lb)) = (layer_of(a), layer_of(b)) else {
            continue;
        };
        if lb <= la {
            upward.push(format!("{} imports {}", shown(from), shown(to)));
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not go down the layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_relative_and_child_imports() {
    // A tiny crate: a imports b through a group, b imports a back through super; c uses its
    // child d by name; the check must find the circle a -> b -> a.
    let dir = std::env::temp_dir().join(format!("convlens-layering-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("c")).unwrap();
    std::fs::write(dir.join("lib.rs"), "pub mod a;\npub mod b;\npub mod c;\n").unwrap();
    std::fs::write(dir.join("a.rs"), "use crate::{b::{Thing, other}, c};\n").unwrap();
    std::fs::write(
        dir.join("b.rs"),
        "// crate::c is only a comment\nfn f() { super::a::g() }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("c/mod.rs"),
        "mod d;\npub use d::X;\nfn f() { d::y() }\n",
    )
    .unwrap();
    std::fs::write(dir.join("c/d.rs"), "fn y() {}\n").unwrap();
    let known = modules(&dir);
    let (edges, _) = imports(&known);
    let edge = |a: &[&str], b: &[&str]| {
        let v = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<ModulePath>();
        edges.contains(&(v(a), v(b)))
    };
    assert!(edge(&["a"], &["b"]));
    assert!(edge(&["a"], &["c"]));
    assert!(edge(&["b"], &["a"]));
    assert!(!edge(&["b"], &["c"]), "a comment is not an import");
    assert!(edge(&["c"], &["c", "d"]));
    let cycle = find_cycle(&edges).expect("a -> b -> a");
    assert_eq!(cycle.first(), cycle.last());
    std::fs::remove_dir_all(&dir).unwrap();
}
