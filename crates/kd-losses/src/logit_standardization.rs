use burn::module::Module;
use burn::prelude::*;

use crate::ops::norm_last;
use crate::{LossError, check, kl_div_logits};

/// The constant added to the standard deviation (the authors' code).
const EPS: f64 = 1e-7;

/// Configuration of a [`LogitStandardizedKdLoss`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogitStandardizedKdLossConfig {
    /// Base temperature `T` applied to the standardized logits; the loss is multiplied by `T²`.
    /// Default: 2, the paper's CIFAR-100 setting for KD.
    pub temperature: f64,
}

impl Default for LogitStandardizedKdLossConfig {
    fn default() -> Self {
        Self { temperature: 2.0 }
    }
}

impl LogitStandardizedKdLossConfig {
    /// The default configuration: `T = 2`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the base temperature.
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }

    /// Checks the configuration and builds the loss: `temperature` must be positive and finite.
    pub fn init(&self) -> Result<LogitStandardizedKdLoss, LossError> {
        check::positive(
            "temperature",
            self.temperature,
            "the paper uses 2 on CIFAR-100",
        )?;
        Ok(LogitStandardizedKdLoss {
            temperature: self.temperature,
        })
    }

    /// Checks that student and teacher logits can be compared: per-sample shapes `[K]` with the
    /// same `K ≥ 2` (a standard deviation needs two values).
    pub fn check_shapes(&self, student: &[usize], teacher: &[usize]) -> Result<(), LossError> {
        check::logits("logit_standardization", student, teacher)?;
        if student[0] < 2 {
            return Err(LossError::TooFewClasses {
                key: String::new(),
                loss: "logit_standardization".into(),
                min: 2,
                got: student[0],
                reason: "the z-score needs the standard deviation of two or more logits".into(),
            });
        }
        Ok(())
    }
}

/// Knowledge distillation on z-scored logits: each sample's logits are standardized (zero
/// mean, unit standard deviation) before Hinton et al.'s KD loss, so that the student matches
/// the teacher's logit *relations* rather than their range.
///
/// ```text
/// Z(z) = (z − mean(z)) / (std(z) + 1e-7)     per sample, over the K classes,
///        std(z) = sqrt(Σ_k (z_k − mean(z))² / (K − 1))      (unbiased, torch.std)
/// loss = T² · (1/B)·Σ_b KL(softmax(Z(t)/T) ‖ softmax(Z(s)/T))
/// ```
///
/// Paper: Sun, Ren, Li, Wang and Cao, "Logit Standardization in Knowledge Distillation"
/// (CVPR 2024, <https://arxiv.org/abs/2403.01427>). The unbiased standard deviation and the
/// `1e-7` added to it follow the authors' code (`logit.std(dim=-1)`, `1e-7 + stdv`). Default
/// base temperature `T = 2` (their CIFAR-100 KD setting, where the recipe weights this loss by
/// 9). The teacher's logits are detached.
///
/// # Shapes
/// - student and teacher logits: `[batch, num_classes]`, `num_classes ≥ 2`
/// - output: `[1]`
#[derive(Module, Debug)]
pub struct LogitStandardizedKdLoss {
    temperature: f64,
}

impl LogitStandardizedKdLoss {
    /// The base temperature `T`.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The configuration this loss was built from.
    pub fn config(&self) -> LogitStandardizedKdLossConfig {
        LogitStandardizedKdLossConfig {
            temperature: self.temperature,
        }
    }

    /// The loss for a batch (see [`logit_standardized_kd_loss`]).
    pub fn forward(&self, student: Tensor<2>, teacher: Tensor<2>) -> Tensor<1> {
        logit_standardized_kd_loss(student, teacher, &self.config())
    }
}

