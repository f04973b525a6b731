use burn::module::Module;
use burn::prelude::*;

use crate::{LossError, check, kl_div_logits};

/// Configuration of a [`HintonKdLoss`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HintonKdLossConfig {
    /// Temperature `T` that softens both distributions. Default: 4, the value of the CIFAR-100
    /// benchmarks (CRD, DKD); the paper explores several temperatures.
    pub temperature: f64,
}

impl Default for HintonKdLossConfig {
    fn default() -> Self {
        Self { temperature: 4.0 }
    }
}

impl HintonKdLossConfig {
    /// The default configuration: `T = 4`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the temperature.
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }

    /// Checks the configuration and builds the loss: `temperature` must be positive and finite.
    pub fn init(&self) -> Result<HintonKdLoss, LossError> {
        check::positive(
            "temperature",
            self.temperature,
            "the CIFAR-100 benchmarks use 4",
        )?;
        Ok(HintonKdLoss {
            temperature: self.temperature,
        })
    }

    /// Checks that student and teacher logits can be compared: per-sample shapes `[K]` with the
    /// same `K`.
    pub fn check_shapes(&self, student: &[usize], teacher: &[usize]) -> Result<(), LossError> {
        check::logits("hinton_kd", student, teacher)
    }
}

/// Hinton et al.'s soft-target distillation loss: the KL divergence from the teacher's
/// softened class distribution to the student's, times `T²`.
///
/// ```text
/// p = softmax(logits / T) over the classes
/// loss = T² · (1/B) · Σ_b Σ_k p_t·(log p_t − log p_s)
/// ```
///
/// Paper: Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network" (2015,
/// <https://arxiv.org/abs/1503.02531>). The `T²` factor keeps the gradient scale independent of
/// `T`. Default `T = 4`. This equals
/// `T² · nn.KLDivLoss(reduction="batchmean")(log_softmax(s / T), softmax(t / T))`.
/// The task loss and the weights of a recipe are not part of it.
///
/// The teacher's logits are constants: they may live on the plain device while the student's
/// are tracked, and they are detached if they are not.
///
/// # Shapes
/// - student and teacher logits: `[batch, num_classes]`
/// - output: `[1]`
#[derive(Module, Debug)]
pub struct HintonKdLoss {
    temperature: f64,
}

impl HintonKdLoss {
    /// The temperature `T`.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The configuration this loss was built from.
    pub fn config(&self) -> HintonKdLossConfig {
        HintonKdLossConfig {
            temperature: self.temperature,
        }
    }

    /// The loss for a batch (see [`hinton_kd_loss`]).
    pub fn forward(&self, student: Tensor<2>, teacher: Tensor<2>) -> Tensor<1> {
        hinton_kd_loss(student, teacher, &self.config())
    }
}

/// Hinton et al.'s distillation loss as a function:
/// `T² · KL(softmax(teacher / T) ‖ softmax(student / T))`, averaged over the batch.
///
/// The teacher's logits are detached. The configuration is not validated here;
/// [`HintonKdLossConfig::init`] does that.
///
/// # Shapes
/// - student and teacher logits: `[batch, num_classes]`
/// - output: `[1]`
pub fn hinton_kd_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    config: &HintonKdLossConfig,
) -> Tensor<1> {
    let t = config.temperature;
    kl_div_logits(student, teacher.detach(), t).mul_scalar(t * t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::LossFixture;

    #[derive(Debug, serde::Deserialize)]
    struct Params {
        temperature: f64,
    }

    // Golden values: tests/fixtures/hinton_kd.json, written by tools/reference/loss_bank.py
    // (PyTorch 2.9.0, float32, B = 6, K = 7):
    //
    // ```python
    // torch.manual_seed(20241105)
    // base = {"student": torch.randn(6, 7) * 3.0, "teacher": torch.randn(6, 7) * 3.0}
    // saturated = {"student": torch.randn(6, 7) * 40.0, "teacher": torch.randn(6, 7) * 40.0}
    //
    // def kl_batchmean(log_p_t, log_p_s):
    //     return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1).mean()
    //
    // def hinton_kd(s, t, temperature):
    //     T = temperature
    //     return T * T * kl_batchmean(F.log_softmax(t / T, dim=1), F.log_softmax(s / T, dim=1))
    //
    // # T in (1, 2.5, 4) on "base", T in (1, 4) on "saturated"; loss.backward() gives the
    // # gradient with respect to the student logits.
    // ```
    #[test]
    fn matches_pytorch_and_its_gradient() {
        let _rng = crate::test_rng::lock();
        let fixture = LossFixture::<Params>::parse(
            include_str!("../tests/fixtures/hinton_kd.json"),
            "hinton_kd.json",
        );
        let cases = fixture.check::<2>("hinton_kd", |p, s, t, _| {
            HintonKdLossConfig::new()
                .with_temperature(p.temperature)
                .init()
                .unwrap()
                .forward(s, t)
        });
        assert_eq!(cases, 5);
    }

    #[test]
    fn defaults_to_four_and_remembers_its_configuration() {
        let _rng = crate::test_rng::lock();
        let loss = HintonKdLossConfig::new().init().unwrap();
        assert_eq!(loss.temperature(), 4.0);
        assert_eq!(loss.config(), HintonKdLossConfig::default());
    }

    #[test]
    fn rejects_a_temperature_that_is_not_positive_and_finite() {
        let _rng = crate::test_rng::lock();
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = HintonKdLossConfig::new()
                .with_temperature(bad)
                .init()
                .unwrap_err();
            assert_eq!(err.key(), "temperature");
            let msg = err.to_string();
            assert!(msg.starts_with("`temperature` is "), "{msg}");
            assert!(msg.contains("positive and finite"), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
    }

    #[test]
    fn checks_that_both_sides_are_logits_over_the_same_classes() {
        let _rng = crate::test_rng::lock();
        let config = HintonKdLossConfig::new();
        assert!(config.check_shapes(&[10], &[10]).is_ok());
        let err = config.check_shapes(&[10], &[100]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("hinton_kd cannot pair student shape [10] with teacher shape [100]"),
            "{msg}"
        );
        assert!(msg.contains("same number of classes"), "{msg}");
        let err = config.check_shapes(&[64, 8, 8], &[10]).unwrap_err();
        assert!(err.to_string().contains("[num_classes]"), "{err}");
        assert!(config.check_shapes(&[0], &[0]).is_err());
    }
}
