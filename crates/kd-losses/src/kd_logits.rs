use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use kd_core::{Criterion, KdOutput, LossOutput, Targets};

use crate::{CrossEntropyLoss, CrossEntropyLossConfig, LossError, cross_entropy};

/// Configuration of a [`KdLogitsLoss`], with SuperGradients' names and defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KdLogitsLossConfig {
    /// Weight `c` of the distillation term, in `[0, 1]`; the task loss gets `1 - c`.
    /// Default: 0.5, as in SuperGradients.
    pub distillation_loss_coeff: f64,
    /// The task loss (cross entropy, optionally label-smoothed). Default: no smoothing.
    pub task_loss: CrossEntropyLossConfig,
    /// Distillation temperature `T`. `None` (the default) is SuperGradients' behaviour: `T = 1`
    /// and no `T²` factor. `Some(T)` softens both distributions by `T` and multiplies the
    /// divergence by `T²`, as in Hinton et al.
    pub temperature: Option<f64>,
}

impl Default for KdLogitsLossConfig {
    fn default() -> Self {
        Self {
            distillation_loss_coeff: 0.5,
            task_loss: CrossEntropyLossConfig::default(),
            temperature: None,
        }
    }
}

impl KdLogitsLossConfig {
    /// SuperGradients' defaults: `c = 0.5`, plain cross entropy, no temperature.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the weight `c` of the distillation term.
    pub fn with_distillation_loss_coeff(mut self, distillation_loss_coeff: f64) -> Self {
        self.distillation_loss_coeff = distillation_loss_coeff;
        self
    }

    /// Sets the task loss.
    pub fn with_task_loss(mut self, task_loss: CrossEntropyLossConfig) -> Self {
        self.task_loss = task_loss;
        self
    }

    /// Sets the temperature (`None` for SuperGradients' behaviour).
    pub fn with_temperature(mut self, temperature: Option<f64>) -> Self {
        self.temperature = temperature;
        self
    }

    /// Checks the configuration and builds the loss.
    ///
    /// `distillation_loss_coeff` must lie in `[0, 1]`, `task_loss.label_smoothing` in `[0, 1)`
    /// and `temperature`, when set, must be positive and finite.
    pub fn init(&self) -> Result<KdLogitsLoss, LossError> {
        let c = self.distillation_loss_coeff;
        if !(0.0..=1.0).contains(&c) {
            return Err(LossError::DistillationCoeff {
                key: "distillation_loss_coeff".into(),
                value: c,
            });
        }
        if let Some(t) = self.temperature
            && !(t > 0.0 && t.is_finite())
        {
            return Err(LossError::Temperature {
                key: "temperature".into(),
                value: t,
            });
        }
        let task_loss = self
            .task_loss
            .init()
            .map_err(|err| err.prefixed("task_loss"))?;
        Ok(KdLogitsLoss {
            distillation_loss_coeff: c,
            task_loss,
            temperature: self.temperature,
        })
    }
}

/// The three values of a [`KdLogitsLoss`], each of shape `[1]`.
#[derive(Debug, Clone)]
pub struct KdLogitsParts {
    /// `(1 - c)·task + c·distillation`, with the student's gradient.
    pub total: Tensor<1>,
    /// The task loss (cross entropy against the targets).
    pub task: Tensor<1>,
    /// The distillation loss (KL divergence, times `T²` when a temperature is set).
    pub distillation: Tensor<1>,
}

/// SuperGradients' `KDLogitsLoss`: a weighted sum of the task loss and the KL divergence from
/// the teacher's class distribution to the student's.
///
/// ```text
/// loss = (1 - c)·CE(student, y) + c·KL(softmax(teacher) ‖ softmax(student))
/// KL   = (1/B)·Σ_b Σ_k p_t·(log p_t − log p_s)        (reduction "batchmean")
/// ```
///
/// Defaults, as in SuperGradients (`training/losses/kd_losses.py`): `c = 0.5`
/// (`distillation_loss_coeff`), cross entropy without label smoothing, and no temperature
/// (`T = 1`, no `T²` factor). With a temperature `T`, both distributions are
/// `softmax(logits / T)` and the divergence is multiplied by `T²`, the soft-target loss of
/// Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network" (2015,
/// <https://arxiv.org/abs/1503.02531>).
///
/// The teacher's logits are constants: they may live on the plain device while the student's
/// are tracked, and they are detached if they are not. The components are logged as
/// `Loss`, `Task Loss` and `Distillation Loss`.
///
/// # Shapes
/// - student and teacher logits: `[batch, num_classes]`
/// - targets: [`Targets::Hard`] `[batch]` or [`Targets::Soft`] `[batch, num_classes]`
/// - loss: `[1]`; components: `[3]`
#[derive(Module, Debug)]
pub struct KdLogitsLoss {
    distillation_loss_coeff: f64,
    task_loss: CrossEntropyLoss,
    temperature: Option<f64>,
}

