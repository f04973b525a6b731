use burn::prelude::Device;
use kd_core::Precision;

use crate::{EmaParams, LrSchedule, METRIC_NAMES, OptimizerConfig, OptimizerKind, TrainError};

/// The training hyper-parameters the loop uses (SuperGradients' `training_hyperparams`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingParams {
    /// `max_epochs`.
    pub max_epochs: usize,
    /// `initial_lr`, `lr_mode`, warmup and cooldown.
    pub schedule: LrSchedule,
    /// `optimizer` and `optimizer_params`.
    pub optimizer: OptimizerConfig,
    /// `metric_to_watch`: a metric (`Accuracy`, `Top5`) or a loss component (`Loss`,
    /// `KdLogitsLoss/Distillation Loss`), computed on the validation set.
    pub metric_to_watch: String,
    /// `greater_metric_to_watch_is_better`.
    pub greater_metric_to_watch_is_better: bool,
    /// `max_train_batches`: a cap on training batches per epoch.
    pub max_train_batches: Option<usize>,
    /// `max_valid_batches`: a cap on validation batches.
    pub max_valid_batches: Option<usize>,
    /// `seed`: drives data order and augmentation.
    pub seed: u64,
    /// `resume`: continue from the run folder's `ckpt_latest.kd`.
    pub resume: bool,
    /// `resume_path`: continue from this checkpoint instead.
    pub resume_path: Option<std::path::PathBuf>,
    /// `silent_mode`: no progress bar or epoch lines.
    pub silent_mode: bool,
    /// Stop after this many epochs in this call, leaving a resumable `ckpt_latest.kd`, as an
    /// interruption would (a time box; the schedule still spans `max_epochs`).
    pub stop_after_epochs: Option<usize>,
    /// `ema`: keep an exponential moving average of the student ([`crate::ModelEma`]) and
    /// validate and save it (default false).
    pub ema: bool,
    /// `ema_params`: its decay schedule (default `{decay 0.9999, decay_type exp, beta 15}`).
    pub ema_params: EmaParams,
    /// `zero_weight_decay_on_bias_and_bn`: no weight decay on biases and normalisation layers
    /// ([`crate::no_weight_decay_paths`], default false).
    pub zero_weight_decay_on_bias_and_bn: bool,
    /// `clip_grad_norm`: clip the global L2 norm of the gradients to this before each step
    /// ([`crate::clip_grad_norm`], default none).
    pub clip_grad_norm: Option<f64>,
    /// `batch_accumulate`: sum the gradients of this many batches per optimizer step
    /// (default 1).
    pub batch_accumulate: usize,
    /// `average_best_models`: keep the best snapshots by `metric_to_watch` and write their
    /// average (default true).
    pub average_best_models: bool,
    /// `run_validation_freq`: validate every this many epochs, and always after the last one
    /// (default 1).
    pub run_validation_freq: usize,
    /// `save_ckpt_epoch_list`: also keep the checkpoint of these epochs (0-based, default
    /// none).
    pub save_ckpt_epoch_list: Vec<usize>,
    /// `ckpt_every_n_steps` (kd extension): also write `ckpt_latest` every this many optimizer
    /// steps (default: only after each epoch).
    pub ckpt_every_n_steps: Option<usize>,
    /// `mixed_precision`: in a KD run, the frozen teacher computes in bf16 (f16 where the
    /// backend has no bf16) and its outputs are cast back to f32; the student, its gradients
    /// and the optimizer stay f32 (Burn 0.22 has no autocast). No effect without a teacher.
    pub mixed_precision: bool,
    /// `teacher_precision` (kd extension): the teacher's precision, overriding the choice
    /// `mixed_precision` makes (default: f32, or what `mixed_precision` picks).
    pub teacher_precision: Option<Precision>,
    /// `teacher_cache` (kd extension): compute the teacher's logits once per training sample
    /// and reuse them ([`kd_core::TeacherCache`]); needs training inputs that are the same on
    /// every visit, a teacher in eval mode and a loss that reads only the teacher's logits
    /// (default false).
    pub teacher_cache: bool,
    /// `teacher_cache_verify` (kd extension): the fraction of fully cached batches the teacher
    /// recomputes to check the cache (default 0).
    pub teacher_cache_verify: f64,
    /// `train_metrics_list`: metrics on training batches (names from [`METRIC_NAMES`]).
    pub train_metrics_list: Vec<String>,
    /// `valid_metrics_list`: metrics on validation batches (names from [`METRIC_NAMES`]).
    pub valid_metrics_list: Vec<String>,
}

