//! The unit views against PyTorch (`tests/fixtures/make_units.py`, synthetic weights): deconvnet
//! and guided-backprop reconstructions equal torch hooks, receptive fields equal the support of a
//! linearized network's gradient, per-channel activation numbers and filter norms equal torch's;
//! the filter and activation pictures show exactly the weights and activations; bad requests get
//! one clear error.

use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};
use convlens_models::graph::BackwardRule;
use convlens_models::progress::{CancelFlag, Silent};
use convlens_models::render::Colormap;
use convlens_models::units::{
    conv_filters, layer_activations, range_level, reconstruct, render_activation_grid,
    render_filter_grid, tile_origin, ActivationScale, DeconvOptions, FilterGridOptions,
    UnitPosition, UnitSelection, TILE_GAP,
};
use convlens_models::weights::synthetic::synthetic_tensor;
use convlens_models::{Error, LoadOptions, Model};

mod common;
use common::{assert_close, assert_close_on_device, device};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/units")
}

fn manifest() -> &'static serde_json::Value {
    static MANIFEST: OnceLock<serde_json::Value> = OnceLock::new();
    MANIFEST.get_or_init(|| {
        let text = std::fs::read_to_string(fixtures().join("manifest.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

/// `random:ARCH`, built once per test binary.
fn model(arch: &str) -> &'static Model {
    static VGG11: OnceLock<Model> = OnceLock::new();
    static RESNET18: OnceLock<Model> = OnceLock::new();
    let cell = match arch {
        "vgg11" => &VGG11,
        "resnet18" => &RESNET18,
        other => panic!("no fixture model {other}"),
    };
    cell.get_or_init(|| {
        Model::load(
            &format!("random:{arch}"),
            &LoadOptions::default(),
            &device(),
        )
        .unwrap()
    })
}

fn input() -> Tensor {
    synthetic_tensor("input", &[1, 3, 64, 64], 0, &device()).unwrap()
}

fn usize_pair(v: &serde_json::Value) -> (usize, usize) {
    (
        v[0].as_u64().unwrap() as usize,
        v[1].as_u64().unwrap() as usize,
    )
}

fn check_case(name: &str) {
    let case = &manifest()["cases"][name];
    let arch = case["model"].as_str().unwrap();
    let unit = case["unit"].as_u64().unwrap() as usize;
    let options = DeconvOptions {
        layer: case["layer"].as_str().unwrap().to_string(),
        units: UnitSelection::Units(vec![unit]),
        position: case["position"]
            .as_str()
            .unwrap()
            .parse::<UnitPosition>()
            .unwrap(),
        rule: case["rule"]
            .as_str()
            .unwrap()
            .parse::<BackwardRule>()
            .unwrap(),
    };
    let recs = reconstruct(&model(arch).graph, &input(), &options, &Silent).unwrap();
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert_eq!(rec.unit, unit);
    let want = Tensor::read_npy(fixtures().join(case["file"].as_str().unwrap())).unwrap();
    let got = rec.signal.to_tensor().unwrap();
    assert_close_on_device(&format!("{name} reconstruction"), &got, &want);

    let activation = case["activation"].as_f64().unwrap() as f32;
    assert!(
        (rec.activation - activation).abs() <= 1e-4 * activation.abs().max(1.0),
        "{name}: kept activation {} vs torch {activation}",
        rec.activation
    );
    match &case["location"] {
        serde_json::Value::Null => {
            assert_eq!(rec.location, None);
            assert_eq!(rec.receptive_field, None);
        }
        loc => {
            assert_eq!(rec.location, Some(usize_pair(loc)), "{name}: kept position");
            let rf = rec.receptive_field.unwrap();
            let want: Vec<usize> = case["receptive_field"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(
                vec![rf.top, rf.left, rf.bottom, rf.right],
                want,
                "{name}: receptive field [top, left, bottom, right)"
            );
            // The projection of one position never leaves that position's field.
            let [c, h, w] = rec.signal.shape[..] else {
                panic!("signal shape {:?}", rec.signal.shape)
            };
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        let v = rec.signal.data[(ch * h + y) * w + x];
                        let inside =
                            (rf.top..rf.bottom).contains(&y) && (rf.left..rf.right).contains(&x);
                        assert!(
                            inside || v == 0.0,
                            "{name}: signal {v} at ({y}, {x}) outside {rf:?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn vgg11_reconstructions_equal_torch_hooks() {
    check_case("vgg11_conv_max_deconvnet");
    check_case("vgg11_conv_max_guided");
    check_case("vgg11_relu_all_deconvnet");
}

#[test]
fn resnet18_reconstructions_equal_torch_hooks() {
    check_case("resnet18_block_max_deconvnet");
    check_case("resnet18_block_max_guided");
    check_case("resnet18_conv_all_deconvnet");
}

#[test]
fn deconvnet_and_guided_differ_where_relus_are_off() {
    // A check that the rule is honoured: the two fixtures must not be the same signal.
    let a = Tensor::read_npy(fixtures().join("vgg11_conv_max_deconvnet.npy")).unwrap();
    let b = Tensor::read_npy(fixtures().join("vgg11_conv_max_guided.npy")).unwrap();
    let diff = a.sub(&b).unwrap().abs().unwrap().max_all().unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() > 1e-3);
}

#[test]
fn strongest_units_come_first_and_cancel_stops() {
    let m = model("resnet18");
    let options = DeconvOptions {
        layer: "layer2".into(),
        units: UnitSelection::Strongest(3),
        position: UnitPosition::Max,
        rule: BackwardRule::Deconvnet,
    };
    let recs = reconstruct(&m.graph, &input(), &options, &Silent).unwrap();
    let acts = layer_activations(&m.graph, &input(), "layer2").unwrap();
    let mut maxima: Vec<f32> = acts.channels.iter().map(|c| c.max).collect();
    maxima.sort_by(|a, b| b.total_cmp(a));
    let got: Vec<f32> = recs.iter().map(|r| r.activation).collect();
    assert_eq!(got, maxima[..3].to_vec());
    let flag = CancelFlag::new();
    flag.cancel();
    let err = reconstruct(&m.graph, &input(), &options, &flag).unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
}

#[test]
fn activation_numbers_equal_torch() {
    for (key, reference) in manifest()["activations"].as_object().unwrap() {
        let (arch, layer) = key.split_once(':').unwrap();
        let acts = layer_activations(&model(arch).graph, &input(), layer).unwrap();
        let shape: Vec<usize> = reference["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(acts.maps.shape, shape, "{key} shape");
        let column = |field: &str| -> Vec<f32> {
            reference[field]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        };
        let scale = column("max")
            .iter()
            .chain(column("min").iter())
            .fold(0f32, |m, v| m.max(v.abs()));
        for field in ["mean", "min", "max", "active_fraction"] {
            let want = column(field);
            for (c, stats) in acts.channels.iter().enumerate() {
                let got = match field {
                    "mean" => stats.mean,
                    "min" => stats.min,
                    "max" => stats.max,
                    _ => stats.active_fraction,
                };
                let tol = if field == "active_fraction" {
                    1e-6
                } else {
                    1e-4 * scale
                };
                assert!(
                    (got - want[c]).abs() <= tol,
                    "{key} channel {c} {field}: {got} vs torch {}",
                    want[c]
                );
            }
        }
        for (c, stats) in acts.channels.iter().enumerate() {
            assert_eq!(
                stats.argmax,
                usize_pair(&reference["argmax"][c]),
                "{key} channel {c} argmax"
            );
        }
    }
}

#[test]
fn filter_norms_equal_torch() {
    for (key, reference) in manifest()["filters"].as_object().unwrap() {
        let (arch, layer) = key.split_once(':').unwrap();
        let bank = conv_filters(&model(arch).graph, Some(layer), 0.01).unwrap();
        let want = |field: &str| -> Option<Tensor> {
            let values: Vec<f32> = reference[field]
                .as_array()?
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let n = values.len();
            Some(Tensor::from_vec(values, n, &Device::Cpu).unwrap())
        };
        let l2: Vec<f32> = bank.filters.iter().map(|f| f.l2_norm).collect();
        let n = l2.len();
        assert_close(
            &format!("{key} l2"),
            &Tensor::from_vec(l2, n, &Device::Cpu).unwrap(),
            &want("l2_norm").unwrap(),
            1e-4,
        );
        match want("effective_norm") {
            Some(effective) => {
                assert!(bank.stats.batch_norm_scaled, "{key}: BatchNorm not found");
                let got: Vec<f32> = bank
                    .filters
                    .iter()
                    .map(|f| f.effective_norm.unwrap())
                    .collect();
                assert_close(
                    &format!("{key} effective"),
                    &Tensor::from_vec(got, n, &Device::Cpu).unwrap(),
                    &effective,
                    1e-4,
                );
            }
            None => assert!(
                !bank.stats.batch_norm_scaled,
                "{key}: no BatchNorm reads it"
            ),
        }
    }
}

/// The pixel at the centre of kernel cell (y, x) of tile `index`.
fn cell_pixel(
    img: &image::RgbImage,
    index: usize,
    columns: usize,
    tile: (u32, u32),
    factor: u32,
    y: usize,
    x: usize,
) -> [u8; 3] {
    let (x0, y0) = tile_origin(index, columns, tile.0, tile.1, TILE_GAP);
    let px = x0 + x as u32 * factor + factor / 2;
    let py = y0 + y as u32 * factor + factor / 2;
    img.get_pixel(px, py).0
}

fn expected_level(w: &[f32], v: f32) -> u8 {
    let scale = w.iter().fold(0f32, |m, v| m.max(v.abs()));
    ((0.5 + 0.5 * v / scale) * 255.0).round().clamp(0.0, 255.0) as u8
}

#[test]
fn first_layer_tiles_are_the_rgb_kernels() {
    let m = model("vgg11");
    let bank = conv_filters(&m.graph, None, 0.01).unwrap();
    assert_eq!(bank.layer, "features.0");
    assert!(bank.rgb);
    let options = FilterGridOptions::default();
    let layout = bank.grid_layout(options);
    assert_eq!(layout.tiles.len(), 64);
    let img = render_filter_grid(&bank, options);
    // The weights as the state_dict holds them, not as the bank copied them.
    let weight: Vec<f32> = synthetic_tensor("features.0.weight", &[64, 3, 3, 3], 0, &Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let side = 3 * layout.factor;
    for (index, &(f, channel)) in layout.tiles.iter().enumerate() {
        assert_eq!(channel, None);
        let filter = &weight[f * 27..(f + 1) * 27];
        for y in 0..3 {
            for x in 0..3 {
                let got = cell_pixel(
                    &img,
                    index,
                    layout.columns,
                    (side, side),
                    layout.factor,
                    y,
                    x,
                );
                for c in 0..3 {
                    let want = expected_level(filter, filter[c * 9 + y * 3 + x]);
                    assert_eq!(got[c], want, "filter {f} channel {c} cell ({y}, {x})");
                }
            }
        }
    }
}

#[test]
fn deeper_layer_tiles_are_gray_per_input_channel() {
    let m = model("vgg11");
    let bank = conv_filters(&m.graph, Some("features.3"), 0.01).unwrap();
    assert!(!bank.rgb);
    let options = FilterGridOptions {
        max_filters: 4,
        max_inputs: 5,
    };
    let layout = bank.grid_layout(options);
    assert_eq!(layout.columns, 5);
    assert_eq!(layout.tiles.len(), 20);
    let img = render_filter_grid(&bank, options);
    let weight: Vec<f32> = synthetic_tensor("features.3.weight", &[128, 64, 3, 3], 0, &Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let side = 3 * layout.factor;
    for (index, &(f, channel)) in layout.tiles.iter().enumerate() {
        let c = channel.unwrap();
        assert_eq!(
            (f, c),
            (index / 5, index % 5),
            "row per filter, column per input"
        );
        let filter = &weight[f * 576..(f + 1) * 576];
        for y in 0..3 {
            for x in 0..3 {
                let got = cell_pixel(
                    &img,
                    index,
                    layout.columns,
                    (side, side),
                    layout.factor,
                    y,
                    x,
                );
                let want = expected_level(filter, filter[c * 9 + y * 3 + x]);
                assert_eq!(got, [want; 3], "filter {f} input {c} cell ({y}, {x})");
            }
        }
    }
}

#[test]
fn activation_tiles_are_the_feature_maps() {
    let m = model("resnet18");
    let x = input();
    let acts = layer_activations(&m.graph, &x, "layer1").unwrap();
    // The maps from a forward pass of our own.
    let id = m.graph.node_id("layer1").unwrap();
    let trace = m.graph.forward(&x, Some(&[id])).unwrap();
    let maps: Vec<f32> = trace
        .get(id)
        .unwrap()
        .to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let (c, h, w) = (64, 16, 16);
    assert_eq!(acts.maps.shape, vec![c, h, w]);
    assert_eq!(acts.maps.data, maps);
    let (lo, hi) = maps
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let factor = acts.grid_factor();
    let side = w as u32 * factor;
    for scale in [ActivationScale::Shared, ActivationScale::PerTile] {
        let img = render_activation_grid(&acts, scale, Colormap::Gray);
        for ch in 0..c {
            let plane = &maps[ch * h * w..(ch + 1) * h * w];
            let (tlo, thi) = match scale {
                ActivationScale::Shared => (lo, hi),
                ActivationScale::PerTile => plane
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                        (a.min(v), b.max(v))
                    }),
            };
            for y in 0..h {
                for x in 0..w {
                    let v = plane[y * w + x];
                    let level = range_level(v, tlo, thi);
                    let want = (convlens_models::render::color(Colormap::Gray, level)[0] * 255.0)
                        .round() as u8;
                    let got = cell_pixel(&img, ch, acts.grid_columns(), (side, side), factor, y, x);
                    assert_eq!(
                        got, [want; 3],
                        "{scale:?} channel {ch} ({y}, {x}) value {v}"
                    );
                }
            }
        }
    }
}

#[test]
fn receptive_fields_have_the_textbook_sizes() {
    // VGG16 conv5_3: 196 pixels; ResNet-18 layer4: 435 (before clipping to the image).
    for (arch, layer, size) in [("vgg16", "features.29", 196), ("resnet18", "layer4", 435)] {
        let m = Model::load(
            &format!("random:{arch}"),
            &LoadOptions::default(),
            &device(),
        )
        .unwrap();
        let x = synthetic_tensor("input", &[1, 3, 32, 32], 0, &device()).unwrap();
        let trace = m.graph.forward(&x, None).unwrap();
        let id = m.graph.node_id(layer).unwrap();
        let rf = convlens_models::units::receptive_field(&m.graph, &trace, id, 0, 0).unwrap();
        assert_eq!(rf.size, (size, size), "{arch} {layer}");
        assert_eq!((rf.top, rf.left, rf.bottom, rf.right), (0, 0, 32, 32));
    }
}

fn message(e: Error) -> String {
    e.to_string()
}

#[test]
fn bad_requests_get_one_clear_error() {
    let m = model("resnet18");
    let x = input();
    let deconv = |layer: &str, unit: usize| {
        let options = DeconvOptions {
            layer: layer.into(),
            units: UnitSelection::Units(vec![unit]),
            position: UnitPosition::Max,
            rule: BackwardRule::Deconvnet,
        };
        message(reconstruct(&m.graph, &x, &options, &Silent).unwrap_err())
    };
    let e = deconv("layer2", 128);
    assert!(
        e.contains("unit 128 is out of range") && e.contains("128 channels"),
        "{e}"
    );
    let e = deconv("fc", 0);
    assert!(e.contains("`fc`") && e.contains("no channels"), "{e}");
    let e = deconv("flatten", 0);
    assert!(e.contains("`flatten`") && e.contains("no channels"), "{e}");
    let e = deconv("layer9", 0);
    assert!(e.contains("unknown layer `layer9`"), "{e}");
    let e = deconv("input", 0);
    assert!(e.contains("not a layer"), "{e}");
    let e = message(layer_activations(&m.graph, &x, "fc").unwrap_err());
    assert!(e.contains("no channels"), "{e}");
    let e = message(layer_activations(&m.graph, &x, "layer1.0.cov1").unwrap_err());
    assert!(e.contains("did you mean layer1.0.conv1"), "{e}");
    let e = message(conv_filters(&m.graph, Some("layer1.0.relu"), 0.01).unwrap_err());
    assert!(e.contains("is a ReLU, not a convolution"), "{e}");
    let e = message(conv_filters(&m.graph, Some("layer1.0"), 0.01).unwrap_err());
    assert!(
        e.contains("layer1.0.conv1"),
        "names the convolutions inside: {e}"
    );
    let batch = Tensor::cat(&[&x, &x], 0).unwrap();
    let e = message(layer_activations(&m.graph, &batch, "layer1").unwrap_err());
    assert!(e.contains("[1, C, H, W]"), "{e}");
}
