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
//!
//! Distillation terms, each with a configuration (`init` validates it, `check_shapes` checks a
//! student/teacher pairing from per-sample shapes), a module whose
//! `forward(student, teacher[, targets])` returns the `[1]` loss with the method's own factor
//! (such as `T²`) but no recipe weight, and the same loss as a function:
//!
//! | Loss | Function | Inputs | Method |
//! |---|---|---|---|
//! | [`HintonKdLoss`] | [`hinton_kd_loss`] | logits | Hinton et al., 2015 |
//! | [`DkdLoss`] | [`dkd_loss`] | logits + targets | decoupled KD, Zhao et al., CVPR 2022 |
//! | [`DistLoss`] | [`dist_loss`] | logits | DIST, Huang et al., NeurIPS 2022 |
//! | [`LogitStandardizedKdLoss`] | [`logit_standardized_kd_loss`] | logits | Sun et al., CVPR 2024 |
//! | [`AttentionTransferLoss`] | [`attention_transfer_loss`] | maps | Zagoruyko & Komodakis, ICLR 2017 |
//! | [`NstLoss`] | [`nst_loss`] | maps | Huang & Wang, 2017 |
//! | [`SimilarityPreservingLoss`] | [`similarity_preserving_loss`] | any features | Tung & Mori, ICCV 2019 |
//! | [`RkdLoss`] | [`rkd_loss`] | any features | Park et al., CVPR 2019 |
//! | [`PktLoss`] | [`pkt_loss`] | any features | Passalis & Tefas, ECCV 2018 |
//! | [`CorrelationCongruenceLoss`] | [`correlation_congruence_loss`] | embeddings of equal width | Peng et al., ICCV 2019 |
//!
//! Distillation terms with trainable parts (connectors, embedding heads) and state (memory
//! banks): their configuration's `init(student_shape, teacher_shape, device)` checks the
//! pairing and builds those parts on the training device, where the optimizer trains them with
//! the student.
//!
//! | Loss | Function | Inputs | Method |
//! |---|---|---|---|
//! | [`FitNetsLoss`] | [`fitnets_loss`] | maps or vectors | FitNets hints, Romero et al., ICLR 2015 |
//! | [`VidLoss`] | [`vid_loss`] | maps | variational information distillation, Ahn et al., CVPR 2019 |
//! | [`CrdLoss`] | [`crd_nce_loss`] | pooled vectors + sample indices | contrastive representation distillation, Tian et al., ICLR 2020 |
//! | [`ReviewKdLoss`] | [`hierarchical_context_loss`] | lists of maps | knowledge review, Chen et al., CVPR 2021 |
//!
//! Logits are `[batch, num_classes]`, maps `[batch, C, H, W]` (channels may differ, spatial
//! sizes must match), and "any features" are flattened per sample. The teacher input is always
//! a constant: it may come from the plain device while the student's is tracked.
//!
//! Values and gradients match PyTorch 2.9 (`tools/reference/losses.py`, which also runs
//! `tools/reference/loss_bank.py` and `tools/reference/loss_learnable.py`).
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

mod attention_transfer;
mod check;
mod composite;
mod correlation_congruence;
mod crd;
mod cross_entropy;
mod dist;
mod dkd;
mod error;
mod fitnets;
#[cfg(test)]
mod fixture;
#[cfg(test)]
mod golden;
mod hinton_kd;
mod kd_logits;
mod logit_standardization;
mod nst;
mod ops;
mod pkt;
mod review_kd;
mod rkd;
mod similarity_preserving;
#[cfg(test)]
mod test_rng;
mod vid;

pub use attention_transfer::{
    AttentionTransferLoss, AttentionTransferLossConfig, attention_transfer_loss,
};
pub use composite::{
    DistillationLoss, DistillationLossConfig, LOGITS_TAP, MethodConfig, TERM_NAMES, TapShapes,
    TappedOutput, Term, TermConfig, TermContext, TermKind,
};
pub use correlation_congruence::{
    CorrelationCongruenceLoss, CorrelationCongruenceLossConfig, correlation_congruence_loss,
};
pub use crd::{
    CrdLoss, CrdLossConfig, CrdMemory, CrdParts, crd_bank_loss, crd_memory_update, crd_nce_loss,
    crd_queue_loss, crd_queue_update,
};
pub use cross_entropy::{CrossEntropyLoss, CrossEntropyLossConfig, cross_entropy};
pub use dist::{DistLoss, DistLossConfig, dist_loss};
pub use dkd::{DkdLoss, DkdLossConfig, dkd_loss};
pub use error::LossError;
pub use fitnets::{FitNetsLoss, FitNetsLossConfig, fitnets_loss};
pub use hinton_kd::{HintonKdLoss, HintonKdLossConfig, hinton_kd_loss};
pub use kd_core::{Criterion, KdOutput, LossOutput, Targets};
pub use kd_logits::{
    KdLogitsLoss, KdLogitsLossConfig, KdLogitsParts, kd_logits_loss, kl_div_logits,
};
pub use logit_standardization::{
    LogitStandardizedKdLoss, LogitStandardizedKdLossConfig, logit_standardized_kd_loss,
};
pub use nst::{NstLoss, NstLossConfig, nst_loss};
pub use pkt::{PktLoss, PktLossConfig, pkt_loss};
pub use review_kd::{Abf, ReviewKdLoss, ReviewKdLossConfig, hierarchical_context_loss};
pub use rkd::{RkdLoss, RkdLossConfig, rkd_loss};
pub use similarity_preserving::{
    SimilarityPreservingLoss, SimilarityPreservingLossConfig, similarity_preserving_loss,
};
pub use vid::{VidLoss, VidLossConfig, vid_loss};