impl TrainingParams {
    /// Parameters with SuperGradients' defaults for everything but the run length and lr.
    pub fn new(max_epochs: usize, schedule: LrSchedule) -> Self {
        Self {
            max_epochs,
            schedule,
            optimizer: OptimizerConfig::defaults(OptimizerKind::Sgd),
            metric_to_watch: "Accuracy".into(),
            greater_metric_to_watch_is_better: true,
            max_train_batches: None,
            max_valid_batches: None,
            seed: 42,
            resume: false,
            resume_path: None,
            silent_mode: false,
            stop_after_epochs: None,
            ema: false,
            ema_params: EmaParams::default(),
            zero_weight_decay_on_bias_and_bn: false,
            clip_grad_norm: None,
            batch_accumulate: 1,
            average_best_models: true,
            run_validation_freq: 1,
            save_ckpt_epoch_list: Vec::new(),
            ckpt_every_n_steps: None,
            mixed_precision: false,
            teacher_precision: None,
            teacher_cache: false,
            teacher_cache_verify: 0.0,
            train_metrics_list: Vec::new(),
            valid_metrics_list: Vec::new(),
        }
    }

    /// The teacher's precision on `device`: `teacher_precision` when set (checked against the
    /// backend), else with `mixed_precision` the first of bf16 and f16 the backend computes
    /// in, else f32.
    pub fn teacher_precision_on(&self, device: &Device) -> Result<Precision, TrainError> {
        if let Some(p) = self.teacher_precision {
            p.check(device)
                .map_err(|e| TrainError::param("teacher_precision", e.to_string()))?;
            return Ok(p);
        }
        if !self.mixed_precision {
            return Ok(Precision::F32);
        }
        [Precision::Bf16, Precision::F16]
            .into_iter()
            .find(|p| p.check(device).is_ok())
            .ok_or_else(|| {
                TrainError::param(
                    "mixed_precision",
                    format!("this backend ({device:?}) computes in neither bf16 nor f16: set mixed_precision to false"),
                )
            })
    }

    /// The teacher cache these parameters ask for, checked against the run: the training
    /// data, the teacher's mode, and the teacher taps the loss reads (the cache holds logits).
    pub fn teacher_cache_for(
        &self,
        train: &kd_data::DataLoader,
        run_teacher_on_eval: bool,
        teacher_taps: &[String],
    ) -> Result<Option<kd_core::TeacherCache>, TrainError> {
        if !self.teacher_cache {
            return Ok(None);
        }
        if !teacher_taps.is_empty() {
            return Err(TrainError::param(
                "teacher_cache",
                format!(
                    "the teacher cache holds logits only, and this loss reads the teacher's taps {}: use it with losses that read the teacher's logits alone, or set it to false",
                    teacher_taps.join(", ")
                ),
            ));
        }
        if !run_teacher_on_eval {
            return Err(TrainError::param(
                "teacher_cache",
                kd_core::KdError::CacheNeedsEvalTeacher.to_string(),
            ));
        }
        if let Some(why) = train.varies_between_epochs() {
            return Err(TrainError::param(
                "teacher_cache",
                format!(
                    "{why}, so the teacher's outputs change from epoch to epoch and cannot be cached: make the training transforms deterministic, or set teacher_cache to false"
                ),
            ));
        }
        self.new_cache().map(Some)
    }

    /// A validation cache when it is exact: the validation images are the same every epoch
    /// and the teacher runs in eval mode. It verifies at the `teacher_cache_verify` rate.
    pub fn validation_cache_for(
        &self,
        valid: &kd_data::DataLoader,
        run_teacher_on_eval: bool,
    ) -> Result<Option<kd_core::TeacherCache>, TrainError> {
        if !run_teacher_on_eval || valid.varies_between_epochs().is_some() {
            return Ok(None);
        }
        self.new_cache().map(Some)
    }

    /// An empty cache verifying at the `teacher_cache_verify` rate.
    fn new_cache(&self) -> Result<kd_core::TeacherCache, TrainError> {
        kd_core::TeacherCache::new(self.teacher_cache_verify)
            .map_err(|e| TrainError::param("teacher_cache_verify", e.to_string()))
    }

