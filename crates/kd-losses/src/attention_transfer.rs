use burn::module::Module;
use burn::prelude::*;

use crate::ops::normalize_last;
use crate::{LossError, check};

/// Configuration of an [`AttentionTransferLoss`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttentionTransferLossConfig {
    /// Exponent `p` of the attention map `Σ_c |A_c|^p`, at least 1. Default: 2, the paper's
    /// choice.
    pub p: f64,
}

impl Default for AttentionTransferLossConfig {
    fn default() -> Self {
        Self { p: 2.0 }
    }
}

impl AttentionTransferLossConfig {
    /// The paper's default: `p = 2`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the exponent `p`.
    pub fn with_p(mut self, p: f64) -> Self {
        self.p = p;
        self
    }

    /// Checks the configuration and builds the loss: `p` must be finite and at least 1 (below
    /// 1 the gradient of `|A|^p` is infinite at zero activations).
    pub fn init(&self) -> Result<AttentionTransferLoss, LossError> {
        if !(self.p >= 1.0 && self.p.is_finite()) {
            return Err(check::invalid(
                "p",
                self.p,
                "at least 1 and finite: the paper uses 2".into(),
            ));
        }
        Ok(AttentionTransferLoss { p: self.p })
    }

    /// Checks that the feature maps can be compared: per-sample shapes `[C, H, W]` with the same
    /// `H` and `W`; the channel counts may differ.
    pub fn check_shapes(&self, student: &[usize], teacher: &[usize]) -> Result<(), LossError> {
        check::maps_with_equal_spatial_size("attention_transfer", student, teacher)
    }
}

/// Attention transfer: the student matches the teacher's spatial attention maps, the
/// L2-normalised channel sums of `|activation|^p`.
///
/// ```text
/// a(F) = vec(Σ_c |F_c|^p) / max(‖vec(Σ_c |F_c|^p)‖₂, 1e-12)      (per sample, length H·W)
/// loss = (1/(B·H·W)) · Σ_b ‖a(F_s[b]) − a(F_t[b])‖₂²
/// ```
///
/// Paper: Zagoruyko and Komodakis, "Paying More Attention to Attention: Improving the
/// Performance of Convolutional Neural Networks via Attention Transfer" (ICLR 2017,
/// <https://arxiv.org/abs/1612.03928>). Default `p = 2`. The reduction is the authors' code's
/// `(at(s) - at(t)).pow(2).mean()`: the mean over the batch **and** the `H·W` positions of the
/// squared difference (their code averages the channels instead of summing them, which the
/// normalisation cancels). The paper's weight β/2 (1000 in the CIFAR benchmarks) belongs to
/// the recipe. Channel counts may differ; spatial sizes must match (see
/// [`AttentionTransferLossConfig::check_shapes`]). The teacher's maps are detached.
///
/// # Shapes
/// - student maps: `[batch, C_s, H, W]`; teacher maps: `[batch, C_t, H, W]`
/// - output: `[1]`
#[derive(Module, Debug)]
pub struct AttentionTransferLoss {
    p: f64,
}

impl AttentionTransferLoss {
    /// The exponent `p`.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// The configuration this loss was built from.
    pub fn config(&self) -> AttentionTransferLossConfig {
        AttentionTransferLossConfig { p: self.p }
    }

    /// The loss for a batch (see [`attention_transfer_loss`]).
    pub fn forward(&self, student: Tensor<4>, teacher: Tensor<4>) -> Tensor<1> {
        attention_transfer_loss(student, teacher, &self.config())
    }
}

/// Attention transfer as a function (see [`AttentionTransferLoss`]).
///
/// The teacher's maps are detached. Neither the configuration nor the shapes are validated
/// here; [`AttentionTransferLossConfig::init`] and
/// [`AttentionTransferLossConfig::check_shapes`] do that.
///
/// # Shapes
/// - student maps: `[batch, C_s, H, W]`; teacher maps: `[batch, C_t, H, W]`
/// - output: `[1]`
pub fn attention_transfer_loss(
    student: Tensor<4>,
    teacher: Tensor<4>,
    config: &AttentionTransferLossConfig,
) -> Tensor<1> {
    let a_s = attention_map(student, config.p);
    let a_t = attention_map(teacher.detach(), config.p);
    let diff = a_s.sub(a_t);
    diff.clone().mul(diff).mean()
}

