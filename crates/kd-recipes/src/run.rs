//! A recipe → a run: the teacher (loaded or trained), the KD student, the scratch baseline.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::prelude::*;
use kd_core::{ImageClassifier, InputAdapter, KdArchParams, NormalizationAdapterConfig, Precision};
use kd_data::DataLoader;
use kd_losses::{CrossEntropyLoss, CrossEntropyLossConfig, KdLogitsLossConfig};
use kd_trainer::{
    Checkpoint, EmaDecayType, EmaParams, KdTrainer, LATEST_NAME, LrMode, LrSchedule,
    OptimizerConfig, OptimizerKind, TrainError, Trainer, TrainingParams, WarmupMode, load_student,
};
use serde_yaml::Value;

use crate::error::did_you_mean;
use crate::losses::{build_distillation_loss, distillation_config, is_distillation_loss};
use crate::schema::{AdapterSpec, TrainingHyperparams};
use crate::weights::{build_network, checkpoint_file};
use crate::{Network, Recipe, RecipeError, build_loaders, build_loaders_from, registry};

/// One line of the final table.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// `teacher`, `student (scratch)` or `student (KD)`.
    pub role: String,
    /// Architecture name.
    pub arch: String,
    /// Parameter count (BatchNorm running statistics included).
    pub params: usize,
    /// Best validation top-1 accuracy.
    pub accuracy: f64,
    /// Top-5 accuracy at that epoch.
    pub top5: f64,
    /// Seconds spent training in this invocation (0 when loaded).
    pub seconds: f64,
    /// Where the weights are.
    pub checkpoint: PathBuf,
    /// `trained` or `loaded`.
    pub origin: String,
}

/// What a recipe run produced.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Teacher, scratch and KD rows, as present.
    pub rows: Vec<ReportRow>,
}

impl RunReport {
    /// A plain-text table of the rows.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<18} {:<12} {:>10} {:>9} {:>7} {:>9}  {}\n",
            "model", "arch", "params", "accuracy", "top5", "time", "weights"
        );
        for r in &self.rows {
            let time = if r.origin == "trained" {
                format!("{:.1}s", r.seconds)
            } else {
                "loaded".to_string()
            };
            out.push_str(&format!(
                "{:<18} {:<12} {:>10} {:>8.2}% {:>6.2}% {:>9}  {}\n",
                r.role,
                r.arch,
                r.params,
                100.0 * r.accuracy,
                100.0 * r.top5,
                time,
                r.checkpoint.display()
            ));
        }
        out
    }
}

