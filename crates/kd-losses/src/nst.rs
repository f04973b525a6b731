use burn::module::Module;
use burn::prelude::*;

use crate::ops::normalize_last;
use crate::{LossError, check};

/// Configuration of an [`NstLoss`]: the polynomial kernel `k(x, y) = (xᵀy + c)^d`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NstLossConfig {
    /// Degree `d` of the kernel, at least 1. Default: 2, the paper's choice.
    pub degree: u32,
    /// Offset `c` of the kernel, non-negative. Default: 0, the paper's choice.
    pub offset: f64,
}

impl Default for NstLossConfig {
    fn default() -> Self {
        Self {
            degree: 2,
            offset: 0.0,
        }
    }
}

impl NstLossConfig {
    /// The paper's kernel: `d = 2`, `c = 0`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the degree `d` of the kernel.
    pub fn with_degree(mut self, degree: u32) -> Self {
        self.degree = degree;
        self
    }

    /// Sets the offset `c` of the kernel.
    pub fn with_offset(mut self, offset: f64) -> Self {
        self.offset = offset;
        self
    }

    /// Checks the configuration and builds the loss: `degree` must be at least 1 and `offset`
    /// non-negative and finite.
    pub fn init(&self) -> Result<NstLoss, LossError> {
        if self.degree == 0 {
            return Err(check::invalid(
                "degree",
                0.0,
                "at least 1 (degree 0 makes the kernel constant): the paper uses 2".into(),
            ));
        }
        check::non_negative("offset", self.offset, "the paper uses 0")?;
        Ok(NstLoss {
            degree: self.degree,
            offset: self.offset,
        })
    }

    /// Checks that the feature maps can be compared: per-sample shapes `[C, H, W]` with the same
    /// `H` and `W`; the channel counts may differ.
    pub fn check_shapes(&self, student: &[usize], teacher: &[usize]) -> Result<(), LossError> {
        check::maps_with_equal_spatial_size("nst", student, teacher)
    }
}

/// Neuron selectivity transfer: the squared maximum mean discrepancy between the sets of
/// channel activation patterns of the student and of the teacher.
///
/// ```text
/// s_i = vec(F_s[i]) / ‖vec(F_s[i])‖₂  for each student channel i   (length H·W; t_j likewise)
/// k(x, y) = (xᵀy + c)^d
/// MMD² = mean_{i,i'} k(s_i, s_i') + mean_{j,j'} k(t_j, t_j') − 2·mean_{i,j} k(s_i, t_j)
/// loss = (1/B)·Σ_b MMD²(b)
/// ```
///
/// Paper: Huang and Wang, "Like What You Like: Knowledge Distill via Neuron Selectivity
/// Transfer" (2017, <https://arxiv.org/abs/1707.01219>). Defaults: the polynomial kernel with
/// `d = 2`, `c = 0`, the paper's choice. The norms are floored at 1e-12 (PyTorch's
/// `F.normalize`). The paper's weight β/2 belongs to the recipe. Channel counts may differ;
/// spatial sizes must match (see [`NstLossConfig::check_shapes`]). The teacher's maps are
/// detached (the teacher–teacher term is a constant that keeps the value a true MMD²).
///
/// # Shapes
/// - student maps: `[batch, C_s, H, W]`; teacher maps: `[batch, C_t, H, W]`
/// - output: `[1]`
#[derive(Module, Debug)]
pub struct NstLoss {
    degree: u32,
    offset: f64,
}

impl NstLoss {
    /// The configuration this loss was built from.
    pub fn config(&self) -> NstLossConfig {
        NstLossConfig {
            degree: self.degree,
            offset: self.offset,
        }
    }

    /// The loss for a batch (see [`nst_loss`]).
    pub fn forward(&self, student: Tensor<4>, teacher: Tensor<4>) -> Tensor<1> {
        nst_loss(student, teacher, &self.config())
    }
}

