//! The unit and representation methods over the real binary and socket answer what the engine
//! answers in-process for the same inputs: `unit/activations`, `unit/deconv`, `unit/maximize`,
//! `layer/filters`, `folder/*`.

mod daemon_support;

use candle_core::Device;
use convlens_models::input::load_input;
use convlens_models::{LoadOptions, Model};
use convlens_shared::codes;
use convlens_shared::methods::activations::{ActivationsParams, UnitActivations};
use convlens_shared::methods::deconv::{DeconvParams, UnitDeconv};
use convlens_shared::methods::filters::{FiltersParams, LayerFilters};
use convlens_shared::methods::maximize::{MaximizeParams, UnitMaximize};
use convlens_shared::methods::model::{LoadParams, ModelLoad};
use convlens_shared::methods::status::Status;
use convlens_shared::methods::NoParams;
use convlens_shared::{Client, ClientError};
use daemon_support::{assert_close, server_error, write_input, Daemon};

/// The model every test uses: small, and the same weights in the daemon and in-process.
const MODEL: &str = "random:resnet18";

fn load(client: &Client) -> String {
    client
        .request::<ModelLoad>(&LoadParams {
            path: MODEL.into(),
            ..Default::default()
        })
        .unwrap()
        .model
        .model_id
}

fn engine() -> Model {
    Model::load(MODEL, &LoadOptions::default(), &Device::Cpu).unwrap()
}

#[test]
fn unit_activations_equal_the_engine_and_reuse_the_cached_forward_pass() {
    let d = Daemon::start("activations", &[]);
    let c = d.client();
    let id = load(&c);
    let x = d.scratch.path("x.npy");
    write_input(&x, 64, 11);
    let image = x.display().to_string();

    let got = c
        .request::<UnitActivations>(&ActivationsParams::new(&id, &image, "layer2"))
        .unwrap();
    let model = engine();
    let input = load_input(&x, &model.preprocess, &Device::Cpu).unwrap();
    let want = convlens_models::units::layer_activations(&model.graph, &input, "layer2").unwrap();

    assert_eq!(got.layer, want.layer.name);
    assert_eq!(
        got.shape,
        [want.layer.channels, want.layer.height, want.layer.width]
    );
    assert_eq!(got.channels.len(), want.channels.len());
    let field = |f: fn(&convlens_shared::methods::activations::ChannelStats) -> f32| {
        got.channels.iter().map(f).collect::<Vec<f32>>()
    };
    let want_field = |f: fn(&convlens_models::units::ChannelStats) -> f32| {
        want.channels.iter().map(f).collect::<Vec<f32>>()
    };
    assert_close("mean", &field(|c| c.mean), &want_field(|c| c.mean));
    assert_close("min", &field(|c| c.min), &want_field(|c| c.min));
    assert_close("max", &field(|c| c.max), &want_field(|c| c.max));
    assert_close(
        "active fraction",
        &field(|c| c.active_fraction),
        &want_field(|c| c.active_fraction),
    );
    for (g, w) in got.channels.iter().zip(&want.channels) {
        assert_eq!(g.channel, w.channel);
        assert_eq!(g.argmax, [w.argmax.0, w.argmax.1], "channel {}", w.channel);
    }
    let maps = got.maps.as_ref().expect("maps by default");
    assert_eq!(maps.shape, want.maps.shape);
    assert_close("maps", &maps.to_f32().unwrap(), &want.maps.data);
    assert!(got.grid.is_none(), "no picture unless asked");

    // The same image and layer again, now with the picture: the result is new, the forward
    // pass is the cached one.
    let before = c.request::<Status>(&NoParams {}).unwrap().forward_passes;
    let mut params = ActivationsParams::new(&id, &image, "layer2");
    params.render = true;
    params.maps = false;
    let drawn = c.request::<UnitActivations>(&params).unwrap();
    let after = c.request::<Status>(&NoParams {}).unwrap().forward_passes;
    assert_eq!(
        after, before,
        "the cached forward pass served the second request"
    );
    assert!(drawn.maps.is_none());
    assert_eq!(drawn.channels, got.channels);
    let grid = drawn.grid.expect("the grid when asked");
    let picture = image::load_from_memory(&grid.to_bytes().unwrap()).unwrap();
    let expected = convlens_models::units::render_activation_grid(
        &want,
        convlens_models::units::ActivationScale::Shared,
        convlens_models::render::Colormap::Gray,
    );
    assert_eq!(
        (picture.width(), picture.height()),
        expected.dimensions(),
        "the grid is the engine's"
    );
    assert_eq!(picture.to_rgb8().into_raw(), expected.into_raw());

    // Bad requests get one clear error naming the thing.
    let e =
        server_error(c.request::<UnitActivations>(&ActivationsParams::new(&id, &image, "layer9")));
    assert_eq!(
        (e.code, e.kind()),
        (codes::REQUEST_FAILED, Some("unknownLayer"))
    );
    assert!(e.message.contains("layer9"), "{}", e.message);
    let e = server_error(c.request::<UnitActivations>(&ActivationsParams::new(&id, &image, "fc")));
    assert_eq!(e.code, codes::REQUEST_FAILED);
    assert!(e.message.contains("`fc`"), "{}", e.message);
    // A name outside a closed set is refused as invalid params, naming it and the names there are.
    let mut bad_scale =
        serde_json::to_value(ActivationsParams::new(&id, &image, "layer2")).unwrap();
    bad_scale["scale"] = serde_json::json!("loud");
    let e = server_error(c.request_raw("unit/activations", bad_scale));
    assert_eq!(e.code, codes::INVALID_PARAMS, "{}", e.message);
    assert!(
        e.message
            .contains("unknown scale `loud`; known: shared, per-tile"),
        "{}",
        e.message
    );
}

