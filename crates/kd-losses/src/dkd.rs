use burn::module::Module;
use burn::prelude::*;
use kd_core::Targets;

use crate::ops::{kl_batchmean, log_sum_exp_rows};
use crate::{LossError, check};

/// The fewest classes DKD is defined for: its non-target term needs two non-target classes.
const MIN_CLASSES: usize = 3;

/// Configuration of a [`DkdLoss`], with the paper's CIFAR-100 defaults.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DkdLossConfig {
    /// Weight `α` of the target-class term (TCKD). Default: 1.
    pub alpha: f64,
    /// Weight `β` of the non-target-class term (NCKD). Default: 8, the paper's value for most
    /// CIFAR-100 pairs (the official configs use 6 or 2 for some pairs, 0.5 on ImageNet).
    pub beta: f64,
    /// Temperature `T`. Default: 4 (CIFAR-100; 1 on ImageNet).
    pub temperature: f64,
    /// Epochs of linear warm-up of the whole loss. Default: 20 (CIFAR-100; 1 on ImageNet);
    /// 0 turns the warm-up off. See [`DkdLoss::warmup_factor`].
    pub warmup_epochs: usize,
}

impl Default for DkdLossConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            beta: 8.0,
            temperature: 4.0,
            warmup_epochs: 20,
        }
    }
}

impl DkdLossConfig {
    /// The paper's CIFAR-100 defaults: `α = 1`, `β = 8`, `T = 4`, 20 warm-up epochs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the weight `α` of the target-class term.
    pub fn with_alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Sets the weight `β` of the non-target-class term.
    pub fn with_beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// Sets the temperature.
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }

    /// Sets the number of warm-up epochs (0 for none).
    pub fn with_warmup_epochs(mut self, warmup_epochs: usize) -> Self {
        self.warmup_epochs = warmup_epochs;
        self
    }

    /// Checks the configuration and builds the loss: `alpha` and `beta` must be non-negative
    /// and finite, `temperature` positive and finite.
    ///
    /// The number of classes is not known here; [`DkdLossConfig::check_shapes`] rejects fewer
    /// than 3.
    pub fn init(&self) -> Result<DkdLoss, LossError> {
        check::non_negative("alpha", self.alpha, "the paper uses 1")?;
        check::non_negative(
            "beta",
            self.beta,
            "the paper uses 8 on CIFAR-100 and 0.5 on ImageNet",
        )?;
        check::positive(
            "temperature",
            self.temperature,
            "the paper uses 4 on CIFAR-100 and 1 on ImageNet",
        )?;
        Ok(DkdLoss {
            alpha: self.alpha,
            beta: self.beta,
            temperature: self.temperature,
            warmup_epochs: self.warmup_epochs,
        })
    }

    /// Checks that student and teacher logits can be compared: per-sample shapes `[K]` with the
    /// same `K`, and `K ≥ 3` (with 2 classes there is a single non-target class and NCKD is
    /// undefined).
    pub fn check_shapes(&self, student: &[usize], teacher: &[usize]) -> Result<(), LossError> {
        check::logits("dkd", student, teacher)?;
        if student[0] < MIN_CLASSES {
            return Err(LossError::TooFewClasses {
                key: String::new(),
                loss: "dkd".into(),
                min: MIN_CLASSES,
                got: student[0],
                reason: "its non-target term compares distributions over two or more \
                         non-target classes; use hinton_kd for binary problems"
                    .into(),
            });
        }
        Ok(())
    }
}

