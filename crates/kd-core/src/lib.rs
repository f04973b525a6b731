//! Knowledge-distillation core for Burn: the pieces every other kd crate agrees on.
//!
//! - [`KdOutput`]: what a KD module returns, `student_output` and `teacher_output`.
//! - [`KdModule`]: a module that runs a student and a frozen teacher on one batch.
//! - [`KdModel`]: the default KD module, built from a student, a teacher and
//!   [`KdArchParams`] (input adapters), with SuperGradients' `run_teacher_on_eval`.
//! - [`NormalizationAdapter`]: SuperGradients' adapter that re-normalises a batch for the teacher.
//! - [`ImageClassifier`]: what a student or teacher network offers, named feature taps included.
//! - [`Precision`] and [`cast_module`]: a bf16 or f16 teacher ([`KdModel::with_teacher_precision`]).
//! - [`TeacherCache`]: the teacher's logits per training sample, computed once when inputs are
//!   deterministic ([`KdModel::with_teacher_cache`]).
//! - [`Criterion`] and [`Targets`]: the contract between losses and the training loop.
//!
//! This crate does no IO.
//!
//! ```
//! use burn::prelude::*;
//! use kd_core::NormalizationAdapterConfig;
//!
//! # fn main() {
//! # let device = Device::flex();
//! // Student normalised with ImageNet statistics, teacher expecting mean 0.5 / std 0.5.
//! let adapter = NormalizationAdapterConfig::new(
//!     vec![0.485, 0.456, 0.406],
//!     vec![0.229, 0.224, 0.225],
//!     vec![0.5, 0.5, 0.5],
//!     vec![0.5, 0.5, 0.5],
//! )
//! .init(&device)
//! .unwrap();
//! let x = Tensor::<4>::zeros([2, 3, 8, 8], &device);
//! let y = adapter.forward(x);
//! assert_eq!(y.dims(), [2, 3, 8, 8]);
//! # }
//! ```

mod adapter;
mod classifier;
mod criterion;
mod error;
mod kd_model;
mod output;
mod precision;
mod suggest;
mod teacher_cache;

pub use adapter::{InputAdapter, NormalizationAdapter, NormalizationAdapterConfig};
pub use classifier::{Feature, ImageClassifier, check_taps};
pub use criterion::{Criterion, LossOutput, Targets};
pub use error::KdError;
pub use kd_model::{KdArchParams, KdModel, KdModule};
pub use output::KdOutput;
pub use precision::{Precision, cast_module};
pub use suggest::{did_you_mean, levenshtein};
pub use teacher_cache::{TeacherCache, TeacherCacheStats};