#[test]
fn unit_deconv_equals_the_engine_for_strongest_and_chosen_units() {
    use convlens_models::graph::BackwardRule;
    use convlens_models::progress::Silent;
    use convlens_models::units::{reconstruct, DeconvOptions, UnitPosition, UnitSelection};

    let d = Daemon::start("deconv", &[]);
    let c = d.client();
    let id = load(&c);
    let x = d.scratch.path("x.npy");
    write_input(&x, 64, 12);
    let image = x.display().to_string();
    let model = engine();
    let input = load_input(&x, &model.preprocess, &Device::Cpu).unwrap();

    let mut strongest = DeconvParams::new(&id, &image, "layer2", Vec::new());
    strongest.top = Some(2);
    let mut guided_all = DeconvParams::new(&id, &image, "layer1", vec![5, 1]);
    guided_all.rule = BackwardRule::Guided;
    guided_all.position = UnitPosition::All;
    let cases = [
        (
            strongest,
            DeconvOptions {
                layer: "layer2".into(),
                units: UnitSelection::Strongest(2),
                position: UnitPosition::Max,
                rule: BackwardRule::Deconvnet,
            },
        ),
        (
            guided_all,
            DeconvOptions {
                layer: "layer1".into(),
                units: UnitSelection::Units(vec![5, 1]),
                position: UnitPosition::All,
                rule: BackwardRule::Guided,
            },
        ),
    ];
    for (params, options) in cases {
        let got = c.request::<UnitDeconv>(&params).unwrap();
        let want = reconstruct(&model.graph, &input, &options, &Silent).unwrap();
        assert_eq!(got.reconstructions.len(), want.len());
        for (g, w) in got.reconstructions.iter().zip(&want) {
            let what = format!("{} unit {}", w.layer, w.unit);
            assert_eq!(
                (&g.layer, g.unit, &g.rule),
                (&w.layer, w.unit, &w.rule),
                "{what}"
            );
            assert_eq!(g.location, w.location.map(|(r, c)| [r, c]), "{what}");
            assert_eq!(
                g.receptive_field
                    .map(|f| (f.top, f.left, f.bottom, f.right, f.size)),
                w.receptive_field
                    .map(|f| (f.top, f.left, f.bottom, f.right, [f.size.0, f.size.1])),
                "{what}"
            );
            assert_close(&what, &[g.activation], &[w.activation]);
            let signal = g.signal.as_ref().expect("signals by default");
            assert_eq!(signal.shape, w.signal.shape, "{what}");
            assert_close(&what, &signal.to_f32().unwrap(), &w.signal.data);
        }
        assert!(got.picture.is_none());
    }

    // Out of range, and neither units nor top: one clear error each.
    let e =
        server_error(c.request::<UnitDeconv>(&DeconvParams::new(&id, &image, "layer1", vec![64])));
    assert_eq!(e.code, codes::REQUEST_FAILED);
    assert!(
        e.message.contains("unit 64 is out of range"),
        "{}",
        e.message
    );
    let e = server_error(c.request::<UnitDeconv>(&DeconvParams::new(
        &id,
        &image,
        "layer1",
        Vec::new(),
    )));
    assert!(e.message.contains("`units` and `top`"), "{}", e.message);
}

