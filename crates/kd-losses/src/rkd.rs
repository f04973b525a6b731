use burn::module::Module;
use burn::prelude::*;

use crate::ops::{flatten_per_sample, normalize_last};
use crate::{LossError, check};

/// Configuration of an [`RkdLoss`]: the weights of its distance and angle terms.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RkdLossConfig {
    /// Weight `w_d` of the distance term. Default: 25.
    pub distance_weight: f64,
    /// Weight `w_a` of the angle term; 0 skips its `O(B³)` computation. Default: 50.
    pub angle_weight: f64,
}

impl Default for RkdLossConfig {
    fn default() -> Self {
        Self {
            distance_weight: 25.0,
            angle_weight: 50.0,
        }
    }
}

impl RkdLossConfig {
    /// The CIFAR-100 benchmark weights: distance 25, angle 50.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the weight of the distance term.
    pub fn with_distance_weight(mut self, distance_weight: f64) -> Self {
        self.distance_weight = distance_weight;
        self
    }

    /// Sets the weight of the angle term.
    pub fn with_angle_weight(mut self, angle_weight: f64) -> Self {
        self.angle_weight = angle_weight;
        self
    }

    /// Checks the configuration and builds the loss: both weights must be non-negative and
    /// finite.
    pub fn init(&self) -> Result<RkdLoss, LossError> {
        check::non_negative(
            "distance_weight",
            self.distance_weight,
            "the CIFAR-100 benchmarks use 25, the paper's metric learning 1",
        )?;
        check::non_negative(
            "angle_weight",
            self.angle_weight,
            "the CIFAR-100 benchmarks use 50, the paper's metric learning 2",
        )?;
        Ok(RkdLoss {
            distance_weight: self.distance_weight,
            angle_weight: self.angle_weight,
        })
    }

    /// Checks that the embeddings can be compared: any per-sample shapes with at least one
    /// element each (they are flattened, and their sizes may differ).
    pub fn check_shapes(&self, student: &[usize], teacher: &[usize]) -> Result<(), LossError> {
        check::non_empty("rkd", student, teacher)
    }
}

/// Relational knowledge distillation: the student preserves the teacher's distances between
/// pairs of samples and angles between triplets, in its own embedding space.
///
/// ```text
/// e_i = sample i's features, flattened
/// ψ_D(i, j) = ‖e_i − e_j‖ / μ,  μ = mean of ‖e_i − e_j‖ over the B·(B−1) pairs i ≠ j,
///             ψ_D(i, i) = 0
/// ψ_A(i, j, k) = ⟨u_ij, u_ik⟩,  u_ij = (e_j − e_i) / max(‖e_j − e_i‖, 1e-12)   (B³ triplets)
/// loss = w_d · mean huber(ψ_D(s) − ψ_D(t)) + w_a · mean huber(ψ_A(s) − ψ_A(t))
/// huber(x) = x²/2 if |x| < 1, |x| − 1/2 otherwise                              (smooth L1)
/// ```
///
/// Paper: Park, Kim, Lu and Cho, "Relational Knowledge Distillation" (CVPR 2019,
/// <https://arxiv.org/abs/1904.05068>). The distances follow the authors' code: squared
/// distances from `‖a‖² + ‖b‖² − 2aᵀb` floored at 1e-12 before the square root, a zero
/// diagonal, and the means of the Huber terms taken over all `B²` and `B³` entries. Default
/// weights 25 (distance) and 50 (angle) are those of the CIFAR-100 benchmark of Tian et al.
/// (CRD, ICLR 2020; RepDistiller's `RKDLoss`, also mdistiller's); the paper's metric-learning
/// experiments use 1 and 2 (its released command line, `--dist_ratio 1 --angle_ratio 2`).
///
/// Student and teacher widths may differ. A batch of one sample has no pairs: the loss is then
/// 0 (with a zero gradient) rather than NaN. The angle term costs `O(B²·N)` memory and
/// `O(B³·N)` time for `N` features per sample; a zero `angle_weight` skips it. The teacher's
/// features are detached.
///
/// # Shapes
/// - student features: `[batch, ...]`; teacher features: `[batch, ...]` (flattened per sample)
/// - output: `[1]`
#[derive(Module, Debug)]
pub struct RkdLoss {
    distance_weight: f64,
    angle_weight: f64,
}

