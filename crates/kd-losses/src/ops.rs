//! Tensor helpers shared by the losses.

use burn::prelude::*;

/// The smallest positive normal `f32`: the floor under a sum of squares before its square root.
const TINY: f64 = f32::MIN_POSITIVE as f64;

/// Each sample's features as one row: `[B, d1, d2, ...]` becomes `[B, d1·d2·...]`.
pub(crate) fn flatten_per_sample<const D: usize>(x: Tensor<D>) -> Tensor<2> {
    let dims = x.dims();
    let width = dims[1..].iter().product::<usize>();
    x.reshape([dims[0], width])
}

/// The Euclidean norm along the last dimension, which is kept with size 1.
///
/// The sum of squares is floored at the smallest positive normal `f32` before the square root,
/// so a zero vector has norm ~1e-19 and a zero gradient (PyTorch's convention) instead of a
/// NaN one; other vectors are unaffected.
pub(crate) fn norm_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone().mul(x).sum_dim(D - 1).clamp_min(TINY).sqrt()
}

/// `x / max(‖x‖₂, 1e-12)` along the last dimension, PyTorch's `F.normalize(x, dim=-1)`.
pub(crate) fn normalize_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let norm = norm_last(x.clone()).clamp_min(1e-12);
    x.div(norm)
}

/// `log Σ_j exp(x_ij)` over each row, shifted by the row maximum for stability: `[N, M]` to
/// `[N, 1]`.
pub(crate) fn log_sum_exp_rows(x: Tensor<2>) -> Tensor<2> {
    // The shift cancels exactly, so it carries no gradient.
    let max = x.clone().max_dim(1).detach();
    x.sub(max.clone()).exp().sum_dim(1).log().add(max)
}

/// The batch-mean KL divergence `(1/N)·Σ_n Σ_j p_t·(log p_t − log p_s)` between two sets of
/// log-probabilities `[N, M]`, computed as `exp(lt)·(lt − ls)` so that zero probabilities give
/// exact zeros.
pub(crate) fn kl_batchmean(log_p_teacher: Tensor<2>, log_p_student: Tensor<2>) -> Tensor<1> {
    let [n, _] = log_p_teacher.dims();
    log_p_teacher
        .clone()
        .exp()
        .mul(log_p_teacher.sub(log_p_student))
        .sum()
        .div_scalar(n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{assert_all_close, values};

    #[test]
    fn normalizes_rows_and_keeps_the_gradient_finite_at_a_zero_row() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::from_floats([[3.0, 4.0], [0.0, 0.0]], &device).require_grad();
        let y = normalize_last(x.clone());
        assert_all_close(&values(y.clone()), &[0.6, 0.8, 0.0, 0.0], "normalized");
        let grads = y.sum().backward();
        let grad = values(x.grad(&grads).unwrap());
        // d/dx_j Σ_i x_i/‖x‖ = 1/‖x‖ − x_j·Σ_i x_i/‖x‖³: at (3, 4), 0.2 − 7·x_j/125. At the
        // zero row the divisor is the 1e-12 floor, so the gradient is 1e12, as with PyTorch's
        // F.normalize, and not NaN.
        assert_all_close(&grad[..2], &[0.032, -0.024], "gradient at (3, 4)");
        assert_all_close(&grad[2..], &[1e12, 1e12], "gradient at the zero row");

        // The norm of a zero vector is ~0 with a zero gradient.
        let zero = Tensor::<2>::zeros([1, 3], &device).require_grad();
        let n = norm_last(zero.clone());
        assert!(values(n.clone())[0] < 1e-18);
        let grads = n.sum().backward();
        assert_all_close(
            &values(zero.grad(&grads).unwrap()),
            &[0.0; 3],
            "norm gradient",
        );
    }

    #[test]
    fn log_sum_exp_matches_the_definition_and_survives_large_values() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let x = Tensor::<2>::from_floats([[0.0, 1.0, 2.0], [1000.0, 1000.0, 0.0]], &device);
        let got = values(log_sum_exp_rows(x));
        let want0 = (1.0f64 + 1f64.exp() + 2f64.exp()).ln();
        let want1 = 1000.0 + 2f64.ln();
        assert_all_close(&got, &[want0, want1], "log-sum-exp");
    }

    #[test]
    fn flattens_every_dimension_after_the_batch() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let x = Tensor::<4>::zeros([2, 3, 4, 5], &device);
        assert_eq!(flatten_per_sample(x).dims(), [2, 60]);
        let v = Tensor::<2>::zeros([2, 7], &device);
        assert_eq!(flatten_per_sample(v).dims(), [2, 7]);
    }
}