/// Turns `training_hyperparams` into the trainer's parameters; `section` names the key.
pub fn training_params(
    th: &TrainingHyperparams,
    section: &str,
) -> Result<TrainingParams, RecipeError> {
    let key = |k: &str| format!("{section}.{k}");
    let factor = |mode: &str| {
        th.lr_decay_factor.ok_or_else(|| {
            RecipeError::invalid(
                &key("lr_decay_factor"),
                format!("`{mode}` needs `lr_decay_factor`"),
            )
        })
    };
    let mode = match th.lr_mode.as_deref() {
        None | Some("ConstantLRScheduler") | Some("constant") => LrMode::Constant,
        Some("CosineLRScheduler") | Some("cosine") => LrMode::Cosine {
            final_lr_ratio: th.cosine_final_lr_ratio,
        },
        Some("StepLRScheduler") | Some("step") => {
            if th.lr_updates.is_empty() {
                return Err(RecipeError::invalid(
                    &key("lr_updates"),
                    "`StepLRScheduler` needs `lr_updates`, the epochs at which to decay",
                ));
            }
            LrMode::Step {
                lr_updates: th.lr_updates.clone(),
                lr_decay_factor: factor("StepLRScheduler")?,
            }
        }
        Some("PolyLRScheduler") | Some("poly") => LrMode::Poly,
        Some("ExponentialLRScheduler") | Some("exp") => LrMode::Exponential {
            lr_decay_factor: factor("ExponentialLRScheduler")?,
        },
        Some(other) => {
            const MODES: [&str; 4] = [
                "CosineLRScheduler",
                "StepLRScheduler",
                "PolyLRScheduler",
                "ExponentialLRScheduler",
            ];
            return Err(RecipeError::invalid(
                &key("lr_mode"),
                format!(
                    "unknown lr_mode `{other}`{}; known: {}",
                    did_you_mean(other, MODES),
                    MODES.join(", ")
                ),
            ));
        }
    };
    let warmup_mode = match th.warmup_mode.as_deref() {
        None | Some("LinearEpochLRWarmup") | Some("linear_epoch_step") | Some("linear_epoch") => {
            WarmupMode::LinearEpoch
        }
        Some("LinearBatchLRWarmup") | Some("linear_batch_step") | Some("linear_step") => {
            WarmupMode::LinearStep
        }
        Some(other) => {
            return Err(RecipeError::invalid(
                &key("warmup_mode"),
                format!(
                    "unknown warmup_mode `{other}`{}; known: LinearEpochLRWarmup, LinearBatchLRWarmup",
                    did_you_mean(other, ["LinearEpochLRWarmup", "LinearBatchLRWarmup"])
                ),
            ));
        }
    };
    let kind = optimizer_kind(th, section)?;
    let optimizer = optimizer_config(th, kind, section)?;
    let ema_params = EmaParams {
        decay: th.ema_params.decay,
        decay_type: EmaDecayType::parse(&th.ema_params.decay_type).ok_or_else(|| {
            RecipeError::invalid(
                &key("ema_params.decay_type"),
                format!(
                    "unknown decay_type `{}`{}; known: {}",
                    th.ema_params.decay_type,
                    did_you_mean(&th.ema_params.decay_type, EmaDecayType::NAMES),
                    EmaDecayType::NAMES.join(", ")
                ),
            )
        })?,
        beta: th.ema_params.beta,
    };
    let mut params = TrainingParams::new(
        th.max_epochs,
        LrSchedule {
            initial_lr: th.initial_lr,
            mode,
            warmup_epochs: th.lr_warmup_epochs,
            warmup_steps: th.lr_warmup_steps,
            warmup_mode,
            warmup_initial_lr: th.warmup_initial_lr,
            cooldown_epochs: th.lr_cooldown_epochs,
        },
    );
    params.optimizer = optimizer;
    params.metric_to_watch = th.metric_to_watch.clone();
    params.greater_metric_to_watch_is_better = th.greater_metric_to_watch_is_better;
    params.max_train_batches = th.max_train_batches;
    params.max_valid_batches = th.max_valid_batches;
    params.seed = th.seed;
    params.resume = th.resume;
    params.resume_path = th.resume_path.clone();
    params.silent_mode = th.silent_mode;
    params.ema = th.ema;
    params.ema_params = ema_params;
    params.zero_weight_decay_on_bias_and_bn = th.zero_weight_decay_on_bias_and_bn;
    params.clip_grad_norm = th.clip_grad_norm;
    params.batch_accumulate = th.batch_accumulate;
    params.average_best_models = th.average_best_models;
    params.run_validation_freq = th.run_validation_freq;
    params.save_ckpt_epoch_list = th.save_ckpt_epoch_list.clone();
    params.ckpt_every_n_steps = th.ckpt_every_n_steps;
    params.mixed_precision = th.mixed_precision;
    params.teacher_cache = th.teacher_cache;
    params.teacher_cache_verify = th.teacher_cache_verify;
    params.teacher_precision = th
        .teacher_precision
        .as_deref()
        .map(|name| {
            Precision::parse(name).ok_or_else(|| {
                RecipeError::invalid(
                    &key("teacher_precision"),
                    format!(
                        "unknown precision `{name}`{}; known: {}",
                        did_you_mean(name, Precision::NAMES.iter().copied()),
                        Precision::NAMES.join(", ")
                    ),
                )
            })
        })
        .transpose()?;
    params.train_metrics_list = th.train_metrics_list.clone();
    params.valid_metrics_list = th.valid_metrics_list.clone();
    params
        .validate()
        .map_err(|e| train_param_error(e, section))?;
    Ok(params)
}

/// Prints what a teacher cache did, when one was on.
fn report_cache(what: &str, cache: Option<&kd_core::TeacherCache>) {
    if let Some(cache) = cache {
        let s = cache.stats();
        eprintln!(
            "{what}: the teacher's logits for {} samples read from the cache, {} computed; {} cached batches recomputed, largest difference {:e}",
            s.hits, s.misses, s.verified_batches, s.max_drift
        );
    }
}