impl RkdLoss {
    /// The configuration this loss was built from.
    pub fn config(&self) -> RkdLossConfig {
        RkdLossConfig {
            distance_weight: self.distance_weight,
            angle_weight: self.angle_weight,
        }
    }

    /// The loss for a batch (see [`rkd_loss`]).
    pub fn forward<const D: usize>(&self, student: Tensor<D>, teacher: Tensor<D>) -> Tensor<1> {
        rkd_loss(student, teacher, &self.config())
    }
}

/// Relational knowledge distillation as a function (see [`RkdLoss`]).
///
/// The teacher's features are detached. The configuration is not validated here;
/// [`RkdLossConfig::init`] does that.
///
/// # Shapes
/// - student features: `[batch, ...]`; teacher features: `[batch, ...]` (flattened per sample)
/// - output: `[1]`
pub fn rkd_loss<const D: usize>(
    student: Tensor<D>,
    teacher: Tensor<D>,
    config: &RkdLossConfig,
) -> Tensor<1> {
    let e_s = flatten_per_sample(student);
    let e_t = flatten_per_sample(teacher.detach());
    let batch = e_s.dims()[0];
    if batch < 2 {
        // No pairs: a zero that stays connected to the student's graph.
        return e_s.sum().mul_scalar(0.0);
    }
    let distance = smooth_l1_mean(
        normalized_distances(e_s.clone()),
        normalized_distances(e_t.clone()),
    )
    .mul_scalar(config.distance_weight);
    if config.angle_weight == 0.0 {
        return distance;
    }
    let angle = smooth_l1_mean(angles(e_s), angles(e_t)).mul_scalar(config.angle_weight);
    distance.add(angle)
}

/// Pairwise distances `[B, B]` divided by their mean over the pairs `i ≠ j` (`B ≥ 2`).
fn normalized_distances(e: Tensor<2>) -> Tensor<2> {
    let batch = e.dims()[0];
    let square_norms = e.clone().mul(e.clone()).sum_dim(1); // [B, 1]
    let squared = square_norms
        .clone()
        .add(square_norms.transpose())
        .sub(e.clone().matmul(e.transpose()).mul_scalar(2.0))
        .clamp_min(1e-12);
    let off_diagonal = Tensor::<2>::eye(batch, &squared.device())
        .neg()
        .add_scalar(1.0);
    let distances = squared.sqrt().mul(off_diagonal);
    let mean = distances
        .clone()
        .sum()
        .div_scalar((batch * (batch - 1)) as f64);
    distances.div(mean.unsqueeze_dim::<2>(1))
}

/// The cosines `⟨u_ij, u_ik⟩` of the angles at each sample `i` between the directions to
/// samples `j` and `k`: `[B, N]` to `[B, B, B]`.
fn angles(e: Tensor<2>) -> Tensor<3> {
    // directions[i, j] = e_j − e_i, normalised ([B, B, N]).
    let directions = normalize_last(e.clone().unsqueeze_dim::<3>(0).sub(e.unsqueeze_dim::<3>(1)));
    directions.clone().matmul(directions.swap_dims(1, 2))
}

