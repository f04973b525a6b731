//! `*_checkpoint_params` with PyTorch checkpoints: `checkpoint_num_classes`, strictness,
//! `load_backbone`, and errors naming keys and shapes. The checkpoints are the kd-models
//! parity fixtures written by `tools/reference/export_models.py`.

use std::path::PathBuf;

use burn::prelude::*;
use kd_core::ImageClassifier;
use kd_models::read_state_dict;
use kd_recipes::schema::CheckpointParams;
use kd_recipes::{Network, build_network};
use serde_yaml::{Mapping, Value};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../kd-models/tests/fixtures")
        .join(name)
}

fn params(yaml: &str) -> CheckpointParams {
    serde_yaml::from_str(yaml).unwrap()
}

fn ten_classes() -> Mapping {
    serde_yaml::from_str("{num_classes: 10, in_channels: 1}").unwrap()
}

/// A 1000-class teacher checkpoint loads into a 10-class model: built with 1000 classes,
/// loaded strictly, then given a fresh 10-class head.
#[test]
fn checkpoint_num_classes_replaces_the_head() {
    let device = Device::flex();
    let path = fixture("small_cnn_1000.safetensors");
    let p = params(&format!(
        "{{checkpoint_path: {}, checkpoint_num_classes: 1000}}",
        path.display()
    ));
    let net = build_network("small_cnn", &ten_classes(), &p, "teacher", &device).unwrap();
    assert_eq!(net.num_classes(), 10);
    let Network::SmallCnn(net) = net else {
        panic!("expected a SmallCnn")
    };
    let (state, _) = read_state_dict(&path).unwrap();
    let conv = Tensor::<4>::from_data(state["stage1.conv.weight"].clone(), &device);
    net.stage1
        .conv
        .weight
        .val()
        .into_data()
        .assert_approx_eq::<f32>(&conv.into_data(), burn::tensor::Tolerance::absolute(0.0));
    assert_eq!(net.fc.weight.dims(), [64, 10]);
}

#[test]
fn a_head_mismatch_names_the_key_and_both_shapes() {
    let device = Device::flex();
    let path = fixture("small_cnn_1000.safetensors");
    let p = params(&format!("{{checkpoint_path: {}}}", path.display()));
    let err = build_network("small_cnn", &ten_classes(), &p, "teacher", &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("teacher_checkpoint_params")
            && err.contains(
                "`fc.weight` has shape [1000, 64] in the checkpoint but [10, 64] in the model"
            )
            && err.contains("checkpoint_num_classes"),
        "{err}"
    );
    // `load_backbone` skips the head instead.
    let p = params(&format!(
        "{{checkpoint_path: {}, load_backbone: true}}",
        path.display()
    ));
    let net = build_network("small_cnn", &ten_classes(), &p, "teacher", &device).unwrap();
    assert_eq!(net.num_classes(), 10);
}

#[test]
fn strict_load_modes_and_bad_values() {
    let device = Device::flex();
    let path = fixture("small_cnn_sg.pth");
    for mode in ["true", "no_key_matching", "false", "key_matching"] {
        let p = params(&format!(
            "{{checkpoint_path: {}, strict_load: {mode}}}",
            path.display()
        ));
        build_network("small_cnn", &ten_classes(), &p, "student", &device)
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
    }
    let p = params(&format!(
        "{{checkpoint_path: {}, strict_load: sometimes}}",
        path.display()
    ));
    let err = build_network("small_cnn", &ten_classes(), &p, "student", &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("student_checkpoint_params.strict_load") && err.contains("key_matching"),
        "{err}"
    );
    let mut no_path = Mapping::new();
    no_path.insert(Value::from("checkpoint_num_classes"), Value::from(1000));
    let p: CheckpointParams = serde_yaml::from_value(Value::Mapping(no_path)).unwrap();
    let err = build_network("small_cnn", &ten_classes(), &p, "teacher", &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("checkpoint_path"), "{err}");
}

/// `pretrained_weights` naming a file is an alias of `checkpoint_path`; a bare name says that
/// nothing is downloaded.
#[test]
fn pretrained_weights_is_a_path_alias() {
    let device = Device::flex();
    let path = fixture("small_cnn_sg.pth");
    let p = params(&format!("{{pretrained_weights: {}}}", path.display()));
    build_network("small_cnn", &ten_classes(), &p, "student", &device).unwrap();
    let p = params("{pretrained_weights: imagenet}");
    let err = build_network("small_cnn", &ten_classes(), &p, "student", &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("imagenet") && err.contains("checkpoint_path"),
        "{err}"
    );
}

/// A timm BEiT checkpoint loads through the registry: arch params override the named
/// variant, the timm fix-ups run, and the logits equal timm's.
#[test]
fn beit_from_the_registry_matches_timm() {
    let device = Device::flex();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("beit_rel_ls_avg.json")).unwrap())
            .unwrap();
    let arch_params: Mapping = serde_json::from_value(meta["config"].clone()).unwrap();
    let path = fixture("beit_rel_ls_avg.safetensors");
    let p = params(&format!("{{checkpoint_path: {}}}", path.display()));
    let net = build_network(
        "beit_base_patch16_224",
        &arch_params,
        &p,
        "teacher",
        &device,
    )
    .unwrap()
    .valid();
    let (io, _) = read_state_dict(&fixture("beit_rel_ls_avg_io.safetensors")).unwrap();
    let logits = net
        .forward(Tensor::<4>::from_data(io["input"].clone(), &device))
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    let want = io["logits"].clone().try_into_vec::<f32>().unwrap();
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = logits
        .iter()
        .zip(&want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff / scale <= 1e-4, "relative error {}", diff / scale);
    let err = build_network(
        "beit_base_patch16_224",
        &serde_yaml::from_str("{embed_dims: 64}").unwrap(),
        &CheckpointParams::default(),
        "teacher",
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("did you mean `embed_dim`"), "{err}");
}
