use burn::module::Module;
use burn::prelude::*;

use crate::ops::{flatten_per_sample, normalize_last};
use crate::{LossError, check};

/// Configuration of a [`SimilarityPreservingLoss`]; the loss has no hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SimilarityPreservingLossConfig;

impl SimilarityPreservingLossConfig {
    /// The configuration (there is nothing to set).
    pub fn new() -> Self {
        Self
    }

    /// Builds the loss; it cannot fail, and returns a `Result` like every loss configuration.
    pub fn init(&self) -> Result<SimilarityPreservingLoss, LossError> {
        Ok(SimilarityPreservingLoss)
    }

    /// Checks that the features can be compared: any per-sample shapes with at least one
    /// element each (they are flattened, and their sizes may differ).
    pub fn check_shapes(&self, student: &[usize], teacher: &[usize]) -> Result<(), LossError> {
        check::non_empty("similarity_preserving", student, teacher)
    }
}

/// Similarity-preserving distillation: the student's batch similarity matrix should match the
/// teacher's, so that inputs that look alike to the teacher look alike to the student.
///
/// ```text
/// f   = features flattened per sample                          ([B, N])
/// G   = f·fᵀ with each row divided by max(its L2 norm, 1e-12)  ([B, B])
/// loss = ‖G_s − G_t‖_F² / B²
/// ```
///
/// Paper: Tung and Mori, "Similarity-Preserving Knowledge Distillation" (ICCV 2019,
/// <https://arxiv.org/abs/1907.09682>). No hyper-parameters; the paper's weight γ (3000 in the
/// CIFAR benchmarks) belongs to the recipe. Any feature shapes work, and student and teacher
/// sizes may differ, since only the `B × B` matrices are compared. The teacher's features are
/// detached.
///
/// # Shapes
/// - student features: `[batch, ...]`; teacher features: `[batch, ...]` (flattened per sample)
/// - output: `[1]`
#[derive(Module, Debug)]
pub struct SimilarityPreservingLoss;

impl SimilarityPreservingLoss {
    /// The configuration this loss was built from.
    pub fn config(&self) -> SimilarityPreservingLossConfig {
        SimilarityPreservingLossConfig
    }

    /// The loss for a batch (see [`similarity_preserving_loss`]).
    pub fn forward<const D: usize>(&self, student: Tensor<D>, teacher: Tensor<D>) -> Tensor<1> {
        similarity_preserving_loss(student, teacher)
    }
}

/// Similarity-preserving distillation as a function: `‖G_s − G_t‖_F² / B²` (see
/// [`SimilarityPreservingLoss`]).
///
/// The teacher's features are detached.
///
/// # Shapes
/// - student features: `[batch, ...]`; teacher features: `[batch, ...]` (flattened per sample)
/// - output: `[1]`
pub fn similarity_preserving_loss<const D: usize>(
    student: Tensor<D>,
    teacher: Tensor<D>,
) -> Tensor<1> {
    let batch = student.dims()[0];
    let diff = similarity(student).sub(similarity(teacher.detach()));
    diff.clone()
        .mul(diff)
        .sum()
        .div_scalar((batch * batch) as f64)
}

/// The row-normalised batch similarity matrix `[B, B]` of features `[B, ...]`.
fn similarity<const D: usize>(x: Tensor<D>) -> Tensor<2> {
    let f = flatten_per_sample(x);
    normalize_last(f.clone().matmul(f.transpose()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{LossFixture, values};

    // Golden values: tests/fixtures/similarity_preserving.json, written by
    // tools/reference/loss_bank.py (PyTorch 2.9.0, float32):
    //
    // ```python
    // maps_4_8 = {"student": torch.randn(6, 4, 5, 5), "teacher": torch.randn(6, 8, 5, 5)}
    // maps_4_4 = {"student": torch.randn(6, 4, 5, 5).relu(), "teacher": torch.randn(6, 4, 5, 5).relu()}
    // emb_10_12 = {"student": torch.randn(6, 10), "teacher": torch.randn(6, 12) * 2.0}
    // emb_10_10 = {"student": torch.randn(6, 10), "teacher": torch.randn(6, 10)}
    //
    // def similarity_preserving(s, t):
    //     b = s.shape[0]
    //     f_s = s.reshape(b, -1)
    //     f_t = t.reshape(b, -1)
    //     g_s = row_normalize(f_s @ f_s.t())   # x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    //     g_t = row_normalize(f_t @ f_t.t())
    //     return (g_s - g_t).pow(2).sum() / (b * b)
    // ```
    #[test]
    fn matches_pytorch_on_maps_and_embeddings() {
        let _rng = crate::test_rng::lock();
        let fixture = LossFixture::<serde::de::IgnoredAny>::parse(
            include_str!("../tests/fixtures/similarity_preserving.json"),
            "similarity_preserving.json",
        );
        let loss = SimilarityPreservingLossConfig::new().init().unwrap();
        assert_eq!(
            fixture.check::<4>("sp maps", |_, s, t, _| loss.forward(s, t)),
            2
        );
        assert_eq!(
            fixture.check::<2>("sp embeddings", |_, s, t, _| loss.forward(s, t)),
            2
        );
    }

    #[test]
    fn ignores_the_scale_of_the_features() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let s = Tensor::<2>::from_floats(
            [[1.0, 2.0, 0.0], [0.5, -1.0, 2.0], [3.0, 0.0, 1.0]],
            &device,
        );
        let v = values(similarity_preserving_loss(
            s.clone(),
            s.clone().mul_scalar(4.0),
        ))[0];
        assert!(v.abs() < 1e-6, "{v}");
        let t =
            Tensor::<2>::from_floats([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], &device);
        assert!(values(similarity_preserving_loss(s, t))[0] > 1e-3);
    }

    #[test]
    fn accepts_any_non_empty_shapes() {
        let _rng = crate::test_rng::lock();
        let config = SimilarityPreservingLossConfig::new();
        assert!(config.check_shapes(&[64, 8, 8], &[512]).is_ok());
        let err = config.check_shapes(&[64, 0, 8], &[512]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("similarity_preserving cannot pair student shape [64, 0, 8]"),
            "{err}"
        );
        assert_eq!(config.init().unwrap().config(), config);
    }
}
