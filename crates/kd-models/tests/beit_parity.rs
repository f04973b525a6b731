//! Forward-pass parity of `kd_models::Beit` with timm's `Beit`, loading timm state dicts.
//!
//! `tools/reference/export_beit.py` builds three tiny timm models (32 px images, 8 px patches,
//! width 48, 2 blocks of 4 heads, MLP ratio 2, 10 classes) with seeded random weights:
//! `rel_ls_avg` (per-block relative-position bias, layer scale, average pooling + fc_norm),
//! `abs_token` (absolute position embedding, no layer scale, no q/v bias, class-token
//! pooling) and `shared` (one shared relative-position bias). For each it writes the state dict
//! under timm's keys (`relative_position_index` buffers included), the kd-models config, and
//! the float64 reference outputs of one batch as float32. Here each state dict goes through
//! `fix_timm_state_dict`, the timm key map and burn-store's `PyTorchToBurnAdapter`.
//!
//! Metric: for logits and every tap, `max |got - want| / max(max |want|, 1e-3) <= 1e-4`.

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;
use kd_core::{Feature, ImageClassifier};
use kd_models::beit::weights::{BEIT_WEIGHTS, fix_timm_state_dict};
use kd_models::{Beit, BeitConfig};
use kd_models::{LoadOptions, load_state_dict, read_state_dict};
use serde_json::Value;

const TOLERANCE: f32 = 1e-4;