#[test]
fn unit_maximize_equals_the_engine_with_few_steps() {
    use convlens_models::maximize::{maximize, MaximizeOptions, Objective, Preset};
    use convlens_models::progress::Silent;

    let d = Daemon::start("maximize", &[]);
    let c = d.client();
    let id = load(&c);
    let model = engine();
    let mut class = MaximizeParams::class(&id, 3);
    class.steps = Some(3);
    class.size = Some(64);
    class.seed = 5;
    class.diversity = 2;
    class.frame_every = Some(2);
    class.inputs = true;
    let mut neuron = MaximizeParams::channel(&id, "layer2", 7);
    neuron.neuron = true;
    neuron.preset = convlens_shared::choices::Preset::Yosinski1;
    neuron.steps = Some(2);
    neuron.size = Some(64);
    let cases = [
        (
            class,
            MaximizeOptions {
                objective: Objective::Class(3),
                preset: Preset::Lucid,
                steps: Some(3),
                seed: 5,
                size: Some(64),
                images: 2,
                frame_every: Some(2),
                ..Default::default()
            },
        ),
        (
            neuron,
            MaximizeOptions {
                objective: Objective::Neuron {
                    layer: "layer2".into(),
                    unit: 7,
                },
                preset: Preset::Yosinski1,
                steps: Some(2),
                size: Some(64),
                ..Default::default()
            },
        ),
    ];
    for (params, options) in cases {
        let got = c.request::<UnitMaximize>(&params).unwrap();
        let want = maximize(&model, &options, &Silent).unwrap();
        let what = want.objective.describe();
        assert_eq!(got.objective, what);
        assert_eq!(
            (&got.layer, &got.preset, got.steps),
            (&want.layer, &want.preset, want.steps)
        );
        assert_eq!(got.images.shape, want.images.dims(), "{what}");
        let want_images = want.images.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_close(&what, &got.images.to_f32().unwrap(), &want_images);
        assert_close(&what, &got.final_values, &want.final_values);
        assert_close(&what, &got.start_values, &want.start_values);
        assert_eq!(got.history.len(), want.history.len());
        for (g, w) in got.history.iter().zip(&want.history) {
            assert_close(&what, g, w);
        }
        assert_close(&what, &got.similarity, &want.similarity);
        assert_eq!(got.pictures.len(), want.images.dim(0).unwrap(), "{what}");
        assert_eq!(
            got.frames.iter().map(|f| f.step).collect::<Vec<_>>(),
            want.frames.iter().map(|f| f.step).collect::<Vec<_>>()
        );
        assert_eq!(got.inputs.is_some(), params.inputs);
    }

    // Neither a class nor a layer with a unit: one clear error.
    let mut neither = MaximizeParams::class(&id, 0);
    neither.class = None;
    let e = server_error(c.request::<UnitMaximize>(&neither));
    assert_eq!(e.code, codes::REQUEST_FAILED);
    assert!(e.message.contains("`class`"), "{}", e.message);
}

#[test]
fn unit_maximize_reports_its_steps_and_is_cancelled() {
    let d = Daemon::start("maximize-cancel", &[]);
    let c = d.client();
    let id = load(&c);
    let mut params = MaximizeParams::channel(&id, "layer2", 1);
    params.steps = Some(100_000);
    params.size = Some(64);
    params.work_done_token = Some(convlens_shared::RequestId::String("max".into()));
    let pending = c.start::<UnitMaximize>(&params).unwrap();
    let (report, _) =
        daemon_support::wait_for(&c, "$/progress", std::time::Duration::from_secs(60), |n| {
            n.params["value"]["kind"] == "report"
                && n.params["value"]["message"]
                    .as_str()
                    .is_some_and(|m| m.ends_with("/100000") && !m.ends_with(" 0/100000"))
        });
    assert!(report.is_some(), "the run reports its steps");
    c.cancel(pending.id()).unwrap();
    match pending.wait_timeout(std::time::Duration::from_secs(60)) {
        Err(ClientError::Server(e)) => assert_eq!(
            (e.code, e.kind()),
            (codes::REQUEST_CANCELLED, Some("cancelled"))
        ),
        other => panic!("expected RequestCancelled, got {other:?}"),
    }
    let (end, _) =
        daemon_support::wait_for(&c, "$/progress", std::time::Duration::from_secs(10), |n| {
            n.params["value"]["kind"] == "end"
        });
    assert!(end.is_some(), "the progress ends");
    assert!(
        c.request::<Status>(&NoParams {}).is_ok(),
        "the daemon goes on"
    );
}

