//! The unit and representation methods over the real binary and socket answer what the engine
//! answers in-process for the same inputs: `unit/activations`, `unit/deconv`, `unit/maximize`,
//! `layer/filters`, `folder/*`.

mod daemon_support;

use candle_core::Device;
use convlens_models::input::load_input;
use convlens_models::{LoadOptions, Model};
use convlens_shared::codes;
use convlens_shared::methods::activations::{ActivationsParams, UnitActivations};
use convlens_shared::methods::model::{LoadParams, ModelLoad};
use convlens_shared::methods::status::Status;
use convlens_shared::methods::NoParams;
use convlens_shared::{Client, ClientError};
use daemon_support::{write_input, Daemon};

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

/// `got` equals `want` within 1e-5 of `want`'s largest magnitude.
fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * scale,
            "{what}[{i}]: {g} vs {w} (scale {scale})"
        );
    }
}

fn server_error<T: std::fmt::Debug>(r: Result<T, ClientError>) -> convlens_shared::ResponseError {
    match r {
        Err(ClientError::Server(e)) => e,
        other => panic!("expected an error response, got {other:?}"),
    }
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
    let mut bad_scale = ActivationsParams::new(&id, &image, "layer2");
    bad_scale.scale = "loud".into();
    let e = server_error(c.request::<UnitActivations>(&bad_scale));
    assert!(e.message.contains("loud"), "{}", e.message);
}
