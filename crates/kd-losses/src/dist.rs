use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::ops::norm_last;
use crate::{LossError, check};

/// The constant added to the product of norms in the Pearson correlation (the authors' code).
const EPS: f64 = 1e-8;

/// Configuration of a [`DistLoss`], with the paper's defaults.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistLossConfig {
    /// Weight `β` of the inter-class relation (per sample, across classes). Default: 1.
    pub beta: f64,
    /// Weight `γ` of the intra-class relation (per class, across the batch). Default: 1.
    pub gamma: f64,
    /// Temperature `τ` of both softmaxes; the loss is multiplied by `τ²`. Default: 1.
    pub tau: f64,
}

impl Default for DistLossConfig {
    fn default() -> Self {
        Self {
            beta: 1.0,
            gamma: 1.0,
            tau: 1.0,
        }
    }
}

impl DistLossConfig {
    /// The paper's defaults: `β = γ = τ = 1`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the weight `β` of the inter-class relation.
    pub fn with_beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// Sets the weight `γ` of the intra-class relation.
    pub fn with_gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }

    /// Sets the temperature `τ`.
    pub fn with_tau(mut self, tau: f64) -> Self {
        self.tau = tau;
        self
    }

    /// Checks the configuration and builds the loss: `beta` and `gamma` must be non-negative
    /// and finite, `tau` positive and finite.
    pub fn init(&self) -> Result<DistLoss, LossError> {
        check::non_negative("beta", self.beta, "the paper uses 1")?;
        check::non_negative("gamma", self.gamma, "the paper uses 1")?;
        check::positive("tau", self.tau, "the paper uses 1")?;
        Ok(DistLoss {
            beta: self.beta,
            gamma: self.gamma,
            tau: self.tau,
        })
    }

    /// Checks that student and teacher logits can be compared: per-sample shapes `[K]` with the
    /// same `K`.
    pub fn check_shapes(&self, student: &[usize], teacher: &[usize]) -> Result<(), LossError> {
        check::logits("dist", student, teacher)
    }
}

/// DIST: distillation by Pearson-correlation relations between the class distributions, which
/// asks the student to rank classes like the teacher rather than to match its probabilities.
///
/// ```text
/// Y_s = softmax(s / τ), Y_t = softmax(t / τ)                    ([B, K], rows are samples)
/// ρ(u, v) = Σ (u − ū)(v − v̄) / (‖u − ū‖·‖v − v̄‖ + 1e-8)         (Pearson correlation)
/// inter = 1 − (1/B)·Σ_i ρ(Y_s[i, :], Y_t[i, :])
/// intra = 1 − (1/K)·Σ_j ρ(Y_s[:, j], Y_t[:, j])
/// loss  = τ²·(β·inter + γ·intra)
/// ```
///
/// Paper: Huang, You, Wang, Qian and Xu, "Knowledge Distillation from A Stronger Teacher"
/// (NeurIPS 2022, <https://arxiv.org/abs/2205.10536>). Defaults: `β = γ = τ = 1`, as in the paper
/// and its official code; the `1e-8` in the denominator is the official code's. The intra-class
/// term correlates each class's probabilities across the batch, so it depends on the batch.
/// The teacher's logits are detached.
///
/// # Shapes
/// - student and teacher logits: `[batch, num_classes]`
/// - output: `[1]`
#[derive(Module, Debug)]
pub struct DistLoss {
    beta: f64,
    gamma: f64,
    tau: f64,
}

impl DistLoss {
    /// The configuration this loss was built from.
    pub fn config(&self) -> DistLossConfig {
        DistLossConfig {
            beta: self.beta,
            gamma: self.gamma,
            tau: self.tau,
        }
    }

    /// The loss for a batch (see [`dist_loss`]).
    pub fn forward(&self, student: Tensor<2>, teacher: Tensor<2>) -> Tensor<1> {
        dist_loss(student, teacher, &self.config())
    }
}

/// DIST as a function: `τ²·(β·inter + γ·intra)` (see [`DistLoss`]).
///
/// The teacher's logits are detached. The configuration is not validated here;
/// [`DistLossConfig::init`] does that.
///
/// # Shapes
/// - student and teacher logits: `[batch, num_classes]`
/// - output: `[1]`
pub fn dist_loss(student: Tensor<2>, teacher: Tensor<2>, config: &DistLossConfig) -> Tensor<1> {
    let tau = config.tau;
    let y_s = softmax(student.div_scalar(tau), 1);
    let y_t = softmax(teacher.detach().div_scalar(tau), 1);
    let inter = pearson_rows(y_s.clone(), y_t.clone())
        .mean()
        .neg()
        .add_scalar(1.0);
    let intra = pearson_rows(y_s.transpose(), y_t.transpose())
        .mean()
        .neg()
        .add_scalar(1.0);
    inter
        .mul_scalar(config.beta)
        .add(intra.mul_scalar(config.gamma))
        .mul_scalar(tau * tau)
}