/// A trainer's parameter error as a recipe error naming `section.key`.
fn train_param_error(e: TrainError, section: &str) -> RecipeError {
    match e {
        TrainError::Param { key, message } => {
            RecipeError::invalid(&format!("{section}.{key}"), message)
        }
        other => RecipeError::Train(other),
    }
}

/// The `optimizer` name; SuperGradients' `RMSpropTF` is named as not implemented.
fn optimizer_kind(th: &TrainingHyperparams, section: &str) -> Result<OptimizerKind, RecipeError> {
    let name = th.optimizer.as_str();
    let key = format!("{section}.optimizer");
    if name.eq_ignore_ascii_case("RMSpropTF") {
        return Err(RecipeError::invalid(
            &key,
            "SuperGradients' `RMSpropTF` (TensorFlow-style RMSprop) is not implemented in kd yet: use `RMSprop`",
        ));
    }
    OptimizerKind::parse(name).ok_or_else(|| {
        RecipeError::invalid(
            &key,
            format!(
                "unknown optimizer `{name}`{}; known: {}",
                did_you_mean(name, OptimizerKind::NAMES),
                OptimizerKind::NAMES.join(", ")
            ),
        )
    })
}

/// `optimizer_params` over SuperGradients' defaults for `kind`; a key the optimizer does not
/// take is an error naming the keys it does take.
fn optimizer_config(
    th: &TrainingHyperparams,
    kind: OptimizerKind,
    section: &str,
) -> Result<OptimizerConfig, RecipeError> {
    use OptimizerKind::*;
    const ALL: &[OptimizerKind] = &[Sgd, Adam, AdamW, RmsProp, Lamb, Lion];
    let op = &th.optimizer_params;
    let keys: [(&str, bool, &[OptimizerKind]); 13] = [
        ("momentum", op.momentum.is_some(), &[Sgd, RmsProp]),
        ("weight_decay", op.weight_decay.is_some(), ALL),
        ("nesterov", op.nesterov.is_some(), &[Sgd]),
        ("dampening", op.dampening.is_some(), &[Sgd]),
        ("betas", op.betas.is_some(), &[Adam, AdamW, Lamb, Lion]),
        ("eps", op.eps.is_some(), &[Adam, AdamW, RmsProp, Lamb]),
        ("alpha", op.alpha.is_some(), &[RmsProp]),
        ("centered", op.centered.is_some(), &[RmsProp]),
        ("max_grad_norm", op.max_grad_norm.is_some(), &[Lamb]),
        ("trust_clip", op.trust_clip.is_some(), &[Lamb]),
        ("always_adapt", op.always_adapt.is_some(), &[Lamb]),
        ("bias_correction", op.bias_correction.is_some(), &[Lamb]),
        ("grad_averaging", op.grad_averaging.is_some(), &[Lamb]),
    ];
    if let Some((name, _, _)) = keys
        .iter()
        .find(|(_, given, takes)| *given && !takes.contains(&kind))
    {
        let takes: Vec<&str> = keys
            .iter()
            .filter(|(_, _, takes)| takes.contains(&kind))
            .map(|(n, _, _)| *n)
            .collect();
        return Err(RecipeError::invalid(
            &format!("{section}.optimizer_params.{name}"),
            format!(
                "`{}` does not take `{name}`; its options are: {}",
                th.optimizer,
                takes.join(", ")
            ),
        ));
    }
    let mut c = OptimizerConfig::defaults(kind);
    c.momentum = op.momentum.unwrap_or(c.momentum);
    c.weight_decay = op.weight_decay.unwrap_or(c.weight_decay);
    c.nesterov = op.nesterov.unwrap_or(c.nesterov);
    c.dampening = op.dampening.unwrap_or(c.dampening);
    c.betas = op.betas.unwrap_or(c.betas);
    c.eps = op.eps.unwrap_or(c.eps);
    c.alpha = op.alpha.unwrap_or(c.alpha);
    c.centered = op.centered.unwrap_or(c.centered);
    c.max_grad_norm = op.max_grad_norm.unwrap_or(c.max_grad_norm);
    c.trust_clip = op.trust_clip.unwrap_or(c.trust_clip);
    c.always_adapt = op.always_adapt.unwrap_or(c.always_adapt);
    c.bias_correction = op.bias_correction.unwrap_or(c.bias_correction);
    c.grad_averaging = op.grad_averaging.unwrap_or(c.grad_averaging);
    Ok(c)
}