impl KdLogitsLoss {
    /// The weight `c` of the distillation term.
    pub fn distillation_loss_coeff(&self) -> f64 {
        self.distillation_loss_coeff
    }

    /// The task loss.
    pub fn task_loss(&self) -> &CrossEntropyLoss {
        &self.task_loss
    }

    /// The temperature, `None` for SuperGradients' behaviour.
    pub fn temperature(&self) -> Option<f64> {
        self.temperature
    }

    /// The configuration this loss was built from.
    pub fn config(&self) -> KdLogitsLossConfig {
        KdLogitsLossConfig {
            distillation_loss_coeff: self.distillation_loss_coeff,
            task_loss: self.task_loss.config(),
            temperature: self.temperature,
        }
    }

    /// The total, task and distillation losses (see [`kd_logits_loss`]).
    pub fn compute(
        &self,
        student: Tensor<2>,
        teacher: Tensor<2>,
        targets: &Targets,
    ) -> KdLogitsParts {
        kd_logits_loss(student, teacher, targets, &self.config())
    }
}

impl Criterion<KdOutput<Tensor<2>>> for KdLogitsLoss {
    fn name(&self) -> &str {
        "KdLogitsLoss"
    }

    fn component_names(&self) -> Vec<String> {
        ["Loss", "Task Loss", "Distillation Loss"]
            .map(String::from)
            .to_vec()
    }

    fn forward(&self, output: &KdOutput<Tensor<2>>, targets: &Targets) -> LossOutput {
        let parts = self.compute(
            output.student_output.clone(),
            output.teacher_output.clone(),
            targets,
        );
        let components = Tensor::cat(
            vec![
                parts.total.clone().detach(),
                parts.task.detach(),
                parts.distillation.detach(),
            ],
            0,
        );
        LossOutput {
            loss: parts.total,
            components,
        }
    }
}

/// SuperGradients' `KDLogitsLoss` as a function: the total, task and distillation losses.
///
/// `task = cross_entropy(student, targets, config.task_loss.label_smoothing)`;
/// `distillation = kl_div_logits(student, teacher, T)`, times `T²` when
/// `config.temperature = Some(T)` (and `T = 1` when it is `None`);
/// `total = (1 - c)·task + c·distillation` with `c = config.distillation_loss_coeff`.
/// The teacher's logits are detached, so only the student receives a gradient.
///
/// The configuration is not validated here; [`KdLogitsLossConfig::init`] does that.
///
/// # Shapes
/// - student and teacher logits: `[batch, num_classes]`
/// - targets: [`Targets::Hard`] `[batch]` or [`Targets::Soft`] `[batch, num_classes]`
/// - each output: `[1]`
pub fn kd_logits_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    targets: &Targets,
    config: &KdLogitsLossConfig,
) -> KdLogitsParts {
    let task = cross_entropy(student.clone(), targets, config.task_loss.label_smoothing);
    let teacher = teacher.detach();
    let distillation = match config.temperature {
        None => kl_div_logits(student, teacher, 1.0),
        Some(t) => kl_div_logits(student, teacher, t).mul_scalar(t * t),
    };
    let c = config.distillation_loss_coeff;
    let total = task
        .clone()
        .mul_scalar(1.0 - c)
        .add(distillation.clone().mul_scalar(c));
    KdLogitsParts {
        total,
        task,
        distillation,
    }
}