/// The Pearson correlation of each row of `a` with the same row of `b`: `[N, M]` to `[N, 1]`.
fn pearson_rows(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    let a = a.clone().sub(a.mean_dim(1));
    let b = b.clone().sub(b.mean_dim(1));
    let covariance = a.clone().mul(b.clone()).sum_dim(1);
    covariance.div(norm_last(a).mul(norm_last(b)).add_scalar(EPS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{LossFixture, values};

    #[derive(Debug, serde::Deserialize)]
    struct Params {
        beta: f64,
        gamma: f64,
        tau: f64,
    }

    // Golden values: tests/fixtures/dist.json, written by tools/reference/loss_bank.py
    // (PyTorch 2.9.0, float32, B = 6, K = 7):
    //
    // ```python
    // def pearson(a, b, eps=1e-8):
    //     a = a - a.mean(dim=1, keepdim=True)
    //     b = b - b.mean(dim=1, keepdim=True)
    //     return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + eps)
    //
    // def dist(s, t, beta, gamma, tau):
    //     y_s = F.softmax(s / tau, dim=1)
    //     y_t = F.softmax(t / tau, dim=1)
    //     inter = 1.0 - pearson(y_s, y_t).mean()
    //     intra = 1.0 - pearson(y_s.t(), y_t.t()).mean()
    //     return tau * tau * (beta * inter + gamma * intra)
    //
    // # (beta, gamma, tau) in (1, 1, 1), (2, 2, 4), (1, 0.5, 2) on "base" (randn * 3) and
    // # (1, 1, 1) on "saturated" (randn * 40) logits.
    // ```
    #[test]
    fn matches_pytorch_and_its_gradient() {
        let _rng = crate::test_rng::lock();
        let fixture =
            LossFixture::<Params>::parse(include_str!("../tests/fixtures/dist.json"), "dist.json");
        let cases = fixture.check::<2>("dist", |p, s, t, _| {
            DistLossConfig::new()
                .with_beta(p.beta)
                .with_gamma(p.gamma)
                .with_tau(p.tau)
                .init()
                .unwrap()
                .forward(s, t)
        });
        assert_eq!(cases, 4);
    }

    #[test]
    fn is_zero_for_identical_logits_and_ignores_a_shift_of_the_logits() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let s = Tensor::<2>::from_floats(
            [[1.0, -2.0, 0.5], [0.0, 3.0, -1.0], [2.0, 2.0, 0.0]],
            &device,
        );
        let loss = DistLossConfig::new().init().unwrap();
        let same = values(loss.forward(s.clone(), s.clone()))[0];
        assert!(same.abs() < 1e-6, "{same}");
        // A per-sample shift leaves the softmax, hence the loss, unchanged.
        let t = Tensor::<2>::from_floats(
            [[0.0, 1.0, 2.0], [1.0, 0.0, 0.0], [-1.0, 3.0, 0.5]],
            &device,
        );
        let a = values(loss.forward(s.clone(), t.clone()))[0];
        let b = values(loss.forward(s.add_scalar(5.0), t))[0];
        assert!((a - b).abs() < 1e-5 && a > 0.0, "{a} vs {b}");
    }

    #[test]
    fn rejects_bad_hyper_parameters_and_shapes() {
        let _rng = crate::test_rng::lock();
        for (config, key) in [
            (DistLossConfig::new().with_beta(-1.0), "beta"),
            (DistLossConfig::new().with_gamma(f64::NAN), "gamma"),
            (DistLossConfig::new().with_tau(0.0), "tau"),
        ] {
            let err = config.init().unwrap_err();
            assert_eq!(err.key(), key);
            assert!(
                err.to_string().starts_with(&format!("`{key}` is ")),
                "{err}"
            );
        }
        let config = DistLossConfig::new();
        assert!(config.check_shapes(&[100], &[100]).is_ok());
        let err = config.check_shapes(&[100], &[10]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("dist cannot pair student shape [100] with teacher shape [10]"),
            "{err}"
        );
    }
}
