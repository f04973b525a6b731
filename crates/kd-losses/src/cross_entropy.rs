use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use kd_core::{Criterion, LossOutput, Targets};

use crate::LossError;

/// Configuration of a [`CrossEntropyLoss`], PyTorch's `nn.CrossEntropyLoss` options that
/// SuperGradients' classification recipes use.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrossEntropyLossConfig {
    /// Label smoothing `eps` in `[0, 1)`; the targets become `(1 - eps)·y + eps / C`.
    /// Default: 0 (no smoothing).
    pub label_smoothing: f64,
}

impl CrossEntropyLossConfig {
    /// The default configuration: no label smoothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the label smoothing.
    pub fn with_label_smoothing(mut self, label_smoothing: f64) -> Self {
        self.label_smoothing = label_smoothing;
        self
    }

    /// Checks the configuration and builds the loss.
    pub fn init(&self) -> Result<CrossEntropyLoss, LossError> {
        let eps = self.label_smoothing;
        if !(0.0..1.0).contains(&eps) {
            return Err(LossError::LabelSmoothing {
                key: "label_smoothing".into(),
                value: eps,
            });
        }
        Ok(CrossEntropyLoss {
            label_smoothing: eps,
        })
    }
}

/// The classification task loss: cross entropy of logits against hard or soft targets,
/// averaged over the batch, with optional label smoothing.
///
/// It matches `torch.nn.functional.cross_entropy(logits, target, label_smoothing=eps)` for
/// class-index targets and for probability targets. Build it with
/// [`CrossEntropyLossConfig::init`]; it has no parameters.
///
/// # Shapes
/// - logits: `[batch, num_classes]`
/// - targets: [`Targets::Hard`] `[batch]` or [`Targets::Soft`] `[batch, num_classes]`
/// - output: `[1]`
#[derive(Module, Debug)]
pub struct CrossEntropyLoss {
    label_smoothing: f64,
}

impl CrossEntropyLoss {
    /// The label smoothing `eps`.
    pub fn label_smoothing(&self) -> f64 {
        self.label_smoothing
    }

    /// The configuration this loss was built from.
    pub fn config(&self) -> CrossEntropyLossConfig {
        CrossEntropyLossConfig {
            label_smoothing: self.label_smoothing,
        }
    }

    /// The batch-mean cross entropy of `logits` against `targets` (see [`cross_entropy`]).
    pub fn compute(&self, logits: Tensor<2>, targets: &Targets) -> Tensor<1> {
        cross_entropy(logits, targets, self.label_smoothing)
    }
}

impl Criterion<Tensor<2>> for CrossEntropyLoss {
    fn name(&self) -> &str {
        "CrossEntropyLoss"
    }

    fn component_names(&self) -> Vec<String> {
        vec!["Loss".to_string()]
    }

    fn forward(&self, output: &Tensor<2>, targets: &Targets) -> LossOutput {
        let loss = self.compute(output.clone(), targets);
        LossOutput {
            components: loss.clone().detach(),
            loss,
        }
    }
}

