//! A low-precision teacher: bf16 weights and activations, f32 outputs, the student untouched;
//! `mixed_precision: true` trains and resumes with it.

mod common;

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::DType;
use kd_core::{ImageClassifier, KdArchParams, KdModel, KdModule, Precision};
use kd_losses::KdLogitsLossConfig;
use kd_models::{BeitConfig, ResNetConfig, SmallCnn, SmallCnnConfig};
use kd_trainer::{KdTrainer, LrSchedule, TrainError, TrainingParams};

/// The largest difference between `low` and `reference`, relative to `reference`'s largest
/// magnitude.
fn relative_error(low: Tensor<2>, reference: Tensor<2>) -> f32 {
    let scale = reference.clone().abs().max().into_scalar::<f32>();
    (low - reference).abs().max().into_scalar::<f32>() / scale
}

fn compare<T: ImageClassifier + Clone>(teacher: T, taps: &[&str], device: &Device) {
    let train_device = device.clone().autodiff();
    let student = SmallCnnConfig::new(3, 10)
        .with_widths([4, 4, 8])
        .init(&train_device);
    let x = Tensor::<4>::random(
        [2, 3, 32, 32],
        burn::tensor::Distribution::Default,
        &train_device,
    );
    let full = KdModel::new(
        student.clone(),
        teacher.clone(),
        KdArchParams::default(),
        true,
    )
    .unwrap();
    let low = KdModel::new(student, teacher, KdArchParams::default(), true)
        .unwrap()
        .with_teacher_precision(Precision::Bf16)
        .unwrap();
    assert_eq!(low.teacher_precision(), Precision::Bf16);
    assert_eq!(full.teacher_precision(), Precision::F32);

    let a = full.forward(x.clone());
    let b = low.forward(x.clone());
    assert_eq!(b.teacher_output.dtype(), DType::F32);
    // The student is not touched.
    a.student_output
        .into_data()
        .assert_eq(&b.student_output.into_data(), true);
    // bf16 keeps 8 bits of mantissa: logits agree to about a percent, but not exactly.
    let err = relative_error(b.teacher_output, a.teacher_output);
    assert!(err > 0.0 && err < 0.05, "bf16 teacher logits off by {err}");

    let a = full.forward_with_taps(x.clone(), &[], taps);
    let b = low.forward_with_taps(x, &[], taps);
    for (fa, fb) in a.teacher_output.1.iter().zip(&b.teacher_output.1) {
        assert_eq!(fa.dims(), fb.dims());
        let (ta, tb) = match (fa, fb) {
            (kd_core::Feature::Map(ta), kd_core::Feature::Map(tb)) => {
                (ta.clone().flatten(1, 3), tb.clone().flatten(1, 3))
            }
            (kd_core::Feature::Tokens(ta), kd_core::Feature::Tokens(tb)) => {
                (ta.clone().flatten(1, 2), tb.clone().flatten(1, 2))
            }
            (kd_core::Feature::Vector(ta), kd_core::Feature::Vector(tb)) => {
                (ta.clone(), tb.clone())
            }
            _ => panic!("tap kinds differ"),
        };
        assert_eq!(tb.dtype(), DType::F32);
        let err = relative_error(tb, ta);
        assert!(err < 0.05, "bf16 teacher tap off by {err}");
    }
}

#[test]
fn bf16_resnet_teacher_tracks_its_f32_self() {
    let _serial = common::serial();
    let device = Device::flex();
    device.seed(3);
    let teacher = ResNetConfig::resnet18(10)
        .with_small_input(true)
        .init(&device);
    compare(teacher, &["layer3", "pre_logits"], &device);
}

#[test]
fn bf16_beit_teacher_tracks_its_f32_self() {
    let _serial = common::serial();
    let device = Device::flex();
    device.seed(4);
    let teacher = BeitConfig::beit_base_patch16_224(10)
        .with_image_size(32)
        .with_patch_size(8)
        .with_embed_dim(32)
        .with_num_heads(2)
        .with_depth(2)
        .init(&device)
        .unwrap();
    compare(teacher, &["blocks.1", "pre_logits"], &device);
}

fn mixed_run(
    dir: &std::path::Path,
    resume: bool,
    stop_after: Option<usize>,
) -> kd_trainer::TrainOutcome<KdModel<SmallCnn, SmallCnn>> {
    let device = Device::flex();
    let (train, valid) = common::loaders(96, 16, 3, 777);
    let mut p = TrainingParams::new(2, LrSchedule::cosine(0.05));
    p.silent_mode = true;
    p.mixed_precision = true;
    p.resume = resume;
    p.stop_after_epochs = stop_after;
    let (student, teacher) = common::small_pair(&device, 5);
    let loss = KdLogitsLossConfig::new().init().unwrap();
    KdTrainer::new(dir, &device)
        .train(
            student,
            teacher,
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
fn mixed_precision_trains_with_a_bf16_teacher_and_resumes_exactly() {
    let _serial = common::serial();
    let straight = common::run_dir("precision", "straight");
    let out = mixed_run(&straight, false, None);
    assert_eq!(out.model.teacher_precision(), Precision::Bf16);
    let weights = common::floats(out.model.student());
    assert!(weights.iter().all(|w| w.is_finite()));

    let split = common::run_dir("precision", "split");
    mixed_run(&split, false, Some(1));
    let resumed = mixed_run(&split, true, None);
    assert_eq!(resumed.model.teacher_precision(), Precision::Bf16);
    let diff = common::max_diff(&weights, &common::floats(resumed.model.student()));
    assert_eq!(diff, 0.0, "1 + resume 1 differs from 2 epochs straight");
    let _ = std::fs::remove_dir_all(straight);
    let _ = std::fs::remove_dir_all(split);
}

#[test]
fn a_ready_module_refuses_precision_keys() {
    let _serial = common::serial();
    let device = Device::flex();
    let (train, valid) = common::loaders(12, 6, 3, 1);
    let (student, teacher) = common::small_pair(&device, 5);
    let model = KdModel::new(student.train(), teacher, KdArchParams::default(), true).unwrap();
    let mut p = TrainingParams::new(1, LrSchedule::cosine(0.05));
    p.silent_mode = true;
    p.mixed_precision = true;
    let loss = KdLogitsLossConfig::new().init().unwrap();
    let dir = common::run_dir("precision", "ready");
    let err = KdTrainer::new(&dir, &device)
        .train_module(model, &p, &loss, &train, &valid)
        .unwrap_err();
    assert!(
        matches!(&err, TrainError::Param { key, .. } if key == "mixed_precision"),
        "{err}"
    );
    assert!(err.to_string().contains("with_teacher_precision"), "{err}");
}
