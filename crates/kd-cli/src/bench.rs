//! `kd bench`: times the KD training step, the unit of work of every distillation run.
//!
//! One step is what `KdTrainer` does per batch: the teacher's forward pass on the plain
//! device, the student's forward and backward passes, the `KdLogitsLoss`, and an SGD step
//! (momentum 0.9). `bench/pytorch_kd_step.py` times the same step in PyTorch.

use std::time::Instant;

use anyhow::{Result, bail};
use burn::optim::GradientsParams;
use burn::optim::SgdConfig;
use burn::optim::momentum::MomentumConfig;
use burn::prelude::*;
use kd_core::{
    Criterion, ImageClassifier, KdArchParams, KdModel, KdModule, Precision, Targets, TeacherCache,
};
use kd_losses::KdLogitsLossConfig;
use kd_recipes::registry;
use serde_yaml::Mapping;

/// A benchmark configuration: models, input and batch.
pub struct BenchConfig {
    /// Name used on the command line and in reports.
    pub name: &'static str,
    /// Teacher architecture and arch params (YAML).
    pub teacher: (&'static str, &'static str),
    /// Student architecture and arch params (YAML).
    pub student: (&'static str, &'static str),
    /// Input shape `[C, H, W]`.
    pub input: [usize; 3],
    /// Number of classes.
    pub classes: usize,
    /// Batch size.
    pub batch: usize,
}

/// The two configurations (Fashion-MNIST size; CIFAR size with the small-input stems CIFAR
/// training uses), and `tiny` for smoke tests of slow backends.
pub const CONFIGS: [BenchConfig; 3] = [
    BenchConfig {
        name: "fashion",
        teacher: (
            "resnet18",
            "{num_classes: 10, in_channels: 1, small_input: true}",
        ),
        student: ("small_cnn", "{num_classes: 10, in_channels: 1}"),
        input: [1, 28, 28],
        classes: 10,
        batch: 128,
    },
    BenchConfig {
        name: "cifar",
        teacher: (
            "resnet50",
            "{num_classes: 100, in_channels: 3, small_input: true}",
        ),
        student: (
            "resnet18",
            "{num_classes: 100, in_channels: 3, small_input: true}",
        ),
        input: [3, 32, 32],
        classes: 100,
        batch: 64,
    },
    BenchConfig {
        name: "tiny",
        teacher: ("resnet8", "{num_classes: 10, in_channels: 1}"),
        student: ("small_cnn", "{num_classes: 10, in_channels: 1}"),
        input: [1, 28, 28],
        classes: 10,
        batch: 8,
    },
];

/// Peak resident memory of this process in MiB (Linux), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Which part of the KD step is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Part {
    /// The whole KD step (the default).
    #[default]
    Kd,
    /// The student's step alone: forward, cross-entropy, backward, SGD.
    Student,
    /// The teacher's forward pass alone (plain device, eval mode).
    Teacher,
}

impl Part {
    /// Names accepted on the command line.
    pub const NAMES: &'static [&'static str] = &["kd", "student", "teacher"];

    /// Parses `kd`, `student` or `teacher`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "kd" => Some(Self::Kd),
            "student" => Some(Self::Student),
            "teacher" => Some(Self::Teacher),
            _ => None,
        }
    }
}

/// What the KD step runs with, beyond the configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepOptions {
    /// The part of the step that is timed.
    pub part: Part,
    /// The teacher's precision.
    pub teacher_precision: Precision,
    /// Serve the teacher's logits from a [`TeacherCache`] (the bench's batch is the same at
    /// every step, so every timed step reads the cache).
    pub teacher_cache: bool,
}

