//! The one training loop that [`crate::Trainer`] and [`crate::KdTrainer`] share.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Bytes;
use kd_core::{Criterion, LossOutput};
use kd_data::{Batch, DataLoader};

use crate::checkpoint::{
    BEST_NAME, Checkpoint, CheckpointMeta, LATEST_NAME, load_module_bytes, module_bytes,
    student_bytes, write_atomic,
};
use crate::metrics::{METRIC_NAMES, MetricAccumulator};
use crate::progress::Progress;
use crate::{
    ModelAveraging, ModelEma, STEP_NAME, StepContext, TrainError, TrainModule, TrainOptimizer,
    TrainingParams, accumulate, clip_grad_norm,
};

/// One epoch's results.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// Epoch (0-based).
    pub epoch: usize,
    /// The learning rate of the epoch's last step.
    pub lr: f64,
    /// Training loss components and accuracies (means over the epoch).
    pub train: Vec<(String, f64)>,
    /// Validation loss components and accuracies.
    pub valid: Vec<(String, f64)>,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
}

impl EpochRecord {
    /// A validation value by name.
    pub fn valid_metric(&self, name: &str) -> Option<f64> {
        self.valid.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

/// What a finished run returns.
#[derive(Debug)]
pub struct TrainOutcome<M> {
    /// The trained module (the KD module for KD runs), as it is after the last epoch.
    pub model: M,
    /// One record per epoch run in this call (resumed epochs excluded).
    pub history: Vec<EpochRecord>,
    /// The watched metric's name as logged.
    pub metric_to_watch: String,
    /// Its best validation value and epoch.
    pub best: Option<(f64, usize)>,
    /// The run folder (`ckpt_latest.kd`, `ckpt_best.bpk`, `metrics.jsonl`).
    pub run_dir: PathBuf,
    /// Seconds spent in this call.
    pub seconds: f64,
}

impl<M> TrainOutcome<M> {
    /// Path of the best student checkpoint.
    pub fn best_checkpoint(&self) -> PathBuf {
        self.run_dir.join(BEST_NAME)
    }
}

/// Resolves `metric_to_watch` against the logged names: exact, or a bare loss component
/// (`Loss` → `KdLogitsLoss/Loss`), case-insensitively; otherwise an error with a suggestion.
pub(crate) fn resolve_metric(wanted: &str, names: &[String]) -> Result<String, TrainError> {
    if let Some(n) = names.iter().find(|n| n.as_str() == wanted) {
        return Ok(n.clone());
    }
    let lower = wanted.to_ascii_lowercase();
    if let Some(n) = names.iter().find(|n| {
        n.to_ascii_lowercase() == lower
            || n.rsplit('/').next().map(str::to_ascii_lowercase) == Some(lower.clone())
    }) {
        return Ok(n.clone());
    }
    let closest = kd_core::did_you_mean(wanted, names.iter().map(String::as_str));
    Err(TrainError::param(
        "metric_to_watch",
        format!(
            "unknown metric `{wanted}`{closest} (known: {})",
            names.join(", ")
        ),
    ))
}

/// The loss components on the host; an unreadable tensor reads as NaN, which stops the run.
fn components_to_vec(components: Tensor<1>, n: usize) -> Vec<f32> {
    components
        .into_data()
        .try_into_vec_as::<f32>()
        .ok()
        .filter(|v| v.len() == n)
        .unwrap_or_else(|| vec![f32::NAN; n])
}

fn fmt_metrics(values: &[(String, f64)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The state to resume: `ckpt_latest.kd` or `ckpt_step.kd`, whichever holds more optimizer
/// steps, loaded once; `None` when neither can be read.
fn newest_state(latest: &Path, step: &Path) -> Option<(PathBuf, Checkpoint)> {
    let load = |p: &Path| Checkpoint::load(p).ok().map(|c| (p.to_path_buf(), c));
    match (load(latest), load(step)) {
        (Some(a), Some(b)) if b.1.meta.global_step > a.1.meta.global_step => Some(b),
        (a, b) => a.or(b),
    }
}

/// The header of a resumable state written after `epoch` (complete).
fn state_meta(
    kind: &str,
    params: &TrainingParams,
    watched: &str,
    best: Option<(f64, usize)>,
    epoch: usize,
    global_step: usize,
) -> CheckpointMeta {
    CheckpointMeta {
        kind: kind.to_string(),
        epoch,
        global_step,
        max_epochs: params.max_epochs,
        metric_to_watch: watched.to_string(),
        best_metric: best.map(|b| b.0),
        best_epoch: best.map(|b| b.1),
        seed: params.seed,
        step_in_epoch: None,
    }
}

/// Writes a resumable state (model, optimizer, EMA) atomically.
fn save_state<M: TrainModule>(
    path: &Path,
    meta: CheckpointMeta,
    model: &M,
    optim: &TrainOptimizer,
    ema: Option<&ModelEma<M>>,
) -> Result<(), TrainError> {
    let optim_bytes = optim.into_bytes().map_err(|e| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: format!("cannot serialise the optimizer: {e}"),
    })?;
    let mut blobs = vec![
        ("model".into(), module_bytes(model, path)?),
        ("optimizer".into(), optim_bytes.to_vec()),
    ];
    if let Some(e) = ema {
        blobs.push(("ema".into(), e.to_bytes(path)?));
    }
    Checkpoint { meta, blobs }.save(path)
}

/// The RNG seed of training step `step` (SplitMix64 of the run seed and the step).
fn step_seed(seed: u64, step: usize) -> u64 {
    let mut z = seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The [`StepContext`] of a batch.
fn step_context(batch: &Batch, epoch: usize, training: bool, device: &Device) -> StepContext {
    let indices: Vec<i64> = batch.indices.iter().map(|&i| i as i64).collect();
    StepContext {
        targets: batch.targets.clone(),
        indices: Tensor::from_data(TensorData::new(indices, [batch.indices.len()]), device),
        epoch,
        training,
    }
}

/// Runs training: epochs of optimizer steps, validation after each epoch, checkpoints.
///
/// `model` must already be trainable (its trainable tensors on `device.autodiff()`); the
/// teacher inside a KD module stays where the KD module put it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit<M, L>(
    kind: &str,
    run_dir: &Path,
    device: &Device,
    mut model: M,
    params: &TrainingParams,
    criterion: &L,
    train: &DataLoader,
    valid: &DataLoader,
) -> Result<TrainOutcome<M>, TrainError>
where
    M: TrainModule,
    L: Criterion<M::Output>,
{
    let started = Instant::now();
    if params.max_epochs == 0 {
        return Err(TrainError::param("max_epochs", "must be at least 1"));
    }
    params.validate()?;
    let loss_names: Vec<String> = criterion
        .component_names()
        .iter()
        .map(|c| format!("{}/{c}", criterion.name()))
        .collect();
    let mut all_names = loss_names.clone();
    all_names.extend(METRIC_NAMES.iter().map(|s| s.to_string()));
    let watched = resolve_metric(&params.metric_to_watch, &all_names)?;

    let train_device = device.clone().autodiff();
    let plain_device = device.clone();
    let latest_path = run_dir.join(LATEST_NAME);
    let best_path = run_dir.join(BEST_NAME);
    let log_path = run_dir.join("metrics.jsonl");
    std::fs::create_dir_all(run_dir).map_err(|source| TrainError::Io {
        action: "cannot create run folder",
        path: run_dir.to_path_buf(),
        source,
    })?;

    let step_path = run_dir.join(STEP_NAME);
    let mut optim = params
        .optimizer
        .build_for(&model, params.zero_weight_decay_on_bias_and_bn);
    let mut start_epoch = 0;
    let mut skip_steps = 0;
    let mut global_step = 0;
    let mut best: Option<(f64, usize)> = None;
    let mut ema_state: Option<(Vec<u8>, PathBuf)> = None;
    let resuming = params.resume || params.resume_path.is_some();
    if resuming {
        let no_checkpoint = |path: PathBuf| {
            TrainError::Checkpoint {
            path,
            message: "resume was asked but there is no checkpoint here: run once without `resume`, or set `resume_path`".into(),
        }
        };
        let (path, ckpt) = match &params.resume_path {
            Some(path) if !path.exists() => return Err(no_checkpoint(path.clone())),
            Some(path) => (path.clone(), Checkpoint::load(path)?),
            None => match newest_state(&latest_path, &step_path) {
                Some(found) => found,
                // Neither loads: report the missing one, or the reason ckpt_latest is unreadable.
                None if latest_path.exists() => {
                    (latest_path.clone(), Checkpoint::load(&latest_path)?)
                }
                None => return Err(no_checkpoint(latest_path.clone())),
            },
        };
        if ckpt.meta.kind != kind {
            return Err(TrainError::Checkpoint {
                path,
                message: format!(
                    "holds a `{}` run but this is a `{kind}` run: resume with the same kind of training",
                    ckpt.meta.kind
                ),
            });
        }
        model = load_module_bytes(model, ckpt.blob("model", &path)?, &path)?;
        let opt_bytes = Bytes::from_bytes_vec(ckpt.blob("optimizer", &path)?.to_vec());
        optim = optim.from_bytes(opt_bytes).map_err(|e| TrainError::Checkpoint {
            path: path.clone(),
            message: format!("unreadable optimizer state ({e}): use the same optimizer as the run that wrote it"),
        })?;
        match ckpt.meta.step_in_epoch {
            Some(done) => {
                start_epoch = ckpt.meta.epoch;
                skip_steps = done;
            }
            None => start_epoch = ckpt.meta.epoch + 1,
        }
        global_step = ckpt.meta.global_step;
        if let Some((_, bytes)) = ckpt.blobs.iter().find(|(name, _)| name == "ema") {
            ema_state = Some((bytes.clone(), path.clone()));
        }
        best = ckpt.meta.best_metric.zip(ckpt.meta.best_epoch);
        if !params.silent_mode {
            eprintln!(
                "resuming from {} at epoch {}/{}",
                path.display(),
                start_epoch + 1,
                params.max_epochs
            );
        }
    } else {
        // A fresh run starts a fresh log.
        let _ = std::fs::remove_file(&log_path);
    }

    // The EMA averages the student alone; it is created after a resume so ids match.
    let mut ema = match (params.ema, ema_state) {
        (false, _) => None,
        (true, state) => {
            let fresh = ModelEma::with_part(&model, model.student_module(), params.ema_params)?;
            Some(match state {
                Some((bytes, path)) => fresh.load_bytes(&bytes, &path)?,
                None => fresh,
            })
        }
    };
    let mut averaging = match (params.average_best_models, resuming) {
        (false, _) => None,
        (true, true) => Some(ModelAveraging::open(
            run_dir,
            params.greater_metric_to_watch_is_better,
        )?),
        (true, false) => Some(ModelAveraging::fresh(
            run_dir,
            params.greater_metric_to_watch_is_better,
        )),
    };
    let accumulate_every = params.batch_accumulate.max(1);
    let iters_per_epoch = params
        .max_train_batches
        .map_or(train.num_batches(), |m| m.min(train.num_batches()));
    let total_steps = iters_per_epoch * params.max_epochs;
    let mut history = Vec::new();
    let end_epoch = params.stop_after_epochs.map_or(params.max_epochs, |n| {
        (start_epoch + n).min(params.max_epochs)
    });
    for epoch in start_epoch..end_epoch {
        let epoch_start = Instant::now();
        let mut acc = MetricAccumulator::new(loss_names.clone());
        let mut bar = Progress::new(
            format!("epoch {}/{}", epoch + 1, params.max_epochs),
            iters_per_epoch,
            params.silent_mode,
        );
        let mut lr = params.schedule.initial_lr;
        let skip = if epoch == start_epoch { skip_steps } else { 0 };
        let mut pending: Option<GradientsParams> = None;
        for (step, batch) in train
            .iter(epoch, &train_device)
            .take(iters_per_epoch)
            .enumerate()
            .skip(skip)
        {
            let batch = batch?;
            lr = params.schedule.lr_accumulated(
                epoch,
                step,
                iters_per_epoch,
                params.max_epochs,
                accumulate_every,
            );
            // Random draws inside the step (dropout, drop path, CRD's negatives) come from a
            // stream fixed by the seed and the batch, so a resumed run draws what an
            // uninterrupted one would have.
            let batch_index = epoch * iters_per_epoch + step;
            train_device.seed(step_seed(params.seed, batch_index));
            let ctx = step_context(&batch, epoch, true, &train_device);
            let output = model.forward_train(batch.images, &ctx);
            let LossOutput { loss, components } = criterion.forward(&output, &batch.targets);
            let values = components_to_vec(components, loss_names.len());
            if values.iter().any(|v| !v.is_finite()) {
                bar.finish();
                let components = loss_names
                    .iter()
                    .zip(&values)
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let last_good = if latest_path.exists() {
                    latest_path.display().to_string()
                } else {
                    "no checkpoint (the first epoch did not finish)".to_string()
                };
                return Err(TrainError::NonFiniteLoss {
                    epoch,
                    step,
                    components,
                    last_good,
                });
            }
            acc.update(&values, M::metric_logits(&output).detach(), &batch.targets);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            pending = Some(match pending.take() {
                Some(sum) => accumulate(sum, grads, &model),
                None => grads,
            });
            // Gradients of `batch_accumulate` batches make one step; an epoch's last batches
            // step even when fewer, so no gradient crosses an epoch boundary.
            let last = step + 1 == iters_per_epoch;
            if (batch_index + 1).is_multiple_of(accumulate_every) || last {
                let mut grads = pending.take().unwrap_or_default();
                if let Some(max_norm) = params.clip_grad_norm {
                    grads = clip_grad_norm(grads, &model, max_norm)?.0;
                }
                model = optim.step(lr, model, grads);
                global_step += 1;
                if let Some(e) = &mut ema {
                    e.update(&model, batch_index + 1, total_steps);
                }
                if let Some(n) = params.ckpt_every_n_steps
                    && global_step.is_multiple_of(n)
                    && !last
                {
                    let meta = state_meta(kind, params, &watched, best, epoch, global_step)
                        .at_step(step + 1);
                    save_state(&step_path, meta, &model, &optim, ema.as_ref())?;
                }
            }
            bar.tick(step + 1, acc.samples(), values[0]);
        }
        bar.finish();
        let train_metrics = acc.compute();
        let train_samples = acc.samples();
        let train_seconds = epoch_start.elapsed().as_secs_f64();

        // Validation on the plain device, in eval mode, of the EMA student when EMA is on;
        // every `run_validation_freq` epochs and after the last.
        let validate_now = (epoch + 1).is_multiple_of(params.run_validation_freq.max(1))
            || epoch + 1 == params.max_epochs;
        let eval = match &ema {
            Some(e) => e.module().clone(),
            None => model.valid(),
        };
        let mut vacc = MetricAccumulator::new(loss_names.clone());
        let max_valid = if validate_now {
            params.max_valid_batches.unwrap_or(usize::MAX)
        } else {
            0
        };
        for batch in valid.iter(0, &plain_device).take(max_valid) {
            let batch = batch?;
            let ctx = step_context(&batch, epoch, false, &plain_device);
            let output = eval.forward_train(batch.images, &ctx);
            let values = components_to_vec(
                criterion.forward(&output, &batch.targets).components,
                loss_names.len(),
            );
            vacc.update(&values, M::metric_logits(&output), &batch.targets);
        }
        let valid_metrics = if validate_now {
            vacc.compute()
        } else {
            Vec::new()
        };
        let record = EpochRecord {
            epoch,
            lr,
            train: train_metrics,
            valid: valid_metrics,
            seconds: epoch_start.elapsed().as_secs_f64(),
        };

        let value = record.valid_metric(&watched).unwrap_or(f64::NAN);
        let improved = value.is_finite()
            && best.is_none_or(|(b, _)| {
                if params.greater_metric_to_watch_is_better {
                    value > b
                } else {
                    value < b
                }
            });
        if improved {
            best = Some((value, epoch));
            write_atomic(
                &best_path,
                &student_bytes(eval.student_module(), &best_path)?,
            )?;
        }
        if let Some(avg) = &mut averaging {
            avg.offer(epoch, value, eval.student_module())?;
        }
        let meta = state_meta(kind, params, &watched, best, epoch, global_step);
        save_state(&latest_path, meta, &model, &optim, ema.as_ref())?;
        if params.save_ckpt_epoch_list.contains(&epoch) {
            let kept = run_dir.join(format!("ckpt_epoch_{epoch}.kd"));
            std::fs::copy(&latest_path, &kept).map_err(|source| TrainError::Io {
                action: "cannot copy the checkpoint to",
                path: kept,
                source,
            })?;
        }
        append_log(&log_path, &record)?;
        crate::run_log::refresh_run_files(run_dir)?;
        if !params.silent_mode {
            eprintln!(
                "epoch {}/{} lr {:.5} {:.1}s ({:.0} img/s) | train: {} | valid: {}{}",
                epoch + 1,
                params.max_epochs,
                lr,
                record.seconds,
                train_samples as f64 / train_seconds.max(1e-9),
                fmt_metrics(&record.train),
                fmt_metrics(&record.valid),
                if improved { " *" } else { "" }
            );
        }
        history.push(record);
    }
    Ok(TrainOutcome {
        model,
        history,
        metric_to_watch: watched,
        best,
        run_dir: run_dir.to_path_buf(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn append_log(path: &Path, record: &EpochRecord) -> Result<(), TrainError> {
    let obj = |v: &[(String, f64)]| {
        serde_json::Value::Object(
            v.iter()
                .map(|(k, x)| (k.clone(), serde_json::json!(x)))
                .collect(),
        )
    };
    let line = serde_json::json!({
        "epoch": record.epoch,
        "lr": record.lr,
        "seconds": record.seconds,
        "train": obj(&record.train),
        "valid": obj(&record.valid),
    });
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| TrainError::Io {
            action: "cannot append to",
            path: path.to_path_buf(),
            source,
        })?;
    writeln!(f, "{line}").map_err(|source| TrainError::Io {
        action: "cannot append to",
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_to_watch_resolution() {
        let names: Vec<String> = [
            "KdLogitsLoss/Loss",
            "KdLogitsLoss/Task Loss",
            "Accuracy",
            "Top5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(resolve_metric("Accuracy", &names).unwrap(), "Accuracy");
        assert_eq!(
            resolve_metric("task loss", &names).unwrap(),
            "KdLogitsLoss/Task Loss"
        );
        let err = resolve_metric("Acuracy", &names).unwrap_err().to_string();
        assert!(err.contains("did you mean `Accuracy`"), "{err}");
    }
}