/// The L2-normalised attention map `Σ_c |F_c|^p` of each sample: `[B, C, H, W]` to `[B, H·W]`.
fn attention_map(x: Tensor<4>, p: f64) -> Tensor<2> {
    let [batch, _, height, width] = x.dims();
    let powered = if p == 2.0 {
        x.clone().mul(x)
    } else {
        x.abs().powf_scalar(p)
    };
    normalize_last(powered.sum_dim(1).reshape([batch, height * width]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{LossFixture, values};

    #[derive(Debug, serde::Deserialize)]
    struct Params {
        p: f64,
    }

    // Golden values: tests/fixtures/attention_transfer.json, written by
    // tools/reference/loss_bank.py (PyTorch 2.9.0, float32):
    //
    // ```python
    // maps_4_8 = {"student": torch.randn(6, 4, 5, 5), "teacher": torch.randn(6, 8, 5, 5)}
    // maps_4_4 = {"student": torch.randn(6, 4, 5, 5).relu(), "teacher": torch.randn(6, 4, 5, 5).relu()}
    //
    // def attention_map(x, p):
    //     a = x.abs().pow(p).sum(dim=1).flatten(1)
    //     return a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    //
    // def attention_transfer(s, t, p):
    //     return (attention_map(s, p) - attention_map(t, p)).pow(2).mean()
    //
    // # p = 2 on maps_4_8 (channels differ) and maps_4_4, p = 4 on maps_4_8.
    // ```
    #[test]
    fn matches_pytorch_and_its_gradient() {
        let _rng = crate::test_rng::lock();
        let fixture = LossFixture::<Params>::parse(
            include_str!("../tests/fixtures/attention_transfer.json"),
            "attention_transfer.json",
        );
        let cases = fixture.check::<4>("attention_transfer", |params, s, t, _| {
            AttentionTransferLossConfig::new()
                .with_p(params.p)
                .init()
                .unwrap()
                .forward(s, t)
        });
        assert_eq!(cases, 3);
    }

    #[test]
    fn ignores_the_scale_of_the_maps_and_is_zero_for_equal_attention() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let s = Tensor::<4>::random([2, 3, 4, 4], burn::tensor::Distribution::Default, &device);
        let loss = AttentionTransferLossConfig::new().init().unwrap();
        // Attention maps are normalised, so scaling the activations changes nothing.
        let v = values(loss.forward(s.clone(), s.clone().mul_scalar(3.0)))[0];
        assert!(v.abs() < 1e-6, "{v}");
        // Twice the channels with the same activations: the same attention map.
        let doubled = Tensor::cat(vec![s.clone(), s.clone()], 1);
        let v = values(loss.forward(s, doubled))[0];
        assert!(v.abs() < 1e-6, "{v}");
    }

    #[test]
    fn rejects_a_bad_exponent() {
        let _rng = crate::test_rng::lock();
        for bad in [0.5, 0.0, -2.0, f64::NAN, f64::INFINITY] {
            let err = AttentionTransferLossConfig::new()
                .with_p(bad)
                .init()
                .unwrap_err();
            assert_eq!(err.key(), "p");
            let msg = err.to_string();
            assert!(msg.starts_with("`p` is "), "{msg}");
            assert!(msg.contains("at least 1"), "{msg}");
        }
        assert_eq!(AttentionTransferLossConfig::new().init().unwrap().p(), 2.0);
    }

    #[test]
    fn needs_maps_of_the_same_spatial_size() {
        let _rng = crate::test_rng::lock();
        let config = AttentionTransferLossConfig::new();
        assert!(config.check_shapes(&[64, 8, 8], &[256, 8, 8]).is_ok());
        let err = config
            .check_shapes(&[64, 16, 16], &[256, 8, 8])
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "attention_transfer cannot pair student shape [64, 16, 16] with teacher shape \
                 [256, 8, 8]"
            ),
            "{msg}"
        );
        assert!(msg.contains("16x16 vs 8x8"), "{msg}");
        assert!(msg.contains("same resolution"), "{msg}");
        assert!(!msg.ends_with('.'), "{msg}");
        let err = config.check_shapes(&[512], &[2048]).unwrap_err();
        assert!(
            err.to_string().contains("[channels, height, width]"),
            "{err}"
        );
    }
}
