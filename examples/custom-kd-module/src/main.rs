//! A custom KD module and loss, the Rust twin of SuperGradients' "KD customization" example.
//!
//! SuperGradients subclasses `KDModule` as `MyKDModule`, whose `forward` returns intermediate
//! outputs of both networks in a `KDOutput`, writes a `MyKDLoss` that consumes them, and calls
//! `kd_trainer.train(model=kd_model, ...)`. Here:
//!
//! - [`MyKdModule`] implements [`KdModule`]: it runs the student (tracked) and the frozen teacher
//!   (plain device, eval mode) with the `stage2` and `stage3` taps and returns
//!   `KdOutput<Features>`, logits plus feature maps for each network;
//! - [`MyKdLoss`] implements [`Criterion`] for that output: SuperGradients' `KDLogitsLoss` on the
//!   logits plus `beta` times attention transfer (Zagoruyko & Komodakis, ICLR 2017) on the maps;
//! - [`KdTrainer::train_module`] is `kd_trainer.train(model=...)`.
//!
//! Run `cargo run -p custom-kd-module` from the workspace root; it needs Fashion-MNIST.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use burn::prelude::*;
use kd_core::{Criterion, Feature, ImageClassifier, KdModule, KdOutput, LossOutput, Targets};
use kd_data::{DataLoader, IdxDataset, LoaderConfig, Normalize, Split, Subset, Transforms};
use kd_losses::{CrossEntropyLossConfig, KdLogitsLoss, KdLogitsLossConfig};
use kd_models::{SmallCnn, SmallCnnConfig};
use kd_trainer::{KdTrainer, LrSchedule, Trainer, TrainingParams, load_student};

/// The taps distilled: 14x14 and 7x7 maps at 28x28 input, whatever the widths.
const TAPS: [&str; 2] = ["stage2", "stage3"];
/// Where the main job (`cargo xtask train`) writes its teacher.
const TEACHER_CKPT: &str = "runs/fashion_mnist_kd/teacher/ckpt_best.bpk";

/// What each network returns: its logits and its `TAPS` feature maps.
#[derive(Debug, Clone)]
struct Features {
    logits: Tensor<2>,
    maps: Vec<Tensor<4>>,
}

/// SuperGradients' `MyKDModule`: a student and a frozen teacher returning intermediate outputs.
#[derive(Module, Debug)]
struct MyKdModule {
    student: SmallCnn,
    teacher: SmallCnn,
}

impl MyKdModule {
    /// Freezes the teacher (plain device, eval mode) and makes the student trainable.
    fn new(student: SmallCnn, teacher: SmallCnn) -> Self {
        Self {
            student: student.train(),
            teacher: teacher.valid(),
        }
    }
}

/// Runs `net` and keeps its logits and `TAPS` maps.
fn features(net: &SmallCnn, x: Tensor<4>) -> Features {
    let (logits, taps) = net.forward_with_taps(x, &TAPS);
    let maps = taps
        .into_iter()
        .map(|f| match f {
            Feature::Map(m) => m,
            other => unreachable!("SmallCnn taps {TAPS:?} are maps, got {:?}", other.dims()),
        })
        .collect();
    Features { logits, maps }
}

impl KdModule for MyKdModule {
    type StudentOutput = Features;
    type TeacherOutput = Features;
    type Student = SmallCnn;

    fn forward(&self, x: Tensor<4>) -> KdOutput<Features> {
        // The teacher sees a plain copy of the batch: nothing it computes is recorded.
        let teacher_output = features(&self.teacher, x.clone().without_autodiff());
        KdOutput {
            student_output: features(&self.student, x),
            teacher_output,
        }
    }

    fn student_logits(output: &Features) -> Tensor<2> {
        output.logits.clone()
    }

    fn student(&self) -> &SmallCnn {
        &self.student
    }
}

/// The attention map of a feature map `[B, C, H, W]`: the channel mean of `f²`, flattened to
/// `[B, H·W]` and L2-normalised per sample (PyTorch's `F.normalize`, eps 1e-12).
fn attention_map(f: Tensor<4>) -> Tensor<2> {
    let [b, _, h, w] = f.dims();
    let a = f.square().mean_dim(1).reshape([b, h * w]);
    let norm = a.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    a / norm
}

