//! A composed distillation loss (logits, attention on two taps, a FitNets connector and CRD
//! with its memory bank) trains with the student and resumes from `ckpt_latest` with its
//! trainable parts and memory restored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Module;
use burn::prelude::*;
use kd_core::{ImageClassifier, KdArchParams};
use kd_data::{DataLoader, InMemoryDataset, LoaderConfig, Transforms};
use kd_losses::{
    AttentionTransferLossConfig, CrdLossConfig, CrossEntropyLossConfig, DistillationLoss,
    DistillationLossConfig, FitNetsLossConfig, HintonKdLossConfig, LOGITS_TAP, MethodConfig,
    TapShapes, TermConfig, TermKind,
};
use kd_models::{SmallCnn, SmallCnnConfig};
use kd_trainer::{DistillModel, KdTrainer, LrSchedule, TrainOutcome, TrainingParams};

const N: usize = 48;

fn run_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kd-distill-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `N` random 1×8×8 images whose class (of 3) is the brightest third of the image.
fn loaders() -> (DataLoader, DataLoader) {
    let mut images = Vec::with_capacity(N * 64);
    let mut labels = Vec::with_capacity(N);
    let mut state = 777u64;
    for i in 0..N {
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
        batch_size: 12,
        shuffle,
        drop_last: false,
        num_workers: 1,
        seed: 5,
    };
    (
        DataLoader::new(ds.clone(), Transforms::to_tensor_only(), cfg(true)).unwrap(),
        DataLoader::new(ds, Transforms::to_tensor_only(), cfg(false)).unwrap(),
    )
}

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

/// Per-sample tap shapes from one forward pass on zeros.
fn shapes(net: &SmallCnn, names: &[String], device: &Device) -> TapShapes {
    let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
    let (logits, features) = net
        .valid()
        .forward_with_taps(Tensor::<4>::zeros([1, 1, 8, 8], device), &wanted);
    let mut out: TapShapes = names
        .iter()
        .zip(features)
        .map(|(n, f)| (n.clone(), f.dims()[1..].to_vec()))
        .collect();
    out.push((LOGITS_TAP.into(), logits.dims()[1..].to_vec()));
    out
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
            &shapes(&student, &config.student_taps(), &device),
            &shapes(&teacher, &config.teacher_taps(), &device),
            &device,
        )
        .unwrap();
    let (train, valid) = loaders();
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

fn crd_memory(loss: &DistillationLoss) -> Vec<f32> {
    let TermKind::Crd(crd) = &loss.terms[5].kind else {
        panic!("term 5 is CRD")
    };
    crd.student_memory()
        .into_data()
        .try_into_vec::<f32>()
        .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn composed_loss_trains_and_resumes_with_connectors_and_memory() {
    let straight = run(&run_dir("straight"), false, None);
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
                &shapes(&student, &config.student_taps(), &device),
                &shapes(&teacher, &config.teacher_taps(), &device),
                &device,
            )
            .unwrap()
    };
    assert!(
        max_diff(
            &floats(&fresh.terms[4]),
            &floats(&straight.model.loss.terms[4])
        ) > 0.0
    );
    assert!(max_diff(&crd_memory(&fresh), &crd_memory(&straight.model.loss)) > 0.0);

    let dir = run_dir("split");
    let first = run(&dir, false, Some(1));
    assert_eq!(first.history.len(), 1);
    let resumed = run(&dir, true, None);
    assert_eq!(resumed.history.len(), 1);
    assert_eq!(resumed.history[0].epoch, 1);
    let student = max_diff(
        &floats(&straight.model.kd.student),
        &floats(&resumed.model.kd.student),
    );
    assert!(student < 1e-5, "resumed student differs by {student}");
    let connector = max_diff(
        &floats(&straight.model.loss.terms[4]),
        &floats(&resumed.model.loss.terms[4]),
    );
    assert!(connector < 1e-5, "resumed connector differs by {connector}");
    let memory = max_diff(
        &crd_memory(&straight.model.loss),
        &crd_memory(&resumed.model.loss),
    );
    assert!(memory < 1e-5, "resumed CRD memory differs by {memory}");
}
