//! Knowledge-distillation losses for Burn, golden-tested against PyTorch.
//!
//! - [`KdLogitsLoss`]: SuperGradients' `KDLogitsLoss`,
//!   `(1 - c)·CE(student, y) + c·KL(softmax(teacher) ‖ softmax(student))`, with an optional
//!   temperature (Hinton et al., 2015).
//! - [`CrossEntropyLoss`]: the task loss, for hard or soft targets, with label smoothing.
//! - [`kd_logits_loss`], [`kl_div_logits`] and [`cross_entropy`]: the same losses as functions.
//!
//! Both losses implement [`Criterion`], the contract with the training loop; the kd-core
//! types they use ([`KdOutput`], [`Targets`], [`Criterion`], [`LossOutput`]) are re-exported.
//! Values and gradients match PyTorch 2.9 (`tools/reference/losses.py`).
//!
//! ```
//! use burn::prelude::*;
//! use kd_losses::{Criterion, KdLogitsLossConfig, KdOutput, Targets};
//!
//! # fn main() -> Result<(), kd_losses::LossError> {
//! let device = Device::flex();
//! let train_device = device.clone().autodiff();
//! // The student is trained (autodiff device); the frozen teacher stays on the plain device.
//! let student =
//!     Tensor::<2>::from_floats([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]], &train_device).require_grad();
//! let teacher = Tensor::<2>::from_floats([[3.0, -2.0, 1.0], [-1.0, 0.0, 4.0]], &device);
//! let targets = Targets::Hard(Tensor::<1, Int>::from_ints([0, 2], &device));
//!
//! let criterion = KdLogitsLossConfig::new().init()?; // c = 0.5, no temperature
//! let output = KdOutput { student_output: student.clone(), teacher_output: teacher };
//! let loss = criterion.forward(&output, &targets);
//!
//! assert_eq!(criterion.component_names(), ["Loss", "Task Loss", "Distillation Loss"]);
//! let values = loss.components.into_data().try_into_vec::<f32>().unwrap();
//! let (total, task, distill) = (values[0], values[1], values[2]);
//! assert!((total - (0.5 * task + 0.5 * distill)).abs() < 1e-6);
//! assert!(distill > 0.0 && task > 0.0);
//!
//! let grads = loss.loss.backward();
//! assert_eq!(student.grad(&grads).unwrap().dims(), [2, 3]);
//! # Ok(())
//! # }
//! ```

mod crd;
mod cross_entropy;
mod error;
mod fitnets;
#[cfg(test)]
mod fixture;
#[cfg(test)]
mod golden;
mod kd_logits;
mod review_kd;
mod vid;

pub use crd::{
    CrdLoss, CrdLossConfig, CrdMemory, CrdParts, crd_bank_loss, crd_memory_update, crd_nce_loss,
    crd_queue_loss, crd_queue_update,
};
pub use cross_entropy::{CrossEntropyLoss, CrossEntropyLossConfig, cross_entropy};
pub use error::LossError;
pub use fitnets::{FitNetsLoss, FitNetsLossConfig, fitnets_loss};
pub use kd_core::{Criterion, KdOutput, LossOutput, Targets};
pub use kd_logits::{
    KdLogitsLoss, KdLogitsLossConfig, KdLogitsParts, kd_logits_loss, kl_div_logits,
};
pub use review_kd::{Abf, ReviewKdLoss, ReviewKdLossConfig, hierarchical_context_loss};
pub use vid::{VidLoss, VidLossConfig, vid_loss};
