//! Photos read from disk for the strip and the thumbnails (the TUI runs beside the daemon, so
//! it reads the folder's files itself), and the bundled demo photos.

use std::path::{Path, PathBuf};

use crate::data::{shrink, Picture};

/// Photos are shrunk to this many pixels on their longer side: the terminal never shows more,
/// and encoding stays quick.
const MAX_PHOTO: u32 = 512;

/// Reads and decodes `path`.
pub fn load(path: &Path) -> Result<Picture, String> {
    let image = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| format!("{}: {e}", path.display()))?
        .decode()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Picture::new(shrink(image, MAX_PHOTO).to_rgba8()))
}

/// The demo photos (scikit-image's, see `models/assets/photos/PROVENANCE.md`), built into the
/// binary so that `convlens` alone works from any folder.
const DEMO_PHOTOS: &[(&str, &[u8])] = &[
    (
        "astronaut.jpg",
        include_bytes!("../../models/assets/photos/astronaut.jpg"),
    ),
    (
        "chelsea.jpg",
        include_bytes!("../../models/assets/photos/chelsea.jpg"),
    ),
    (
        "coffee.jpg",
        include_bytes!("../../models/assets/photos/coffee.jpg"),
    ),
    (
        "motorcycle_left.jpg",
        include_bytes!("../../models/assets/photos/motorcycle_left.jpg"),
    ),
    (
        "rocket.jpg",
        include_bytes!("../../models/assets/photos/rocket.jpg"),
    ),
];

/// A folder holding the demo photos under `cache` (written when missing); the daemon watches
/// folders, so the photos must be files.
pub fn demo_folder(cache: &Path) -> std::io::Result<PathBuf> {
    let folder = cache.join("demo-photos");
    std::fs::create_dir_all(&folder)?;
    for (name, bytes) in DEMO_PHOTOS {
        let path = folder.join(name);
        let same = std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64);
        if !same {
            let partial = folder.join(format!(".{name}.partial"));
            std::fs::write(&partial, bytes)?;
            std::fs::rename(&partial, &path)?;
        }
    }
    Ok(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_folder_holds_decodable_photos() {
        let dir = std::env::temp_dir().join(format!("convlens-tui-demo-{}", std::process::id()));
        let folder = demo_folder(&dir).unwrap();
        for (name, _) in DEMO_PHOTOS {
            let p = load(&folder.join(name)).unwrap();
            let (w, h) = p.size();
            assert!(w.max(h) <= MAX_PHOTO && w > 0 && h > 0, "{name}: {w}x{h}");
        }
        assert!(load(&folder.join("missing.jpg"))
            .unwrap_err()
            .contains("missing.jpg"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
