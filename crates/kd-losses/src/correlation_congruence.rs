use burn::module::Module;
use burn::prelude::*;

use crate::ops::{flatten_per_sample, normalize_last};
use crate::{LossError, check};

/// Configuration of a [`CorrelationCongruenceLoss`], with the paper's defaults.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrelationCongruenceLossConfig {
    /// Width `γ` of the Gaussian RBF kernel `exp(−γ‖x − y‖²)`. Default: 0.4.
    pub gamma: f64,
    /// Order `P` of its Taylor expansion, at least 1. Default: 2.
    pub order: usize,
}

impl Default for CorrelationCongruenceLossConfig {
    fn default() -> Self {
        Self {
            gamma: 0.4,
            order: 2,
        }
    }
}

impl CorrelationCongruenceLossConfig {
    /// The paper's defaults: `γ = 0.4`, `P = 2`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the kernel width `γ`.
    pub fn with_gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }

    /// Sets the order `P` of the Taylor expansion.
    pub fn with_order(mut self, order: usize) -> Self {
        self.order = order;
        self
    }

    /// Checks the configuration and builds the loss: `gamma` must be positive and finite and
    /// `order` at least 1 (order 0 makes the correlation a constant).
    pub fn init(&self) -> Result<CorrelationCongruenceLoss, LossError> {
        check::positive("gamma", self.gamma, "the paper uses 0.4")?;
        if self.order == 0 {
            return Err(check::invalid(
                "order",
                0.0,
                "at least 1 (order 0 makes the correlation constant): the paper uses 2".into(),
            ));
        }
        Ok(CorrelationCongruenceLoss {
            gamma: self.gamma,
            order: self.order,
        })
    }

    /// Checks that the embeddings can be compared: per-sample shapes that flatten to the same
    /// width (the paper compares embeddings of equal size).
    pub fn check_shapes(&self, student: &[usize], teacher: &[usize]) -> Result<(), LossError> {
        check::equal_width("correlation_congruence", student, teacher)
    }
}

/// Correlation congruence: the student's sample-to-sample correlation matrix, a Gaussian RBF
/// kernel on normalised embeddings approximated by its Taylor series, should match the
/// teacher's.
///
/// ```text
/// f_i = e_i / max(‖e_i‖₂, 1e-12)                     (e_i: sample i's flattened embedding)
/// exp(−γ‖f_i − f_j‖²) = exp(−2γ)·exp(2γ f_iᵀf_j) ≈ Σ_{p=0..P} exp(−2γ)·(2γ)^p / p! · (f_iᵀf_j)^p
/// C_ij = that P-order expansion                                                   ([B, B])
/// loss = ‖C_s − C_t‖_F² / B²
/// ```
///
/// Paper: Peng, Jin, Liu, Li, Wu, Liu, Zhou and Zhang, "Correlation Congruence for Knowledge
/// Distillation" (ICCV 2019, <https://arxiv.org/abs/1904.01802>). Defaults `γ = 0.4`, `P = 2`,
/// the paper's. The `p = 0` term is the same constant for student and teacher and is left out.
/// The paper's instance-level KD term is a separate loss ([`crate::HintonKdLoss`]) and its
/// weight belongs to the recipe. Student and teacher embeddings must have the same width (see
/// [`CorrelationCongruenceLossConfig::check_shapes`]); project them with embedding heads
/// first. The teacher's embeddings are detached.
///
/// # Shapes
/// - student and teacher embeddings: `[batch, ...]`, flattened per sample to the same width
/// - output: `[1]`
#[derive(Module, Debug)]
pub struct CorrelationCongruenceLoss {
    gamma: f64,
    order: usize,
}

impl CorrelationCongruenceLoss {
    /// The configuration this loss was built from.
    pub fn config(&self) -> CorrelationCongruenceLossConfig {
        CorrelationCongruenceLossConfig {
            gamma: self.gamma,
            order: self.order,
        }
    }

    /// The loss for a batch (see [`correlation_congruence_loss`]).
    pub fn forward<const D: usize>(&self, student: Tensor<D>, teacher: Tensor<D>) -> Tensor<1> {
        correlation_congruence_loss(student, teacher, &self.config())
    }
}

/// Correlation congruence as a function: `‖C_s − C_t‖_F² / B²` (see
/// [`CorrelationCongruenceLoss`]).
///
/// The teacher's embeddings are detached. Neither the configuration nor the shapes are
/// validated here; [`CorrelationCongruenceLossConfig::init`] and
/// [`CorrelationCongruenceLossConfig::check_shapes`] do that.
///
/// # Shapes
/// - student and teacher embeddings: `[batch, ...]`, flattened per sample to the same width
/// - output: `[1]`
pub fn correlation_congruence_loss<const D: usize>(
    student: Tensor<D>,
    teacher: Tensor<D>,
    config: &CorrelationCongruenceLossConfig,
) -> Tensor<1> {
    let batch = student.dims()[0];
    let c_s = correlation(student, config);
    let c_t = correlation(teacher.detach(), config);
    let diff = c_s.sub(c_t);
    diff.clone()
        .mul(diff)
        .sum()
        .div_scalar((batch * batch) as f64)
}

