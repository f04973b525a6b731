//! SuperGradients' training options wired into the loop: EMA of the student, top-k model
//! averaging, gradient accumulation and clipping, validation frequency, per-epoch and
//! mid-epoch checkpoints, and resume with all of them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Module;
use burn::prelude::*;
use kd_core::KdArchParams;
use kd_data::{DataLoader, InMemoryDataset, LoaderConfig, Transforms};
use kd_losses::KdLogitsLossConfig;
use kd_models::{SmallCnn, SmallCnnConfig};
use kd_trainer::{
    AVERAGE_NAME, BEST_NAME, Checkpoint, KdTrainer, LATEST_NAME, LrSchedule, TrainingParams,
    load_student, read_log,
};

fn run_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kd-options-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// 60 random 1×8×8 images whose class (of 3) is the brightest third of the image.
fn loaders() -> (DataLoader, DataLoader) {
    let n = 60;
    let mut images = Vec::with_capacity(n * 64);
    let mut labels = Vec::with_capacity(n);
    let mut state = 99u64;
    for i in 0..n {
        let class = i % 3;
        for p in 0..64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let bright = if p / 22 == class { 150 } else { 40 };
            images.push(bright + (state >> 58) as u8);
        }
        labels.push(class);
    }
    let ds = Arc::new(InMemoryDataset::new(images, labels, [1, 8, 8], 3).unwrap());
    let cfg = |shuffle| LoaderConfig {
        batch_size: 10,
        shuffle,
        drop_last: false,
        num_workers: 1,
        seed: 4,
    };
    (
        DataLoader::new(ds.clone(), Transforms::to_tensor_only(), cfg(true)).unwrap(),
        DataLoader::new(ds, Transforms::to_tensor_only(), cfg(false)).unwrap(),
    )
}

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
    let (train, valid) = loaders();
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

fn floats<M: Module>(m: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
            self.0
                .extend(p.val().into_data().try_into_vec_as::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn ema_averaging_accumulation_clipping_and_checkpoints() {
    let dir = run_dir("all");
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
        assert!(max_diff(&floats(&best), &floats(&out.model.student.valid())) > 0.0);
    }
    // The average of the two validated epochs exists and loads into a bare student.
    let bare = SmallCnnConfig::new(1, 3)
        .with_widths([4, 4, 8])
        .init(&device);
    load_student(bare, &dir.join(AVERAGE_NAME)).unwrap();
}

#[test]
fn resume_restores_ema_and_averaging() {
    let straight_dir = run_dir("straight");
    let straight = train(&straight_dir, &params(2));
    let split_dir = run_dir("split");
    let mut p = params(2);
    p.stop_after_epochs = Some(1);
    train(&split_dir, &p);
    let mut p = params(2);
    p.resume = true;
    let resumed = train(&split_dir, &p);
    let student = max_diff(
        &floats(&straight.model.student),
        &floats(&resumed.model.student),
    );
    assert!(student < 1e-5, "resumed student differs by {student}");
    let device = Device::flex();
    let load = |dir: &Path, name: &str| {
        let bare = SmallCnnConfig::new(1, 3)
            .with_widths([4, 4, 8])
            .init(&device);
        floats(&load_student(bare, &dir.join(name)).unwrap())
    };
    let best = max_diff(
        &load(&straight_dir, BEST_NAME),
        &load(&split_dir, BEST_NAME),
    );
    assert!(best < 1e-5, "resumed EMA best differs by {best}");
    let avg = max_diff(
        &load(&straight_dir, AVERAGE_NAME),
        &load(&split_dir, AVERAGE_NAME),
    );
    assert!(avg < 1e-5, "resumed average differs by {avg}");
}

/// A run resumed from its mid-epoch `ckpt_step.kd` ends where the uninterrupted run ends.
#[test]
fn resume_from_a_mid_epoch_checkpoint() {
    let dir = run_dir("step");
    let mut p = params(1);
    p.save_ckpt_epoch_list = Vec::new();
    let straight = train(&dir, &p);
    let meta = Checkpoint::load(&dir.join(kd_trainer::STEP_NAME))
        .unwrap()
        .meta;
    assert_eq!((meta.epoch, meta.step_in_epoch), (0, Some(4)));
    p.resume_path = Some(dir.join(kd_trainer::STEP_NAME));
    let resumed = train(&dir, &p);
    let student = max_diff(
        &floats(&straight.model.student),
        &floats(&resumed.model.student),
    );
    assert!(student < 1e-5, "resumed student differs by {student}");
}
