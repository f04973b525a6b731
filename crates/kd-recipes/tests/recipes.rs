//! Every recipe in `recipes/` parses and builds (models, losses, data) on flex, and bad
//! recipes fail with errors that name the key and suggest a fix.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use kd_recipes::{
    Recipe, check_recipe, dataset_location, load_recipe, parse_recipe, training_params,
};
use kd_trainer::{EmaDecayType, EmaParams, OptimizerConfig, OptimizerKind};

fn recipe_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            recipe_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

fn fashion_mnist_present() -> bool {
    kd_data::locate_fashion_mnist(None).is_ok()
}

/// Why `recipe` cannot be built on this machine, or `None`: a dataset it reads is not installed,
/// or its teacher's weights file (relative to the workspace root, where runs start) is absent.
fn missing_inputs(recipe: &mut Recipe, workspace: &Path) -> Option<String> {
    let train = recipe
        .train_dataloader
        .as_deref()
        .unwrap_or("fashion_mnist_train");
    let val = recipe
        .val_dataloader
        .as_deref()
        .unwrap_or("fashion_mnist_val");
    let params = std::iter::once(&recipe.dataset_params).chain(&recipe.teacher_dataset_params);
    for p in params {
        for (name, spec) in [
            (train, &p.train_dataset_params),
            (val, &p.val_dataset_params),
        ] {
            if let Err(err) = dataset_location(name, spec.root.as_deref()) {
                return Some(err.to_string());
            }
        }
    }
    if let Some(path) = &mut recipe.teacher_checkpoint_params.checkpoint_path {
        if path.is_relative() {
            *path = workspace.join(&*path);
        }
        if !path.is_file() {
            return Some(format!(
                "teacher weights `{}` are not downloaded (the recipe's header says where from)",
                path.display()
            ));
        }
    }
    None
}

#[test]
fn every_recipe_parses_and_builds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes");
    let mut files = Vec::new();
    recipe_files(&root, &mut files);
    assert!(
        !files.is_empty(),
        "no recipes found under {}",
        root.display()
    );
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the crate sits two levels below the workspace root");
    let device = Device::flex();
    for file in files {
        let mut recipe = load_recipe(&file, &[]).unwrap_or_else(|e| panic!("{e}"));
        match missing_inputs(&mut recipe, workspace) {
            None => {
                check_recipe(&recipe, &device).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            }
            Some(why) => eprintln!("{} parsed but not built: {why}", file.display()),
        }
    }
}

const BASE: &str = "experiment_name: t
student_architecture: small_cnn
student_arch_params: {num_classes: 10, in_channels: 1}
teacher_architecture: resnet8
teacher_arch_params: {num_classes: 10, in_channels: 1}
teacher_checkpoint_params: {checkpoint_path: /nonexistent/ckpt_best.bpk}
training_hyperparams:
  max_epochs: 2
  initial_lr: 0.1
  loss: KdLogitsLoss
dataset_params: {}
";

fn parse_err(text: &str, overrides: &[&str]) -> String {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    parse_recipe(text, "t.yaml", &overrides)
        .unwrap_err()
        .to_string()
}

#[test]
fn unknown_key_names_the_key_its_line_and_a_suggestion() {
    let err = parse_err(&BASE.replace("max_epochs", "max_epocs"), &[]);
    assert!(err.contains("t.yaml"), "{err}");
    assert!(err.contains("training_hyperparams.max_epocs"), "{err}");
    assert!(err.contains("line 8"), "{err}");
    assert!(err.contains("did you mean `max_epochs`"), "{err}");
    let err = parse_err(BASE, &["training_hyperparams.initial_lr_x=3"]);
    assert!(err.contains("did you mean `initial_lr`"), "{err}");
    let err = parse_err(&format!("{BASE}stduent_architecture: x\n"), &[]);
    assert!(err.contains("did you mean `student_architecture`"), "{err}");
}

#[test]
fn wrong_type_names_the_key() {
    let err = parse_err(BASE, &["epochs=ten"]);
    assert!(err.contains("training_hyperparams.max_epochs"), "{err}");
    assert!(err.contains("invalid type"), "{err}");
}