#[test]
fn layer_filters_equal_the_engine() {
    use convlens_models::units::{conv_filters, render_filter_grid, FilterGridOptions};

    let d = Daemon::start("filters", &[]);
    let c = d.client();
    let id = load(&c);
    let model = engine();
    for layer in [None, Some("layer3.0.conv2".to_string())] {
        let mut params = FiltersParams::new(&id, layer.clone());
        params.render = true;
        params.dead_ratio = 0.5;
        let got = c.request::<LayerFilters>(&params).unwrap();
        let want = conv_filters(&model.graph, layer.as_deref(), 0.5).unwrap();
        let what = want.layer.clone();
        assert_eq!(got.layer, want.layer);
        assert_eq!(
            (
                got.out_channels,
                got.in_channels,
                got.groups,
                got.kernel_size,
                got.rgb
            ),
            (
                want.out_channels,
                want.in_channels,
                want.groups,
                [want.kernel_size.0, want.kernel_size.1],
                want.rgb
            )
        );
        assert_eq!(got.stats.dead, want.stats.dead, "{what}");
        assert_close(
            &what,
            &[
                got.stats.norm_min,
                got.stats.norm_median,
                got.stats.norm_max,
            ],
            &[
                want.stats.norm_min,
                want.stats.norm_median,
                want.stats.norm_max,
            ],
        );
        let norms = |f: &[convlens_shared::methods::filters::KernelStats]| {
            f.iter().map(|k| k.l2_norm).collect::<Vec<f32>>()
        };
        let want_norms: Vec<f32> = want.filters.iter().map(|k| k.l2_norm).collect();
        assert_close(&what, &norms(&got.filters), &want_norms);
        let weights = got.weights.as_ref().expect("weights by default");
        assert_eq!(weights.shape, want.weights.shape);
        assert_close(&what, &weights.to_f32().unwrap(), &want.weights.data);
        let grid = image::load_from_memory(&got.grid.unwrap().to_bytes().unwrap())
            .unwrap()
            .to_rgb8();
        let expected = render_filter_grid(
            &want,
            FilterGridOptions {
                max_filters: 64,
                max_inputs: 32,
            },
        );
        assert_eq!(grid.into_raw(), expected.into_raw(), "{what}: the grid");
    }
    let e =
        server_error(c.request::<LayerFilters>(&FiltersParams::new(&id, Some("layer1".into()))));
    assert_eq!(e.code, codes::REQUEST_FAILED);
    assert!(e.message.contains("layer1"), "{}", e.message);
}

#[test]
fn predict_keeps_what_the_views_asked_of_the_image_before() {
    use convlens_models::explain::{explain, ExplainOptions, Method};
    use convlens_shared::methods::explain::{ExplainParams, ImageExplain};
    use convlens_shared::methods::predict::{ImagePredict, PredictParams};

    let d = Daemon::start("one-forward", &[]);
    let c = d.client();
    let id = load(&c);
    let images: Vec<(std::path::PathBuf, String)> = (0..4)
        .map(|k| {
            let x = d.scratch.path(&format!("x{k}.npy"));
            write_input(&x, 64, 5 + k as u64);
            let image = x.display().to_string();
            (x, image)
        })
        .collect();
    let passes = || c.request::<Status>(&NoParams {}).unwrap().forward_passes;
    let predict = |image: &str| {
        c.request::<ImagePredict>(&PredictParams {
            model_id: id.clone(),
            images: vec![image.to_string()],
            top: 5,
            logits: false,
        })
        .unwrap();
    };
    // Grad-CAM, the unit grid and a deconvnet projection: every node's output between them.
    let views = |image: &str| {
        let mut params = ExplainParams::new(&id, image);
        params.render = false;
        let got = c.request::<ImageExplain>(&params).unwrap();
        c.request::<UnitActivations>(&ActivationsParams::new(&id, image, "layer3"))
            .unwrap();
        c.request::<UnitDeconv>(&DeconvParams::new(&id, image, "layer2", vec![1]))
            .unwrap();
        got
    };
    let before = passes();

    // No view asked anything before the first image: its prediction keeps the logits only,
    // and its views need one pass of their own, which they share.
    predict(&images[0].1);
    let got = views(&images[0].1);
    assert_eq!(
        passes() - before,
        2,
        "the first image: predict, then its views"
    );
    // The next image's prediction keeps what those views read: its views cost no pass.
    predict(&images[1].1);
    views(&images[1].1);
    assert_eq!(
        passes() - before,
        3,
        "predict, Grad-CAM, the unit grid and a deconvnet projection of the next image cost one \
         forward pass"
    );
    // A prediction no view followed: the one after it keeps the logits only again, and a view
    // of that image runs a pass of its own.
    predict(&images[2].1);
    predict(&images[3].1);
    assert_eq!(passes() - before, 5);
    c.request::<UnitActivations>(&ActivationsParams::new(&id, &images[3].1, "layer3"))
        .unwrap();
    assert_eq!(
        passes() - before,
        6,
        "the unit grid after a lean prediction"
    );

    // The first image's explanation, made from the cached trace, equals the engine's own.
    let model = engine();
    let input = load_input(&images[0].0, &model.preprocess, &Device::Cpu).unwrap();
    let want = explain(
        &model,
        &input,
        &ExplainOptions {
            method: Method::GradCam,
            ..ExplainOptions::default()
        },
    )
    .unwrap();
    let map = got.explanations[0].map.as_ref().unwrap().to_f32().unwrap();
    let want_map = want.map.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_close("gradcam", &map, &want_map);
}