/// The Taylor-expanded RBF correlation matrix `[B, B]`, without its constant `p = 0` term.
fn correlation<const D: usize>(
    x: Tensor<D>,
    config: &CorrelationCongruenceLossConfig,
) -> Tensor<2> {
    let f = normalize_last(flatten_per_sample(x));
    let similarity = f.clone().matmul(f.transpose());
    let two_gamma = 2.0 * config.gamma;
    let mut coefficient = (-two_gamma).exp(); // exp(−2γ)·(2γ)^p / p! at p = 0
    let mut power = similarity.clone();
    let mut sum = similarity.zeros_like();
    for p in 1..=config.order {
        coefficient *= two_gamma / p as f64;
        if p > 1 {
            power = power.mul(similarity.clone());
        }
        sum = sum.add(power.clone().mul_scalar(coefficient));
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{LossFixture, values};

    #[derive(Debug, serde::Deserialize)]
    struct Params {
        gamma: f64,
        order: usize,
    }

    // Golden values: tests/fixtures/correlation_congruence.json, written by
    // tools/reference/loss_bank.py (PyTorch 2.9.0, float32, B = 6):
    //
    // ```python
    // emb_10_10 = {"student": torch.randn(6, 10), "teacher": torch.randn(6, 10)}
    //
    // def correlation_congruence(s, t, gamma, order):
    //     b = s.shape[0]
    //
    //     def corr(x):
    //         x = row_normalize(x.reshape(b, -1))  # x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    //         sim = x @ x.t()
    //         c = torch.zeros_like(sim)
    //         for p in range(order + 1):
    //             c = c + math.exp(-2.0 * gamma) * (2.0 * gamma) ** p / math.factorial(p) * sim.pow(p)
    //         return c
    //
    //     return (corr(s) - corr(t)).pow(2).sum() / (b * b)
    //
    // # (gamma, P) in (0.4, 2), (0.4, 1), (1.0, 4).
    // ```
    #[test]
    fn matches_pytorch_and_its_gradient() {
        let _rng = crate::test_rng::lock();
        let fixture = LossFixture::<Params>::parse(
            include_str!("../tests/fixtures/correlation_congruence.json"),
            "correlation_congruence.json",
        );
        let cases = fixture.check::<2>("correlation_congruence", |p, s, t, _| {
            CorrelationCongruenceLossConfig::new()
                .with_gamma(p.gamma)
                .with_order(p.order)
                .init()
                .unwrap()
                .forward(s, t)
        });
        assert_eq!(cases, 3);
    }

    #[test]
    fn approaches_the_exact_rbf_kernel_as_the_order_grows() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let e = Tensor::<2>::from_floats(
            [[1.0, 2.0, 0.0], [0.5, -1.0, 2.0], [3.0, 0.0, 1.0]],
            &device,
        );
        let config = CorrelationCongruenceLossConfig::new().with_order(12);
        let f = normalize_last(e.clone());
        let f_rows = values(f.clone());
        let c = values(correlation(e, &config));
        for i in 0..3 {
            for j in 0..3 {
                let d2: f64 = (0..3)
                    .map(|k| (f_rows[i * 3 + k] - f_rows[j * 3 + k]).powi(2))
                    .sum();
                // The expansion leaves out the constant exp(−2γ).
                let want = (-0.4 * d2).exp() - (-0.8f64).exp();
                assert!((c[i * 3 + j] - want).abs() < 1e-5, "C[{i}, {j}]");
            }
        }
    }

    #[test]
    fn rejects_bad_hyper_parameters_and_unequal_widths() {
        let _rng = crate::test_rng::lock();
        let err = CorrelationCongruenceLossConfig::new()
            .with_gamma(0.0)
            .init()
            .unwrap_err();
        assert_eq!(err.key(), "gamma");
        let err = CorrelationCongruenceLossConfig::new()
            .with_order(0)
            .init()
            .unwrap_err();
        assert_eq!(err.key(), "order");
        assert!(
            err.to_string()
                .starts_with("`order` is 0 but must be at least 1"),
            "{err}"
        );
        let config = CorrelationCongruenceLossConfig::new();
        assert!(config.check_shapes(&[128], &[128]).is_ok());
        assert!(config.check_shapes(&[8, 4, 4], &[128]).is_ok());
        let err = config.check_shapes(&[128], &[256]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "correlation_congruence cannot pair student shape [128] with teacher shape [256]"
            ),
            "{msg}"
        );
        assert!(msg.contains("embedding heads"), "{msg}");
    }
}