/// Decoupled Knowledge Distillation: the KD loss split into a target-class term (TCKD) and a
/// non-target-class term (NCKD), weighted separately.
///
/// ```text
/// p   = softmax(logits / T);  y = the target class
/// b   = [p_y, 1 − p_y]                            (target vs. the rest)
/// p̂_k = p_k / (1 − p_y) for k ≠ y                 (the non-target classes alone)
/// TCKD = (1/B)·Σ_b KL(b_t ‖ b_s),  NCKD = (1/B)·Σ_b KL(p̂_t ‖ p̂_s)
/// loss = w · T² · (α·TCKD + β·NCKD)
/// ```
///
/// Paper: Zhao, Cui, Song, Qiu and Liang, "Decoupled Knowledge Distillation" (CVPR 2022,
/// <https://arxiv.org/abs/2203.08679>). Defaults, the paper's CIFAR-100 setting: `α = 1`,
/// `β = 8`, `T = 4`, 20 warm-up epochs (ImageNet: `β = 0.5`, `T = 1`, 1 epoch).
///
/// **Warm-up.** The official code multiplies the whole loss by
/// `w = min(epoch / warmup_epochs, 1)` with epochs counted from 1. That is a training-schedule
/// concern, so [`DkdLoss::forward`] uses `w = 1` (the loss after the warm-up) and
/// [`DkdLoss::forward_at_epoch`] takes the 0-based epoch index and applies
/// [`DkdLoss::warmup_factor`]; the pure function [`dkd_loss`] takes `w` itself.
///
/// Soft targets are reduced to their argmax ([`Targets::class_indices`]). Both
/// log-distributions come from log-sum-exps of the logits (`log(1 − p_y)` is the log-sum-exp
/// of the non-target logits minus that of all logits), so no probability is formed and then
/// logged, and no "−1000 mask" is needed: the non-target logits are gathered. The teacher's
/// logits are detached.
///
/// # Shapes
/// - student and teacher logits: `[batch, num_classes]`, `num_classes ≥ 3`
/// - targets: [`Targets::Hard`] `[batch]` or [`Targets::Soft`] `[batch, num_classes]`
/// - output: `[1]`
#[derive(Module, Debug)]
pub struct DkdLoss {
    alpha: f64,
    beta: f64,
    temperature: f64,
    warmup_epochs: usize,
}

impl DkdLoss {
    /// The configuration this loss was built from.
    pub fn config(&self) -> DkdLossConfig {
        DkdLossConfig {
            alpha: self.alpha,
            beta: self.beta,
            temperature: self.temperature,
            warmup_epochs: self.warmup_epochs,
        }
    }

    /// The warm-up factor of the epoch with 0-based index `epoch`:
    /// `min((epoch + 1) / warmup_epochs, 1)`, or 1 without warm-up.
    ///
    /// This is the official code's `min(epoch / warmup, 1)` with its 1-based epochs: with 20
    /// warm-up epochs the first epoch (index 0) gets 1/20 and the loss reaches its full weight
    /// in the 20th (index 19).
    pub fn warmup_factor(&self, epoch: usize) -> f64 {
        if self.warmup_epochs == 0 {
            1.0
        } else {
            ((epoch + 1) as f64 / self.warmup_epochs as f64).min(1.0)
        }
    }

    /// The loss after the warm-up (factor 1; see [`dkd_loss`]).
    pub fn forward(&self, student: Tensor<2>, teacher: Tensor<2>, targets: &Targets) -> Tensor<1> {
        dkd_loss(student, teacher, targets, &self.config(), 1.0)
    }

    /// The loss during the epoch with 0-based index `epoch`, scaled by
    /// [`DkdLoss::warmup_factor`].
    pub fn forward_at_epoch(
        &self,
        student: Tensor<2>,
        teacher: Tensor<2>,
        targets: &Targets,
        epoch: usize,
    ) -> Tensor<1> {
        let factor = self.warmup_factor(epoch);
        dkd_loss(student, teacher, targets, &self.config(), factor)
    }
}