    /// Checks every value against the run, naming the offending key.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.max_epochs == 0 {
            return Err(TrainError::param("max_epochs", "must be at least 1"));
        }
        self.schedule.validate(self.max_epochs)?;
        self.optimizer.validate()?;
        if self.ema {
            self.ema_params.validate()?;
        }
        if let Some(max) = self.clip_grad_norm
            && !(max.is_finite() && max > 0.0)
        {
            return Err(TrainError::param(
                "clip_grad_norm",
                format!("{max} is not a valid norm: use a finite value > 0, or leave it unset"),
            ));
        }
        for (key, value) in [
            ("batch_accumulate", Some(self.batch_accumulate)),
            ("run_validation_freq", Some(self.run_validation_freq)),
            ("ckpt_every_n_steps", self.ckpt_every_n_steps),
        ] {
            if value == Some(0) {
                return Err(TrainError::param(key, "must be at least 1"));
            }
        }
        if let Some(&e) = self
            .save_ckpt_epoch_list
            .iter()
            .find(|&&e| e >= self.max_epochs)
        {
            return Err(TrainError::param(
                "save_ckpt_epoch_list",
                format!(
                    "epoch {e} never runs: epochs are 0-based and max_epochs is {}",
                    self.max_epochs
                ),
            ));
        }
        for (key, list) in [
            ("train_metrics_list", &self.train_metrics_list),
            ("valid_metrics_list", &self.valid_metrics_list),
        ] {
            if let Some(m) = list.iter().find(|m| !METRIC_NAMES.contains(&m.as_str())) {
                return Err(TrainError::param(
                    key,
                    format!(
                        "unknown metric `{m}`{}; kd computes: {}",
                        kd_core::did_you_mean(m, METRIC_NAMES),
                        METRIC_NAMES.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmaDecayType;

    #[test]
    fn supergradients_defaults() {
        let p = TrainingParams::new(10, LrSchedule::cosine(0.1));
        assert!(!p.ema && !p.zero_weight_decay_on_bias_and_bn && !p.mixed_precision);
        assert_eq!(p.ema_params.decay, 0.9999);
        assert_eq!(p.ema_params.decay_type, EmaDecayType::Exp);
        assert_eq!(p.ema_params.beta, 15.0);
        assert_eq!((p.batch_accumulate, p.run_validation_freq), (1, 1));
        assert!(p.average_best_models);
        assert_eq!(p.clip_grad_norm, None);
        p.validate().unwrap();
    }

    #[test]
    fn validation_names_the_key() {
        let base = TrainingParams::new(4, LrSchedule::cosine(0.1));
        let cases: Vec<(&str, TrainingParams)> = vec![
            (
                "clip_grad_norm",
                TrainingParams {
                    clip_grad_norm: Some(0.0),
                    ..base.clone()
                },
            ),
            (
                "batch_accumulate",
                TrainingParams {
                    batch_accumulate: 0,
                    ..base.clone()
                },
            ),
            (
                "run_validation_freq",
                TrainingParams {
                    run_validation_freq: 0,
                    ..base.clone()
                },
            ),
            (
                "ckpt_every_n_steps",
                TrainingParams {
                    ckpt_every_n_steps: Some(0),
                    ..base.clone()
                },
            ),
            (
                "save_ckpt_epoch_list",
                TrainingParams {
                    save_ckpt_epoch_list: vec![1, 4],
                    ..base.clone()
                },
            ),
            (
                "valid_metrics_list",
                TrainingParams {
                    valid_metrics_list: vec!["Acuracy".into()],
                    ..base.clone()
                },
            ),
            (
                "ema_params.decay",
                TrainingParams {
                    ema: true,
                    ema_params: EmaParams {
                        decay: -1.0,
                        ..EmaParams::default()
                    },
                    ..base.clone()
                },
            ),
            (
                "max_epochs",
                TrainingParams {
                    max_epochs: 0,
                    ..base.clone()
                },
            ),
        ];
        for (key, params) in cases {
            let err = params.validate().unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("training_hyperparams.{key}:")),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn mixed_precision_picks_a_low_precision_teacher() {
        let device = Device::flex();
        let mut p = TrainingParams::new(1, LrSchedule::cosine(0.1));
        assert_eq!(p.teacher_precision_on(&device).unwrap(), Precision::F32);
        p.mixed_precision = true;
        p.validate().unwrap();
        assert_eq!(p.teacher_precision_on(&device).unwrap(), Precision::Bf16);
        p.teacher_precision = Some(Precision::F16);
        assert_eq!(p.teacher_precision_on(&device).unwrap(), Precision::F16);
    }
}
