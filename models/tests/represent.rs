//! Representations over tests/fixtures/fashion_folder/ (250 Fashion-MNIST images) with
//! `random:resnet18` at 64×64, against PyTorch and scikit-learn (tests/fixtures/make_represent.py)
//! and against brute-force references computed here one image at a time.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use common::{assert_close, device, device_tolerance};
use convlens_models::input::load_input;
use convlens_models::progress::{CancelFlag, Silent};
use convlens_models::represent::codes::{resolve_layer, summarize_files};
use convlens_models::represent::map_render::{render_scatter, snap_to_grid};
use convlens_models::represent::neighbors::{knn_euclidean, nearest_by_cosine};
use convlens_models::represent::pca::pca;
use convlens_models::represent::top_units::top_images;
use convlens_models::represent::tsne::{tsne, TsneOptions};
use convlens_models::represent::unit_stats::unit_stats;
use convlens_models::represent::{summarize_folder, FolderSummary, SummaryOptions};
use convlens_models::{Error, LoadOptions, Model};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn folder() -> PathBuf {
    root().join("tests/fixtures/fashion_folder")
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/represent").join(name)
}

/// `random:resnet18` with make_represent.py's preprocessing: Resize(74), CenterCrop(64).
fn model() -> Model {
    let mut m = Model::load("random:resnet18", &LoadOptions::default(), &device()).unwrap();
    m.preprocess.crop = 64;
    m.preprocess.resize = 74;
    m
}