/// Decoupled KD as a function: `warmup_factor · T² · (α·TCKD + β·NCKD)` (see [`DkdLoss`]).
///
/// `config.warmup_epochs` is not read; the caller passes the factor. The teacher's logits are
/// detached. The configuration is not validated here ([`DkdLossConfig::init`] does that), and
/// neither are the class indices, which must lie in `[0, num_classes)`.
///
/// # Shapes
/// - student and teacher logits: `[batch, num_classes]`, `num_classes ≥ 3`
/// - targets: [`Targets::Hard`] `[batch]` or [`Targets::Soft`] `[batch, num_classes]`
/// - output: `[1]`
pub fn dkd_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    targets: &Targets,
    config: &DkdLossConfig,
    warmup_factor: f64,
) -> Tensor<1> {
    let [batch, classes] = student.dims();
    let t = config.temperature;
    let target = targets.class_indices().unsqueeze_dim::<2>(1); // [B, 1]
    // The non-target classes of each sample, in order: j + (j >= y) for j in 0..K-1.
    let j = Tensor::<1, Int>::arange(0..(classes - 1) as i64, &target.device())
        .unsqueeze_dim::<2>(0)
        .expand([batch, classes - 1]);
    let shift = j
        .clone()
        .greater_equal(target.clone().expand([batch, classes - 1]))
        .int();
    let others = j.add(shift); // [B, K-1]

    let (binary_s, rest_s) = decouple(student.div_scalar(t), target.clone(), others.clone());
    let (binary_t, rest_t) = decouple(teacher.detach().div_scalar(t), target, others);
    let tckd = kl_batchmean(binary_t, binary_s);
    let nckd = kl_batchmean(rest_t, rest_s);
    tckd.mul_scalar(config.alpha)
        .add(nckd.mul_scalar(config.beta))
        .mul_scalar(warmup_factor * t * t)
}

