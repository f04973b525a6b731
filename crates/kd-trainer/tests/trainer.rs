//! End-to-end checks of the training loop on a tiny in-memory dataset.

mod common;

use std::cell::Cell;
use std::path::Path;

use burn::module::Module;
use burn::prelude::*;
use kd_core::{Criterion, KdArchParams, KdOutput, LossOutput, Targets};
use kd_losses::{CrossEntropyLossConfig, KdLogitsLossConfig};
use kd_models::{SmallCnn, SmallCnnConfig};
use kd_trainer::{
    Checkpoint, KdTrainer, LATEST_NAME, LrSchedule, TrainError, Trainer, TrainingParams,
    load_student,
};

fn student(device: &Device) -> SmallCnn {
    device.seed(1);
    SmallCnnConfig::new(1, 3)
        .with_widths([4, 4, 8])
        .init(device)
}

fn teacher(device: &Device) -> SmallCnn {
    device.seed(2);
    SmallCnnConfig::new(1, 3)
        .with_widths([8, 8, 8])
        .init(device)
}

fn params(epochs: usize) -> TrainingParams {
    let mut p = TrainingParams::new(epochs, LrSchedule::cosine(0.05));
    p.silent_mode = true;
    p
}

fn kd_run(
    dir: &Path,
    epochs: usize,
    resume: bool,
) -> kd_trainer::TrainOutcome<kd_core::KdModel<SmallCnn, SmallCnn>> {
    kd_run_until(dir, epochs, resume, None)
}

fn kd_run_until(
    dir: &Path,
    epochs: usize,
    resume: bool,
    stop_after: Option<usize>,
) -> kd_trainer::TrainOutcome<kd_core::KdModel<SmallCnn, SmallCnn>> {
    let device = Device::flex();
    let (train, valid) = common::loaders(96, 16, 3, 12345);
    let mut p = params(epochs);
    p.resume = resume;
    p.stop_after_epochs = stop_after;
    let loss = KdLogitsLossConfig::new().init().unwrap();
    KdTrainer::new(dir, &device)
        .train(
            student(&device),
            teacher(&device),
            KdArchParams::default(),
            true,
            &p,
            &loss,
            &train,
            &valid,
        )
        .unwrap()
}

