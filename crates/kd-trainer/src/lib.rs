//! Training loops for knowledge distillation on Burn: [`Trainer`] (plain supervised training,
//! used for teachers) and [`KdTrainer`] (SuperGradients' `KDTrainer`), sharing one loop.
//!
//! The loop runs the student on `device.autodiff()` and the teacher on the plain device,
//! computes the criterion, steps the optimizer with the scheduled learning rate, validates on
//! the plain device after every epoch (metrics on the student's logits), and writes the run
//! folder:
//!
//! - `ckpt_latest.kd`: everything needed to resume (`resume: true`);
//! - `ckpt_best.bpk`: the student alone, for the best `metric_to_watch`;
//! - `metrics.jsonl`: one JSON line per epoch; `metrics.csv` and `metrics.png` (loss components
//!   and accuracy per epoch, train and valid) are rewritten from it after every epoch.
//!
//! A non-finite loss stops the run with an error and leaves the last good checkpoint.
//!
//! ```
//! use kd_trainer::{LrSchedule, OptimizerConfig, OptimizerKind, TrainingParams};
//!
//! let mut params = TrainingParams::new(10, LrSchedule::cosine(0.1));
//! params.optimizer = OptimizerConfig::defaults(OptimizerKind::Sgd);
//! assert_eq!(params.metric_to_watch, "Accuracy");
//! // Cosine schedule: the lr starts at initial_lr and decays per step.
//! assert!((params.schedule.lr(0, 0, 100, 10) - 0.1).abs() < 1e-12);
//! assert!(params.schedule.lr(9, 99, 100, 10) < 0.002);
//! ```

mod averaging;
mod checkpoint;
mod distill;
mod ema;
mod error;
mod fit;
mod grads;
mod lamb;
mod metrics;
mod module;
mod optim;
mod params;
mod plot;
mod progress;
mod run_log;
mod schedule;
mod trainer;

pub use averaging::{AVERAGE_NAME, AVERAGED_SNAPSHOTS, ModelAveraging};
pub use checkpoint::{
    BEST_NAME, Checkpoint, CheckpointMeta, LATEST_NAME, STEP_NAME, load_student, student_bytes,
    write_atomic,
};
pub use distill::{ComputedLoss, DistillModel, DistillOutput};
pub use ema::{EmaDecayType, EmaParams, ModelEma};
pub use error::TrainError;
pub use fit::{EpochRecord, TrainOutcome};
pub use grads::{accumulate, clip_grad_norm, global_norm, scale};
pub use lamb::Lamb;
pub use metrics::{METRIC_NAMES, MetricAccumulator};
pub use module::{StepContext, Supervised, TrainModule};
pub use optim::{
    NORM_TYPES, OptimizerConfig, OptimizerKind, TrainOptimizer, no_weight_decay_paths,
};
pub use params::TrainingParams;
pub use plot::render_png;
pub use run_log::{read_log, refresh_run_files, summary, to_csv};
pub use schedule::{LrMode, LrSchedule, WarmupMode};
pub use trainer::{KdTrainer, Trainer};