/// The log-probabilities `log b = [log p_y, log(1 − p_y)]` (`[B, 2]`) and `log p̂` over the
/// non-target classes (`[B, K−1]`) of the softened logits `z`.
fn decouple(
    z: Tensor<2>,
    target: Tensor<2, Int>,
    others: Tensor<2, Int>,
) -> (Tensor<2>, Tensor<2>) {
    let z_target = z.clone().gather(1, target); // [B, 1]
    let z_others = z.clone().gather(1, others); // [B, K-1]
    let lse_all = log_sum_exp_rows(z);
    let lse_others = log_sum_exp_rows(z_others.clone());
    let binary = Tensor::cat(
        vec![
            z_target.sub(lse_all.clone()),
            lse_others.clone().sub(lse_all),
        ],
        1,
    );
    (binary, z_others.sub(lse_others))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{LossFixture, assert_close, values};

    #[derive(Debug, serde::Deserialize)]
    struct Params {
        alpha: f64,
        beta: f64,
        temperature: f64,
        warmup_factor: f64,
    }

    fn fixture() -> LossFixture<Params> {
        LossFixture::parse(include_str!("../tests/fixtures/dkd.json"), "dkd.json")
    }

    // Golden values: tests/fixtures/dkd.json, written by tools/reference/loss_bank.py
    // (PyTorch 2.9.0, float32, B = 6, K = 7), from the paper's definitions:
    //
    // ```python
    // def dkd(s, t, target, alpha, beta, temperature, warmup_factor):
    //     T = temperature
    //     p_s = F.softmax(s / T, dim=1)
    //     p_t = F.softmax(t / T, dim=1)
    //     gt = F.one_hot(target, s.shape[1]).bool()
    //     b, k = s.shape
    //
    //     def split(p):
    //         target_p = p[gt].view(b, 1)
    //         rest = p[~gt].view(b, k - 1)
    //         binary = torch.cat([target_p, rest.sum(dim=1, keepdim=True)], dim=1)
    //         return binary, rest / rest.sum(dim=1, keepdim=True)
    //
    //     b_s, hat_s = split(p_s)
    //     b_t, hat_t = split(p_t)
    //     tckd = (b_t * (b_t.log() - b_s.log())).sum(dim=1).mean()
    //     nckd = (hat_t * (hat_t.log() - hat_s.log())).sum(dim=1).mean()
    //     return warmup_factor * T * T * (alpha * tckd + beta * nckd)
    //
    // # (alpha, beta, T, targets, factor) in (1, 8, 4, hard, 1), (1, 8, 4, soft, 1),
    // # (1, 2, 1, hard, 1), (0.5, 6, 2, soft, 0.25); soft targets enter through their argmax.
    // # It agrees with the official code's "-1000 mask" form to float32 precision.
    // ```
    #[test]
    fn matches_pytorch_and_its_gradient() {
        let _rng = crate::test_rng::lock();
        let cases = fixture().check::<2>("dkd", |p, s, t, targets| {
            let config = DkdLossConfig::new()
                .with_alpha(p.alpha)
                .with_beta(p.beta)
                .with_temperature(p.temperature);
            let targets = targets.expect("dkd cases have targets");
            if p.warmup_factor == 1.0 {
                config.init().unwrap().forward(s, t, targets)
            } else {
                dkd_loss(s, t, targets, &config, p.warmup_factor)
            }
        });
        assert_eq!(cases, 4);
    }

    #[test]
    fn warms_up_linearly_over_the_configured_epochs() {
        let _rng = crate::test_rng::lock();
        let loss = DkdLossConfig::new().init().unwrap();
        assert_eq!(loss.warmup_factor(0), 1.0 / 20.0);
        assert_eq!(loss.warmup_factor(9), 0.5);
        assert_eq!(loss.warmup_factor(19), 1.0);
        assert_eq!(loss.warmup_factor(200), 1.0);
        let none = DkdLossConfig::new().with_warmup_epochs(0).init().unwrap();
        assert_eq!(none.warmup_factor(0), 1.0);

        let fixture = fixture();
        let device = Device::flex();
        let pair = &fixture.inputs["base"];
        let (s, t) = (
            pair.student.tensor::<2>(&device),
            pair.teacher.tensor::<2>(&device),
        );
        let targets = fixture.targets(&fixture.cases[0], &device).unwrap();
        let full = values(loss.forward(s.clone(), t.clone(), &targets))[0];
        let early = values(loss.forward_at_epoch(s, t, &targets, 4))[0];
        assert_close(early, full * 0.25, "epoch index 4 of 20");
        assert_close(full, fixture.cases[0].loss, "forward after the warm-up");
    }

    #[test]
    fn is_zero_when_the_student_matches_the_teacher() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let logits =
            Tensor::<2>::from_floats([[1.0, -2.0, 0.5, 3.0], [0.0, 4.0, -1.0, 2.0]], &device);
        let targets = Targets::Hard(Tensor::<1, Int>::from_ints([3, 0], &device));
        let loss = DkdLossConfig::new().init().unwrap();
        let v = values(loss.forward(logits.clone(), logits, &targets))[0];
        assert!(v.abs() < 1e-6, "{v}");
    }

    #[test]
    fn rejects_bad_hyper_parameters_naming_the_key() {
        let _rng = crate::test_rng::lock();
        let cases = [
            (DkdLossConfig::new().with_alpha(-1.0), "alpha"),
            (DkdLossConfig::new().with_alpha(f64::NAN), "alpha"),
            (DkdLossConfig::new().with_beta(-0.5), "beta"),
            (DkdLossConfig::new().with_beta(f64::INFINITY), "beta"),
            (DkdLossConfig::new().with_temperature(0.0), "temperature"),
        ];
        for (config, key) in cases {
            let err = config.init().unwrap_err();
            assert_eq!(err.key(), key, "{config:?}");
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("`{key}` is ")), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
        assert!(
            DkdLossConfig::new()
                .with_alpha(0.0)
                .with_beta(0.0)
                .init()
                .is_ok()
        );
    }

    #[test]
    fn needs_at_least_three_classes() {
        let _rng = crate::test_rng::lock();
        let config = DkdLossConfig::new();
        let err = config.check_shapes(&[2], &[2]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("dkd needs at least 3 classes, got 2"),
            "{msg}"
        );
        assert!(msg.contains("hinton_kd"), "{msg}");
        assert!(!msg.ends_with('.'), "{msg}");
        assert!(config.check_shapes(&[3], &[3]).is_ok());
        assert!(config.check_shapes(&[100], &[100]).is_ok());
        let err = config.check_shapes(&[100], &[1000]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("dkd cannot pair student shape [100] with teacher shape [1000]"),
            "{err}"
        );
    }
}
