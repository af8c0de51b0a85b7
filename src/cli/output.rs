//! What the subcommands write, in one place: the pictures and arrays the daemon sends, decoded;
//! pictures saved and drawn in the terminal; arrays as `.npy`; `--json` on stdout; and the error
//! that names the file a read or write failed on.

use std::fmt::Display;
use std::io::IsTerminal;
use std::io::Write;
use std::path::Path;

use candle_core::{Device, Tensor};
use convlens_models::units::HostArray;
use convlens_shared::array::{Array, Png};
use image::{DynamicImage, ImageFormat, RgbImage};

/// Terminal columns a picture drawn inline takes, in every subcommand. 48 lets an 80×24
/// terminal show it whole: it leaves 32 of the 80 columns free, and as a cell is about twice as
/// tall as it is wide (half-blocks draw two pixel rows a cell, and viuer sizes kitty, iTerm2 and
/// sixel pictures the same way), a square picture is 24 rows high; at 64 columns it would be 32
/// rows and its top would scroll off the screen.
pub(super) const INLINE_WIDTH: u32 = 48;

/// `e`, which happened reading or writing `path`, as one error naming the file
/// (`out.png: Permission denied (os error 13)`).
pub(super) fn file_error(path: &Path, e: impl Display) -> anyhow::Error {
    anyhow::anyhow!("{}: {e}", path.display())
}

/// A result of reading or writing a file, its error turned into one that names the file.
pub(super) trait OnFile<T> {
    /// The value, or [`file_error`] of the error on `path`.
    fn on_file(self, path: &Path) -> anyhow::Result<T>;
}

impl<T, E: Display> OnFile<T> for Result<T, E> {
    fn on_file(self, path: &Path) -> anyhow::Result<T> {
        self.map_err(|e| file_error(path, e))
    }
}

/// A picture the daemon sent, decoded with its own colour type.
fn decode(png: &Png) -> anyhow::Result<DynamicImage> {
    let not_png = |e: &dyn Display| {
        anyhow::anyhow!(
            "the daemon's {}x{} picture is not a PNG: {e}",
            png.width,
            png.height
        )
    };
    let bytes = png.to_bytes().map_err(|e| not_png(&e))?;
    image::load_from_memory_with_format(&bytes, ImageFormat::Png).map_err(|e| not_png(&e))
}

/// A picture the daemon sent, as RGB.
pub(super) fn decode_png(png: &Png) -> anyhow::Result<RgbImage> {
    Ok(decode(png)?.to_rgb8())
}

/// The picture the daemon sent (if it sent one) decoded, and saved to `output` (`-o`) when
/// given.
pub(super) fn take_picture(
    png: Option<&Png>,
    output: Option<&Path>,
) -> anyhow::Result<Option<RgbImage>> {
    let picture = png.map(decode_png).transpose()?;
    if let (Some(path), Some(picture)) = (output, &picture) {
        save_picture(picture, path)?;
    }
    Ok(picture)
}

/// Writes `picture` to `path` in the format its extension names (PNG for `.png`).
pub(super) fn save_picture(picture: &RgbImage, path: &Path) -> anyhow::Result<()> {
    picture.save(path).on_file(path)
}

/// Replaces `path` with `picture` in one step (written beside it, then renamed over it), so
/// that a viewer watching the file never reads half a picture: for pictures rewritten as
/// results come in (`explain --method all -o`).
pub(super) fn replace_picture(picture: &RgbImage, path: &Path) -> anyhow::Result<()> {
    let format = ImageFormat::from_path(path).on_file(path)?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut bytes, format).on_file(path)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let temporary = path.with_file_name(format!(
        ".{}.{}.partial",
        name.unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&temporary, bytes.into_inner()).on_file(&temporary)?;
    std::fs::rename(&temporary, path).on_file(path)
}

/// Writes a picture the daemon sent to `path` in the format its extension names, keeping its
/// colour type.
pub(super) fn save_daemon_picture(png: &Png, path: &Path) -> anyhow::Result<()> {
    decode(png)?.save(path).on_file(path)
}

/// Draws `picture` in the terminal, [`INLINE_WIDTH`] columns wide (kitty, iTerm2, sixel or
/// half-blocks, as viuer finds). When standard output is not a terminal (a pipe, a file) the
/// picture would arrive as kilobytes of escape codes: it is not drawn, and a line on standard
/// error says how to save it instead.
pub(super) fn show_inline(picture: &RgbImage) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        eprintln!(
            "({}×{} picture not drawn: standard output is not a terminal; -o FILE.png saves it)",
            picture.width(),
            picture.height()
        );
        return Ok(());
    }
    let config = viuer::Config {
        absolute_offset: false,
        width: Some(INLINE_WIDTH),
        ..Default::default()
    };
    viuer::print(&DynamicImage::ImageRgb8(picture.clone()), &config)
        .map_err(|e| anyhow::anyhow!("cannot draw in this terminal: {e}; use -o FILE.png"))?;
    Ok(())
}