fn fixture_path(file: &str) -> String {
    format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// Every tensor of a safetensors file, by name.
fn read_safetensors(file: &str) -> BTreeMap<String, TensorData> {
    read_state_dict(Path::new(&fixture_path(file))).unwrap().0
}

/// Loads the timm state dict `file` into `model` built from `config`, strictly: the fix-up,
/// the key map and the PyTorch adapter must leave nothing missing, unused or in error.
fn load_timm(model: Beit, config: &BeitConfig, file: &str) -> Beit {
    let (mut state, source) = read_state_dict(Path::new(&fixture_path(file))).unwrap();
    fix_timm_state_dict(&mut state, config).unwrap();
    let (model, report) = load_state_dict(
        model,
        state,
        &source,
        &BEIT_WEIGHTS,
        &LoadOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(report.is_complete(), "{report}");
    model
}

struct Fixture {
    config: BeitConfig,
    taps: Vec<String>,
    io: BTreeMap<String, TensorData>,
}

fn fixture(name: &str) -> Fixture {
    let path = fixture_path(&format!("beit_{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let meta: Value = serde_json::from_str(&text).unwrap();
    Fixture {
        config: serde_json::from_value(meta["config"].clone()).unwrap(),
        taps: serde_json::from_value(meta["taps"].clone()).unwrap(),
        io: read_safetensors(&format!("beit_{name}_io.safetensors")),
    }
}

/// `max |got - want| / max(max |want|, 1e-3)`.
fn rel_error(got: &TensorData, want: &TensorData) -> f32 {
    assert_eq!(got.shape(), want.shape());
    let got = got.try_to_vec::<f32>().unwrap();
    let want = want.try_to_vec::<f32>().unwrap();
    let diff = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    let scale = want.iter().map(|b| b.abs()).fold(1e-3, f32::max);
    diff / scale
}

fn assert_close(got: &TensorData, want: &TensorData, what: &str) {
    let err = rel_error(got, want);
    assert!(err <= TOLERANCE, "{what}: relative error {err:e}");
}

fn feature_data(feature: &Feature) -> TensorData {
    match feature {
        Feature::Map(t) => t.to_data(),
        Feature::Tokens(t) => t.to_data(),
        Feature::Vector(t) => t.to_data(),
    }
}

/// A model of fixture `name`'s config on `device` with its timm weights.
fn timm_model(name: &str, config: &BeitConfig, device: &Device) -> Beit {
    let model = config.init(device).unwrap();
    load_timm(model, config, &format!("beit_{name}.safetensors"))
}

fn input(fixture: &Fixture, device: &Device) -> Tensor<4> {
    Tensor::from_data(fixture.io["input"].clone(), device)
}

fn check_parity(name: &str) {
    let device = Device::flex();
    let fixture = fixture(name);
    let model = timm_model(name, &fixture.config, &device).valid();
    let taps: Vec<&str> = fixture.taps.iter().map(String::as_str).collect();
    assert_eq!(taps, model.tap_names());
    let (logits, features) = model.forward_with_taps(input(&fixture, &device), &taps);
    assert_close(
        &logits.to_data(),
        &fixture.io["logits"],
        &format!("{name} logits"),
    );
    for (tap, feature) in taps.iter().zip(&features) {
        let want = &fixture.io[&format!("tap.{tap}")];
        assert_close(&feature_data(feature), want, &format!("{name} {tap}"));
    }
}

#[test]
fn rel_pos_bias_layer_scale_avg_pool_matches_timm() {
    check_parity("rel_ls_avg");
}

#[test]
fn abs_pos_emb_token_pool_matches_timm() {
    check_parity("abs_token");
}

#[test]
fn shared_rel_pos_bias_matches_timm() {
    check_parity("shared");
}

/// A checkpoint with one shared table (as BEiT pretraining writes) loads into a model with
/// per-block tables: the fix-up copies the table into each block, which computes the same.
#[test]
fn shared_table_loads_into_per_block_tables() {
    let device = Device::flex();
    let fixture = fixture("shared");
    let config = fixture
        .config
        .clone()
        .with_use_rel_pos_bias(true)
        .with_use_shared_rel_pos_bias(false);
    let model = timm_model("shared", &config, &device).valid();
    assert!(model.rel_pos_bias.is_none());
    let logits = model.forward(input(&fixture, &device));
    assert_close(&logits.to_data(), &fixture.io["logits"], "per-block logits");
}

/// Stochastic depth changes a trained model's output from call to call; without it, and in
/// any `valid()` copy, the forward pass is deterministic and matches timm.
#[test]
fn drop_path_only_in_training() {
    let device = Device::flex();
    device.seed(42);
    let train_device = device.clone().autodiff();
    let fixture = fixture("rel_ls_avg");
    let forward_twice = |model: &Beit, device: &Device| {
        let a = model.forward(input(&fixture, device)).to_data();
        let b = model.forward(input(&fixture, device)).to_data();
        (a, b)
    };

    // Only the second of the two blocks drops (rates rise from 0), two paths per sample, so
    // a small batch would repeat its masks by chance. Sixteen copies of the first image make
    // that a 2^-32 event, and show the masks are drawn per sample.
    let dropping = fixture.config.clone().with_drop_path_rate(0.5);
    let model = timm_model("rel_ls_avg", &dropping, &train_device);
    let copies = || {
        input(&fixture, &train_device)
            .narrow(0, 0, 1)
            .repeat_dim(0, 16)
    };
    let a = model.forward(copies()).to_data();
    let b = model.forward(copies()).to_data();
    assert!(
        rel_error(&a, &b) > 1e-3,
        "drop path left the output unchanged"
    );
    let rows: Vec<Vec<f32>> = a
        .try_to_vec::<f32>()
        .unwrap()
        .chunks(a.shape()[1])
        .map(<[f32]>::to_vec)
        .collect();
    assert!(
        rows.iter().any(|row| row != &rows[0]),
        "drop path dropped the same paths for every sample"
    );

    let eval = model.valid();
    let (a, b) = forward_twice(&eval, &device);
    assert_eq!(
        a.try_to_vec::<f32>().unwrap(),
        b.try_to_vec::<f32>().unwrap()
    );
    assert_close(
        &a,
        &fixture.io["logits"],
        "eval logits with drop_path_rate 0.5",
    );

    let model = timm_model("rel_ls_avg", &fixture.config, &train_device);
    let (a, b) = forward_twice(&model, &train_device);
    assert_eq!(
        a.try_to_vec::<f32>().unwrap(),
        b.try_to_vec::<f32>().unwrap()
    );
    assert_close(
        &a,
        &fixture.io["logits"],
        "train logits with drop_path_rate 0",
    );
}