/// Attention transfer: for each pair of maps, the batch mean of `‖a_s − a_t‖²`, summed over
/// pairs. Channel counts may differ; spatial sizes must match. Teacher maps are detached.
fn attention_loss(student: &[Tensor<4>], teacher: &[Tensor<4>]) -> Tensor<1> {
    student
        .iter()
        .zip(teacher)
        .map(|(s, t)| {
            let diff = attention_map(s.clone()) - attention_map(t.clone().detach());
            diff.square().sum_dim(1).mean()
        })
        .reduce(|a, b| a + b)
        .expect("at least one tap")
}

/// SuperGradients' `MyKDLoss`: `KDLogitsLoss` on the logits plus `beta` × attention transfer.
struct MyKdLoss {
    logits: KdLogitsLoss,
    beta: f64,
}

impl Criterion<KdOutput<Features>> for MyKdLoss {
    fn name(&self) -> &str {
        "MyKdLoss"
    }

    fn component_names(&self) -> Vec<String> {
        ["Loss", "Task Loss", "Distillation Loss", "Attention Loss"]
            .map(String::from)
            .to_vec()
    }

    fn forward(&self, output: &KdOutput<Features>, targets: &Targets) -> LossOutput {
        let (s, t) = (&output.student_output, &output.teacher_output);
        let parts = self
            .logits
            .compute(s.logits.clone(), t.logits.clone(), targets);
        let attention = attention_loss(&s.maps, &t.maps);
        let loss = parts.total + attention.clone().mul_scalar(self.beta);
        let components = [loss.clone(), parts.task, parts.distillation, attention];
        let components = Tensor::cat(components.map(Tensor::detach).to_vec(), 0);
        LossOutput { loss, components }
    }
}

/// Seeded subsets of 1,000 training and 500 test images, normalised.
fn loaders(root: &Path) -> anyhow::Result<(DataLoader, DataLoader)> {
    let normalize = Normalize {
        mean: vec![0.2860],
        std: vec![0.3530],
    };
    let loader = |split, n, shuffle| -> anyhow::Result<DataLoader> {
        let ds = Arc::new(IdxDataset::fashion_mnist(split, Some(root))?);
        let subset = Arc::new(Subset::random(ds, n, 42));
        let transforms = Transforms::new(vec![normalize.clone().into()])?;
        let config = LoaderConfig {
            batch_size: 64,
            shuffle,
            drop_last: shuffle,
            num_workers: 2,
            seed: 42,
        };
        Ok(DataLoader::new(subset, transforms, config)?)
    };
    Ok((
        loader(Split::Train, 1000, true)?,
        loader(Split::Test, 500, false)?,
    ))
}

/// The main job's teacher if it exists, else one trained here for an epoch.
fn teacher(device: &Device, train: &DataLoader, valid: &DataLoader) -> anyhow::Result<SmallCnn> {
    let net = SmallCnnConfig::new(1, 10)
        .with_widths([32, 64, 128])
        .init(device);
    let path = Path::new(TEACHER_CKPT);
    if path.exists() {
        println!("teacher: loading {TEACHER_CKPT}");
        return Ok(load_student(net, path)?);
    }
    println!("teacher: no {TEACHER_CKPT} (`cargo xtask train` writes it); training one epoch");
    let ce = CrossEntropyLossConfig::new().init()?;
    let params = TrainingParams::new(1, LrSchedule::cosine(0.05));
    let run = std::env::temp_dir().join("kd-custom-example-teacher");
    let out = Trainer::new(run, device).train(net, &params, &ce, train, valid)?;
    Ok(out.model.net)
}