/// The task loss of `criterion_params.task_loss_fn`.
fn task_loss(
    th: &TrainingHyperparams,
    section: &str,
) -> Result<CrossEntropyLossConfig, RecipeError> {
    let key = format!("{section}.criterion_params.task_loss_fn");
    let smoothing_of = |v: &Value| -> Result<f64, RecipeError> {
        let m = v.as_mapping().ok_or_else(|| {
            RecipeError::invalid(
                &key,
                "expected `{CrossEntropyLoss: {label_smoothing: 0.1}}`",
            )
        })?;
        for (k, _) in m {
            if k.as_str() != Some("label_smoothing") {
                return Err(RecipeError::invalid(
                    &key,
                    format!("unknown CrossEntropyLoss argument {k:?}; known: label_smoothing"),
                ));
            }
        }
        Ok(m.get("label_smoothing")
            .and_then(Value::as_f64)
            .unwrap_or(0.0))
    };
    let smoothing = match &th.criterion_params.task_loss_fn {
        None | Some(Value::Null) => th.criterion_params.label_smoothing.unwrap_or(0.0),
        Some(Value::String(s)) if is_ce(s) => 0.0,
        // Hydra's form: `{_target_: super_gradients....CrossEntropyLoss, label_smoothing: 0.1}`.
        Some(Value::Mapping(m)) if m.contains_key("_target_") => {
            let target = m
                .get("_target_")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let name = target.rsplit('.').next().unwrap_or_default();
            if !is_ce(name) {
                return Err(RecipeError::invalid(
                    &format!("{key}._target_"),
                    format!("unknown task loss `{target}`; known: CrossEntropyLoss"),
                ));
            }
            let mut args = m.clone();
            args.remove("_target_");
            smoothing_of(&Value::Mapping(args))?
        }
        Some(Value::Mapping(m)) if m.len() == 1 => {
            let (name, args) = m.iter().next().expect("len 1");
            match name.as_str() {
                Some(n) if is_ce(n) => {
                    if args.is_null() {
                        0.0
                    } else {
                        smoothing_of(args)?
                    }
                }
                _ => {
                    return Err(RecipeError::invalid(
                        &key,
                        format!("unknown task loss {name:?}; known: CrossEntropyLoss"),
                    ));
                }
            }
        }
        Some(other) => {
            return Err(RecipeError::invalid(
                &key,
                format!("unknown task loss {other:?}; known: CrossEntropyLoss"),
            ));
        }
    };
    Ok(CrossEntropyLossConfig::new().with_label_smoothing(smoothing))
}

/// The `KdLogitsLoss` of `training_hyperparams.criterion_params`.
fn kd_loss_config(th: &TrainingHyperparams) -> Result<KdLogitsLossConfig, RecipeError> {
    let cp = &th.criterion_params;
    let mut config = KdLogitsLossConfig::new()
        .with_task_loss(task_loss(th, "training_hyperparams")?)
        .with_temperature(cp.temperature);
    if let Some(c) = cp.distillation_loss_coeff {
        config = config.with_distillation_loss_coeff(c);
    }
    Ok(config)
}

fn is_ce(name: &str) -> bool {
    matches!(name, "CrossEntropyLoss" | "cross_entropy" | "CrossEntropy")
}

fn is_kd_loss(name: &str) -> bool {
    matches!(name, "KdLogitsLoss" | "KDLogitsLoss" | "kd_loss")
}

