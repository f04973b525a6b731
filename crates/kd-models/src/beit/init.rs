//! Weight initialisation of the BEiT modules: timm's truncated normal and lazy parameters.

use burn::module::{Param, ParamId};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::Distribution;

/// Lower cut-off of timm's `trunc_normal_`, an absolute value (not in standard deviations).
pub const TIMM_TRUNC_LOW: f64 = -2.0;
/// Upper cut-off of timm's `trunc_normal_`, an absolute value (not in standard deviations).
pub const TIMM_TRUNC_HIGH: f64 = 2.0;
/// Standard deviation timm gives every `Linear` weight, the class token and the position
/// embedding of a BEiT.
pub const TIMM_INIT_STD: f64 = 0.02;

/// Redraw rounds before the few values still outside the bounds are clamped.
const MAX_REDRAWS: usize = 64;

/// A tensor drawn from `N(mean, std²)` truncated to `[low, high]`.
///
/// Values outside the bounds are redrawn, as in timm's `trunc_normal_` (which samples the same
/// distribution by inverse transform). The bounds are absolute, so timm's defaults `[-2, 2]`
/// with `std = 0.02` cut nothing in practice. After 64 rounds the rare values still outside
/// are clamped, which only a window far in the tails can need. The caller keeps
/// `low < high` and `std > 0`.
pub fn trunc_normal<const D: usize>(
    shape: [usize; D],
    mean: f64,
    std: f64,
    low: f64,
    high: f64,
    device: &Device,
) -> Tensor<D> {
    let mut x = Tensor::<D>::random(shape, Distribution::Normal(mean, std), device);
    for _ in 0..MAX_REDRAWS {
        let outside = x
            .clone()
            .lower_elem(low)
            .bool_or(x.clone().greater_elem(high));
        if !outside.clone().any().into_scalar::<bool>() {
            return x;
        }
        let fresh = Tensor::<D>::random(shape, Distribution::Normal(mean, std), device);
        x = x.mask_where(outside, fresh);
    }
    x.clamp(low, high)
}

/// A parameter of `shape` that `init` fills the first time it is read.
///
/// Lazy as burn's initialisers: a model built only to receive a checkpoint never draws its
/// random weights.
pub(crate) fn lazy_param<const D: usize, F>(
    shape: [usize; D],
    device: &Device,
    init: F,
) -> Param<Tensor<D>>
where
    F: Fn(&Device) -> Tensor<D> + Send + Sync + 'static,
{
    Param::uninitialized(
        ParamId::new(),
        move |device, require_grad| {
            let tensor = device.memory_persistent_allocations((), |_| init(device));
            if require_grad {
                tensor.require_grad()
            } else {
                tensor
            }
        },
        device.clone(),
        true,
        shape.into(),
    )
}

/// A parameter drawn from timm's truncated normal with standard deviation `std`, times `scale`.
pub(crate) fn trunc_normal_param<const D: usize>(
    shape: [usize; D],
    std: f64,
    scale: f64,
    device: &Device,
) -> Param<Tensor<D>> {
    lazy_param(shape, device, move |device| {
        let x = trunc_normal(shape, 0.0, std, TIMM_TRUNC_LOW, TIMM_TRUNC_HIGH, device);
        if scale == 1.0 { x } else { x.mul_scalar(scale) }
    })
}

/// A parameter of `shape` filled with `value`.
pub(crate) fn constant_param<const D: usize>(
    shape: [usize; D],
    value: f64,
    device: &Device,
) -> Param<Tensor<D>> {
    lazy_param(shape, device, move |device| {
        Tensor::<D>::full(shape, value, device)
    })
}

/// A `Linear` initialised as timm's BEiT does: weight from the truncated normal with
/// standard deviation [`TIMM_INIT_STD`] times `scale`, bias zero.
pub(crate) fn timm_linear(
    d_input: usize,
    d_output: usize,
    bias: bool,
    scale: f64,
    device: &Device,
) -> Linear {
    Linear {
        weight: trunc_normal_param([d_input, d_output], TIMM_INIT_STD, scale, device),
        bias: bias.then(|| constant_param([d_output], 0.0, device)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunc_normal_stays_inside_tight_bounds() {
        let device = Device::flex();
        device.seed(7);
        // One standard deviation each side: about a third of the first draw falls outside.
        let x = trunc_normal([4000], 0.0, 1.0, -1.0, 1.0, &device);
        let values: Vec<f32> = x.into_data().try_into_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
        let mean = values.iter().sum::<f32>() / values.len() as f32;
        assert!(mean.abs() < 0.05, "mean {mean}");
        // A standard normal truncated to [-1, 1] has variance 1 - 2 φ(1) / (2 Φ(1) - 1) = 0.2911.
        let var = values.iter().map(|v| v * v).sum::<f32>() / values.len() as f32;
        assert!((var - 0.2911).abs() < 0.02, "variance {var}");
    }

    #[test]
    fn timm_defaults_give_the_requested_std() {
        let device = Device::flex();
        device.seed(3);
        let values: Vec<f32> = trunc_normal_param([100, 100], TIMM_INIT_STD, 1.0, &device)
            .val()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let var = values.iter().map(|v| v * v).sum::<f32>() / values.len() as f32;
        assert!((var.sqrt() - 0.02).abs() < 0.001, "std {}", var.sqrt());
        let scaled = timm_linear(10, 20, true, 0.5, &device);
        assert_eq!(scaled.weight.val().dims(), [10, 20]);
        let bias: Vec<f32> = scaled
            .bias
            .unwrap()
            .val()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert!(bias.iter().all(|&b| b == 0.0));
    }
}