/// Cross entropy of `logits` against hard or soft `targets`, averaged over the batch.
///
/// With `p = log_softmax(logits)` over the classes and `eps = label_smoothing`, each sample
/// contributes `-Σ_k y_k·p_k`, where `y = (1 - eps)·target + eps / C` and `target` is the
/// one-hot of the class index or the given distribution. This equals
/// `(1 - eps)·(-Σ_k target_k·p_k) + eps·(-mean_k p_k)`, the form computed here, which is what
/// `torch.nn.functional.cross_entropy(logits, target, label_smoothing=eps)` computes.
///
/// The value is not validated: `eps` should lie in `[0, 1)` (see [`CrossEntropyLossConfig`]),
/// and class indices in `[0, C)`; some backends do not bound-check indices.
///
/// # Shapes
/// - logits: `[batch, num_classes]`
/// - targets: [`Targets::Hard`] `[batch]` or [`Targets::Soft`] `[batch, num_classes]`
/// - output: `[1]`
pub fn cross_entropy(logits: Tensor<2>, targets: &Targets, label_smoothing: f64) -> Tensor<1> {
    let log_probs = log_softmax(logits, 1);
    let nll = match targets {
        Targets::Hard(indices) => log_probs
            .clone()
            .gather(1, indices.clone().unsqueeze_dim::<2>(1))
            .neg(),
        Targets::Soft(probs) => log_probs.clone().mul(probs.clone()).sum_dim(1).neg(),
    };
    let per_sample = if label_smoothing > 0.0 {
        let uniform = log_probs.mean_dim(1).neg();
        nll.mul_scalar(1.0 - label_smoothing)
            .add(uniform.mul_scalar(label_smoothing))
    } else {
        nll
    };
    per_sample.mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Fixture, assert_all_close, assert_close, matrix, values};

    // Golden values: the `ce_cases` of tests/fixtures/kd_logits.json, written by
    // tools/reference/losses.py (PyTorch 2.9.0, float32):
    //
    // ```python
    // torch.manual_seed(20240917)
    // student = (torch.randn(4, 7) * 3.0).float()
    // teacher = (torch.randn(4, 7) * 3.0).float()
    // hard = torch.randint(0, 7, (4,))
    // soft = F.softmax(torch.randn(4, 7) * 2.0, dim=1).float()
    // for kind in ("hard", "soft"):
    //     for eps in (0.0, 0.1, 0.3):
    //         s = student.clone().requires_grad_(True)
    //         loss = F.cross_entropy(s, targets[kind], label_smoothing=eps)
    //         loss.backward()  # -> "loss": loss.item(), "grad": s.grad
    // ```
    #[test]
    fn matches_pytorch_cross_entropy_and_its_gradient() {
        let _rng = crate::test_rng::lock();
        let fixture = Fixture::load();
        let device = Device::flex();
        assert_eq!(fixture.ce_cases.len(), 6);
        for case in &fixture.ce_cases {
            let what = format!("{} targets, eps {}", case.targets, case.label_smoothing);
            let logits =
                matrix(&fixture.inputs.base.student, &device.clone().autodiff()).require_grad();
            // Targets stay on the plain device while the logits are tracked.
            let targets = fixture.targets(&case.targets, &device);
            let loss = CrossEntropyLossConfig::new()
                .with_label_smoothing(case.label_smoothing)
                .init()
                .unwrap();
            let out = Criterion::forward(&loss, &logits, &targets);
            assert_eq!(out.loss.dims(), [1]);
            assert_close(values(out.components.clone())[0], case.loss, &what);
            let grads = out.loss.backward();
            let grad = logits.grad(&grads).expect("the logits receive a gradient");
            let want: Vec<f64> = case.grad.iter().flatten().copied().collect();
            assert_all_close(&values(grad), &want, &format!("{what}: gradient"));
        }
    }

    #[test]
    fn hard_and_one_hot_soft_targets_agree() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let logits = Tensor::<2>::from_floats([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], &device);
        let hard = Targets::Hard(Tensor::<1, Int>::from_ints([2, 1], &device));
        let soft = Targets::Soft(Tensor::<2>::from_floats(
            [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]],
            &device,
        ));
        for eps in [0.0, 0.2] {
            let a = values(cross_entropy(logits.clone(), &hard, eps))[0];
            let b = values(cross_entropy(logits.clone(), &soft, eps))[0];
            assert_close(a, b, &format!("eps {eps}"));
        }
    }

    #[test]
    fn rejects_label_smoothing_outside_the_unit_interval() {
        let _rng = crate::test_rng::lock();
        for bad in [-0.1, 1.0, 2.0, f64::NAN] {
            let err = CrossEntropyLossConfig::new()
                .with_label_smoothing(bad)
                .init()
                .unwrap_err();
            assert_eq!(err.key(), "label_smoothing");
            assert!(err.to_string().contains("[0, 1)"), "{err}");
        }
        let ok = CrossEntropyLossConfig::new()
            .with_label_smoothing(0.1)
            .init();
        assert_eq!(ok.unwrap().config().label_smoothing, 0.1);
    }

    #[test]
    fn names_its_single_component() {
        let _rng = crate::test_rng::lock();
        let loss = CrossEntropyLossConfig::new().init().unwrap();
        assert_eq!(loss.name(), "CrossEntropyLoss");
        assert_eq!(loss.component_names(), ["Loss"]);
    }
}