#[test]
fn unsupported_supergradients_keys_say_so() {
    let err = parse_err(BASE, &["training_hyperparams.sync_bn=true"]);
    assert!(
        err.contains("training_hyperparams.sync_bn") && err.contains("not implemented"),
        "{err}"
    );
    // Asking for nothing is accepted.
    parse_recipe(
        BASE,
        "t.yaml",
        &["training_hyperparams.sync_bn=false".to_string()],
    )
    .unwrap();
    for (arg, key, says) in [
        (
            "training_hyperparams.teacher_precision=bf61",
            "training_hyperparams.teacher_precision",
            "unknown precision `bf61`, did you mean `bf16`",
        ),
        (
            "training_hyperparams.optimizer=RMSpropTF",
            "training_hyperparams.optimizer",
            "not implemented in kd yet: use `RMSprop`",
        ),
        (
            "training_hyperparams.ema_params.decay_type=expo",
            "training_hyperparams.ema_params.decay_type",
            "did you mean `exp`",
        ),
        (
            "training_hyperparams.optimizer_params.trust_clip=true",
            "training_hyperparams.optimizer_params.trust_clip",
            "`SGD` does not take `trust_clip`",
        ),
        (
            "training_hyperparams.clip_grad_norm=-1",
            "training_hyperparams.clip_grad_norm",
            "finite value > 0",
        ),
    ] {
        let recipe = parse_recipe(BASE, "t.yaml", &[arg.to_string()]).unwrap();
        let err = training_params(&recipe.training_hyperparams, "training_hyperparams")
            .unwrap_err()
            .to_string();
        assert!(err.contains(key) && err.contains(says), "{arg}: {err}");
    }
}

