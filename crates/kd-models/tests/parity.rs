//! Forward-pass parity with PyTorch, without weight files.
//!
//! `tools/reference/models.py` fills every state-dict tensor of the torchvision / PyTorch twin of
//! each model from a formula of its key and element index, runs a formula-built batch in eval
//! mode, and stores the logits and tap statistics in `tests/fixtures/*.json`. Here the Burn
//! model gets the same values through a `ModuleMapper` that turns each Burn path into the
//! torchvision key with `kd_models::resnet::weights`, so the test also checks the key map.

use std::collections::BTreeMap;

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use kd_core::{Feature, ImageClassifier};
use kd_models::resnet::weights::burn_to_torchvision_key;
use kd_models::{BlockKind, ResNetCifarConfig, ResNetConfig, SmallCnnConfig};
use serde_json::Value;

/// `h(key)` of the generator: the byte sum modulo 1000, divided by 100.
fn key_hash(key: &str) -> f64 {
    (key.bytes().map(u64::from).sum::<u64>() % 1000) as f64 / 100.0
}

/// The generator's formula for tensor `key` of PyTorch shape `shape`, in PyTorch layout.
fn formula(key: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let h = key_hash(key);
    (0..n)
        .map(|i| {
            let s = (0.37 * i as f64 + h).sin();
            let v = if key == "input" {
                s
            } else if key.ends_with("running_var") {
                1.0 + 0.5 * s.abs()
            } else if key.ends_with("running_mean") {
                0.1 * s
            } else if shape.len() == 1 && key.ends_with("weight") {
                1.0 + 0.2 * s
            } else if shape.len() == 1 && key.ends_with("bias") {
                0.1 * s
            } else {
                assert!(key.ends_with("weight"), "no formula for {key}");
                s * (3.0 / (n / shape[0]) as f64).sqrt()
            };
            v as f32
        })
        .collect()
}

/// Writes the formula values into every float tensor, recording the torch key and shape used.
#[derive(Default)]
struct FormulaFiller {
    path: Vec<String>,
    containers: Vec<String>,
    filled: BTreeMap<String, Vec<usize>>,
}

impl ModuleMapper for FormulaFiller {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let key = burn_to_torchvision_key(&self.path.join("."));
        let dims: [usize; D] = param.shape().dims();
        // Burn's Linear weight is [d_in, d_out]; PyTorch's is [d_out, d_in].
        let transposed = self.containers.last().map(String::as_str) == Some("Struct:Linear")
            && self.path.last().map(String::as_str) == Some("weight");
        let values = if transposed {
            let [d_in, d_out] = [dims[0], dims[1]];
            let torch = formula(&key, &[d_out, d_in]);
            (0..d_in * d_out)
                .map(|flat| {
                    let (i, o) = (flat / d_out, flat % d_out);
                    torch[o * d_in + i]
                })
                .collect()
        } else {
            formula(&key, &dims)
        };
        let torch_shape = if transposed {
            vec![dims[1], dims[0]]
        } else {
            dims.to_vec()
        };
        assert!(
            self.filled.insert(key.clone(), torch_shape).is_none(),
            "two parameters map to {key}"
        );
        param.map(|t| Tensor::from_data(TensorData::new(values, dims), &t.device()))
    }
}

fn load_fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn usizes(value: &Value) -> Vec<usize> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect()
}

fn assert_rel(got: f64, expected: f64, tol: f64, what: &str) {
    let err = (got - expected).abs() / expected.abs().max(1.0);
    assert!(
        err <= tol,
        "{what}: got {got}, expected {expected} (rel err {err:e})"
    );
}

/// Fills `model`, runs the fixture's input and compares logits and taps.
fn check<M: ImageClassifier>(model: M, fixture: &str) {
    let fixture = load_fixture(fixture);
    let device = Device::flex();
    let mut filler = FormulaFiller::default();
    let model = model.map(&mut filler).valid();

    // The key map must reach exactly the torch state dict, with the same shapes.
    let expected: BTreeMap<String, Vec<usize>> = fixture["state_dict"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), usizes(v)))
        .collect();
    assert_eq!(filler.filled, expected);

    let shape: [usize; 4] = usizes(&fixture["input_shape"]).try_into().unwrap();
    let x = Tensor::<4>::from_data(TensorData::new(formula("input", &shape), shape), &device);
    let taps: Vec<&str> = fixture["taps"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let (logits, features) = model.forward_with_taps(x, &taps);
    assert_eq!(features.len(), taps.len());

    let got: Vec<f32> = logits.into_data().try_to_vec().unwrap();
    let want: Vec<f64> = fixture["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .collect();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_rel(*g as f64, *w, 1e-4, &format!("logit {i}"));
    }

    for (name, feature) in taps.iter().zip(&features) {
        let stats = &fixture["taps"][*name];
        assert_eq!(feature.dims(), usizes(&stats["shape"]), "tap {name}");
        let (sum, mean) = match feature {
            Feature::Map(t) => (t.clone().sum(), t.clone().mean()),
            Feature::Vector(t) => (t.clone().sum(), t.clone().mean()),
            Feature::Tokens(t) => (t.clone().sum(), t.clone().mean()),
        };
        let sum = sum.into_scalar::<f32>() as f64;
        let mean = mean.into_scalar::<f32>() as f64;
        assert_rel(
            sum,
            stats["sum"].as_f64().unwrap(),
            1e-4,
            &format!("{name} sum"),
        );
        assert_rel(
            mean,
            stats["mean"].as_f64().unwrap(),
            1e-4,
            &format!("{name} mean"),
        );
    }
}

#[test]
fn resnet18_small_input_matches_torchvision() {
    let model = ResNetConfig::resnet18(10)
        .with_in_channels(1)
        .with_small_input(true)
        .init(&Device::flex());
    check(model, "resnet18_small");
}

#[test]
fn bottleneck_resnet_matches_torchvision() {
    let model = ResNetConfig::new(BlockKind::Bottleneck, [1, 2, 1, 1], 10).init(&Device::flex());
    check(model, "resnet_bottleneck");
}

#[test]
fn small_cnn_matches_pytorch() {
    check(
        SmallCnnConfig::new(1, 10).init(&Device::flex()),
        "small_cnn",
    );
}

#[test]
fn resnet8x4_matches_crd() {
    check(
        ResNetCifarConfig::resnet8x4(10).init(&Device::flex()),
        "resnet8x4_cifar",
    );
}
