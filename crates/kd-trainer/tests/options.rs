//! SuperGradients' training options wired into the loop: EMA of the student, top-k model
//! averaging, gradient accumulation and clipping, validation frequency, per-epoch and
//! mid-epoch checkpoints, and resume with all of them.

mod common;

use std::path::Path;

use burn::module::Module;
use burn::prelude::*;
use kd_core::KdArchParams;
use kd_losses::KdLogitsLossConfig;
use kd_models::{SmallCnn, SmallCnnConfig};
use kd_trainer::{
    AVERAGE_NAME, BEST_NAME, Checkpoint, KdTrainer, LATEST_NAME, LrSchedule, TrainingParams,
    load_student, read_log,
};

fn params(epochs: usize) -> TrainingParams {
    let mut p = TrainingParams::new(epochs, LrSchedule::cosine(0.05));
    p.silent_mode = true;
    p.ema = true;
    p.average_best_models = true;
    p.batch_accumulate = 2;
    p.clip_grad_norm = Some(1.0);
    p.zero_weight_decay_on_bias_and_bn = true;
    p.save_ckpt_epoch_list = vec![1];
    p.ckpt_every_n_steps = Some(2);
    p
}

fn train(
    dir: &Path,
    p: &TrainingParams,
) -> kd_trainer::TrainOutcome<kd_core::KdModel<SmallCnn, SmallCnn>> {
    let device = Device::flex();
    device.seed(21);
    let student = SmallCnnConfig::new(1, 3)
        .with_widths([4, 4, 8])
        .init(&device);
    let teacher = SmallCnnConfig::new(1, 3)
        .with_widths([8, 8, 8])
        .init(&device);
    let (train, valid) = common::loaders(60, 10, 4, 99);
    let loss = KdLogitsLossConfig::new().init().unwrap();
    KdTrainer::new(dir, &device)
        .train(
            student,
            teacher.valid(),
            KdArchParams::default(),
            true,
            p,
            &loss,
            &train,
            &valid,
        )
        .unwrap()
}

#[test]
fn ema_averaging_accumulation_clipping_and_checkpoints() {
    let _serial = common::serial();
    let dir = common::run_dir("options", "all");
    let mut p = params(3);
    p.run_validation_freq = 2;
    let out = train(&dir, &p);
    // 6 batches per epoch, 2 per step: 3 optimizer steps an epoch.
    let meta = Checkpoint::load(&dir.join(LATEST_NAME)).unwrap().meta;
    assert_eq!(meta.global_step, 9);
    assert_eq!(meta.step_in_epoch, None);
    assert!(dir.join("ckpt_epoch_1.kd").is_file());
    // The last mid-epoch state: step 8 of 9, after batch 4 of epoch 3 (0-based epoch 2).
    let step_meta = Checkpoint::load(&dir.join(kd_trainer::STEP_NAME))
        .unwrap()
        .meta;
    assert_eq!(
        (
            step_meta.epoch,
            step_meta.step_in_epoch,
            step_meta.global_step
        ),
        (2, Some(4), 8)
    );
    // Validation after epoch 2 (freq 2) and after the last; none after epoch 1.
    let log = read_log(&dir.join("metrics.jsonl")).unwrap();
    assert!(log[0].valid.is_empty());
    assert!(log[1].valid_metric("Accuracy").is_some());
    assert!(log[2].valid_metric("Accuracy").is_some());
    // ckpt_best is the EMA student of the best validated epoch, not the live one.
    let best_epoch = out.best.unwrap().1;
    let device = Device::flex();
    let bare = SmallCnnConfig::new(1, 3)
        .with_widths([4, 4, 8])
        .init(&device);
    let best = load_student(bare, &dir.join(BEST_NAME)).unwrap();
    if best_epoch == 2 {
        assert!(
            common::max_diff(
                &common::floats(&best),
                &common::floats(&out.model.student.valid())
            ) > 0.0
        );
    }
    // The average of the two validated epochs exists and loads into a bare student.
    let bare = SmallCnnConfig::new(1, 3)
        .with_widths([4, 4, 8])
        .init(&device);
    load_student(bare, &dir.join(AVERAGE_NAME)).unwrap();
}

#[test]
fn resume_restores_ema_and_averaging() {
    let _serial = common::serial();
    let straight_dir = common::run_dir("options", "straight");
    let straight = train(&straight_dir, &params(2));
    let split_dir = common::run_dir("options", "split");
    let mut p = params(2);
    p.stop_after_epochs = Some(1);
    train(&split_dir, &p);
    let mut p = params(2);
    p.resume = true;
    let resumed = train(&split_dir, &p);
    let student = common::max_diff(
        &common::floats(&straight.model.student),
        &common::floats(&resumed.model.student),
    );
    assert!(student < 1e-5, "resumed student differs by {student}");
    let device = Device::flex();
    let load = |dir: &Path, name: &str| {
        let bare = SmallCnnConfig::new(1, 3)
            .with_widths([4, 4, 8])
            .init(&device);
        common::floats(&load_student(bare, &dir.join(name)).unwrap())
    };
    let best = common::max_diff(
        &load(&straight_dir, BEST_NAME),
        &load(&split_dir, BEST_NAME),
    );
    assert!(best < 1e-5, "resumed EMA best differs by {best}");
    let avg = common::max_diff(
        &load(&straight_dir, AVERAGE_NAME),
        &load(&split_dir, AVERAGE_NAME),
    );
    assert!(avg < 1e-5, "resumed average differs by {avg}");
}

/// A run resumed from its mid-epoch `ckpt_step.kd` ends where the uninterrupted run ends.
#[test]
fn resume_from_a_mid_epoch_checkpoint() {
    let _serial = common::serial();
    let dir = common::run_dir("options", "step");
    let mut p = params(1);
    p.save_ckpt_epoch_list = Vec::new();
    let straight = train(&dir, &p);
    let meta = Checkpoint::load(&dir.join(kd_trainer::STEP_NAME))
        .unwrap()
        .meta;
    assert_eq!((meta.epoch, meta.step_in_epoch), (0, Some(4)));
    p.resume_path = Some(dir.join(kd_trainer::STEP_NAME));
    let resumed = train(&dir, &p);
    let student = common::max_diff(
        &common::floats(&straight.model.student),
        &common::floats(&resumed.model.student),
    );
    assert!(student < 1e-5, "resumed student differs by {student}");
}