/// Neuron selectivity transfer as a function (see [`NstLoss`]).
///
/// The teacher's maps are detached. Neither the configuration nor the shapes are validated
/// here; [`NstLossConfig::init`] and [`NstLossConfig::check_shapes`] do that.
///
/// # Shapes
/// - student maps: `[batch, C_s, H, W]`; teacher maps: `[batch, C_t, H, W]`
/// - output: `[1]`
pub fn nst_loss(student: Tensor<4>, teacher: Tensor<4>, config: &NstLossConfig) -> Tensor<1> {
    let s = channel_patterns(student);
    let t = channel_patterns(teacher.detach());
    let kernel = |a: Tensor<3>, b: Tensor<3>| {
        a.matmul(b.swap_dims(1, 2))
            .add_scalar(config.offset)
            .powi_scalar(config.degree as i32)
            .mean()
    };
    kernel(s.clone(), s.clone())
        .add(kernel(t.clone(), t.clone()))
        .sub(kernel(s, t).mul_scalar(2.0))
}

/// Each channel's activations as a unit vector: `[B, C, H, W]` to `[B, C, H·W]`.
fn channel_patterns(x: Tensor<4>) -> Tensor<3> {
    let [batch, channels, height, width] = x.dims();
    normalize_last(x.reshape([batch, channels, height * width]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{LossFixture, values};

    #[derive(Debug, serde::Deserialize)]
    struct Params {
        degree: u32,
        offset: f64,
    }

    // Golden values: tests/fixtures/nst.json, written by tools/reference/loss_bank.py
    // (PyTorch 2.9.0, float32):
    //
    // ```python
    // maps_4_8 = {"student": torch.randn(6, 4, 5, 5), "teacher": torch.randn(6, 8, 5, 5)}
    // maps_4_4 = {"student": torch.randn(6, 4, 5, 5).relu(), "teacher": torch.randn(6, 4, 5, 5).relu()}
    //
    // def row_normalize(x):
    //     return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    //
    // def nst(s, t, degree, offset):
    //     f_s = row_normalize(s.flatten(2))
    //     f_t = row_normalize(t.flatten(2))
    //
    //     def k(a, b):
    //         return (a @ b.transpose(1, 2) + offset).pow(degree).mean()
    //
    //     return k(f_s, f_s) + k(f_t, f_t) - 2.0 * k(f_s, f_t)
    //
    // # (d, c) = (2, 0) on maps_4_8 and maps_4_4, (3, 1) on maps_4_8, (1, 0) on maps_4_4.
    // ```
    #[test]
    fn matches_pytorch_and_its_gradient() {
        let _rng = crate::test_rng::lock();
        let fixture =
            LossFixture::<Params>::parse(include_str!("../tests/fixtures/nst.json"), "nst.json");
        let cases = fixture.check::<4>("nst", |p, s, t, _| {
            NstLossConfig::new()
                .with_degree(p.degree)
                .with_offset(p.offset)
                .init()
                .unwrap()
                .forward(s, t)
        });
        assert_eq!(cases, 4);
    }

    #[test]
    fn is_zero_for_identical_maps_whatever_their_scale() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let s = Tensor::<4>::random([2, 3, 4, 4], burn::tensor::Distribution::Default, &device);
        let loss = NstLossConfig::new().init().unwrap();
        let v = values(loss.forward(s.clone(), s.mul_scalar(5.0)))[0];
        assert!(v.abs() < 1e-6, "{v}");
    }

    #[test]
    fn rejects_bad_kernels_and_mismatched_maps() {
        let _rng = crate::test_rng::lock();
        let err = NstLossConfig::new().with_degree(0).init().unwrap_err();
        assert_eq!(err.key(), "degree");
        assert!(err.to_string().starts_with("`degree` is 0 "), "{err}");
        let err = NstLossConfig::new().with_offset(-1.0).init().unwrap_err();
        assert_eq!(err.key(), "offset");
        let config = NstLossConfig::new();
        assert!(config.check_shapes(&[16, 8, 8], &[64, 8, 8]).is_ok());
        let err = config.check_shapes(&[16, 8, 8], &[64, 4, 4]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "nst cannot pair student shape [16, 8, 8] with teacher shape [64, 4, 4]"
            ),
            "{msg}"
        );
        assert!(msg.contains("same resolution"), "{msg}");
    }
}