fn check_loss_name(th: &TrainingHyperparams, section: &str, kd: bool) -> Result<(), RecipeError> {
    let ok = if kd {
        is_kd_loss(&th.loss) || is_distillation_loss(&th.loss)
    } else {
        is_ce(&th.loss)
    };
    if ok {
        return Ok(());
    }
    let (want, hint) = if kd {
        (
            "KdLogitsLoss` or `DistillationLoss",
            "a KD run (one with a teacher) needs a KD loss",
        )
    } else {
        (
            "CrossEntropyLoss",
            "a run without a teacher trains with a task loss",
        )
    };
    Err(RecipeError::invalid(
        &format!("{section}.loss"),
        format!(
            "`{}` cannot be used here{}: {hint}, e.g. `{want}`",
            th.loss,
            did_you_mean(
                &th.loss,
                ["KdLogitsLoss", "DistillationLoss", "CrossEntropyLoss"]
            )
        ),
    ))
}

fn adapter(
    spec: &Option<AdapterSpec>,
    device: &Device,
) -> Result<Option<InputAdapter>, RecipeError> {
    spec.as_ref()
        .map(|AdapterSpec::NormalizationAdapter(a)| {
            NormalizationAdapterConfig::new(
                a.mean_original.clone(),
                a.std_original.clone(),
                a.mean_required.clone(),
                a.std_required.clone(),
            )
            .init(device)
            .map(InputAdapter::Normalization)
            .map_err(RecipeError::from)
        })
        .transpose()
}

fn check_top_level(recipe: &Recipe) -> Result<(), RecipeError> {
    if let Some(m) = &recipe.multi_gpu
        && !m.eq_ignore_ascii_case("off")
    {
        return Err(RecipeError::invalid(
            "multi_gpu",
            format!("`{m}` is not supported yet: use `Off`"),
        ));
    }
    if let Some(n) = recipe.num_gpus
        && n > 1
    {
        return Err(RecipeError::invalid(
            "num_gpus",
            format!("{n} GPUs is not supported yet: use 1"),
        ));
    }
    if let Some(a) = &recipe.architecture
        && a != "kd_module"
    {
        return Err(RecipeError::invalid(
            "architecture",
            format!(
                "unknown KD architecture `{a}`{}; known: kd_module",
                did_you_mean(a, ["kd_module"])
            ),
        ));
    }
    Ok(())
}

/// Accuracy and top-5 at the best epoch of a run: from this call's history, or from the run
/// folder's `metrics.jsonl` when the best epoch came before a resume.
fn best_row(out: &kd_trainer::TrainOutcome<impl Sized>) -> (f64, f64) {
    let pick = |valid: &[(String, f64)]| {
        let get = |k: &str| valid.iter().find(|(n, _)| n == k).map_or(0.0, |(_, v)| *v);
        (get("Accuracy"), get("Top5"))
    };
    let Some((_, epoch)) = out.best else {
        return out.history.last().map_or((0.0, 0.0), |r| pick(&r.valid));
    };
    if let Some(r) = out.history.iter().find(|r| r.epoch == epoch) {
        return pick(&r.valid);
    }
    let log = std::fs::read_to_string(out.run_dir.join("metrics.jsonl")).unwrap_or_default();
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["epoch"].as_u64() == Some(epoch as u64))
        .map(|v| {
            let f = |k: &str| v["valid"][k].as_f64().unwrap_or(0.0);
            (f("Accuracy"), f("Top5"))
        })
        .unwrap_or((0.0, 0.0))
}

/// Validates a network once and returns (accuracy, top5).
fn evaluate(net: &Network, valid: &DataLoader, device: &Device) -> Result<(f64, f64), RecipeError> {
    let eval = net.valid();
    let mut acc = kd_trainer::MetricAccumulator::new(vec![]);
    for batch in valid.iter(0, device) {
        let batch = batch?;
        acc.update(&[], eval.forward(batch.images), &batch.targets);
    }
    let m = acc.compute();
    Ok((m[0].1, m[1].1))
}

/// Whether a teacher run folder holds a finished run.
fn finished(dir: &Path, max_epochs: usize) -> bool {
    Checkpoint::load(&dir.join(LATEST_NAME)).is_ok_and(|c| c.meta.epoch + 1 >= max_epochs)
}

