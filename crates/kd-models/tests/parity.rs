//! Forward-pass parity with PyTorch on real checkpoint files.
//!
//! `tools/reference/export_models.py` builds tiny twins of every family (torchvision ResNet
//! with basic and bottleneck blocks and the small-input stem, CRD's CIFAR ResNet and wide
//! ResNet, the SmallCnn student) with seeded random weights and batch-norm statistics, saves
//! their state dicts as users have them (`.safetensors`, `.pth`, a SuperGradients checkpoint
//! with DDP prefixes and EMA weights, SuperGradients' ResNet key names), and records an input
//! batch, eval-mode logits and feature taps in `<name>.io.safetensors`. Each test loads the
//! checkpoint through the public loader (strict), runs the Burn model in eval mode and
//! compares: max |burn - torch| / max |torch| <= 1e-4 for the logits and every tap.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::*;
use kd_core::{Feature, ImageClassifier};
use kd_models::{
    BlockKind, LoadOptions, RESNET_WEIGHTS, ResNetCifarConfig, ResNetConfig, SMALL_CNN_WEIGHTS,
    SmallCnnConfig, StrictLoad, WRN_WEIGHTS, WeightMap, WideResNetConfig, load_state_dict,
    read_state_dict,
};

const TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `max |actual - expected| / max |expected|`.
fn relative_error(actual: &TensorData, expected: &TensorData) -> f32 {
    assert_eq!(actual.shape(), expected.shape(), "shapes differ");
    let a = actual.clone().try_into_vec::<f32>().unwrap();
    let e = expected.clone().try_into_vec::<f32>().unwrap();
    let scale = e.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let diff = a
        .iter()
        .zip(&e)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

fn feature_data(feature: Feature) -> TensorData {
    match feature {
        Feature::Map(t) => t.into_data(),
        Feature::Tokens(t) => t.into_data(),
        Feature::Vector(t) => t.into_data(),
    }
}

/// Loads `checkpoint` into `model` strictly, runs the recorded input and compares the logits
/// and every recorded tap.
fn check<M: ImageClassifier>(model: M, checkpoint: &str, io: &str, map: &WeightMap) {
    let device = Device::flex();
    let (state, source) = read_state_dict(&fixture(checkpoint)).unwrap();
    let (model, report) =
        load_state_dict(model, state, &source, map, &LoadOptions::default()).unwrap();
    assert!(report.is_complete(), "{report}");
    let model = model.valid();
    let (io_state, _) = read_state_dict(&fixture(io)).unwrap();
    let input = Tensor::<4>::from_data(io_state["input"].clone(), &device);
    let tap_names: Vec<&str> = io_state
        .keys()
        .filter_map(|k| k.strip_prefix("tap."))
        .collect();
    let (logits, taps) = model.forward_with_taps(input, &tap_names);
    let err = relative_error(&logits.into_data(), &io_state["logits"]);
    assert!(
        err <= TOLERANCE,
        "{checkpoint}: logits relative error {err}"
    );
    for (name, feature) in tap_names.iter().zip(taps) {
        let err = relative_error(&feature_data(feature), &io_state[&format!("tap.{name}")]);
        assert!(
            err <= TOLERANCE,
            "{checkpoint}: tap {name} relative error {err}"
        );
    }
}

fn tiny_resnet(block: BlockKind, layers: [usize; 4]) -> ResNetConfig {
    ResNetConfig::new(block, layers, 10).with_base_width(8)
}

#[test]
fn torchvision_resnet_basic_safetensors() {
    let model = tiny_resnet(BlockKind::Basic, [1, 1, 1, 1]).init(&Device::flex());
    check(
        model,
        "resnet_basic_tiny.safetensors",
        "resnet_basic_tiny.io.safetensors",
        &RESNET_WEIGHTS,
    );
}

#[test]
fn super_gradients_resnet_key_names() {
    let model = tiny_resnet(BlockKind::Basic, [1, 1, 1, 1]).init(&Device::flex());
    check(
        model,
        "resnet_basic_tiny_sg_names.pth",
        "resnet_basic_tiny.io.safetensors",
        &RESNET_WEIGHTS,
    );
}

#[test]
fn torchvision_resnet_bottleneck_pth() {
    let model = tiny_resnet(BlockKind::Bottleneck, [1, 2, 1, 1]).init(&Device::flex());
    check(
        model,
        "resnet_bottleneck_tiny.pth",
        "resnet_bottleneck_tiny.io.safetensors",
        &RESNET_WEIGHTS,
    );
}

#[test]
fn torchvision_resnet_small_input_stem() {
    let model = tiny_resnet(BlockKind::Basic, [2, 1, 1, 1])
        .with_in_channels(1)
        .with_small_input(true)
        .init(&Device::flex());
    check(
        model,
        "resnet_small_input_tiny.safetensors",
        "resnet_small_input_tiny.io.safetensors",
        &RESNET_WEIGHTS,
    );
}

#[test]
fn cifar_resnet8_pth() {
    let model = ResNetCifarConfig::resnet8(10).init(&Device::flex());
    check(
        model,
        "resnet8_cifar.pth",
        "resnet8_cifar.io.safetensors",
        &RESNET_WEIGHTS,
    );
}

#[test]
fn wide_resnet_10_1_safetensors() {
    let model = WideResNetConfig::new(10, 1, 10)
        .try_init(&Device::flex())
        .unwrap();
    check(
        model,
        "wrn_10_1.safetensors",
        "wrn_10_1.io.safetensors",
        &WRN_WEIGHTS,
    );
}

/// A SuperGradients checkpoint: `net` and `ema_net` under DDP's `module.` prefix; the EMA
/// weights are the ones the reference outputs were computed with.
#[test]
fn super_gradients_checkpoint_prefers_ema_weights() {
    let model = SmallCnnConfig::new(1, 10).init(&Device::flex());
    let (_, source) = read_state_dict(&fixture("small_cnn_sg.pth")).unwrap();
    assert_eq!(source.container.as_deref(), Some("ema_net"));
    assert_eq!(source.stripped_prefix.as_deref(), Some("module."));
    check(
        model,
        "small_cnn_sg.pth",
        "small_cnn_sg.io.safetensors",
        &SMALL_CNN_WEIGHTS,
    );
}

#[test]
fn strict_modes_and_backbone_loading() {
    let device = Device::flex();
    let (state, source) = read_state_dict(&fixture("resnet8_cifar.pth")).unwrap();

    // A 100-class head cannot take the 10-class weights: the error names the key and shapes.
    let model = ResNetCifarConfig::resnet8(100).init(&device);
    let err = load_state_dict(
        model,
        state.clone(),
        &source,
        &RESNET_WEIGHTS,
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`fc.weight` has shape [10, 64] in the checkpoint but [100, 64] in the model"),
        "{err}"
    );
    assert!(err.contains("resnet8_cifar.pth"), "{err}");

    // With load_backbone the head is ignored and everything else loads.
    let model = ResNetCifarConfig::resnet8(100).init(&device);
    let head = model.fc.weight.val().into_data();
    let options = LoadOptions {
        load_backbone: true,
        ..LoadOptions::default()
    };
    let (model, report) =
        load_state_dict(model, state.clone(), &source, &RESNET_WEIGHTS, &options).unwrap();
    assert!(report.is_complete(), "{report}");
    assert!(report.ignored.iter().any(|k| k == "fc.weight"), "{report}");
    assert_eq!(model.fc.weight.val().into_data(), head);
    let conv1 = Tensor::<4>::from_data(state["conv1.weight"].clone(), &device);
    model
        .conv1
        .weight
        .val()
        .into_data()
        .assert_approx_eq::<f32>(&conv1.into_data(), burn::tensor::Tolerance::absolute(0.0));

    // A partial checkpoint: strict refuses it, listing the missing keys; off loads the rest.
    let mut partial = state.clone();
    partial.remove("layer3.0.conv2.weight");
    partial.insert("extra.weight".into(), TensorData::new(vec![0f32], [1]));
    let model = ResNetCifarConfig::resnet8(10).init(&device);
    let err = load_state_dict(
        model,
        partial.clone(),
        &source,
        &RESNET_WEIGHTS,
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("1 missing: `layer3.0.conv2.weight`")
            && err.contains("1 unexpected: `extra.weight`")
            && err.contains("strict_load: false"),
        "{err}"
    );
    let model = ResNetCifarConfig::resnet8(10).init(&device);
    let options = LoadOptions {
        strict: StrictLoad::Off,
        ..LoadOptions::default()
    };
    let (_, report) = load_state_dict(model, partial, &source, &RESNET_WEIGHTS, &options).unwrap();
    assert_eq!(report.missing, ["layer3.0.conv2.weight"]);
    assert_eq!(report.unexpected, ["extra.weight"]);
}

/// Key matching pairs tensors by position: the same weights under other names load.
#[test]
fn key_matching_loads_renamed_checkpoints() {
    let device = Device::flex();
    let (state, source) = read_state_dict(&fixture("small_cnn_sg.pth")).unwrap();
    let renamed: kd_models::StateDict = state
        .into_iter()
        .map(|(k, v)| (format!("backbone.{}", k.replace("stage", "s")), v))
        .collect();
    let options = LoadOptions {
        strict: StrictLoad::KeyMatching,
        ..LoadOptions::default()
    };
    let model = SmallCnnConfig::new(1, 10).init(&device);
    let (model, report) =
        load_state_dict(model, renamed, &source, &SMALL_CNN_WEIGHTS, &options).unwrap();
    assert!(report.is_complete(), "{report}");
    let (io, _) = read_state_dict(&fixture("small_cnn_sg.io.safetensors")).unwrap();
    let logits = model
        .valid()
        .forward(Tensor::<4>::from_data(io["input"].clone(), &device));
    assert!(relative_error(&logits.into_data(), &io["logits"]) <= TOLERANCE);

    // A different architecture cannot be key-matched.
    let (state, source) = read_state_dict(&fixture("resnet8_cifar.pth")).unwrap();
    let model = SmallCnnConfig::new(1, 10).init(&device);
    let err = load_state_dict(model, state, &source, &SMALL_CNN_WEIGHTS, &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("key_matching"), "{err}");
}
