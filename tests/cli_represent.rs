//! End to end through the binary: `convlens embed`, `top` and `neighbors` on
//! tests/fixtures/fashion_folder/ with `random:resnet18` at 64×64, against the PyTorch reference
//! of tests/fixtures/make_represent.py.

use std::path::{Path, PathBuf};

mod cli_support;
use cli_support::{assert_one_clear_error, root, succeed};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convlens-cli-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/represent").join(name)
}

const FOLDER: &str = "tests/fixtures/fashion_folder";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn embed_writes_pytorchs_codes_a_map_and_reuses_its_cache() {
    let dir = scratch("embed");
    let (cache, npy, csv, png) = (
        dir.join("cache"),
        dir.join("codes.npy"),
        dir.join("map.csv"),
        dir.join("map.png"),
    );
    let out = succeed(&[
        "embed",
        "random:resnet18",
        FOLDER,
        "--size",
        "64",
        "--batch",
        "16",
        "--cache",
        s(&cache),
        "--out",
        s(&npy),
        "--csv",
        s(&csv),
        "-o",
        s(&png),
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(v["layer"], "avgpool");
    assert_eq!(
        (v["images"].as_u64(), v["computed"].as_u64()),
        (Some(250), Some(250))
    );
    assert_eq!(v["forwardPasses"].as_u64(), Some(16));

    let codes = candle_core::Tensor::read_npy(&npy).unwrap();
    let torch = candle_core::Tensor::read_npy(fixture("codes.npy")).unwrap();
    assert_eq!(codes.dims(), &[250, 512]);
    let diff = codes.sub(&torch).unwrap().abs().unwrap().max_all().unwrap();
    let scale = torch.abs().unwrap().max_all().unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() <= 1e-4 * scale.to_scalar::<f32>().unwrap());

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("path,x,y,top1_class,top1_prob"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 250);
    let paths: Vec<String> = std::fs::read_to_string(fixture("paths.txt"))
        .unwrap()
        .lines()
        .map(|p| format!("{FOLDER}/{p}"))
        .collect();
    let top1: Vec<i64> = candle_core::Tensor::read_npy(fixture("top1.npy"))
        .unwrap()
        .to_vec1()
        .unwrap();
    for ((row, path), class) in rows.iter().zip(&paths).zip(&top1) {
        assert_eq!(row[0], path);
        assert!(row[1].parse::<f32>().unwrap().is_finite());
        assert!(row[2].parse::<f32>().unwrap().is_finite());
        assert_eq!(row[3].parse::<i64>().unwrap(), *class);
    }
    let picture = image::open(&png).unwrap();
    assert!(picture.width() >= 800 && picture.height() >= 800);

    // Unchanged folder: no forward pass at all.
    let again = json(&succeed(&[
        "embed",
        "random:resnet18",
        FOLDER,
        "--size",
        "64",
        "--cache",
        s(&cache),
        "--out",
        s(&npy),
        "--json",
    ]));
    assert_eq!(
        (again["computed"].as_u64(), again["cached"].as_u64()),
        (Some(0), Some(250))
    );
    assert_eq!(again["forwardPasses"].as_u64(), Some(0));
    let cached_codes = candle_core::Tensor::read_npy(&npy).unwrap();
    assert_eq!(
        cached_codes
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        codes.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );

    // PCA map and the thumbnail grid.
    let grid = dir.join("grid.png");
    succeed(&[
        "embed",
        "random:resnet18",
        FOLDER,
        "--size",
        "64",
        "--cache",
        s(&cache),
        "--map",
        "pca",
        "--grid",
        "-o",
        s(&grid),
    ]);
    let grid = image::open(&grid).unwrap();
    assert_eq!(grid.width(), grid.height());
    assert_eq!(grid.width() % 16, 0, "16×16 cells for 250 images");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_folder_of_broken_files_completes_and_lists_them() {
    let dir = scratch("broken");
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::copy(
        root().join(FOLDER).join("bag/t00018.png"),
        images.join("bag.png"),
    )
    .unwrap();
    let mut jpeg = Vec::new();
    image::DynamicImage::new_rgb8(32, 32)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    std::fs::write(images.join("truncated.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    std::fs::write(images.join("text.png"), "not a picture").unwrap();
    std::fs::write(images.join("empty.jpg"), b"").unwrap();
    let out = succeed(&[
        "embed",
        "random:resnet18",
        s(&images),
        "--size",
        "32",
        "--no-cache",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(v["images"].as_u64(), Some(1));
    let skipped: Vec<&str> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in ["truncated.jpg", "text.png", "empty.jpg"] {
        assert!(
            skipped.iter().any(|p| p.ends_with(name)),
            "{name} in {skipped:?}"
        );
        assert!(stderr.contains(name), "stderr names {name}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn top_ranks_pytorchs_maxima_and_draws_the_receptive_field_crops() {
    let dir = scratch("top");
    let (cache, png) = (dir.join("cache"), dir.join("unit.png"));
    let all = json(&succeed(&[
        "top",
        "random:resnet18",
        FOLDER,
        "--layer",
        "layer3",
        "--size",
        "64",
        "--cache",
        s(&cache),
        "--json",
    ]));
    assert_eq!(all["top"]["units"].as_array().unwrap().len(), 256);
    assert_eq!(all["stats"]["units"].as_array().unwrap().len(), 256);
    assert_eq!(all["computed"].as_u64(), Some(250));

    // Browsing one unit afterwards needs no forward pass.
    let unit = 5;
    let one = json(&succeed(&[
        "top",
        "random:resnet18",
        FOLDER,
        "--layer",
        "layer3",
        "--size",
        "64",
        "--cache",
        s(&cache),
        "--unit",
        "5",
        "-k",
        "4",
        "--json",
        "-o",
        s(&png),
    ]));
    assert_eq!(one["computed"].as_u64(), Some(0));
    let entries = one["top"]["units"][0]["top"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    // PyTorch's ranking of the same unit.
    let maxima: Vec<Vec<f32>> = candle_core::Tensor::read_npy(fixture("layer3_max.npy"))
        .unwrap()
        .to_vec2()
        .unwrap();
    let paths: Vec<String> = std::fs::read_to_string(fixture("paths.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut order: Vec<usize> = (0..250).collect();
    order.sort_by(|&a, &b| maxima[b][unit].total_cmp(&maxima[a][unit]));
    for (entry, &want) in entries.iter().zip(&order) {
        assert!(entry["path"].as_str().unwrap().ends_with(&paths[want]));
        let value = entry["value"].as_f64().unwrap() as f32;
        assert!((value - maxima[want][unit]).abs() <= 1e-4 * maxima[want][unit].abs().max(1.0));
    }
    let picture = image::open(&png).unwrap();
    assert_eq!(
        (picture.width(), picture.height()),
        (64 + 4 * 66 + 2, 66 + 2)
    );

    let text = String::from_utf8(
        succeed(&[
            "top",
            "random:resnet18",
            FOLDER,
            "--layer",
            "layer3",
            "--size",
            "64",
            "--cache",
            s(&cache),
            "--unit",
            "5",
        ])
        .stdout,
    )
    .unwrap();
    assert!(text.contains("unit 5: mean"), "{text}");
    assert!(text.contains(&paths[order[0]]), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn neighbors_are_pytorchs_most_similar_codes() {
    let dir = scratch("neighbors");
    let paths: Vec<String> = std::fs::read_to_string(fixture("paths.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let query = 42;
    let image = format!("{FOLDER}/{}", paths[query]);
    let found = json(&succeed(&[
        "neighbors",
        "random:resnet18",
        FOLDER,
        &image,
        "-k",
        "3",
        "--size",
        "64",
        "--cache",
        s(&dir),
        "--json",
    ]));
    let codes: Vec<Vec<f32>> = candle_core::Tensor::read_npy(fixture("codes.npy"))
        .unwrap()
        .to_vec2()
        .unwrap();
    let cos = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (n(a) * n(b))
    };
    let mut order: Vec<usize> = (0..250).filter(|&i| i != query).collect();
    order.sort_by(|&a, &b| cos(&codes[query], &codes[b]).total_cmp(&cos(&codes[query], &codes[a])));
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 3);
    for (entry, &want) in found.iter().zip(&order) {
        assert!(entry["path"].as_str().unwrap().ends_with(&paths[want]));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_gives_one_clear_error_line() {
    assert_one_clear_error(
        &["embed", "random:resnet18", "no-such-folder", "--no-cache"],
        "no-such-folder",
    );
    assert_one_clear_error(
        &["embed", "random:resnet18", "README.md", "--no-cache"],
        "not a folder",
    );
    let common = ["random:resnet18", FOLDER, "--size", "32", "--no-cache"];
    let mut args = vec!["top"];
    args.extend(common);
    args.extend(["--layer", "layer9"]);
    assert_one_clear_error(&args, "unknown layer `layer9`");
    let mut args = vec!["top"];
    args.extend(common);
    args.extend(["--layer", "layer4", "--unit", "512"]);
    assert_one_clear_error(&args, "out of range");
    let mut args = vec!["neighbors"];
    args.extend([
        "random:resnet18",
        FOLDER,
        "README.md",
        "--size",
        "32",
        "--no-cache",
    ]);
    assert_one_clear_error(&args, "README.md");
}