/// An array the daemon sent, as the engine's host array.
pub(super) fn host_array(a: &Array) -> anyhow::Result<HostArray> {
    Ok(HostArray {
        shape: a.shape.clone(),
        data: a.to_f32()?,
    })
}

/// An array the daemon sent, as a CPU tensor of its shape.
pub(super) fn tensor(a: &Array) -> anyhow::Result<Tensor> {
    Ok(Tensor::from_vec(
        a.to_f32()?,
        a.shape.as_slice(),
        &Device::Cpu,
    )?)
}

/// Writes `t` (float32) as a `.npy` file at `path`.
pub(super) fn write_npy(t: &Tensor, path: &Path) -> anyhow::Result<()> {
    t.write_npy(path).on_file(path)
}

/// Writes an array the daemon sent as a float32 `.npy` file at `path`, in its shape.
pub(super) fn write_array_npy(a: &Array, path: &Path) -> anyhow::Result<()> {
    write_npy(&tensor(a)?, path)
}

/// Writes `json` and a newline to `out`: the end of [`print_json!`].
pub(super) fn json_line(
    out: &mut impl Write,
    json: serde_json::Result<String>,
) -> anyhow::Result<()> {
    writeln!(out, "{}", json?)?;
    Ok(())
}

/// Writes `$value` (a reference to anything `Serialize`) to `$out` as indented JSON and a
/// newline, as every `--json` prints. A macro because this package names serde's `Serialize`
/// only through serde_json's functions.
macro_rules! print_json {
    ($out:expr, $value:expr) => {
        $crate::cli::output::json_line($out, serde_json::to_string_pretty($value))
    };
}
pub(super) use print_json;

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder for one test.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("convlens-output-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        dir
    }

    #[test]
    fn npy_of_a_daemon_array_reads_back_with_its_shape_and_values() {
        let dir = scratch("npy");
        let path = dir.join("logits.npy");
        let values: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
        write_array_npy(&Array::from_f32(&[2, 3], &values), &path).expect("written");
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("'descr': '<f4'"), "{text}");
        let back = Tensor::read_npy(&path).expect("read back");
        assert_eq!(back.dims(), &[2, 3]);
        let flat: Vec<f32> = back
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("values");
        assert_eq!(flat, values);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_failed_write_names_the_file() {
        let path = std::env::temp_dir()
            .join("convlens-no-such-folder")
            .join("out.npy");
        let e = write_array_npy(&Array::from_f32(&[1], &[1.0]), &path).expect_err("no folder");
        assert!(
            e.to_string().starts_with(&format!("{}: ", path.display())),
            "{e}"
        );
        let e = save_picture(&RgbImage::new(2, 2), &path.with_extension("png")).expect_err("no");
        assert!(e.to_string().contains("out.png"), "{e}");
        let e = std::fs::read("/no/such/input.csv")
            .on_file(Path::new("/no/such/input.csv"))
            .expect_err("no file");
        assert!(e.to_string().starts_with("/no/such/input.csv: "), "{e}");
        assert_eq!(
            file_error(Path::new("a b.gif"), "disk full").to_string(),
            "a b.gif: disk full"
        );
    }

    #[test]
    fn a_picture_that_is_not_a_png_says_so() {
        let garbage = Png::from_bytes(4, 3, b"GIF89a, not a PNG");
        let e = decode_png(&garbage).expect_err("not a PNG");
        assert!(
            e.to_string()
                .starts_with("the daemon's 4x3 picture is not a PNG: "),
            "{e}"
        );
        let not_base64 = Png {
            width: 1,
            height: 1,
            data: "%%%".into(),
        };
        let e = decode_png(&not_base64).expect_err("not base64");
        assert!(e.to_string().contains("not a PNG"), "{e}");
        assert!(e.to_string().contains("base64"), "{e}");
    }

    #[test]
    fn a_saved_picture_decodes_back_and_is_taken_with_its_output() {
        let dir = scratch("png");
        let mut picture = RgbImage::new(3, 2);
        picture.put_pixel(1, 1, image::Rgb([10, 200, 30]));
        let mut bytes = Vec::new();
        DynamicImage::ImageRgb8(picture.clone())
            .write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
            .expect("encoded");
        let png = Png::from_bytes(3, 2, &bytes);
        assert_eq!(decode_png(&png).expect("decoded"), picture);
        let path = dir.join("grid.png");
        let taken = take_picture(Some(&png), Some(&path)).expect("taken");
        assert_eq!(taken.as_ref(), Some(&picture));
        let saved = image::open(&path).expect("saved").to_rgb8();
        assert_eq!(saved, picture);
        assert_eq!(take_picture(None, Some(&path)).expect("none"), None);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn json_is_indented_and_ends_the_line() {
        let mut out = Vec::new();
        print_json!(&mut out, &serde_json::json!({"class": 1})).expect("printed");
        assert_eq!(String::from_utf8_lossy(&out), "{\n  \"class\": 1\n}\n");
    }
}
