//! `embed` streams its rows: the daemon sends them as partial results a few hundred at a time
//! and the CLI writes `--out`, `--parquet` and `--projector` as they come, so neither holds the
//! folder's codes; what it writes equals the engine's collected pass. t-SNE beyond `--tsne-max`
//! images maps every s-th image and says so.

use std::path::{Path, PathBuf};

use candle_core::Device;
use convlens_models::progress::Silent;
use convlens_models::represent::tsne::{tsne, TsneOptions};
use convlens_models::represent::{summarize_folder, FolderSummary, SummaryOptions};
use convlens_models::{LoadOptions, Model};
use parquet::file::reader::{FileReader, SerializedFileReader};

mod cli_support;
use cli_support::succeed;

const MODEL: &str = "random:small-vgg";
/// More images than one partial result holds (256), so the rows come in three pieces.
const IMAGES: u32 = 600;

/// A folder of `IMAGES` small grey patterns in two subfolders.
fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convlens-stream-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for i in 0..IMAGES {
        let sub = dir.join("images").join(if i % 3 == 0 { "a" } else { "b" });
        std::fs::create_dir_all(&sub).unwrap();
        let picture = image::GrayImage::from_fn(28, 28, |x, y| {
            image::Luma([((x * (i % 7 + 1) + y * (i % 5 + 2) + i) % 256) as u8])
        });
        picture.save(sub.join(format!("{i:04}.png"))).unwrap();
    }
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The engine's collected pass over the folder, uncached.
fn engine_pass(dir: &Path) -> (Model, FolderSummary) {
    let model = Model::load(MODEL, &LoadOptions::default(), &Device::Cpu).unwrap();
    let summary = summarize_folder(&model, dir, &SummaryOptions::default(), &Silent).unwrap();
    (model, summary)
}

/// The CSV's rows: path, and the point when the map has one.
fn csv_rows(path: &Path) -> Vec<(String, Option<[f32; 2]>)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let point = (!cells[1].is_empty())
                .then(|| [cells[1].parse().unwrap(), cells[2].parse().unwrap()]);
            (cells[0].to_string(), point)
        })
        .collect()
}

#[test]
fn streamed_rows_equal_the_engines_pass_through_the_daemon_and_in_process() {
    let dir = folder("rows");
    let images = dir.join("images");
    let (_, want) = engine_pass(&images);
    assert_eq!(want.len(), IMAGES as usize);
    let mut npys = Vec::new();
    for (run, daemon) in [("daemon", true), ("in-process", false)] {
        let (npy, table, csv) = (
            dir.join(format!("{run}.npy")),
            dir.join(format!("{run}.parquet")),
            dir.join(format!("{run}.csv")),
        );
        let mut args = vec![];
        if !daemon {
            args.push("--no-daemon");
        }
        args.extend([
            "-q",
            "embed",
            MODEL,
            s(&images),
            "--no-cache",
            "--map",
            "pca",
            "--out",
            s(&npy),
            "--parquet",
            s(&table),
            "--csv",
            s(&csv),
        ]);
        succeed(&args);
        let codes = candle_core::Tensor::read_npy(&npy).unwrap();
        assert_eq!(codes.dims(), &[IMAGES as usize, want.shape.units], "{run}");
        let codes = codes.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let scale = want.codes.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (i, (a, b)) in codes.iter().zip(&want.codes).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * scale,
                "{run}: value {i}: {a} vs {b}"
            );
        }
        let rows = csv_rows(&csv);
        let paths: Vec<String> = want.paths.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(), paths);
        assert!(rows.iter().all(|r| r.1.is_some()), "PCA maps every image");
        let reader = SerializedFileReader::new(std::fs::File::open(&table).unwrap()).unwrap();
        assert_eq!(
            reader.metadata().file_metadata().num_rows(),
            i64::from(IMAGES)
        );
        let map = dir.join(format!("{run}-map.parquet"));
        let reader = SerializedFileReader::new(std::fs::File::open(&map).unwrap()).unwrap();
        assert_eq!(
            reader.metadata().file_metadata().num_rows(),
            i64::from(IMAGES)
        );
        npys.push(std::fs::read(&npy).unwrap());
    }
    assert_eq!(
        npys[0], npys[1],
        "the daemon's rows and the in-process rows"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tsne_beyond_its_limit_maps_every_sth_image_and_says_so() {
    let dir = folder("tsne");
    let images = dir.join("images");
    let csv = dir.join("map.csv");
    let out = succeed(&[
        "--no-daemon",
        "-q",
        "embed",
        MODEL,
        s(&images),
        "--no-cache",
        "--tsne-max",
        "100",
        "--iterations",
        "250",
        "--csv",
        s(&csv),
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("t-SNE mapped 100 of the 600 images (every 6th"),
        "{stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sampled: Vec<usize> = (0..IMAGES as usize).step_by(6).collect();
    assert_eq!(json["mapped"], serde_json::json!(sampled));
    let rows = csv_rows(&csv);
    assert_eq!(rows.len(), IMAGES as usize, "every image has its CSV row");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.1.is_some(), i % 6 == 0, "row {i}");
    }
    // The points are t-SNE's of the sampled codes.
    let (_, want) = engine_pass(&images);
    let dim = want.shape.units;
    let codes: Vec<f32> = sampled
        .iter()
        .flat_map(|&i| want.codes[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    let options = TsneOptions {
        epochs: 250,
        ..TsneOptions::default()
    };
    let map = tsne(&codes, dim, &options, &Device::Cpu, &Silent).unwrap();
    let got: Vec<[f32; 2]> = rows.iter().filter_map(|r| r.1).collect();
    assert_eq!(got, map.points);
    std::fs::remove_dir_all(&dir).ok();
}