/// Checks everything a run needs before any training starts: top-level keys, training
/// parameters, losses, both networks and their weights, adapters, datasets and transforms.
pub fn check_recipe(recipe: &Recipe, device: &Device) -> Result<(), RecipeError> {
    check_top_level(recipe)?;
    let th = &recipe.training_hyperparams;
    let params = training_params(th, "training_hyperparams")?;
    let kd = recipe.teacher_architecture.is_some();
    if kd {
        params
            .teacher_precision_on(device)
            .map_err(|e| train_param_error(e, "training_hyperparams"))?;
    }
    check_loss_name(th, "training_hyperparams", kd)?;
    let (train, valid) = build_loaders(recipe)?;
    if kd && th.teacher_cache {
        let teacher_taps = if is_distillation_loss(&th.loss) {
            distillation_config(th, "training_hyperparams", train.len())?.teacher_taps()
        } else {
            Vec::new()
        };
        params
            .teacher_cache_for(&train, recipe.run_teacher_on_eval, &teacher_taps)
            .map_err(|e| train_param_error(e, "training_hyperparams"))?;
    }
    let student = build_network(
        &recipe.student_architecture,
        &recipe.student_arch_params,
        &recipe.student_checkpoint_params,
        "student",
        device,
    )?;
    for (loader, key) in [(&train, "train_dataloader"), (&valid, "val_dataloader")] {
        let [c, _, _] = loader.output_shape();
        if c != student.in_channels() {
            return Err(RecipeError::invalid(
                key,
                format!(
                    "the data has {c} channel(s) but the student expects {}: set `in_channels: {c}` in `student_arch_params`",
                    student.in_channels()
                ),
            ));
        }
    }
    if let Some(arch) = &recipe.teacher_architecture {
        let tcp = &recipe.teacher_checkpoint_params;
        // Shapes first, on a network without weights; the weights load below.
        let teacher = registry::get(arch, &recipe.teacher_arch_params, "teacher", device)?;
        let c = train.output_shape()[0];
        if teacher.in_channels() != c {
            return Err(RecipeError::invalid(
                "teacher_arch_params",
                format!(
                    "the data has {c} channel(s) but the teacher expects {}: set `in_channels: {c}` in `teacher_arch_params`",
                    teacher.in_channels()
                ),
            ));
        }
        if teacher.num_classes() != student.num_classes() {
            return Err(kd_core::KdError::ClassCountMismatch {
                student: student.num_classes(),
                teacher: teacher.num_classes(),
            }
            .into());
        }
        if tcp.checkpoint_path.is_some() || tcp.pretrained_weights.is_some() {
            build_network(arch, &recipe.teacher_arch_params, tcp, "teacher", device)?;
        } else if let Some(tth) = &recipe.teacher_training_hyperparams {
            training_params(tth, "teacher_training_hyperparams")?;
            check_loss_name(tth, "teacher_training_hyperparams", false)?;
            if let Some(tdp) = &recipe.teacher_dataset_params {
                build_loaders_from(recipe, tdp, tth.seed)?;
            }
        } else {
            return Err(no_teacher_weights());
        }
        adapter(&recipe.arch_params.teacher_input_adapter, device)?;
        adapter(&recipe.arch_params.student_input_adapter, device)?;
        if is_distillation_loss(&th.loss) {
            let config = distillation_config(th, "training_hyperparams", train.len())?;
            build_distillation_loss(
                &config,
                &student,
                &teacher,
                train.output_shape(),
                "training_hyperparams",
                device,
            )?;
        } else {
            kd_loss_config(th)?.init()?;
        }
    }
    Ok(())
}

fn no_teacher_weights() -> RecipeError {
    RecipeError::invalid(
        "teacher_checkpoint_params",
        "the teacher has no weights: set `teacher_checkpoint_params.checkpoint_path`, or add `teacher_training_hyperparams` to train one first",
    )
}