fn run(root: &Path) -> anyhow::Result<()> {
    let device = Device::flex();
    device.seed(42);
    let (train, valid) = loaders(root).context("cannot load Fashion-MNIST")?;
    let teacher = teacher(&device, &train, &valid).context("cannot get the teacher")?;
    device.seed(7); // The same student whether the teacher was loaded or trained.
    let model = MyKdModule::new(SmallCnnConfig::new(1, 10).init(&device), teacher);
    // The paper's β/2 = 500 per map element is 500/196 ≈ 2.6 per sample at 14x14, 500/49 ≈ 10 at 7x7.
    let loss = MyKdLoss {
        logits: KdLogitsLossConfig::new().init()?,
        beta: 5.0,
    };
    let mut params = TrainingParams::new(2, LrSchedule::cosine(0.05));
    params.silent_mode = false;
    let kd_trainer = KdTrainer::new(std::env::temp_dir().join("kd-custom-example"), &device);
    let out = kd_trainer
        .train_module(model, &params, &loss, &train, &valid)
        .context("KD training failed")?;
    if let Some((acc, epoch)) = out.best {
        println!("best validation accuracy {acc:.4} (epoch {})", epoch + 1);
    }
    if let Some(last) = out.history.last() {
        let n = loss.component_names().len();
        for ((name, train), (_, valid)) in last.train.iter().zip(&last.valid).take(n) {
            println!("{name:<30} train {train:.4}  valid {valid:.4}");
        }
    }
    println!("student checkpoint: {}", out.best_checkpoint().display());
    Ok(())
}

fn main() -> ExitCode {
    let root = match kd_data::locate_fashion_mnist(None) {
        Ok(root) => root,
        Err(e) => {
            eprintln!("error: this example needs Fashion-MNIST: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&root) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn randn<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    #[test]
    fn attention_loss_vanishes_only_for_proportional_maps() {
        let device = Device::flex();
        device.seed(7);
        let student = vec![randn([2, 4, 6, 6], &device), randn([2, 8, 3, 3], &device)];
        // Twice the channels, scaled: same channel mean of f² up to a factor, same attention.
        let proportional: Vec<_> = student
            .iter()
            .map(|s| Tensor::cat(vec![s.clone(), s.clone()], 1).mul_scalar(3.0))
            .collect();
        let zero: f32 = attention_loss(&student, &proportional).into_scalar();
        assert!(zero.abs() < 1e-6, "{zero}");
        let other = vec![randn([2, 16, 6, 6], &device), randn([2, 32, 3, 3], &device)];
        let positive: f32 = attention_loss(&student, &other).into_scalar();
        assert!(positive > 1e-3, "{positive}");
    }

    #[test]
    fn my_kd_loss_sums_its_parts_and_trains_only_the_student() {
        let device = Device::flex();
        let train = device.clone().autodiff();
        device.seed(3);
        let student = Features {
            logits: randn([2, 5], &train).require_grad(),
            maps: vec![randn([2, 4, 6, 6], &train).require_grad()],
        };
        // Plain teacher tensors, as MyKdModule produces; a tracked one must be detached too.
        let teacher = Features {
            logits: randn([2, 5], &device),
            maps: vec![randn([2, 8, 6, 6], &device).autodiff().require_grad()],
        };
        let loss = MyKdLoss {
            logits: KdLogitsLossConfig::new().init().unwrap(),
            beta: 2.0,
        };
        let targets = Targets::Hard(Tensor::<1, Int>::from_ints([0, 3], &device));
        let output = KdOutput {
            student_output: student.clone(),
            teacher_output: teacher.clone(),
        };
        let out = loss.forward(&output, &targets);
        let c = out.components.into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(c.len(), loss.component_names().len());
        assert!(
            (c[0] - (0.5 * c[1] + 0.5 * c[2] + 2.0 * c[3])).abs() < 1e-5,
            "{c:?}"
        );
        assert!(c[3] > 0.0, "{c:?}");

        let grads = out.loss.backward();
        let map_grad = student.maps[0].grad(&grads).expect("student map gradient");
        assert!(map_grad.abs().sum().into_scalar::<f32>() > 0.0);
        assert!(student.logits.grad(&grads).is_some());
        assert!(teacher.maps[0].grad(&grads).is_none());
        assert!(teacher.logits.grad(&grads).is_none());
    }
}
