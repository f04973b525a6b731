use burn::module::Module;
use burn::prelude::*;

use crate::ops::{flatten_per_sample, norm_last};
use crate::{LossError, check};

/// Configuration of a [`PktLoss`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PktLossConfig {
    /// The `ε` added to the norms and inside the logarithm. Default: 1e-7, the authors' code.
    pub eps: f64,
}

impl Default for PktLossConfig {
    fn default() -> Self {
        Self { eps: 1e-7 }
    }
}

impl PktLossConfig {
    /// The authors' default: `ε = 1e-7`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `ε`.
    pub fn with_eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Checks the configuration and builds the loss: `eps` must be positive and finite.
    pub fn init(&self) -> Result<PktLoss, LossError> {
        check::positive("eps", self.eps, "the authors' code uses 1e-7")?;
        Ok(PktLoss { eps: self.eps })
    }

    /// Checks that the features can be compared: any per-sample shapes with at least one
    /// element each (they are flattened, and their sizes may differ).
    pub fn check_shapes(&self, student: &[usize], teacher: &[usize]) -> Result<(), LossError> {
        check::non_empty("pkt", student, teacher)
    }
}

/// Probabilistic knowledge transfer: each sample's cosine similarities to the other samples of
/// the batch, turned into a probability distribution, are matched with the KL divergence.
///
/// ```text
/// x̂_i   = x_i / (‖x_i‖₂ + ε)                        (x_i: sample i's flattened features)
/// K_ij  = (x̂_iᵀ x̂_j + 1) / 2                         (cosine similarity mapped to [0, 1])
/// P_ij  = K_ij / Σ_j K_ij                            (conditional distribution per row)
/// loss  = (1/B²)·Σ_ij P^t_ij · log((P^t_ij + ε) / (P^s_ij + ε))
/// ```
///
/// Paper: Passalis and Tefas, "Learning Deep Representations with Probabilistic Knowledge
/// Transfer" (ECCV 2018, <https://arxiv.org/abs/1803.10837>), with the cosine-similarity
/// kernel. The `ε` placements and the mean over all `B²` entries follow the authors' code;
/// default `ε = 1e-7`. Student and teacher widths may differ. The teacher's features are
/// detached.
///
/// # Shapes
/// - student features: `[batch, ...]`; teacher features: `[batch, ...]` (flattened per sample)
/// - output: `[1]`
#[derive(Module, Debug)]
pub struct PktLoss {
    eps: f64,
}

impl PktLoss {
    /// The configuration this loss was built from.
    pub fn config(&self) -> PktLossConfig {
        PktLossConfig { eps: self.eps }
    }

    /// The loss for a batch (see [`pkt_loss`]).
    pub fn forward<const D: usize>(&self, student: Tensor<D>, teacher: Tensor<D>) -> Tensor<1> {
        pkt_loss(student, teacher, &self.config())
    }
}

/// Probabilistic knowledge transfer as a function (see [`PktLoss`]).
///
/// The teacher's features are detached. The configuration is not validated here;
/// [`PktLossConfig::init`] does that.
///
/// # Shapes
/// - student features: `[batch, ...]`; teacher features: `[batch, ...]` (flattened per sample)
/// - output: `[1]`
pub fn pkt_loss<const D: usize>(
    student: Tensor<D>,
    teacher: Tensor<D>,
    config: &PktLossConfig,
) -> Tensor<1> {
    let eps = config.eps;
    let p_s = similarity_distribution(student, eps);
    let p_t = similarity_distribution(teacher.detach(), eps);
    let log_ratio = p_t
        .clone()
        .add_scalar(eps)
        .log()
        .sub(p_s.add_scalar(eps).log());
    p_t.mul(log_ratio).mean()
}

/// The rows of the `[B, B]` matrix of `(cos + 1) / 2`, each normalised to sum to 1.
fn similarity_distribution<const D: usize>(x: Tensor<D>, eps: f64) -> Tensor<2> {
    let x = flatten_per_sample(x);
    let x = x.clone().div(norm_last(x).add_scalar(eps));
    let kernel = x
        .clone()
        .matmul(x.transpose())
        .add_scalar(1.0)
        .div_scalar(2.0);
    kernel.clone().div(kernel.sum_dim(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{LossFixture, values};

    #[derive(Debug, serde::Deserialize)]
    struct Params {
        eps: f64,
    }

    // Golden values: tests/fixtures/pkt.json, written by tools/reference/loss_bank.py
    // (PyTorch 2.9.0, float32, B = 6):
    //
    // ```python
    // def pkt(s, t, eps):
    //     b = s.shape[0]
    //
    //     def probs(x):
    //         x = x.reshape(b, -1)
    //         x = x / (x.norm(dim=1, keepdim=True) + eps)
    //         k = (x @ x.t() + 1.0) / 2.0
    //         return k / k.sum(dim=1, keepdim=True)
    //
    //     p_s = probs(s)
    //     p_t = probs(t)
    //     return (p_t * torch.log((p_t + eps) / (p_s + eps))).mean()
    //
    // # eps = 1e-7 on emb_10_12 (randn(6, 10) vs randn(6, 12) * 2), emb_10_10 and maps_4_8
    // # (randn(6, 4, 5, 5) vs randn(6, 8, 5, 5), flattened); eps = 1e-3 on emb_10_12.
    // ```
    #[test]
    fn matches_pytorch_and_its_gradient() {
        let _rng = crate::test_rng::lock();
        let fixture =
            LossFixture::<Params>::parse(include_str!("../tests/fixtures/pkt.json"), "pkt.json");
        let loss = |p: &Params| PktLossConfig::new().with_eps(p.eps).init().unwrap();
        let embeddings = fixture.check::<2>("pkt", |p, s, t, _| loss(p).forward(s, t));
        let maps = fixture.check::<4>("pkt", |p, s, t, _| loss(p).forward(s, t));
        assert_eq!((embeddings, maps), (3, 1));
    }

    #[test]
    fn is_near_zero_for_identical_directions() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let s = Tensor::<2>::from_floats(
            [[1.0, 2.0, 0.0], [0.5, -1.0, 2.0], [3.0, 0.0, 1.0]],
            &device,
        );
        let loss = PktLossConfig::new().init().unwrap();
        let v = values(loss.forward(s.clone(), s.clone().mul_scalar(2.0)))[0];
        assert!(v.abs() < 1e-6, "{v}");
    }

    #[test]
    fn rejects_a_bad_eps_and_empty_features() {
        let _rng = crate::test_rng::lock();
        for bad in [0.0, -1e-7, f64::NAN] {
            let err = PktLossConfig::new().with_eps(bad).init().unwrap_err();
            assert_eq!(err.key(), "eps");
            assert!(err.to_string().starts_with("`eps` is "), "{err}");
        }
        let config = PktLossConfig::new();
        assert!(config.check_shapes(&[128], &[64, 4, 4]).is_ok());
        assert!(config.check_shapes(&[128], &[0]).is_err());
    }
}