/// KD on z-scored logits as a function (see [`LogitStandardizedKdLoss`]).
///
/// The teacher's logits are detached. The configuration is not validated here;
/// [`LogitStandardizedKdLossConfig::init`] does that.
///
/// # Shapes
/// - student and teacher logits: `[batch, num_classes]`, `num_classes ≥ 2`
/// - output: `[1]`
pub fn logit_standardized_kd_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    config: &LogitStandardizedKdLossConfig,
) -> Tensor<1> {
    let t = config.temperature;
    kl_div_logits(standardize(student), standardize(teacher.detach()), t).mul_scalar(t * t)
}

/// `(z − mean(z)) / (std(z) + 1e-7)` over each row, with the unbiased standard deviation.
fn standardize(z: Tensor<2>) -> Tensor<2> {
    let [_, classes] = z.dims();
    let centered = z.clone().sub(z.mean_dim(1));
    let std = norm_last(centered.clone()).div_scalar(((classes - 1) as f64).sqrt());
    centered.div(std.add_scalar(EPS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{LossFixture, assert_close, values};
    use crate::{HintonKdLossConfig, hinton_kd_loss};

    #[derive(Debug, serde::Deserialize)]
    struct Params {
        temperature: f64,
    }

    // Golden values: tests/fixtures/logit_standardization.json, written by
    // tools/reference/loss_bank.py (PyTorch 2.9.0, float32, B = 6, K = 7):
    //
    // ```python
    // def standardize(z):
    //     return (z - z.mean(dim=1, keepdim=True)) / (z.std(dim=1, keepdim=True) + 1e-7)
    //
    // def logit_standardization(s, t, temperature):
    //     return hinton_kd(standardize(s), standardize(t), temperature)
    //     # hinton_kd(s, t, T) = T^2 * batch-mean KL(softmax(t / T) || softmax(s / T))
    //
    // # T in (1, 2, 4) on "base" (randn * 3) and T = 2 on "saturated" (randn * 40) logits.
    // ```
    #[test]
    fn matches_pytorch_and_its_gradient() {
        let _rng = crate::test_rng::lock();
        let fixture = LossFixture::<Params>::parse(
            include_str!("../tests/fixtures/logit_standardization.json"),
            "logit_standardization.json",
        );
        let cases = fixture.check::<2>("logit_standardization", |p, s, t, _| {
            LogitStandardizedKdLossConfig::new()
                .with_temperature(p.temperature)
                .init()
                .unwrap()
                .forward(s, t)
        });
        assert_eq!(cases, 4);
    }

    #[test]
    fn ignores_the_scale_and_shift_of_each_sample_s_logits() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let s = Tensor::<2>::from_floats([[1.0, -2.0, 0.5, 4.0], [0.0, 3.0, -1.0, 1.0]], &device);
        let t = Tensor::<2>::from_floats([[2.0, 0.0, 1.0, 5.0], [1.0, 2.0, -3.0, 0.0]], &device);
        let loss = LogitStandardizedKdLossConfig::new().init().unwrap();
        let base = values(loss.forward(s.clone(), t.clone()))[0];
        let scaled = values(loss.forward(s.clone().mul_scalar(7.0).add_scalar(-3.0), t.clone()))[0];
        assert_close(scaled, base, "scaled and shifted student logits");
        // It is Hinton KD on the standardized logits.
        let hinton = hinton_kd_loss(
            standardize(s),
            standardize(t),
            &HintonKdLossConfig::new().with_temperature(2.0),
        );
        assert_close(values(hinton)[0], base, "Hinton KD on z-scores");
    }

    #[test]
    fn rejects_a_bad_temperature_and_fewer_than_two_classes() {
        let _rng = crate::test_rng::lock();
        let err = LogitStandardizedKdLossConfig::new()
            .with_temperature(-2.0)
            .init()
            .unwrap_err();
        assert_eq!(err.key(), "temperature");
        assert!(err.to_string().starts_with("`temperature` is -2 "), "{err}");
        let config = LogitStandardizedKdLossConfig::new();
        assert!(config.check_shapes(&[10], &[10]).is_ok());
        let err = config.check_shapes(&[1], &[1]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("logit_standardization needs at least 2 classes, got 1"),
            "{err}"
        );
        assert!(config.check_shapes(&[10], &[12]).is_err());
    }
}