#[test]
fn teacher_is_bit_identical_after_kd_and_student_learns() {
    let _serial = common::serial();
    let device = Device::flex();
    // Parameters initialise lazily: reading them here fixes the values the run starts from.
    let t = teacher(&device);
    let before = common::floats(&t);
    let st = student(&device);
    let student_before = common::floats(&st);
    let dir = common::run_dir("trainer", "frozen");
    let (train, valid) = common::loaders(96, 16, 3, 12345);
    let loss = KdLogitsLossConfig::new().init().unwrap();
    let out = KdTrainer::new(&dir, &device)
        .train(
            st,
            t,
            KdArchParams::default(),
            true,
            &params(2),
            &loss,
            &train,
            &valid,
        )
        .unwrap();
    assert_eq!(
        common::floats(&out.model.teacher),
        before,
        "teacher weights or BN statistics changed"
    );
    assert_ne!(
        common::floats(&out.model.student),
        student_before,
        "the student did not train"
    );
    assert_eq!(out.history.len(), 2);
    let names: Vec<&str> = out.history[0]
        .valid
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "KdLogitsLoss/Loss",
            "KdLogitsLoss/Task Loss",
            "KdLogitsLoss/Distillation Loss",
            "Accuracy",
            "Top5"
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ckpt_best_loads_into_a_bare_student_and_reproduces_its_accuracy() {
    let _serial = common::serial();
    let device = Device::flex();
    let dir = common::run_dir("trainer", "best");
    let out = kd_run(&dir, 3, false);
    let (best_value, best_epoch) = out.best.expect("a best epoch");
    assert_eq!(
        out.history[best_epoch].valid_metric("Accuracy"),
        Some(best_value)
    );

    let bare = SmallCnnConfig::new(1, 3)
        .with_widths([4, 4, 8])
        .init(&device);
    let loaded = load_student(bare, &out.best_checkpoint()).unwrap().valid();
    let (_, valid) = common::loaders(96, 16, 3, 12345);
    let mut acc = kd_trainer::MetricAccumulator::new(vec![]);
    for batch in valid.iter(0, &device) {
        let batch = batch.unwrap();
        acc.update(&[], loaded.forward(batch.images), &batch.targets);
    }
    assert_eq!(acc.compute()[0].1, best_value);

    // A student of another shape is refused with a message naming the file.
    let wrong = SmallCnnConfig::new(1, 3)
        .with_widths([4, 4, 4])
        .init(&device);
    let err = load_student(wrong, &out.best_checkpoint())
        .unwrap_err()
        .to_string();
    assert!(err.contains("ckpt_best.bpk"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_continues_at_the_next_epoch_with_the_same_state() {
    let _serial = common::serial();
    let straight_dir = common::run_dir("trainer", "straight");
    let straight = kd_run(&straight_dir, 3, false);

    let split_dir = common::run_dir("trainer", "split");
    // An interrupted run: the schedule spans 3 epochs, the process stops after 2.
    let first = kd_run_until(&split_dir, 3, false, Some(2));
    assert_eq!(first.history.len(), 2);
    assert_eq!(
        Checkpoint::load(&split_dir.join(LATEST_NAME))
            .unwrap()
            .meta
            .epoch,
        1
    );
    drop(first);
    let resumed = kd_run(&split_dir, 3, true);
    assert_eq!(resumed.history.len(), 1);
    assert_eq!(resumed.history[0].epoch, 2);
    // Same data order, same optimizer state (momentum), same schedule: same weights.
    let a = common::floats(&straight.model.student);
    let b = common::floats(&resumed.model.student);
    let max_diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff < 1e-5, "resumed student differs by {max_diff}");
    assert_eq!(straight.history[2].valid, resumed.history[0].valid);

    // Resuming without a checkpoint is a clear error.
    let empty = common::run_dir("trainer", "empty");
    let device = Device::flex();
    let (train, valid) = common::loaders(96, 16, 3, 12345);
    let mut p = params(1);
    p.resume = true;
    let loss = KdLogitsLossConfig::new().init().unwrap();
    let err = KdTrainer::new(&empty, &device)
        .train(
            student(&device),
            teacher(&device),
            KdArchParams::default(),
            true,
            &p,
            &loss,
            &train,
            &valid,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no checkpoint") && err.contains("ckpt_latest.kd"),
        "{err}"
    );
    for d in [straight_dir, split_dir, empty] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Cross-entropy that turns NaN from the `at`-th call on.
struct PoisonAt {
    calls: Cell<usize>,
    at: usize,
}

impl Criterion<Tensor<2>> for PoisonAt {
    fn name(&self) -> &str {
        "Poison"
    }
    fn component_names(&self) -> Vec<String> {
        vec!["Loss".into()]
    }
    fn forward(&self, output: &Tensor<2>, targets: &Targets) -> LossOutput {
        let ce = CrossEntropyLossConfig::new().init().unwrap();
        let mut out = ce.forward(output, targets);
        self.calls.set(self.calls.get() + 1);
        if self.calls.get() > self.at {
            out.loss = out.loss.mul_scalar(f64::NAN);
            out.components = out.components.mul_scalar(f64::NAN);
        }
        out
    }
}

#[test]
fn non_finite_loss_stops_and_keeps_the_last_good_checkpoint() {
    let _serial = common::serial();
    let device = Device::flex();
    let (train, valid) = common::loaders(96, 16, 3, 12345);
    let dir = common::run_dir("trainer", "nan");
    // Epoch 0 has 6 training and 6 validation calls; the 3rd step of epoch 1 is poisoned.
    let loss = PoisonAt {
        calls: Cell::new(0),
        at: 14,
    };
    let err = Trainer::new(&dir, &device)
        .train(student(&device), &params(3), &loss, &train, &valid)
        .unwrap_err();
    match &err {
        TrainError::NonFiniteLoss { epoch, step, .. } => assert_eq!((*epoch, *step), (1, 2)),
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("ckpt_latest.kd"), "{err}");
    let ckpt = Checkpoint::load(&dir.join(LATEST_NAME)).unwrap();
    assert_eq!(ckpt.meta.epoch, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kd_output_reaches_custom_criteria() {
    let _serial = common::serial();
    // The default KD module hands the criterion both logits, the teacher's without gradient.
    struct Check;
    impl Criterion<KdOutput<Tensor<2>>> for Check {
        fn name(&self) -> &str {
            "Check"
        }
        fn component_names(&self) -> Vec<String> {
            vec!["Loss".into()]
        }
        fn forward(&self, out: &KdOutput<Tensor<2>>, targets: &Targets) -> LossOutput {
            assert!(!out.teacher_output.device().is_autodiff());
            assert_eq!(out.student_output.dims(), out.teacher_output.dims());
            let loss = kd_losses::cross_entropy(out.student_output.clone(), targets, 0.0);
            LossOutput {
                components: loss.clone().detach(),
                loss,
            }
        }
    }
    let device = Device::flex();
    let (train, valid) = common::loaders(96, 16, 3, 12345);
    let dir = common::run_dir("trainer", "custom");
    KdTrainer::new(&dir, &device)
        .train(
            student(&device),
            teacher(&device),
            KdArchParams::default(),
            true,
            &params(1),
            &Check,
            &train,
            &valid,
        )
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
