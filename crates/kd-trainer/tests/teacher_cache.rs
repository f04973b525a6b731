//! The teacher cache: exact (the same weights as without it), counted, verifiable, and refused
//! where it cannot be exact.

mod common;

use std::sync::Arc;

use burn::module::Module;
use burn::prelude::*;
use kd_core::{KdArchParams, KdModel, KdModule};
use kd_data::{DataLoader, InMemoryDataset, LoaderConfig, RandomHorizontalFlip, Transforms};
use kd_losses::{
    AttentionTransferLossConfig, CrossEntropyLossConfig, DistillationLossConfig, DkdLossConfig,
    KdLogitsLossConfig, MethodConfig, TermConfig,
};
use kd_models::SmallCnn;
use kd_trainer::{DistillModel, KdTrainer, LrSchedule, TrainError, TrainOutcome, TrainingParams};

fn run(
    name: &str,
    cache: bool,
    verify: f64,
    train: &DataLoader,
    valid: &DataLoader,
) -> Result<TrainOutcome<KdModel<SmallCnn, SmallCnn>>, TrainError> {
    let device = Device::flex();
    let mut p = TrainingParams::new(3, LrSchedule::cosine(0.05));
    p.silent_mode = true;
    p.teacher_cache = cache;
    p.teacher_cache_verify = verify;
    let (student, teacher) = common::small_pair(&device, 8);
    let loss = KdLogitsLossConfig::new().init().unwrap();
    let dir = common::run_dir("teacher-cache", name);
    let out = KdTrainer::new(&dir, &device).train(
        student,
        teacher,
        KdArchParams::default(),
        true,
        &p,
        &loss,
        train,
        valid,
    );
    let _ = std::fs::remove_dir_all(dir);
    out
}

#[test]
fn cached_runs_equal_uncached_runs_and_count_their_hits() {
    let _serial = common::serial();
    let (train, valid) = common::loaders(96, 16, 3, 99);
    let plain = run("plain", false, 0.0, &train, &valid).unwrap();
    assert!(plain.model.teacher_cache().is_none());
    let cached = run("cached", true, 0.0, &train, &valid).unwrap();
    let same = common::max_diff(
        &common::floats(plain.model.student()),
        &common::floats(cached.model.student()),
    );
    assert_eq!(same, 0.0, "the cache changed the trained student");
    let stats = cached.model.teacher_cache().unwrap().stats();
    // Epoch 1 computes all 96 samples; epochs 2 and 3 read them.
    assert_eq!(
        (stats.misses, stats.hits, stats.verified_batches),
        (96, 192, 0)
    );

    // The validation set (the same 96 images, in order) is cached on its own.
    let stats = cached.model.validation_cache().unwrap().stats();
    assert_eq!((stats.misses, stats.hits), (96, 192));

    // Verifying every cached batch recomputes them all, uses the fresh outputs and finds no
    // drift: the same students and the same validation metrics as reading the caches.
    let verified = run("verified", true, 1.0, &train, &valid).unwrap();
    let stats = verified.model.teacher_cache().unwrap().stats();
    assert_eq!((stats.hits, stats.verified_batches), (0, 12));
    assert_eq!(stats.max_drift, 0.0);
    let stats = verified.model.validation_cache().unwrap().stats();
    assert_eq!((stats.hits, stats.verified_batches), (0, 12));
    assert_eq!(stats.max_drift, 0.0);
    let valid_metrics = |o: &TrainOutcome<KdModel<SmallCnn, SmallCnn>>| -> Vec<Vec<(String, f64)>> {
        o.history.iter().map(|r| r.valid.clone()).collect()
    };
    assert_eq!(valid_metrics(&cached), valid_metrics(&verified));
    let same = common::max_diff(
        &common::floats(verified.model.student()),
        &common::floats(cached.model.student()),
    );
    assert_eq!(same, 0.0);
}

#[test]
fn random_augmentation_and_feature_losses_refuse_the_cache() {
    let _serial = common::serial();
    let (_, valid) = common::loaders(12, 6, 3, 5);
    let images: Vec<u8> = (0..12 * 64).map(|i| (i % 251) as u8).collect();
    let labels: Vec<usize> = (0..12).map(|i| i % 3).collect();
    let ds = Arc::new(InMemoryDataset::new(images, labels, [1, 8, 8], 3).unwrap());
    let flip = Transforms::new(vec![RandomHorizontalFlip { p: 0.5 }.into()]).unwrap();
    let config = LoaderConfig {
        batch_size: 6,
        shuffle: true,
        drop_last: false,
        num_workers: 1,
        seed: 1,
    };
    let augmented = DataLoader::new(ds, flip, config).unwrap();
    let err = run("augmented", true, 0.0, &augmented, &valid)
        .expect_err("a random flip cannot be cached");
    let text = err.to_string();
    assert!(
        text.contains("teacher_cache") && text.contains("RandomHorizontalFlip"),
        "{text}"
    );
    let err = run("bad-verify", true, 2.0, &valid, &valid)
        .expect_err("a verify fraction above 1 is refused");
    assert!(err.to_string().contains("teacher_cache_verify"), "{err}");
}

