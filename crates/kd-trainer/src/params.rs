use crate::{LrSchedule, OptimizerConfig, OptimizerKind};

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
        }
    }
}
