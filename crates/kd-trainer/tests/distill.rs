//! A composed distillation loss (logits, attention on two taps, a FitNets connector and CRD
//! with its memory bank) trains with the student and resumes from `ckpt_latest` with its
//! trainable parts and memory restored.

mod common;

use std::path::Path;

use burn::module::Module;
use burn::prelude::*;
use kd_core::KdArchParams;
use kd_losses::{
    AttentionTransferLossConfig, CrdLossConfig, CrossEntropyLossConfig, DistillationLoss,
    DistillationLossConfig, FitNetsLossConfig, HintonKdLossConfig, MethodConfig, TermConfig,
    TermKind,
};
use kd_models::{SmallCnn, SmallCnnConfig};
use kd_trainer::{DistillModel, KdTrainer, LrSchedule, TrainOutcome, TrainingParams};

const N: usize = 48;

fn nets(device: &Device) -> (SmallCnn, SmallCnn) {
    device.seed(11);
    let student = SmallCnnConfig::new(1, 3)
        .with_widths([4, 4, 8])
        .init(device);
    let teacher = SmallCnnConfig::new(1, 3)
        .with_widths([8, 8, 16])
        .init(device);
    (student, teacher.valid())
}

fn taps(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn config() -> DistillationLossConfig {
    let at = || MethodConfig::AttentionTransfer(AttentionTransferLossConfig::default());
    DistillationLossConfig {
        terms: vec![
            TermConfig::new(
                MethodConfig::CrossEntropy(CrossEntropyLossConfig::new()),
                0.5,
            ),
            TermConfig::new(MethodConfig::HintonKd(HintonKdLossConfig::default()), 0.5),
            TermConfig::new(at(), 10.0).with_taps(taps(&["stage2"]), taps(&["stage2"])),
            TermConfig::new(at(), 10.0).with_taps(taps(&["stage3"]), taps(&["stage3"])),
            TermConfig::new(MethodConfig::FitNets(FitNetsLossConfig::default()), 1.0)
                .with_taps(taps(&["stage3"]), taps(&["stage3"])),
            TermConfig::new(
                MethodConfig::Crd(
                    CrdLossConfig::new()
                        .with_feat_dim(8)
                        .with_nce_k(16)
                        .with_n_data(Some(N)),
                ),
                0.8,
            )
            .with_taps(taps(&["pre_logits"]), taps(&["pre_logits"])),
        ],
    }
}

fn run(
    dir: &Path,
    resume: bool,
    stop_after: Option<usize>,
) -> TrainOutcome<DistillModel<SmallCnn, SmallCnn>> {
    let device = Device::flex();
    let (student, teacher) = nets(&device);
    let config = config();
    let loss = config
        .init(
            &common::shapes(&student, &config.student_taps(), &device),
            &common::shapes(&teacher, &config.teacher_taps(), &device),
            &device,
        )
        .unwrap();
    let (train, valid) = common::loaders(N, 12, 5, 777);
    let mut p = TrainingParams::new(2, LrSchedule::cosine(0.05));
    p.silent_mode = true;
    p.resume = resume;
    p.stop_after_epochs = stop_after;
    KdTrainer::new(dir, &device)
        .train_distill(
            student,
            teacher,
            KdArchParams::default(),
            true,
            &p,
            loss,
            &train,
            &valid,
        )
        .unwrap()
}

fn crd_memory(loss: &DistillationLoss) -> Vec<f32> {
    let TermKind::Crd(crd) = &loss.terms[5].kind else {
        panic!("term 5 is CRD")
    };
    crd.student_memory()
        .into_data()
        .try_into_vec::<f32>()
        .unwrap()
}

#[test]
fn composed_loss_trains_and_resumes_with_connectors_and_memory() {
    let straight = run(&common::run_dir("distill", "straight"), false, None);
    assert_eq!(straight.history.len(), 2);
    let names: Vec<&str> = straight.history[0]
        .train
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    for part in [
        "attention_transfer",
        "attention_transfer_2",
        "fitnets",
        "crd",
    ] {
        assert!(
            names.contains(&format!("DistillationLoss/{part}").as_str()),
            "{names:?}"
        );
    }
    // The connector and the memory bank moved away from their initial values.
    let fresh = {
        let device = Device::flex();
        let (student, teacher) = nets(&device);
        let config = config();
        config
            .init(
                &common::shapes(&student, &config.student_taps(), &device),
                &common::shapes(&teacher, &config.teacher_taps(), &device),
                &device,
            )
            .unwrap()
    };
    assert!(
        common::max_diff(
            &common::floats(&fresh.terms[4]),
            &common::floats(&straight.model.loss.terms[4])
        ) > 0.0
    );
    assert!(common::max_diff(&crd_memory(&fresh), &crd_memory(&straight.model.loss)) > 0.0);

    let dir = common::run_dir("distill", "split");
    let first = run(&dir, false, Some(1));
    assert_eq!(first.history.len(), 1);
    let resumed = run(&dir, true, None);
    assert_eq!(resumed.history.len(), 1);
    assert_eq!(resumed.history[0].epoch, 1);
    let student = common::max_diff(
        &common::floats(&straight.model.kd.student),
        &common::floats(&resumed.model.kd.student),
    );
    assert!(student < 1e-5, "resumed student differs by {student}");
    let connector = common::max_diff(
        &common::floats(&straight.model.loss.terms[4]),
        &common::floats(&resumed.model.loss.terms[4]),
    );
    assert!(connector < 1e-5, "resumed connector differs by {connector}");
    let memory = common::max_diff(
        &crd_memory(&straight.model.loss),
        &crd_memory(&resumed.model.loss),
    );
    assert!(memory < 1e-5, "resumed CRD memory differs by {memory}");
}
