use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::LossError;

/// Configuration of a [`FitNetsLoss`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FitNetsLossConfig {
    /// Whether the regressor ends with a ReLU. Default: `true`, as RepDistiller's `ConvReg`
    /// (`use_relu=True`) and the paper, which gives the regressor the hint layer's
    /// non-linearity. Use `false` when the teacher's hint is taken before its ReLU.
    pub relu: bool,
}

impl Default for FitNetsLossConfig {
    fn default() -> Self {
        Self { relu: true }
    }
}

impl FitNetsLossConfig {
    /// The defaults: a regressor that ends with a ReLU.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets whether the regressor ends with a ReLU.
    pub fn with_relu(mut self, relu: bool) -> Self {
        self.relu = relu;
        self
    }

    /// Checks that the student's features can be regressed onto the teacher's and builds the
    /// loss with its regressor on `device` (the training device, so that the optimizer trains it).
    ///
    /// `student` and `teacher` are per-sample shapes without the batch dimension: both
    /// `[C, H, W]` feature maps, or both `[D]` vectors.
    ///
    /// - Maps: the teacher's size must divide the student's, `H_s = f_h·H_t` and
    ///   `W_s = f_w·W_t` with whole factors `f ≥ 1`. The regressor is a convolution
    ///   `C_s → C_t` with kernel `2f − 1`, stride `f` and padding `f − 1` per axis (a 1×1
    ///   convolution when the sizes match, RepDistiller's 3×3 / stride 2 / padding 1
    ///   convolution when the student's map is twice as large), with a bias, then a
    ///   `BatchNorm`. A teacher map larger than the student's is not supported.
    /// - Vectors: a `Linear` `D_s → D_t`.
    pub fn init(
        &self,
        student: &[usize],
        teacher: &[usize],
        device: &Device,
    ) -> Result<FitNetsLoss, LossError> {
        let incompatible = |hint: &str| LossError::IncompatibleShapes {
            loss: "fitnets".into(),
            key: "features".into(),
            student: student.to_vec(),
            teacher: teacher.to_vec(),
            reason: hint.into(),
        };
        if student.contains(&0) || teacher.contains(&0) {
            return Err(incompatible("every dimension must be positive"));
        }
        match (student, teacher) {
            (&[d_s], &[d_t]) => Ok(FitNetsLoss {
                conv: None,
                bn: None,
                linear: Some(LinearConfig::new(d_s, d_t).init(device)),
                relu: self.relu,
            }),
            (&[c_s, h_s, w_s], &[c_t, h_t, w_t]) => {
                if h_s < h_t || w_s < w_t {
                    return Err(incompatible(
                        "the teacher's map is larger than the student's; FitNets regresses by a convolution with a whole stride, so tap a deeper teacher layer or a shallower student layer",
                    ));
                }
                if h_s % h_t != 0 || w_s % w_t != 0 {
                    return Err(incompatible(
                        "the student's height and width must be whole multiples of the teacher's; tap layers whose sizes match or differ by a whole factor",
                    ));
                }
                let (f_h, f_w) = (h_s / h_t, w_s / w_t);
                let conv = Conv2dConfig::new([c_s, c_t], [2 * f_h - 1, 2 * f_w - 1])
                    .with_stride([f_h, f_w])
                    .with_padding(PaddingConfig2d::Explicit(
                        f_h - 1,
                        f_w - 1,
                        f_h - 1,
                        f_w - 1,
                    ))
                    .init(device);
                Ok(FitNetsLoss {
                    conv: Some(conv),
                    bn: Some(BatchNormConfig::new(c_t).init(device)),
                    linear: None,
                    relu: self.relu,
                })
            }
            _ => Err(incompatible(
                "FitNets needs two feature maps [C, H, W] or two vectors [D]",
            )),
        }
    }
}

/// FitNets' hint loss: the mean squared error between a trained regression of the student's
/// intermediate features and the teacher's.
///
/// ```text
/// loss = mean over all elements of (r(F_s) − F_t)²
/// r    = conv(k = 2f − 1, stride f, padding f − 1) → BatchNorm → ReLU   (maps)
///      = Linear → ReLU                                                   (vectors)
/// ```
///
/// Romero, Ballas, Kahou, Chassang, Gatta and Bengio, "FitNets: Hints for Thin Deep Nets"
/// (ICLR 2015, <https://arxiv.org/abs/1412.6550>). The regressor follows RepDistiller's
/// `ConvReg` (a 1×1 convolution for equal sizes, 3×3 / stride 2 for a student map twice as
/// large, both with a bias, then BatchNorm and a ReLU), generalised to any whole size factor
/// `f`; the ReLU is optional ([`FitNetsLossConfig::relu`], default on). The mean is over batch,
/// channels and positions (`nn.MSELoss()`), and carries no other factor. The paper's separate
/// hint-training stage is a recipe matter: this loss is the hint term only.
///
/// The regressor is the trainable part: build it on the training device and let the optimizer
/// train it with the student. The BatchNorm uses the batch statistics on an autodiff device (and
/// updates its running statistics), the running statistics otherwise. The teacher's features are
/// detached; they may live on the plain device.
///
/// # Shapes
/// - student: `[batch, C_s, H_s, W_s]` (or `[batch, D_s]`); teacher `[batch, C_t, H_t, W_t]`
///   (or `[batch, D_t]`), the per-sample shapes given to [`FitNetsLossConfig::init`]
/// - loss: `[1]`
#[derive(Module, Debug)]
pub struct FitNetsLoss {
    conv: Option<Conv2d>,
    bn: Option<BatchNorm>,
    linear: Option<Linear>,
    relu: bool,
}