/// The KL divergence `KL(p_t ‖ p_s)` between the teacher's and the student's class
/// distributions at temperature `T`, averaged over the batch (PyTorch's `"batchmean"`).
///
/// ```text
/// p = softmax(logits / T) over the classes
/// KL = (1/B)·Σ_b Σ_k p_t·(log p_t − log p_s)
/// ```
///
/// Both log-distributions come from `log_softmax`, and the sum is `exp(lt)·(lt − ls)`, so
/// saturated logits give exact zeros rather than `0·log 0`. The result is **not** multiplied by
/// `T²`. This is `nn.KLDivLoss(reduction="batchmean")(log_softmax(s / T), softmax(t / T))`,
/// SuperGradients' `KDklDivLoss` at `T = 1`. Gradients flow into whichever inputs are tracked.
///
/// # Shapes
/// - student and teacher logits: `[batch, num_classes]`
/// - output: `[1]`
pub fn kl_div_logits(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<1> {
    let [batch, _] = student.dims();
    let (student, teacher) = if temperature == 1.0 {
        (student, teacher)
    } else {
        (
            student.div_scalar(temperature),
            teacher.div_scalar(temperature),
        )
    };
    let log_s = log_softmax(student, 1);
    let log_t = log_softmax(teacher, 1);
    log_t
        .clone()
        .exp()
        .mul(log_t.sub(log_s))
        .sum()
        .div_scalar(batch as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{Fixture, assert_all_close, assert_close, matrix, values};

    // Golden values: the `kd_cases` of tests/fixtures/kd_logits.json, written by
    // tools/reference/losses.py (PyTorch 2.9.0, float32):
    //
    // ```python
    // torch.manual_seed(20240917)
    // student = (torch.randn(4, 7) * 3.0).float()
    // teacher = (torch.randn(4, 7) * 3.0).float()
    // hard = torch.randint(0, 7, (4,))
    // soft = F.softmax(torch.randn(4, 7) * 2.0, dim=1).float()
    // big_student = (torch.randn(4, 7) * 40.0).float()   # "saturated" inputs
    // big_teacher = (torch.randn(4, 7) * 40.0).float()
    //
    // def kd_parts(student, teacher, target, coeff, temperature, label_smoothing):
    //     task = F.cross_entropy(student, target, label_smoothing=label_smoothing)
    //     t = 1.0 if temperature is None else temperature
    //     kl = torch.nn.KLDivLoss(reduction="batchmean")(
    //         F.log_softmax(student / t, dim=1), F.softmax(teacher / t, dim=1))
    //     distill = kl if temperature is None else kl * t * t
    //     return (1.0 - coeff) * task + coeff * distill, task, distill
    //
    // # c in {0.5, 0.8} x {hard, soft} x T in {None, 4.0} x eps in {0.0, 0.1} on the base
    // # logits, plus c = 0.5, hard, eps = 0, T in {None, 4.0} on the saturated ones;
    // # "grad" = student.grad after total.backward() for six of those cases.
    // ```
    #[test]
    fn matches_pytorch_kd_logits_loss_and_its_gradient() {
        let _rng = crate::test_rng::lock();
        let fixture = Fixture::load();
        let device = Device::flex();
        let train_device = device.clone().autodiff();
        assert_eq!(fixture.kd_cases.len(), 18);
        let mut grad_cases = 0;
        for case in &fixture.kd_cases {
            let what = format!(
                "{} inputs, c {}, {} targets, T {:?}, eps {}",
                case.inputs,
                case.distillation_loss_coeff,
                case.targets,
                case.temperature,
                case.label_smoothing
            );
            let logits = fixture.logits(&case.inputs);
            // The student is tracked; the teacher and the targets stay on the plain device.
            let student = matrix(&logits.student, &train_device).require_grad();
            let teacher = matrix(&logits.teacher, &device);
            let targets = fixture.targets(&case.targets, &device);
            let loss = KdLogitsLossConfig::new()
                .with_distillation_loss_coeff(case.distillation_loss_coeff)
                .with_task_loss(
                    CrossEntropyLossConfig::new().with_label_smoothing(case.label_smoothing),
                )
                .with_temperature(case.temperature)
                .init()
                .unwrap();
            let out = loss.forward(
                &KdOutput {
                    student_output: student.clone(),
                    teacher_output: teacher,
                },
                &targets,
            );
            assert_eq!(out.loss.dims(), [1]);
            assert_eq!(out.components.dims(), [3]);
            let got = values(out.components.clone());
            assert_close(got[0], case.total, &format!("{what}: total"));
            assert_close(got[1], case.task, &format!("{what}: task"));
            assert_close(got[2], case.distillation, &format!("{what}: distillation"));
            assert_close(
                values(out.loss.clone())[0],
                case.total,
                &format!("{what}: loss"),
            );
            if let Some(want) = &case.grad {
                grad_cases += 1;
                let grads = out.loss.backward();
                let grad = student
                    .grad(&grads)
                    .expect("the student receives a gradient");
                assert_eq!(grad.dims(), [4, 7]);
                let want: Vec<f64> = want.iter().flatten().copied().collect();
                assert_all_close(&values(grad), &want, &format!("{what}: gradient"));
            }
        }
        assert_eq!(grad_cases, 6);
    }

    #[test]
    fn pure_functions_agree_with_the_criterion() {
        let _rng = crate::test_rng::lock();
        let fixture = Fixture::load();
        let device = Device::flex();
        let student = matrix(&fixture.inputs.base.student, &device);
        let teacher = matrix(&fixture.inputs.base.teacher, &device);
        let targets = fixture.targets("soft", &device);
        let config = KdLogitsLossConfig::new()
            .with_distillation_loss_coeff(0.8)
            .with_temperature(Some(4.0));
        let parts = kd_logits_loss(student.clone(), teacher.clone(), &targets, &config);
        let kl = values(kl_div_logits(student.clone(), teacher.clone(), 4.0))[0];
        assert_close(values(parts.distillation)[0], kl * 16.0, "T² scaling");
        let via_loss = config.init().unwrap().compute(student, teacher, &targets);
        assert_close(
            values(via_loss.total)[0],
            values(parts.total)[0],
            "compute vs kd_logits_loss",
        );
    }

    #[test]
    fn kl_of_identical_logits_is_zero_and_positive_otherwise() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let a = Tensor::<2>::from_floats([[1.0, 2.0, -3.0], [0.0, 50.0, -50.0]], &device);
        let b = Tensor::<2>::from_floats([[2.0, 1.0, -3.0], [10.0, 0.0, -50.0]], &device);
        assert_close(
            values(kl_div_logits(a.clone(), a.clone(), 1.0))[0],
            0.0,
            "KL(a‖a)",
        );
        let kl = values(kl_div_logits(a, b, 2.0))[0];
        assert!(kl.is_finite() && kl > 0.0, "KL(b‖a) = {kl}");
    }

    #[test]
    fn plain_teacher_and_autodiff_student_mix() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let train_device = device.clone().autodiff();
        let student = Tensor::<2>::from_floats([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]], &train_device)
            .require_grad();
        let plain_teacher = Tensor::<2>::from_floats([[3.0, -2.0, 1.0], [-1.0, 0.0, 4.0]], &device);
        assert!(!plain_teacher.is_autodiff());
        let targets = Targets::Hard(Tensor::<1, Int>::from_ints([0, 2], &device));
        let loss = KdLogitsLossConfig::new().init().unwrap();

        let out = loss.forward(
            &KdOutput {
                student_output: student.clone(),
                teacher_output: plain_teacher.clone(),
            },
            &targets,
        );
        let grads = out.loss.backward();
        let grad = values(
            student
                .grad(&grads)
                .expect("the student receives a gradient"),
        );
        // Softmax gradients sum to zero over the classes of each sample.
        for row in grad.chunks(3) {
            assert!(row.iter().sum::<f64>().abs() < 1e-6, "{row:?}");
            assert!(row.iter().any(|g| g.abs() > 1e-3), "{row:?}");
        }

        // A tracked teacher is detached: it receives nothing, and the student's gradient is
        // the same as with the plain teacher.
        let student2 = student.clone().detach().require_grad();
        let tracked_teacher = plain_teacher.autodiff().require_grad();
        let out = loss.forward(
            &KdOutput {
                student_output: student2.clone(),
                teacher_output: tracked_teacher.clone(),
            },
            &targets,
        );
        let grads = out.loss.backward();
        assert!(tracked_teacher.grad(&grads).is_none());
        let grad2 = values(
            student2
                .grad(&grads)
                .expect("the student receives a gradient"),
        );
        for (a, b) in grad.iter().zip(&grad2) {
            assert_close(*b, *a, "gradient with a tracked teacher");
        }
    }

    #[test]
    fn names_its_components_like_supergradients() {
        let _rng = crate::test_rng::lock();
        let loss = KdLogitsLossConfig::new().init().unwrap();
        assert_eq!(loss.name(), "KdLogitsLoss");
        assert_eq!(
            loss.component_names(),
            ["Loss", "Task Loss", "Distillation Loss"]
        );
        assert_eq!(loss.distillation_loss_coeff(), 0.5);
        assert_eq!(loss.temperature(), None);
        assert_eq!(loss.task_loss().label_smoothing(), 0.0);
        assert_eq!(loss.config(), KdLogitsLossConfig::default());
    }

    #[test]
    fn rejects_bad_configurations_naming_the_key() {
        let _rng = crate::test_rng::lock();
        let cases = [
            (
                KdLogitsLossConfig::new().with_distillation_loss_coeff(1.5),
                "distillation_loss_coeff",
            ),
            (
                KdLogitsLossConfig::new().with_distillation_loss_coeff(-0.1),
                "distillation_loss_coeff",
            ),
            (
                KdLogitsLossConfig::new().with_distillation_loss_coeff(f64::NAN),
                "distillation_loss_coeff",
            ),
            (
                KdLogitsLossConfig::new().with_temperature(Some(0.0)),
                "temperature",
            ),
            (
                KdLogitsLossConfig::new().with_temperature(Some(-2.0)),
                "temperature",
            ),
            (
                KdLogitsLossConfig::new().with_temperature(Some(f64::INFINITY)),
                "temperature",
            ),
            (
                KdLogitsLossConfig::new()
                    .with_task_loss(CrossEntropyLossConfig::new().with_label_smoothing(1.0)),
                "task_loss.label_smoothing",
            ),
        ];
        for (config, key) in cases {
            let err = config.init().unwrap_err();
            assert_eq!(err.key(), key, "{config:?}");
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("`{key}` is ")), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
        for c in [0.0, 1.0] {
            assert!(
                KdLogitsLossConfig::new()
                    .with_distillation_loss_coeff(c)
                    .init()
                    .is_ok()
            );
        }
    }
}
