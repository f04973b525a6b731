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