#[test]
fn validation_batches_do_not_touch_the_cache() {
    let _serial = common::serial();
    let device = Device::flex();
    let (student, teacher) = common::small_pair(&device, 8);
    let model = KdModel::new(student.train(), teacher, KdArchParams::default(), true)
        .unwrap()
        .with_teacher_cache(kd_core::TeacherCache::new(0.0).unwrap())
        .unwrap();
    let x = Tensor::<4>::zeros([2, 1, 8, 8], &device.clone().autodiff());
    let _ = KdModule::forward(&model, x.clone());
    assert_eq!(model.teacher_cache().unwrap().stats().misses, 0);
    let indices = Tensor::<1, Int>::from_ints([4, 7], &device);
    let first = model.forward_indexed(x.clone(), &indices).teacher_output;
    let again = model.forward_indexed(x, &indices).teacher_output;
    first.into_data().assert_eq(&again.into_data(), true);
    let stats = model.teacher_cache().unwrap().stats();
    assert_eq!((stats.misses, stats.hits), (2, 2));
    // A teacher in training mode is not a function of its input.
    let (student, teacher) = common::small_pair(&device, 8);
    let train_mode = KdModel::new(student.train(), teacher, KdArchParams::default(), false)
        .unwrap()
        .with_teacher_cache(kd_core::TeacherCache::new(0.0).unwrap());
    assert!(train_mode.is_err());
}

fn distill(
    name: &str,
    config: &DistillationLossConfig,
    cache: bool,
) -> Result<TrainOutcome<DistillModel<SmallCnn, SmallCnn>>, TrainError> {
    let device = Device::flex();
    let (student, teacher) = common::small_pair(&device, 8);
    let loss = config
        .init(
            &common::shapes(&student, &config.student_taps(), &device),
            &common::shapes(&teacher, &config.teacher_taps(), &device),
            &device,
        )
        .unwrap();
    let (train, valid) = common::loaders(48, 12, 4, 31);
    let mut p = TrainingParams::new(2, LrSchedule::cosine(0.05));
    p.silent_mode = true;
    p.teacher_cache = cache;
    let dir = common::run_dir("teacher-cache", name);
    let out = KdTrainer::new(&dir, &device).train_distill(
        student,
        teacher,
        KdArchParams::default(),
        true,
        &p,
        loss,
        &train,
        &valid,
    );
    let _ = std::fs::remove_dir_all(dir);
    out
}

#[test]
fn composed_losses_on_teacher_logits_use_the_cache_exactly() {
    let _serial = common::serial();
    let logits_only = DistillationLossConfig {
        terms: vec![
            TermConfig::new(
                MethodConfig::CrossEntropy(CrossEntropyLossConfig::new()),
                1.0,
            ),
            TermConfig::new(MethodConfig::Dkd(DkdLossConfig::default()), 1.0),
        ],
    };
    let plain = distill("dkd-plain", &logits_only, false).unwrap();
    let cached = distill("dkd-cached", &logits_only, true).unwrap();
    let diff = common::max_diff(
        &common::floats(&plain.model.kd.student),
        &common::floats(&cached.model.kd.student),
    );
    assert_eq!(diff, 0.0, "the cache changed the trained student");
    let stats = cached.model.kd.teacher_cache().unwrap().stats();
    assert_eq!((stats.misses, stats.hits), (48, 48));

    // A term reading a teacher feature map cannot be served from logits.
    let taps = |t: &str| vec![t.to_string()];
    let with_features = DistillationLossConfig {
        terms: vec![
            TermConfig::new(
                MethodConfig::CrossEntropy(CrossEntropyLossConfig::new()),
                1.0,
            ),
            TermConfig::new(
                MethodConfig::AttentionTransfer(AttentionTransferLossConfig::default()),
                1.0,
            )
            .with_taps(taps("stage2"), taps("stage2")),
        ],
    };
    let err = distill("at-cached", &with_features, true).expect_err("AT reads a teacher tap");
    assert!(
        err.to_string().contains("teacher_cache") && err.to_string().contains("stage2"),
        "{err}"
    );
}