/// Runs `runs` timed repetitions of `steps` KD steps (after `warmup` untimed ones) and returns
/// images per second for each repetition.
pub fn run(
    config: &BenchConfig,
    device: &Device,
    warmup: usize,
    steps: usize,
    runs: usize,
    options: StepOptions,
) -> Result<Vec<f64>> {
    if steps == 0 || runs == 0 {
        bail!("--steps and --runs must be at least 1");
    }
    let params = |s: &str| -> Result<Mapping> { Ok(serde_yaml::from_str(s)?) };
    device.seed(0);
    let teacher = registry::get(
        config.teacher.0,
        &params(config.teacher.1)?,
        "teacher",
        device,
    )?;
    let student = registry::get(
        config.student.0,
        &params(config.student.1)?,
        "student",
        device,
    )?;
    let mut model = KdModel::new(student.train(), teacher, KdArchParams::default(), true)?
        .with_teacher_precision(options.teacher_precision)?;
    if options.teacher_cache {
        if warmup == 0 {
            bail!("--teacher-cache needs at least one warm-up step to fill the cache");
        }
        model = model.with_teacher_cache(TeacherCache::new(0.0)?)?;
    }
    let loss = KdLogitsLossConfig::new().init()?;
    let mut optim = SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .init();
    let ad = device.clone().autodiff();
    let [c, h, w] = config.input;
    let x = Tensor::<4>::random(
        [config.batch, c, h, w],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &ad,
    );
    let y: Vec<i64> = (0..config.batch)
        .map(|i| (i % config.classes) as i64)
        .collect();
    let targets = Targets::Hard(Tensor::<1, Int>::from_data(
        TensorData::new(y, [config.batch]),
        &ad,
    ));
    let indices = Tensor::<1, Int>::arange(0..config.batch as i64, device);
    let finite = |value: f32| -> Result<()> {
        if value.is_finite() {
            Ok(())
        } else {
            bail!("the bench's loss is {value} on this backend: its kernels disagree with flex")
        }
    };
    match options.part {
        Part::Kd => time(config.batch, warmup, steps, runs, model, |model| {
            let out = model.forward_indexed(x.clone(), &indices);
            let l = loss.forward(&out, &targets).loss;
            let grads = GradientsParams::from_grads(l.backward(), &model);
            let model = optim.step(0.01, model, grads);
            // Reading the loss waits for the device, so every step is fully timed.
            finite(l.into_scalar::<f32>())?;
            Ok(model)
        }),
        Part::Student => {
            let ce = burn::nn::loss::CrossEntropyLossConfig::new().init(&ad);
            let Targets::Hard(y) = &targets else {
                unreachable!("the bench's targets are class indices")
            };
            let mut optim = SgdConfig::new()
                .with_momentum(Some(
                    MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
                ))
                .init();
            time(
                config.batch,
                warmup,
                steps,
                runs,
                model.student,
                |student| {
                    let l = ce.forward(student.forward(x.clone()), y.clone());
                    let grads = GradientsParams::from_grads(l.backward(), &student);
                    let student = optim.step(0.01, student, grads);
                    finite(l.into_scalar::<f32>())?;
                    Ok(student)
                },
            )
        }
        Part::Teacher => {
            let plain = x.clone().without_autodiff();
            time(
                config.batch,
                warmup,
                steps,
                runs,
                model.teacher,
                |teacher| {
                    finite(teacher.forward(plain.clone()).sum().into_scalar::<f32>())?;
                    Ok(teacher)
                },
            )
        }
    }
}

/// Runs `warmup` untimed then `runs` × `steps` timed calls of `step`, which takes and returns
/// the state it trains, and returns images per second for each run.
fn time<M>(
    batch: usize,
    warmup: usize,
    steps: usize,
    runs: usize,
    mut state: M,
    mut step: impl FnMut(M) -> Result<M>,
) -> Result<Vec<f64>> {
    for _ in 0..warmup {
        state = step(state)?;
    }
    let mut rates = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        for _ in 0..steps {
            state = step(state)?;
        }
        rates.push((steps * batch) as f64 / start.elapsed().as_secs_f64());
    }
    Ok(rates)
}
