//! LAMB with SuperGradients' options, as a Burn [`Optimizer`].

use burn::optim::{LambState, LearningRate, Optimizer};
use burn::prelude::*;

/// LAMB, the layer-wise adaptive moments optimizer of You et al. 2020 ("Large Batch
/// Optimization for Deep Learning: Training BERT in 76 minutes", Algorithm 2), in the NVLAMB
/// form SuperGradients uses (`optimizer: Lamb`).
///
/// For a parameter `p` with gradient `g` at step `t`:
///
/// ```text
/// m = β1·m + (1 − β1)·g                      (1 − β1 becomes 1 without grad_averaging)
/// v = β2·v + (1 − β2)·g²
/// r = (m / (1 − β1^t)) / (√v / √(1 − β2^t) + ε)   (no bias correction: both factors are 1)
/// u = r + λ·p
/// u = u · ‖p‖ / ‖u‖                          (1 if either norm is 0; min(·, 1) with trust_clip)
/// p = p − lr·u
/// ```
///
/// The trust ratio (the paper's `φ(‖p‖)/‖u‖` with `φ` the identity) applies only when the
/// weight decay `λ` is not 0 or `always_adapt` is set, so parameters excluded from weight
/// decay take plain Adam-like steps, as in SuperGradients. The clipping of the global gradient
/// norm to `max_grad_norm` that NVLAMB does first spans all parameters, so
/// [`crate::TrainOptimizer`] does it before the per-parameter steps.
#[derive(Debug, Clone)]
pub struct Lamb {
    /// `β1`, `β2`.
    pub betas: (f64, f64),
    /// `ε`, added to the bias-corrected `√v`.
    pub eps: f64,
    /// `λ`, the decoupled weight decay inside the trust ratio.
    pub weight_decay: f64,
    /// Divide the moments by `1 − β^t`.
    pub bias_correction: bool,
    /// Scale the gradient by `1 − β1` in the first moment.
    pub grad_averaging: bool,
    /// Clip the trust ratio at 1 (LAMBC).
    pub trust_clip: bool,
    /// Apply the trust ratio also without weight decay.
    pub always_adapt: bool,
}

impl Optimizer for Lamb {
    type State<const D: usize> = LambState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (beta_1, beta_2) = self.betas;
        let first = if self.grad_averaging {
            1.0 - beta_1
        } else {
            1.0
        };
        let state = match state {
            Some(s) => LambState {
                time: s.time + 1,
                moment_1: s
                    .moment_1
                    .mul_scalar(beta_1)
                    .add(grad.clone().mul_scalar(first)),
                moment_2: s
                    .moment_2
                    .mul_scalar(beta_2)
                    .add(grad.square().mul_scalar(1.0 - beta_2)),
            },
            None => LambState {
                time: 1,
                moment_1: grad.clone().mul_scalar(first),
                moment_2: grad.square().mul_scalar(1.0 - beta_2),
            },
        };
        let (bc_1, bc_2) = if self.bias_correction {
            let t = state.time as i32;
            (1.0 - beta_1.powi(t), 1.0 - beta_2.powi(t))
        } else {
            (1.0, 1.0)
        };
        let denom = state
            .moment_2
            .clone()
            .sqrt()
            .div_scalar(bc_2.sqrt())
            .add_scalar(self.eps);
        let mut update = state.moment_1.clone().div_scalar(bc_1).div(denom);
        if self.weight_decay != 0.0 {
            update = update.add(tensor.clone().mul_scalar(self.weight_decay));
        }
        if self.weight_decay != 0.0 || self.always_adapt {
            let w_norm = tensor.clone().square().sum().sqrt();
            let u_norm = update.clone().square().sum().sqrt();
            let valid = w_norm
                .clone()
                .greater_scalar(0.0)
                .bool_and(u_norm.clone().greater_scalar(0.0));
            // The division is masked where a norm is 0; clamping avoids forming 0/0 there.
            let ratio = w_norm.div(u_norm.clamp_min(f32::MIN_POSITIVE));
            let mut ratio = ratio.ones_like().mask_where(valid, ratio);
            if self.trust_clip {
                ratio = ratio.clamp_max(1.0);
            }
            update = update.mul(ratio.unsqueeze::<D>());
        }
        (tensor.sub(update.mul_scalar(lr)), Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        LambState {
            time: state.time,
            moment_1: state.moment_1.to_device(device),
            moment_2: state.moment_2.to_device(device),
        }
    }
}