/// The smooth-L1 (Huber, δ = 1) loss between `x` and `y`, averaged over all elements.
fn smooth_l1_mean<const D: usize>(x: Tensor<D>, y: Tensor<D>) -> Tensor<1> {
    let diff = x.sub(y);
    let abs = diff.clone().abs();
    let quadratic = diff.clone().mul(diff).mul_scalar(0.5);
    let small = abs.clone().lower_elem(1.0);
    abs.sub_scalar(0.5).mask_where(small, quadratic).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{LossFixture, assert_close, values};

    #[derive(Debug, serde::Deserialize)]
    struct Params {
        distance_weight: f64,
        angle_weight: f64,
    }

    // Golden values: tests/fixtures/rkd.json, written by tools/reference/loss_bank.py
    // (PyTorch 2.9.0, float32, B = 6):
    //
    // ```python
    // emb_10_12 = {"student": torch.randn(6, 10), "teacher": torch.randn(6, 12) * 2.0}
    // emb_10_10 = {"student": torch.randn(6, 10), "teacher": torch.randn(6, 10)}
    // maps_4_8 = {"student": torch.randn(6, 4, 5, 5), "teacher": torch.randn(6, 8, 5, 5)}
    //
    // def smooth_l1(x, y):
    //     d = (x - y).abs()
    //     return torch.where(d < 1.0, 0.5 * d * d, d - 0.5).mean()
    //
    // def pair_distances(e):
    //     sq = e.pow(2).sum(dim=1)
    //     d2 = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * (e @ e.t())).clamp_min(1e-12)
    //     return d2.sqrt() * (1.0 - torch.eye(e.shape[0]))
    //
    // def rkd(s, t, distance_weight, angle_weight):
    //     b = s.shape[0]
    //     e_s, e_t = s.reshape(b, -1), t.reshape(b, -1)
    //     pairs = b * (b - 1)
    //     d_s, d_t = pair_distances(e_s), pair_distances(e_t)
    //     d_s = d_s / (d_s.sum() / pairs)
    //     d_t = d_t / (d_t.sum() / pairs)
    //     distance = smooth_l1(d_s, d_t)
    //
    //     def angles(e):
    //         diff = row_normalize(e.unsqueeze(0) - e.unsqueeze(1))  # diff[i, j] = e_j - e_i
    //         return diff @ diff.transpose(1, 2)
    //
    //     angle = smooth_l1(angles(e_s), angles(e_t))
    //     return distance_weight * distance + angle_weight * angle
    //
    // # (w_d, w_a) = (25, 50), (1, 0), (0, 1) on emb_10_12, (1, 2) on emb_10_10,
    // # (25, 50) on maps_4_8 flattened. It agrees with the authors' pdist / RKdAngle code.
    // ```
    #[test]
    fn matches_pytorch_and_its_gradient() {
        let _rng = crate::test_rng::lock();
        let fixture =
            LossFixture::<Params>::parse(include_str!("../tests/fixtures/rkd.json"), "rkd.json");
        let loss = |p: &Params| {
            RkdLossConfig::new()
                .with_distance_weight(p.distance_weight)
                .with_angle_weight(p.angle_weight)
                .init()
                .unwrap()
        };
        let embeddings = fixture.check::<2>("rkd", |p, s, t, _| loss(p).forward(s, t));
        let maps = fixture.check::<4>("rkd", |p, s, t, _| loss(p).forward(s, t));
        assert_eq!((embeddings, maps), (4, 1));
    }

    #[test]
    fn is_invariant_to_scale_and_translation_and_zero_for_one_sample() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let s =
            Tensor::<2>::from_floats([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0], [-2.0, 1.0]], &device);
        let loss = RkdLossConfig::new().init().unwrap();
        let moved = s.clone().mul_scalar(3.0).add_scalar(-7.0);
        let v = values(loss.forward(s.clone(), moved))[0];
        assert!(v.abs() < 1e-5, "{v}");

        let train = device.clone().autodiff();
        let one = Tensor::<2>::from_floats([[1.0, 2.0]], &train).require_grad();
        let out = loss.forward(one.clone(), Tensor::<2>::from_floats([[0.0, 1.0]], &device));
        assert_close(values(out.clone())[0], 0.0, "one sample");
        let grad = values(one.grad(&out.backward()).unwrap());
        assert_eq!(grad, [0.0, 0.0]);
    }

    #[test]
    fn rejects_negative_weights_and_empty_features() {
        let _rng = crate::test_rng::lock();
        for (config, key) in [
            (
                RkdLossConfig::new().with_distance_weight(-1.0),
                "distance_weight",
            ),
            (
                RkdLossConfig::new().with_angle_weight(f64::NAN),
                "angle_weight",
            ),
        ] {
            let err = config.init().unwrap_err();
            assert_eq!(err.key(), key);
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("`{key}` is ")), "{msg}");
            assert!(msg.contains("non-negative"), "{msg}");
        }
        let config = RkdLossConfig::new();
        assert!(config.check_shapes(&[128], &[2048]).is_ok());
        assert!(config.check_shapes(&[64, 8, 8], &[2048]).is_ok());
        let err = config.check_shapes(&[0], &[2048]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("rkd cannot pair student shape [0]"),
            "{err}"
        );
    }
}