fn options(layer: Option<&str>, batch: usize, cache: Option<&Path>) -> SummaryOptions {
    SummaryOptions {
        layer: layer.map(str::to_string),
        batch,
        cache_dir: cache.map(Path::to_path_buf),
        preprocess: None,
        prefetch: true,
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("convlens-represent-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn npy_f32(name: &str) -> Tensor {
    Tensor::read_npy(fixture(name)).unwrap()
}

fn reference_paths() -> Vec<String> {
    std::fs::read_to_string(fixture("paths.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn labels() -> Vec<i64> {
    npy_f32("labels.npy").to_vec1::<i64>().unwrap()
}

fn relative(summary: &FolderSummary) -> Vec<String> {
    summary
        .paths
        .iter()
        .map(|p| {
            p.strip_prefix(folder())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn preprocessing_equals_torchvision() {
    let m = model();
    let first = folder().join(&reference_paths()[0]);
    let got = load_input(&first, &m.preprocess, &Device::Cpu).unwrap();
    assert_close("preprocessed input", &got, &npy_f32("input0.npy"), 1e-6);
}

#[test]
fn codes_and_top1_equal_pytorch() {
    let m = model();
    let s = summarize_folder(&m, &folder(), &options(None, 32, None), &Silent).unwrap();
    assert_eq!(s.layer, "avgpool", "the penultimate layer feeds fc");
    assert_eq!(relative(&s), reference_paths());
    assert_eq!(s.other_files, 2, "README.md and labels.csv are passed over");
    assert!(s.skipped.is_empty(), "{:?}", s.skipped);
    assert_eq!((s.computed, s.cached, s.forward_passes), (250, 0, 8));
    let codes = Tensor::from_slice(&s.codes, (250, 512), &Device::Cpu).unwrap();
    assert_close("codes", &codes, &npy_f32("codes.npy"), device_tolerance());
    let want_top1: Vec<i64> = npy_f32("top1.npy").to_vec1().unwrap();
    let got_top1: Vec<i64> = s.top1_class.iter().map(|&c| i64::from(c)).collect();
    assert_eq!(got_top1, want_top1);
    let want_prob = npy_f32("top1_prob.npy");
    let got_prob = Tensor::from_slice(&s.top1_prob, 250, &Device::Cpu).unwrap();
    assert_close("top-1 probabilities", &got_prob, &want_prob, 1e-4);
}

/// Each image's layer output on its own (batch 1), from the graph directly.
fn brute_force_layer(m: &Model, layer: &str, paths: &[PathBuf]) -> Vec<Vec<Vec<f32>>> {
    let id = m.graph.node_id(layer).unwrap();
    paths
        .iter()
        .map(|p| {
            let x = load_input(p, &m.preprocess, &m.device).unwrap();
            let trace = m.graph.forward(&x, Some(&[id])).unwrap();
            let out = trace.get(id).unwrap().to_device(&Device::Cpu).unwrap();
            let (c, h, w) = out.squeeze(0).unwrap().dims3().unwrap();
            out.reshape((c, h * w)).unwrap().to_vec2::<f32>().unwrap()
        })
        .collect()
}

#[test]
fn top_k_and_unit_stats_equal_brute_force_and_pytorch() {
    let m = model();
    // An odd batch size, so that batches straddle the class folders and the last one is short.
    let s = summarize_folder(&m, &folder(), &options(Some("layer3"), 7, None), &Silent).unwrap();
    assert_eq!((s.shape.units, s.shape.height, s.shape.width), (256, 4, 4));
    assert_eq!(s.forward_passes, 36);

    // PyTorch's per-image maxima and their positions.
    let want_max = npy_f32("layer3_max.npy");
    let got_max = Tensor::from_slice(&s.max, (250, 256), &Device::Cpu).unwrap();
    assert_close("layer3 maxima", &got_max, &want_max, device_tolerance());
    let want_pos: Vec<Vec<u8>> = npy_f32("layer3_argmax.npy").to_vec2().unwrap();
    let want_max: Vec<Vec<f32>> = want_max.to_vec2().unwrap();
    let mut compared = 0;
    for i in 0..250 {
        for u in 0..256 {
            if want_max[i][u] > 1e-3 {
                assert_eq!(
                    s.argmax[i * 256 + u],
                    u32::from(want_pos[i][u]),
                    "image {i} unit {u}"
                );
                compared += 1;
            }
        }
    }
    assert!(
        compared > 10_000,
        "only {compared} positive maxima compared"
    );

    // Brute force: every image alone, maxima and first positions by hand, ranked by sorting.
    let outputs = brute_force_layer(&m, "layer3", &s.paths);
    let k = 9;
    let top = top_images(&s, k, None).unwrap();
    assert_eq!(top.units.len(), 256);
    let tol = 1e-4 * want_max.iter().flatten().fold(0f32, |a, &v| a.max(v.abs()));
    for unit in &top.units {
        let u = unit.unit;
        let best: Vec<(f32, usize, usize)> = outputs
            .iter()
            .enumerate()
            .map(|(i, planes)| {
                let plane = &planes[u];
                let (mut pos, mut max) = (0, plane[0]);
                for (p, &v) in plane.iter().enumerate() {
                    if v > max {
                        (pos, max) = (p, v);
                    }
                }
                (max, i, pos)
            })
            .collect();
        let mut ranked = best.clone();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        assert_eq!(unit.top.len(), k);
        for (got, want) in unit.top.iter().zip(&ranked) {
            assert!(
                (got.value - want.0).abs() <= tol,
                "unit {u}: {} vs {}",
                got.value,
                want.0
            );
            if got.image != want.1 {
                // Only a near-tie may swap places.
                let (a, b) = (best[got.image].0, best[want.1].0);
                assert!(
                    (a - b).abs() <= tol,
                    "unit {u}: image {} ({a}) ranked where {} ({b}) belongs",
                    got.image,
                    want.1
                );
            } else if got.value > tol {
                assert_eq!(
                    (got.y * 4 + got.x),
                    want.2,
                    "unit {u} image {}: position",
                    got.image
                );
            }
        }
    }
    // Units asked for by number give the same lists.
    let some = top_images(&s, 3, Some(&[5, 200])).unwrap();
    assert_eq!(some.units[0].top[..], top.units[5].top[..3]);
    assert_eq!(some.units[1].top[..], top.units[200].top[..3]);
    assert!(matches!(
        top_images(&s, 3, Some(&[256])),
        Err(Error::InvalidArgument(_))
    ));

    // Unit statistics against the same brute force.
    let stats = unit_stats(&s);
    assert_eq!(stats.images, 250);
    let mut dead = Vec::new();
    for (u, stat) in stats.units.iter().enumerate() {
        let means: f64 = outputs
            .iter()
            .map(|planes| planes[u].iter().map(|&v| f64::from(v)).sum::<f64>() / 16.0)
            .sum::<f64>()
            / 250.0;
        let max = outputs
            .iter()
            .flat_map(|p| p[u].iter().copied())
            .fold(f32::MIN, f32::max);
        let active = outputs
            .iter()
            .filter(|p| p[u].iter().any(|&v| v > 0.0))
            .count();
        assert!(
            (f64::from(stat.mean) - means).abs() <= f64::from(tol),
            "unit {u} mean"
        );
        assert!((stat.max - max).abs() <= tol, "unit {u} max");
        assert_eq!(
            stat.active_fraction,
            active as f32 / 250.0,
            "unit {u} active fraction"
        );
        if active == 0 {
            dead.push(u);
        }
    }
    assert_eq!(stats.dead, dead);
}

fn copy_images(n: usize, to: &Path) -> Vec<PathBuf> {
    reference_paths()
        .iter()
        .take(n)
        .map(|rel| {
            let dest = to.join(rel.replace('/', "_"));
            std::fs::copy(folder().join(rel), &dest).unwrap();
            dest
        })
        .collect()
}

#[test]
fn a_second_pass_runs_no_forward_pass_and_a_changed_file_is_embedded_again() {
    let m = model();
    let dir = scratch("cache-images");
    let cache = scratch("cache-store");
    let files = copy_images(20, &dir);
    let opts = options(None, 8, Some(&cache));
    let first = summarize_folder(&m, &dir, &opts, &Silent).unwrap();
    assert_eq!(
        (first.computed, first.cached, first.forward_passes),
        (20, 0, 3)
    );
    let second = summarize_folder(&m, &dir, &opts, &Silent).unwrap();
    assert_eq!(
        (second.computed, second.cached, second.forward_passes),
        (0, 20, 0)
    );
    assert_eq!(second.codes, first.codes);
    assert_eq!(second.max, first.max);
    assert_eq!(second.argmax, first.argmax);
    assert_eq!(second.top1_class, first.top1_class);

    // Another layer or input size is another cache; the same content under a new name is not.
    let other =
        summarize_folder(&m, &dir, &options(Some("layer4"), 8, Some(&cache)), &Silent).unwrap();
    assert_eq!(other.computed, 20);
    std::fs::rename(&files[0], dir.join("renamed.png")).unwrap();
    std::fs::copy(&files[5], &files[1]).unwrap(); // now a duplicate of another file's content
    std::fs::copy(folder().join(&reference_paths()[100]), dir.join("new.png")).unwrap();
    let third = summarize_folder(&m, &dir, &opts, &Silent).unwrap();
    assert_eq!(
        (third.computed, third.cached),
        (1, 20),
        "only new.png is new content"
    );

    // An interrupted append (a partial record at the end) loses only that record.
    let file = third.cache_file.clone().unwrap();
    let len = std::fs::metadata(&file).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len - 100).unwrap();
    drop(f);
    let fourth = summarize_folder(&m, &dir, &opts, &Silent).unwrap();
    assert_eq!((fourth.computed, fourth.cached), (1, 20));
    assert_eq!(fourth.codes, third.codes);
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&cache).ok();
}

#[test]
fn unreadable_files_are_listed_and_skipped() {
    let m = model();
    let dir = scratch("broken");
    copy_images(3, &dir);
    // A truncated JPEG, a text file named .png, an empty file, and a file that is not an image.
    let mut jpeg = Vec::new();
    image::DynamicImage::new_rgb8(40, 40)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/truncated.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    std::fs::write(dir.join("text.png"), "this is not a picture\n").unwrap();
    std::fs::write(dir.join("empty.jpg"), b"").unwrap();
    std::fs::write(dir.join("notes.txt"), "hello").unwrap();
    let cache = scratch("broken-cache");
    let s = summarize_folder(&m, &dir, &options(None, 4, Some(&cache)), &Silent).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s.other_files, 1);
    let skipped: Vec<String> = s
        .skipped
        .iter()
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(skipped, ["empty.jpg", "truncated.jpg", "text.png"]);
    assert!(s.skipped.iter().all(|f| !f.reason.is_empty()));
    assert_eq!(s.skipped[0].reason, "empty file");

    // A folder of nothing but unreadable files completes too.
    for f in s.paths {
        std::fs::remove_file(f).unwrap();
    }
    let s = summarize_folder(&m, &dir, &options(None, 4, None), &Silent).unwrap();
    assert_eq!((s.len(), s.skipped.len(), s.shape.units), (0, 3, 512));
    assert!(summarize_folder(&m, &dir.join("missing"), &options(None, 4, None), &Silent).is_err());
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&cache).ok();
}

#[test]
fn a_cancelled_pass_stops_with_cancelled() {
    let m = model();
    let flag = CancelFlag::new();
    flag.cancel();
    let files: Vec<PathBuf> = reference_paths().iter().map(|p| folder().join(p)).collect();
    let r = summarize_files(&m, &files, &options(None, 8, None), &flag);
    assert!(matches!(r, Err(Error::Cancelled)));
}

#[test]
fn a_preprocessing_override_equals_the_model_preprocessed_that_way_and_caches_apart() {
    let own = model();
    let plain = Model::load("random:resnet18", &LoadOptions::default(), &device()).unwrap();
    let files: Vec<PathBuf> = reference_paths()
        .iter()
        .take(6)
        .map(|p| folder().join(p))
        .collect();
    let want = summarize_files(&own, &files, &options(None, 4, None), &Silent).unwrap();
    let cache = scratch("override-cache");
    let with = |crop: u32| SummaryOptions {
        preprocess: Some(convlens_models::input::Preprocess {
            crop,
            resize: (crop * 256).div_ceil(224),
            ..plain.preprocess
        }),
        ..options(None, 4, Some(&cache))
    };
    let got = summarize_files(&plain, &files, &with(64), &Silent).unwrap();
    assert_eq!(got.computed, 6);
    assert_eq!(got.codes, want.codes);
    assert_eq!(got.max, want.max);
    assert_eq!(got.argmax, want.argmax);
    // Another input size is another cache file; the same one again is answered from the cache.
    let smaller = summarize_files(&plain, &files, &with(32), &Silent).unwrap();
    assert_eq!(smaller.computed, 6);
    assert_ne!(smaller.cache_file, got.cache_file);
    assert_ne!(smaller.codes, got.codes);
    let again = summarize_files(&plain, &files, &with(64), &Silent).unwrap();
    assert_eq!((again.computed, again.cached), (0, 6));
    assert_eq!(again.codes, want.codes);
    std::fs::remove_dir_all(&cache).ok();
}

#[test]
fn the_default_layer_is_the_classifiers_input() {
    let m = model();
    assert_eq!(resolve_layer(&m, None).unwrap().1, "avgpool");
    assert!(matches!(
        resolve_layer(&m, Some("layer9")),
        Err(Error::UnknownLayer { .. })
    ));
}

/// scikit-learn's trustworthiness: 1 − 2/(nk(2n − 3k − 1)) Σᵢ Σ_{j ∈ Uᵢ} (r(i, j) − k), where Uᵢ
/// are i's k nearest in the map that are not among its k nearest in the codes and r(i, j) is j's
/// rank among i's neighbours in the codes.
fn trustworthiness(codes: &[f32], dim: usize, map: &[[f32; 2]], k: usize) -> f64 {
    let n = map.len();
    let d_in = |i: usize, j: usize| -> f64 {
        codes[i * dim..(i + 1) * dim]
            .iter()
            .zip(&codes[j * dim..(j + 1) * dim])
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum()
    };
    let d_out = |i: usize, j: usize| -> f64 {
        f64::from(map[i][0] - map[j][0]).powi(2) + f64::from(map[i][1] - map[j][1]).powi(2)
    };
    let mut penalty = 0f64;
    for i in 0..n {
        let mut by_in: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        by_in.sort_by(|&a, &b| d_in(i, a).total_cmp(&d_in(i, b)).then(a.cmp(&b)));
        let mut rank = vec![0usize; n];
        for (r, &j) in by_in.iter().enumerate() {
            rank[j] = r + 1;
        }
        let mut by_out: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        by_out.sort_by(|&a, &b| d_out(i, a).total_cmp(&d_out(i, b)).then(a.cmp(&b)));
        for &j in &by_out[..k] {
            if rank[j] > k {
                penalty += (rank[j] - k) as f64;
            }
        }
    }
    1.0 - 2.0 / (n as f64 * k as f64 * (2.0 * n as f64 - 3.0 * k as f64 - 1.0)) * penalty
}

/// Leave-one-out k-NN accuracy: the majority label of each point's k nearest others (ties to the
/// smaller label), as make_represent.py computes it.
fn knn_accuracy(points: &[f32], dim: usize, labels: &[i64], k: usize) -> f64 {
    let neighbours = knn_euclidean(points, dim, k, &Device::Cpu).unwrap();
    let hits = neighbours
        .iter()
        .enumerate()
        .filter(|(i, row)| {
            let mut votes = [0usize; 10];
            for &(j, _) in row.iter() {
                votes[labels[j] as usize] += 1;
            }
            let best = (0..10)
                .max_by(|&a, &b| votes[a].cmp(&votes[b]).then(b.cmp(&a)))
                .unwrap();
            best as i64 == labels[*i]
        })
        .count();
    hits as f64 / labels.len() as f64
}

#[test]
fn tsne_map_is_as_trustworthy_as_scikit_learns() {
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("tsne.json")).unwrap()).unwrap();
    let codes: Vec<f32> = npy_f32("codes.npy")
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let labels = labels();
    let knn_codes = knn_accuracy(&codes, 512, &labels, 5);
    let want_knn_codes = reference["knn5_accuracy_codes"].as_f64().unwrap();
    assert!(
        (knn_codes - want_knn_codes).abs() < 1e-9,
        "5-NN accuracy {knn_codes} vs sklearn's {want_knn_codes}"
    );
    let sklearn_map: Vec<[f32; 2]> = npy_f32("tsne_sklearn.npy")
        .to_vec2::<f32>()
        .unwrap()
        .into_iter()
        .map(|r| [r[0], r[1]])
        .collect();
    let sklearn_trust = reference["trustworthiness_k5_sklearn"].as_f64().unwrap();
    let ours_of_sklearn = trustworthiness(&codes, 512, &sklearn_map, 5);
    assert!(
        (ours_of_sklearn - sklearn_trust).abs() < 1e-9,
        "trustworthiness {ours_of_sklearn} vs sklearn's {sklearn_trust}"
    );

    // Exact t-SNE (250 points), and Barnes–Hut forced on the same points.
    for exact_up_to in [1000, 0] {
        let opts = TsneOptions {
            exact_up_to,
            ..TsneOptions::default()
        };
        let map = tsne(&codes, 512, &opts, &device(), &Silent).unwrap();
        assert_eq!(map.exact, exact_up_to > 0);
        let trust = trustworthiness(&codes, 512, &map.points, 5);
        eprintln!(
            "exact {}: trustworthiness {trust:.4} (sklearn {sklearn_trust:.4})",
            map.exact
        );
        assert!(
            (trust - sklearn_trust).abs() <= 0.02,
            "trustworthiness {trust} vs sklearn's {sklearn_trust} (exact: {})",
            map.exact
        );
        let flat: Vec<f32> = map.points.iter().flatten().copied().collect();
        let knn_map = knn_accuracy(&flat, 2, &labels, 5);
        eprintln!("5-NN accuracy {knn_map:.3} in the map, {knn_codes:.3} in code space");
        assert!(
            knn_map >= 0.9 * knn_codes,
            "5-NN accuracy {knn_map} in the map vs {knn_codes} in code space"
        );
        let again = tsne(&codes, 512, &opts, &device(), &Silent).unwrap();
        assert_eq!(again.points, map.points, "the same seed gives the same map");
    }
}

#[test]
fn tsne_refuses_what_it_cannot_map() {
    assert!(tsne(&[0.0; 6], 2, &TsneOptions::default(), &Device::Cpu, &Silent).is_err());
    let nan = vec![f32::NAN; 40];
    assert!(tsne(&nan, 4, &TsneOptions::default(), &Device::Cpu, &Silent).is_err());
    // Few points: the perplexity is lowered to (N − 1) / 3.
    let codes: Vec<f32> = (0..40).map(|i| (i * 7 % 11) as f32).collect();
    let map = tsne(&codes, 4, &TsneOptions::default(), &Device::Cpu, &Silent).unwrap();
    assert_eq!((map.points.len(), map.perplexity), (10, 3.0));
    let flag = CancelFlag::new();
    flag.cancel();
    assert!(matches!(
        tsne(&codes, 4, &TsneOptions::default(), &Device::Cpu, &flag),
        Err(Error::Cancelled)
    ));
}

#[test]
fn pca_equals_scikit_learn() {
    let codes: Vec<f32> = npy_f32("codes.npy")
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let p = pca(&codes, 512, 2, 0, &device()).unwrap();
    let got = Tensor::from_slice(&p.projected, (250, 2), &Device::Cpu).unwrap();
    assert_close("PCA projection", &got, &npy_f32("pca.npy"), 1e-4);
    let other_seed = pca(&codes, 512, 2, 7, &device()).unwrap();
    let again = Tensor::from_slice(&other_seed.projected, (250, 2), &Device::Cpu).unwrap();
    assert_close("PCA with another seed", &again, &got, 1e-4);
    assert!(p.explained_variance[0] >= p.explained_variance[1]);
    assert!(pca(&codes, 512, 0, 0, &Device::Cpu).is_err());
}

#[test]
fn neighbours_are_the_most_cosine_similar_codes() {
    let codes: Vec<Vec<f32>> = npy_f32("codes.npy").to_vec2().unwrap();
    let flat: Vec<f32> = codes.iter().flatten().copied().collect();
    let query = 17;
    let found = nearest_by_cosine(&flat, 512, &codes[query], 8, &[query], &device()).unwrap();
    let cos = |a: &[f32], b: &[f32]| {
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        dot / (na * nb)
    };
    let mut want: Vec<(usize, f64)> = (0..250)
        .filter(|&i| i != query)
        .map(|i| (i, cos(&codes[query], &codes[i])))
        .collect();
    want.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(found.len(), 8);
    for (got, want) in found.iter().zip(&want) {
        assert!((f64::from(got.similarity) - want.1).abs() < 1e-5);
        assert_eq!(got.index, want.0);
    }
}

#[test]
fn grid_snapping_places_every_point_once() {
    let points: Vec<[f32; 2]> = (0..30)
        .map(|i| [(i % 6) as f32, (i / 6) as f32 * 1.3])
        .collect();
    let cells = snap_to_grid(&points, 6, 6);
    let mut placed: Vec<usize> = cells.iter().flatten().copied().collect();
    placed.sort_unstable();
    assert_eq!(placed, (0..30).collect::<Vec<_>>());
    assert_eq!(cells.iter().filter(|c| c.is_none()).count(), 6);
    let classes: Vec<u32> = (0..30).map(|i| i % 3).collect();
    let img = render_scatter(&points, &classes, &|c| format!("class {c}"), 200);
    assert!(img.width() > 200 && img.height() >= 200);
}

/// A sharded sweep merges into the unsharded one bit for bit only if an image's summary does
/// not depend on the other images of its batch: the same bits at batch 1, 2, 3, 7 and 32, and
/// when the folder's images come in another grouping (two halves). A lone image (batch 1, and
/// the last image at batch 3) takes the batch's paths, Winograd's on the 8×8 and 4×4 planes.
#[test]
fn an_images_summary_does_not_depend_on_its_batch() {
    let m = model();
    let paths: Vec<PathBuf> = copy_images(40, &scratch("batch-invariance"));
    let pass = |files: &[PathBuf], batch: usize| {
        summarize_files(&m, files, &options(Some("layer3"), batch, None), &Silent).unwrap()
    };
    let whole = pass(&paths, 32);
    for batch in [7, 2, 3, 1] {
        let other = pass(&paths, batch);
        assert_eq!(other.codes, whole.codes, "codes at batch {batch}");
        assert_eq!(other.max, whole.max, "maxima at batch {batch}");
        assert_eq!(other.argmax, whole.argmax, "positions at batch {batch}");
        assert_eq!(other.top1_class, whole.top1_class);
        assert_eq!(
            other.top1_prob, whole.top1_prob,
            "probabilities at batch {batch}"
        );
    }
    let (first, second) = paths.split_at(13);
    let (a, b) = (pass(first, 32), pass(second, 32));
    assert_eq!([a.codes, b.codes].concat(), whole.codes);
    assert_eq!([a.top1_prob, b.top1_prob].concat(), whole.top1_prob);
}

/// The streaming pass (a reader thread a chunk ahead) with per-unit heaps and running sums gives
/// the rankings and statistics of the collected summary, to the bit, holding k images per unit.
#[test]
fn streamed_rankings_and_statistics_equal_the_collected_ones() {
    use convlens_models::represent::pass::stream_files;
    use convlens_models::represent::top_units::TopAccumulator;
    use convlens_models::represent::unit_stats::StatsAccumulator;
    let m = model();
    let files = convlens_models::represent::folder::list_images(&folder())
        .unwrap()
        .images;
    let options = options(Some("layer3"), 16, None);
    let summary = summarize_files(&m, &files, &options, &Silent).unwrap();
    for units in [None, Some(&[3usize, 0, 200][..])] {
        let (_, name) = resolve_layer(&m, Some("layer3")).unwrap();
        let mut top = TopAccumulator::new(&name, 9, units);
        let mut stats = StatsAccumulator::default();
        let mut walk = convlens_models::represent::folder::walk_images(&folder()).unwrap();
        let info = stream_files(
            &m,
            &mut walk,
            files.len(),
            &options,
            &Silent,
            &mut |_, path, s| {
                stats.push(&s.code, &s.max);
                top.push(path, &s.max, &s.argmax)
            },
        )
        .unwrap();
        let streamed = top.finish(info.shape).unwrap();
        let collected = top_images(&summary, 9, units).unwrap();
        assert_eq!(streamed.units, collected.units, "{units:?}");
        let (s, c) = (
            stats.finish(&info.layer, info.shape.units),
            unit_stats(&summary),
        );
        assert_eq!((s.units, s.dead, s.images), (c.units, c.dead, c.images));
    }
}

/// Reading ahead on a thread changes when images are decoded, not what the pass gives.
#[test]
fn reading_ahead_gives_what_reading_in_turn_gives() {
    let m = model();
    let paths = copy_images(30, &scratch("prefetch"));
    let ahead = summarize_files(&m, &paths, &options(Some("layer3"), 8, None), &Silent).unwrap();
    let in_turn = SummaryOptions {
        prefetch: false,
        ..options(Some("layer3"), 8, None)
    };
    let in_turn = summarize_files(&m, &paths, &in_turn, &Silent).unwrap();
    assert_eq!(ahead.paths, in_turn.paths);
    assert_eq!(ahead.codes, in_turn.codes);
    assert_eq!(ahead.max, in_turn.max);
    assert_eq!(ahead.forward_passes, in_turn.forward_passes);
}

/// With no image, the streamed ranking still lists every unit, each empty, as the collected one.
#[test]
fn an_empty_pass_ranks_every_unit_with_no_image() {
    use convlens_models::represent::pass::stream_files;
    use convlens_models::represent::top_units::TopAccumulator;
    let m = model();
    let options = options(Some("layer3"), 4, None);
    let (_, name) = resolve_layer(&m, Some("layer3")).unwrap();
    let mut top = TopAccumulator::new(&name, 9, None);
    let info = stream_files(
        &m,
        &mut std::iter::empty(),
        0,
        &options,
        &Silent,
        &mut |_, path, s| top.push(path, &s.max, &s.argmax),
    )
    .unwrap();
    let streamed = top.finish(info.shape).unwrap();
    let collected = top_images(
        &summarize_files(&m, &[], &options, &Silent).unwrap(),
        9,
        None,
    );
    assert_eq!(streamed.units, collected.unwrap().units);
    assert_eq!(streamed.units.len(), 256);
}