/// Runs a recipe on `device`: obtains the teacher, distils the student, optionally trains the
/// scratch baseline, and reports.
pub fn run_recipe(recipe: &Recipe, device: &Device) -> Result<RunReport, RecipeError> {
    check_recipe(recipe, device)?;
    let device = device.clone().without_autodiff();
    let th = &recipe.training_hyperparams;
    let run_dir = recipe.ckpt_root_dir.join(&recipe.experiment_name);
    let params = training_params(th, "training_hyperparams")?;
    let (train, valid) = build_loaders(recipe)?;
    let mut rows = Vec::new();

    let Some(teacher_arch) = &recipe.teacher_architecture else {
        // Plain training of the student.
        check_loss_name(th, "training_hyperparams", false)?;
        let ce = CrossEntropyLossConfig::new()
            .with_label_smoothing(th.criterion_params.label_smoothing.unwrap_or(0.0))
            .init()?;
        device.seed(th.seed);
        let net = build_network(
            &recipe.student_architecture,
            &recipe.student_arch_params,
            &recipe.student_checkpoint_params,
            "student",
            &device,
        )?;
        let n = net.num_params();
        let start = Instant::now();
        let out = Trainer::new(&run_dir, &device).train(net, &params, &ce, &train, &valid)?;
        let (accuracy, top5) = best_row(&out);
        rows.push(ReportRow {
            role: "student".into(),
            arch: recipe.student_architecture.clone(),
            params: n,
            accuracy,
            top5,
            seconds: start.elapsed().as_secs_f64(),
            checkpoint: out.best_checkpoint(),
            origin: "trained".into(),
        });
        return Ok(RunReport { run_dir, rows });
    };

    check_loss_name(th, "training_hyperparams", true)?;
    let distill_config = if is_distillation_loss(&th.loss) {
        Some(distillation_config(
            th,
            "training_hyperparams",
            train.len(),
        )?)
    } else {
        None
    };
    let task = match &distill_config {
        Some(config) => config
            .terms
            .iter()
            .find_map(|t| match &t.method {
                kd_losses::MethodConfig::CrossEntropy(c) => Some(*c),
                _ => None,
            })
            .unwrap_or_default(),
        None => kd_loss_config(th)?.task_loss,
    };

    // The teacher: given weights, or trained once and kept in the run folder.
    let teacher_dir = run_dir.join("teacher");
    let tcp = &recipe.teacher_checkpoint_params;
    let has_weights = tcp.checkpoint_path.is_some() || tcp.pretrained_weights.is_some();
    device.seed(th.seed);
    let teacher = build_network(
        teacher_arch,
        &recipe.teacher_arch_params,
        tcp,
        "teacher",
        &device,
    )?;
    let teacher_params = teacher.num_params();
    let (teacher, teacher_row_origin, teacher_seconds, teacher_ckpt) = if has_weights {
        let path = checkpoint_file(tcp, "teacher_checkpoint_params")?.unwrap_or_default();
        (teacher, "loaded", 0.0, path)
    } else if let Some(tth) = &recipe.teacher_training_hyperparams {
        check_loss_name(tth, "teacher_training_hyperparams", false)?;
        let best = teacher_dir.join(kd_trainer::BEST_NAME);
        if best.is_file() && finished(&teacher_dir, tth.max_epochs) {
            eprintln!("teacher: reusing {}", best.display());
            (load_student(teacher, &best)?, "loaded", 0.0, best)
        } else {
            let mut tparams = training_params(tth, "teacher_training_hyperparams")?;
            // An interrupted teacher run continues where it stopped.
            tparams.resume = teacher_dir.join(LATEST_NAME).is_file();
            let ce = CrossEntropyLossConfig::new()
                .with_label_smoothing(tth.criterion_params.label_smoothing.unwrap_or(0.0))
                .init()?;
            eprintln!(
                "teacher: training {teacher_arch} into {}",
                teacher_dir.display()
            );
            let start = Instant::now();
            let out = match &recipe.teacher_dataset_params {
                Some(tdp) => {
                    let (t_train, t_valid) = build_loaders_from(recipe, tdp, tth.seed)?;
                    Trainer::new(&teacher_dir, &device)
                        .train(teacher, &tparams, &ce, &t_train, &t_valid)?
                }
                None => Trainer::new(&teacher_dir, &device)
                    .train(teacher, &tparams, &ce, &train, &valid)?,
            };
            let best_path = out.best_checkpoint();
            // Distil from the best teacher, not the last one.
            device.seed(th.seed);
            let fresh = registry::get(
                teacher_arch,
                &recipe.teacher_arch_params,
                "teacher",
                &device,
            )?;
            (
                load_student(fresh, &best_path)?,
                "trained",
                start.elapsed().as_secs_f64(),
                best_path,
            )
        }
    } else {
        return Err(no_teacher_weights());
    };
    let (t_acc, t_top5) = evaluate(&teacher, &valid, &device)?;
    rows.push(ReportRow {
        role: "teacher".into(),
        arch: teacher_arch.clone(),
        params: teacher_params,
        accuracy: t_acc,
        top5: t_top5,
        seconds: teacher_seconds,
        checkpoint: teacher_ckpt,
        origin: teacher_row_origin.into(),
    });

    // The student, initialised once so the KD and scratch runs start from the same weights.
    device.seed(th.seed.wrapping_add(1));
    let student = build_network(
        &recipe.student_architecture,
        &recipe.student_arch_params,
        &recipe.student_checkpoint_params,
        "student",
        &device,
    )?;
    let student_params = student.num_params();
    let init_record = student.checkpoint_record();

    let arch_params = KdArchParams {
        teacher_input_adapter: adapter(&recipe.arch_params.teacher_input_adapter, &device)?,
        student_input_adapter: adapter(&recipe.arch_params.student_input_adapter, &device)?,
    };
    let teacher_precision = params
        .teacher_precision_on(&device)
        .map_err(|e| train_param_error(e, "training_hyperparams"))?;
    if teacher_precision != Precision::F32 {
        eprintln!(
            "teacher precision: {teacher_precision} (its logits and taps are cast back to f32); the student trains in f32"
        );
    }
    let start = Instant::now();
    let trainer = KdTrainer::new(&run_dir, &device);
    let ((kd_acc, kd_top5), kd_checkpoint) = match &distill_config {
        Some(config) => {
            let loss = build_distillation_loss(
                config,
                &student,
                &teacher,
                train.output_shape(),
                "training_hyperparams",
                &device,
            )?;
            eprintln!(
                "distillation loss: {}; extra parameters: {}",
                loss.component_names()[1..].join(" + "),
                loss.clone().train().num_trainable_params()
            );
            let out = trainer.train_distill(
                student,
                teacher,
                arch_params,
                recipe.run_teacher_on_eval,
                &params,
                loss,
                &train,
                &valid,
            )?;
            report_cache("teacher cache", out.model.kd.teacher_cache());
            report_cache("validation cache", out.model.kd.validation_cache());
            (best_row(&out), out.best_checkpoint())
        }
        None => {
            let kd_loss = kd_loss_config(th)?.init()?;
            let out = trainer.train(
                student,
                teacher,
                arch_params,
                recipe.run_teacher_on_eval,
                &params,
                &kd_loss,
                &train,
                &valid,
            )?;
            report_cache("teacher cache", out.model.teacher_cache());
            report_cache("validation cache", out.model.validation_cache());
            (best_row(&out), out.best_checkpoint())
        }
    };
    let kd_seconds = start.elapsed().as_secs_f64();
    let kd_row = ReportRow {
        role: "student (KD)".into(),
        arch: recipe.student_architecture.clone(),
        params: student_params,
        accuracy: kd_acc,
        top5: kd_top5,
        seconds: kd_seconds,
        checkpoint: kd_checkpoint,
        origin: "trained".into(),
    };

    if recipe.scratch_baseline {
        let scratch_dir = run_dir.join("scratch");
        let fresh = registry::get(
            &recipe.student_architecture,
            &recipe.student_arch_params,
            "student",
            &device,
        )?;
        let fresh = fresh
            .load_checkpoint_record(init_record)
            .map_err(|e| RecipeError::invalid("student_architecture", e.to_string()))?;
        let ce: CrossEntropyLoss = task.init()?;
        let start = Instant::now();
        let out = Trainer::new(&scratch_dir, &device).train(fresh, &params, &ce, &train, &valid)?;
        let (acc, top5) = best_row(&out);
        rows.push(ReportRow {
            role: "student (scratch)".into(),
            arch: recipe.student_architecture.clone(),
            params: student_params,
            accuracy: acc,
            top5,
            seconds: start.elapsed().as_secs_f64(),
            checkpoint: out.best_checkpoint(),
            origin: "trained".into(),
        });
    }
    rows.push(kd_row);
    Ok(RunReport { run_dir, rows })
}