impl FitNetsLoss {
    /// Whether the regressor ends with a ReLU.
    pub fn relu(&self) -> bool {
        self.relu
    }

    /// The regressor applied to the student's features: `[batch, C_t, H_t, W_t]` from a map,
    /// `[batch, D_t]` from a vector.
    ///
    /// # Panics
    /// If the rank is not the one the loss was built for (4 for maps, 2 for vectors).
    pub fn regress<const D: usize>(&self, student: Tensor<D>) -> Tensor<D> {
        let out = match (&self.conv, &self.bn, &self.linear) {
            (Some(conv), Some(bn), _) => {
                assert_eq!(
                    D, 4,
                    "this FitNets loss was built for feature maps [C, H, W]"
                );
                let [b, c, h, w] = first_four(student.dims().as_slice());
                let y = bn.forward(conv.forward(student.reshape([b, c, h, w])));
                let mut shape = [0; D];
                shape.copy_from_slice(&y.dims());
                y.reshape(shape)
            }
            (_, _, Some(linear)) => {
                assert_eq!(D, 2, "this FitNets loss was built for vectors [D]");
                linear.forward(student)
            }
            _ => unreachable!("FitNetsLossConfig::init builds a convolution or a linear regressor"),
        };
        if self.relu { relu(out) } else { out }
    }

    /// The loss: [`fitnets_loss`] of the regressed student features and the (detached)
    /// teacher's.
    ///
    /// # Panics
    /// If the shapes differ from the ones given to [`FitNetsLossConfig::init`].
    pub fn forward<const D: usize>(&self, student: Tensor<D>, teacher: Tensor<D>) -> Tensor<1> {
        fitnets_loss(self.regress(student), teacher)
    }
}

fn first_four(dims: &[usize]) -> [usize; 4] {
    [dims[0], dims[1], dims[2], dims[3]]
}