#[test]
fn supergradients_training_keys_reach_the_trainer() {
    let overrides: Vec<String> = [
        "training_hyperparams.ema=true",
        "training_hyperparams.ema_params={decay: 0.99, decay_type: threshold}",
        "training_hyperparams.zero_weight_decay_on_bias_and_bn=true",
        "training_hyperparams.clip_grad_norm=2.5",
        "training_hyperparams.batch_accumulate=4",
        "training_hyperparams.average_best_models=false",
        "training_hyperparams.run_validation_freq=2",
        "training_hyperparams.save_ckpt_epoch_list=[0]",
        "training_hyperparams.ckpt_every_n_steps=100",
        "training_hyperparams.valid_metrics_list=[Accuracy, Top5]",
        "training_hyperparams.optimizer=Lamb",
        "training_hyperparams.optimizer_params={weight_decay: 0.02, trust_clip: true}",
        "training_hyperparams.mixed_precision=true",
        "training_hyperparams.teacher_precision=f16",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let recipe = parse_recipe(BASE, "t.yaml", &overrides).unwrap();
    let p = training_params(&recipe.training_hyperparams, "training_hyperparams").unwrap();
    assert!(p.ema && p.zero_weight_decay_on_bias_and_bn && !p.average_best_models);
    assert_eq!(p.ema_params.decay, 0.99);
    assert_eq!(p.ema_params.decay_type, EmaDecayType::Threshold);
    assert_eq!(p.ema_params.beta, 15.0);
    assert_eq!(p.clip_grad_norm, Some(2.5));
    assert_eq!((p.batch_accumulate, p.run_validation_freq), (4, 2));
    assert_eq!(p.save_ckpt_epoch_list, [0]);
    assert_eq!(p.ckpt_every_n_steps, Some(100));
    assert_eq!(p.valid_metrics_list, ["Accuracy", "Top5"]);
    assert!(p.mixed_precision);
    assert_eq!(p.teacher_precision, Some(kd_core::Precision::F16));
    assert_eq!(p.optimizer.kind, OptimizerKind::Lamb);
    // SuperGradients' Lamb defaults, with the two keys given.
    assert_eq!((p.optimizer.weight_decay, p.optimizer.eps), (0.02, 1e-6));
    assert!(p.optimizer.trust_clip && p.optimizer.max_grad_norm == 1.0);
    // SuperGradients' defaults when nothing is given.
    let recipe = parse_recipe(BASE, "t.yaml", &[]).unwrap();
    let p = training_params(&recipe.training_hyperparams, "training_hyperparams").unwrap();
    assert!(!p.ema && p.average_best_models && !p.mixed_precision);
    assert_eq!(p.ema_params, EmaParams::default());
    assert_eq!((p.batch_accumulate, p.clip_grad_norm), (1, None));
    for (name, kind) in [
        ("RMSprop", OptimizerKind::RmsProp),
        ("Lion", OptimizerKind::Lion),
    ] {
        let arg = format!("training_hyperparams.optimizer={name}");
        let recipe = parse_recipe(BASE, "t.yaml", &[arg]).unwrap();
        let p = training_params(&recipe.training_hyperparams, "training_hyperparams").unwrap();
        assert_eq!(p.optimizer, OptimizerConfig::defaults(kind));
    }
}

#[test]
fn unknown_architecture_suggests_the_closest() {
    let recipe = parse_recipe(
        &BASE.replace(
            "teacher_architecture: resnet8",
            "teacher_architecture: resnet_8",
        ),
        "t.yaml",
        &[],
    )
    .unwrap();
    let err = check_recipe(&recipe, &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("teacher_architecture") && err.contains("did you mean `resnet8`"),
        "{err}"
    );
}

#[test]
fn missing_dataset_names_the_path_and_the_fix() {
    let recipe = parse_recipe(
        BASE,
        "t.yaml",
        &["dataset_params.train_dataset_params.root=/nonexistent/fmnist".to_string()],
    )
    .unwrap();
    let err = check_recipe(&recipe, &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/fmnist"), "{err}");
    assert!(
        err.contains("apt-get install dataset-fashion-mnist"),
        "{err}"
    );
}

#[test]
fn missing_teacher_checkpoint_names_the_path() {
    if !fashion_mnist_present() {
        return;
    }
    let recipe = parse_recipe(BASE, "t.yaml", &[]).unwrap();
    let err = check_recipe(&recipe, &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("teacher_checkpoint_params.checkpoint_path")
            && err.contains("/nonexistent/ckpt_best.bpk"),
        "{err}"
    );
}

#[test]
fn class_and_channel_mismatches_are_caught_before_training() {
    if !fashion_mnist_present() {
        return;
    }
    let recipe = parse_recipe(
        BASE,
        "t.yaml",
        &["teacher_arch_params.num_classes=100".to_string()],
    )
    .unwrap();
    let err = check_recipe(&recipe, &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(err.contains("100") && err.contains("num_classes"), "{err}");
    let recipe = parse_recipe(
        BASE,
        "t.yaml",
        &["student_arch_params.in_channels=3".to_string()],
    )
    .unwrap();
    let err = check_recipe(&recipe, &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(err.contains("in_channels: 1"), "{err}");
}

#[test]
fn teacher_cache_is_refused_where_it_cannot_be_exact() {
    if !fashion_mnist_present() {
        eprintln!("skipped: Fashion-MNIST is not installed");
        return;
    }
    let device = Device::flex();
    let check = |overrides: &[&str]| {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let recipe = parse_recipe(BASE, "t.yaml", &overrides).unwrap();
        check_recipe(&recipe, &device).unwrap_err().to_string()
    };
    let err = check(&[
        "training_hyperparams.teacher_cache=true",
        "dataset_params.train_dataset_params.transforms=[{RandomCrop: {size: 28, padding: 2}}]",
    ]);
    assert!(
        err.contains("training_hyperparams.teacher_cache") && err.contains("RandomCrop"),
        "{err}"
    );
    let err = check(&[
        "training_hyperparams.teacher_cache=true",
        "run_teacher_on_eval=false",
    ]);
    assert!(err.contains("run_teacher_on_eval: true"), "{err}");
    // Deterministic data passes the cache check and stops at the missing teacher weights.
    let err = check(&["training_hyperparams.teacher_cache=true"]);
    assert!(err.contains("/nonexistent/ckpt_best.bpk"), "{err}");
}