/// FitNets' hint loss as a function: the mean over all elements of `(regressed − teacher)²`.
///
/// The teacher's features are detached, so only `regressed` (and through it the student and
/// the regressor) receives a gradient.
///
/// # Shapes
/// - regressed student features and teacher features: the same shape, any rank
/// - output: `[1]`
pub fn fitnets_loss<const D: usize>(regressed: Tensor<D>, teacher: Tensor<D>) -> Tensor<1> {
    regressed.sub(teacher.detach()).square().mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::{self, StateDict, TensorJson, assert_scalar_close, assert_tensor_close};
    use burn::tensor::Distribution;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Fixture {
        cases: Vec<Case>,
    }

    #[derive(Deserialize)]
    struct Case {
        name: String,
        student_shape: Vec<usize>,
        teacher_shape: Vec<usize>,
        relu: bool,
        student: TensorJson,
        teacher: TensorJson,
        weights: StateDict,
        loss: f64,
        grad: TensorJson,
    }

    /// Runs one fixture case at rank `D` and checks the loss and the student's gradient.
    fn check_case<const D: usize>(case: &Case) {
        let device = Device::flex();
        let train_device = device.clone().autodiff();
        let loss = FitNetsLossConfig::new()
            .with_relu(case.relu)
            .init(&case.student_shape, &case.teacher_shape, &train_device)
            .unwrap();
        let loss = golden::load_state_dict(loss, &case.weights);
        let student = case.student.float::<D>(&train_device).require_grad();
        // The teacher stays on the plain device.
        let teacher = case.teacher.float::<D>(&device);
        let value = loss.forward(student.clone(), teacher);
        assert_scalar_close(value.clone(), case.loss, &format!("{}: loss", case.name));
        let grads = value.backward();
        let grad = student
            .grad(&grads)
            .expect("the student receives a gradient");
        assert_tensor_close(grad, &case.grad, &format!("{}: gradient", case.name));
    }

    // Golden values: tests/fixtures/fitnets.json, written by tools/reference/loss_learnable.py
    // (PyTorch 2.9.0, float32, modules in training mode):
    //
    // ```python
    // class FitNetsRegressor(nn.Module):
    //     def __init__(self, s_shape, t_shape, relu):
    //         if len(s_shape) == 1:
    //             self.linear = nn.Linear(s_shape[0], t_shape[0])
    //         else:
    //             fh, fw = s_shape[1] // t_shape[1], s_shape[2] // t_shape[2]
    //             self.conv = nn.Conv2d(s_shape[0], t_shape[0], (2 * fh - 1, 2 * fw - 1),
    //                                   stride=(fh, fw), padding=(fh - 1, fw - 1))
    //             self.bn = nn.BatchNorm2d(t_shape[0])
    //     def forward(self, x):
    //         y = self.linear(x) if hasattr(self, "linear") else self.bn(self.conv(x))
    //         return F.relu(y) if self.relu else y
    //
    // # same_size [4,4,4] -> [8,4,4] relu; strided [4,8,8] -> [8,4,4] no relu;
    // # vector [10] -> [10] relu; batch 6; BatchNorm gamma = 1 + 0.2 randn, beta = 0.1 randn
    // loss = F.mse_loss(regressor(s), teacher.detach()); loss.backward()  # grad = s.grad
    // ```
    #[test]
    fn matches_pytorch_fitnets_and_its_gradient() {
        let _rng = crate::test_rng::lock();
        let fixture: Fixture = golden::load("fitnets");
        let names: Vec<&str> = fixture.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["same_size", "strided", "vector"]);
        for case in &fixture.cases {
            assert_eq!(case.student.sample_shape(), case.student_shape);
            assert_eq!(case.teacher.sample_shape(), case.teacher_shape);
            match case.student_shape.len() {
                3 => check_case::<4>(case),
                _ => check_case::<2>(case),
            }
        }
    }

    #[test]
    fn builds_the_documented_regressors() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        let loss = FitNetsLossConfig::new()
            .init(&[4, 16, 16], &[8, 4, 4], &device)
            .unwrap();
        let conv = loss.conv.as_ref().unwrap();
        assert_eq!(conv.kernel_size, [7, 7]);
        assert_eq!(conv.stride, [4, 4]);
        let out = loss.regress(Tensor::<4>::ones([2, 4, 16, 16], &device));
        assert_eq!(out.dims(), [2, 8, 4, 4]);
        // Non-square factors: 2 along the height, 1 along the width.
        let loss = FitNetsLossConfig::new()
            .with_relu(false)
            .init(&[3, 8, 4], &[5, 4, 4], &device)
            .unwrap();
        assert!(!loss.relu());
        let out = loss.regress(Tensor::<4>::ones([2, 3, 8, 4], &device));
        assert_eq!(out.dims(), [2, 5, 4, 4]);
        // The regressor's parameters are trained with the student: 3·5·3·1 + 5 (conv) + 2·5 (BN).
        assert_eq!(loss.num_params(), 45 + 5 + 10 + 10);
    }

    #[test]
    fn rejects_shapes_it_cannot_combine_naming_both() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        let cases: [(&[usize], &[usize], &str); 5] = [
            (&[4, 4, 4], &[8, 8, 8], "larger than the student's"),
            (&[4, 6, 6], &[8, 4, 4], "whole multiples"),
            (&[4, 4, 4], &[8], "two feature maps"),
            (&[4, 4], &[8, 4], "two feature maps"),
            (&[0], &[8], "positive"),
        ];
        for (student, teacher, hint) in cases {
            let err = FitNetsLossConfig::new()
                .init(student, teacher, &device)
                .unwrap_err();
            assert_eq!(err.key(), "features");
            let msg = err.to_string();
            assert!(msg.contains(&format!("{student:?}")), "{msg}");
            assert!(msg.contains(&format!("{teacher:?}")), "{msg}");
            assert!(msg.contains(hint), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
    }

    #[test]
    fn an_sgd_step_trains_the_regressor() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        device.seed(3);
        let loss = FitNetsLossConfig::new()
            .init(&[4, 4, 4], &[6, 2, 2], &device)
            .unwrap();
        let student = Tensor::<4>::random([3, 4, 4, 4], Distribution::Default, &device);
        let teacher =
            Tensor::<4>::random([3, 6, 2, 2], Distribution::Default, &device.clone().inner());
        let before = golden::values(loss.conv.as_ref().unwrap().weight.val());
        let value = loss.forward(student, teacher);
        let (loss, with_grad) = golden::sgd_step(loss, value);
        // Conv weight and bias, BatchNorm gamma and beta (not its running statistics).
        assert_eq!(with_grad, 4);
        assert_ne!(
            golden::values(loss.conv.as_ref().unwrap().weight.val()),
            before
        );
    }

    #[test]
    fn a_tracked_teacher_is_detached() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        device.seed(7);
        let loss = FitNetsLossConfig::new()
            .init(&[4, 2, 2], &[6, 2, 2], &device)
            .unwrap();
        let student =
            Tensor::<4>::random([3, 4, 2, 2], Distribution::Default, &device).require_grad();
        let teacher =
            Tensor::<4>::random([3, 6, 2, 2], Distribution::Default, &device).require_grad();
        let grads = loss.forward(student.clone(), teacher.clone()).backward();
        assert!(teacher.grad(&grads).is_none());
        assert!(student.grad(&grads).is_some());
    }
}
