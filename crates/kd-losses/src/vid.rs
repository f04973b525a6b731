use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, softplus};
use burn::tensor::module::adaptive_avg_pool2d;

use crate::LossError;

/// Configuration of a [`VidLoss`], with the defaults of the paper's code (RepDistiller).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VidLossConfig {
    /// Width of the regressor's two hidden 1×1 convolutions. `None` (the default) uses the
    /// teacher's channel count, as RepDistiller does (`VIDLoss(s_C, t_C, t_C)`).
    pub mid_channels: Option<usize>,
    /// The variance every channel starts with, `softplus(α₀) + eps`. Default: 5.0.
    pub init_pred_var: f64,
    /// Floor added to the variance. Default: 1e-5.
    pub eps: f64,
}

impl Default for VidLossConfig {
    fn default() -> Self {
        Self {
            mid_channels: None,
            init_pred_var: 5.0,
            eps: 1e-5,
        }
    }
}

impl VidLossConfig {
    /// The paper code's defaults: teacher-width regressor, initial variance 5, floor 1e-5.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the regressor's hidden width (`None` for the teacher's channel count).
    pub fn with_mid_channels(mut self, mid_channels: Option<usize>) -> Self {
        self.mid_channels = mid_channels;
        self
    }

    /// Sets the initial variance.
    pub fn with_init_pred_var(mut self, init_pred_var: f64) -> Self {
        self.init_pred_var = init_pred_var;
        self
    }

    /// Sets the variance floor.
    pub fn with_eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Checks the configuration and the shapes, and builds the loss with its regressor and
    /// variances on `device` (the training device, so that the optimizer trains them).
    ///
    /// `student` and `teacher` are per-sample `[C, H, W]` shapes; any two maps combine (the
    /// larger is pooled to the smaller size). `eps` must be positive and finite,
    /// `init_pred_var` finite and larger than `eps`, and `mid_channels`, when set, positive.
    pub fn init(
        &self,
        student: &[usize],
        teacher: &[usize],
        device: &Device,
    ) -> Result<VidLoss, LossError> {
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(LossError::InvalidValue {
                key: "eps".into(),
                value: self.eps,
                expected: "positive and finite: the paper's code uses 1e-5".into(),
            });
        }
        if !(self.init_pred_var > self.eps && self.init_pred_var.is_finite()) {
            return Err(LossError::InvalidValue {
                key: "init_pred_var".into(),
                value: self.init_pred_var,
                expected: format!(
                    "finite and larger than `eps` ({}): the paper's code uses 5.0",
                    self.eps
                ),
            });
        }
        if self.mid_channels == Some(0) {
            return Err(LossError::InvalidValue {
                key: "mid_channels".into(),
                value: 0.0,
                expected: "positive: leave it unset for the teacher's channel count".into(),
            });
        }
        let (c_s, c_t) = match (student, teacher) {
            (&[c_s, h_s, w_s], &[c_t, h_t, w_t])
                if [c_s, h_s, w_s, c_t, h_t, w_t].iter().all(|&d| d > 0) =>
            {
                (c_s, c_t)
            }
            _ => {
                return Err(LossError::IncompatibleShapes {
                    loss: "vid".into(),
                    key: "features".into(),
                    student: student.to_vec(),
                    teacher: teacher.to_vec(),
                    reason: "VID needs two feature maps [C, H, W] with positive dimensions".into(),
                });
            }
        };
        let mid = self.mid_channels.unwrap_or(c_t);
        let conv1x1 = |c_in, c_out| {
            Conv2dConfig::new([c_in, c_out], [1, 1])
                .with_bias(false)
                .init(device)
        };
        // softplus⁻¹(v) = ln(eᵛ − 1) = v + ln(1 − e⁻ᵛ), which stays finite for large v.
        let v = self.init_pred_var - self.eps;
        let alpha = v + (-(-v).exp()).ln_1p();
        Ok(VidLoss {
            conv1: conv1x1(c_s, mid),
            conv2: conv1x1(mid, mid),
            conv3: conv1x1(mid, c_t),
            log_scale: Param::from_tensor(Tensor::full([c_t], alpha, device)),
            eps: self.eps,
        })
    }
}

/// Variational Information Distillation: the negative log-likelihood of the teacher's features
/// under a Gaussian whose mean a trained regressor predicts from the student's features and whose
/// per-channel variance is trained too, a lower bound on their mutual information.
///
/// ```text
/// μ     = conv1×1 → ReLU → conv1×1 → ReLU → conv1×1 (F_s)       (no biases)
/// σ²_c  = softplus(α_c) + eps
/// loss  = 0.5 · mean over (batch, c, y, x) of [ log σ²_c + (F_t − μ)² / σ²_c ]
/// ```
///
/// Ahn, Hu, Damianou, Lawrence and Dai, "Variational Information Distillation for Knowledge
/// Transfer" (CVPR 2019, <https://arxiv.org/abs/1904.05835>). Conventions of the paper's code
/// (RepDistiller's `VIDLoss`): hidden width = the teacher's channels, `α` initialised so that
/// every variance starts at `init_pred_var = 5`, `eps = 1e-5`, and the loss is the *mean* over
/// all elements (not the sum over channels of the paper's formula), with no other factor. When
/// the spatial sizes differ, the larger map is adaptive-average-pooled to
/// `min(H_s, H_t) × min(W_s, W_t)`.
///
/// The regressor and `α` are the trainable parts: build them on the training device and let
/// the optimizer train them with the student. The teacher's features are detached; they may
/// live on the plain device.
///
/// # Shapes
/// - student: `[batch, C_s, H_s, W_s]`; teacher: `[batch, C_t, H_t, W_t]`, the per-sample
///   shapes given to [`VidLossConfig::init`]
/// - loss: `[1]`
#[derive(Module, Debug)]
pub struct VidLoss {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    log_scale: Param<Tensor<1>>,
    eps: f64,
}

impl VidLoss {
    /// The predicted mean `μ(F_s)`, computed at the common size of the two maps.
    pub fn predict_mean(&self, student: Tensor<4>) -> Tensor<4> {
        let x = relu(self.conv1.forward(student));
        let x = relu(self.conv2.forward(x));
        self.conv3.forward(x)
    }

    /// The per-channel variances `softplus(α) + eps`, `[C_t]`.
    pub fn variance(&self) -> Tensor<1> {
        softplus(self.log_scale.val(), 1.0).add_scalar(self.eps)
    }

    /// The loss (see [`VidLoss`] and [`vid_loss`]).
    ///
    /// # Panics
    /// If the channel counts differ from the ones given to [`VidLossConfig::init`].
    pub fn forward(&self, student: Tensor<4>, teacher: Tensor<4>) -> Tensor<1> {
        let teacher = teacher.detach();
        let [_, _, h_s, w_s] = student.dims();
        let [_, _, h_t, w_t] = teacher.dims();
        let size = [h_s.min(h_t), w_s.min(w_t)];
        let pool = |x: Tensor<4>, h, w| {
            if [h, w] == size {
                x
            } else {
                adaptive_avg_pool2d(x, size)
            }
        };
        let student = pool(student, h_s, w_s);
        let teacher = pool(teacher, h_t, w_t);
        vid_loss(self.predict_mean(student), teacher, self.variance())
    }
}

/// VID's Gaussian negative log-likelihood as a function:
/// `0.5 · mean(log σ²_c + (teacher − mean)² / σ²_c)` over all elements.
///
/// The teacher's features are detached.
///
/// # Shapes
/// - predicted mean and teacher features: `[batch, C, H, W]`
/// - variance: `[C]`
/// - output: `[1]`
pub fn vid_loss(mean: Tensor<4>, teacher: Tensor<4>, variance: Tensor<1>) -> Tensor<1> {
    let [channels] = variance.dims();
    let variance = variance.reshape([1, channels, 1, 1]);
    let squared = teacher.detach().sub(mean).square();
    squared
        .div(variance.clone())
        .add(variance.log())
        .mean()
        .mul_scalar(0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::{self, StateDict, TensorJson, assert_scalar_close, assert_tensor_close};
    use burn::tensor::Distribution;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Fixture {
        init_pred_var: f64,
        eps: f64,
        cases: Vec<Case>,
    }

    #[derive(Deserialize)]
    struct Case {
        name: String,
        mid_channels: Option<usize>,
        student: TensorJson,
        teacher: TensorJson,
        weights: StateDict,
        loss: f64,
        grad: TensorJson,
        log_scale_grad: TensorJson,
    }

    // Golden values: tests/fixtures/vid.json, written by tools/reference/loss_learnable.py
    // (PyTorch 2.9.0, float32):
    //
    // ```python
    // class Vid(nn.Module):
    //     def __init__(self, c_s, c_mid, c_t, init_pred_var=5.0, eps=1e-5):
    //         self.conv1 = nn.Conv2d(c_s, c_mid, 1, bias=False)
    //         self.conv2 = nn.Conv2d(c_mid, c_mid, 1, bias=False)
    //         self.conv3 = nn.Conv2d(c_mid, c_t, 1, bias=False)
    //         self.log_scale = nn.Parameter(
    //             math.log(math.expm1(init_pred_var - eps)) * torch.ones(c_t))
    //     def forward(self, s, t):
    //         t = t.detach()
    //         h, w = min(s.shape[2], t.shape[2]), min(s.shape[3], t.shape[3])
    //         if tuple(s.shape[2:]) != (h, w): s = F.adaptive_avg_pool2d(s, (h, w))
    //         if tuple(t.shape[2:]) != (h, w): t = F.adaptive_avg_pool2d(t, (h, w))
    //         mu = self.conv3(F.relu(self.conv2(F.relu(self.conv1(s)))))
    //         var = (torch.log(1.0 + torch.exp(self.log_scale)) + self.eps).view(1, -1, 1, 1)
    //         return 0.5 * torch.mean(torch.log(var) + (mu - t) ** 2 / var)
    //
    // # same_size [4,4,4] vs [8,4,4]; student_larger [4,8,8] vs [8,4,4];
    // # teacher_larger [8,4,4] vs [4,8,8] with mid 6; the last two with log_scale += 0.5 randn
    // ```
    #[test]
    fn matches_pytorch_vid_and_its_gradients() {
        let _rng = crate::test_rng::lock();
        let fixture: Fixture = golden::load("vid");
        let names: Vec<&str> = fixture.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["same_size", "student_larger", "teacher_larger"]);
        let device = Device::flex();
        let train_device = device.clone().autodiff();
        for case in &fixture.cases {
            let loss = VidLossConfig::new()
                .with_mid_channels(case.mid_channels)
                .with_init_pred_var(fixture.init_pred_var)
                .with_eps(fixture.eps)
                .init(
                    &case.student.sample_shape(),
                    &case.teacher.sample_shape(),
                    &train_device,
                )
                .unwrap();
            let loss = golden::load_state_dict(loss, &case.weights);
            let student = case.student.float::<4>(&train_device).require_grad();
            let value = loss.forward(student.clone(), case.teacher.float(&device));
            assert_scalar_close(value.clone(), case.loss, &format!("{}: loss", case.name));
            let grads = value.backward();
            let grad = student
                .grad(&grads)
                .expect("the student receives a gradient");
            assert_tensor_close(grad, &case.grad, &format!("{}: gradient", case.name));
            let alpha_grad = loss
                .log_scale
                .val()
                .grad(&grads)
                .expect("the variances are trained");
            assert_tensor_close(
                alpha_grad,
                &case.log_scale_grad,
                &format!("{}: log_scale gradient", case.name),
            );
        }
    }

    #[test]
    fn an_sgd_step_trains_the_regressor_and_the_variances() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        device.seed(4);
        let loss = VidLossConfig::new()
            .init(&[4, 4, 4], &[6, 2, 2], &device)
            .unwrap();
        let student = Tensor::<4>::random([3, 4, 4, 4], Distribution::Default, &device);
        let teacher =
            Tensor::<4>::random([3, 6, 2, 2], Distribution::Default, &device.clone().inner());
        let before = golden::values(loss.variance());
        let value = loss.forward(student, teacher);
        let (loss, with_grad) = golden::sgd_step(loss, value);
        // Three convolution weights and alpha.
        assert_eq!(with_grad, 4);
        assert_ne!(golden::values(loss.variance()), before);
    }

    #[test]
    fn variances_start_at_init_pred_var() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        for init in [5.0, 0.1, 80.0] {
            let loss = VidLossConfig::new()
                .with_init_pred_var(init)
                .init(&[4, 2, 2], &[3, 2, 2], &device)
                .unwrap();
            for v in golden::values(loss.variance()) {
                assert!((v - init).abs() <= 1e-5 * init.max(1.0), "{v} vs {init}");
            }
        }
        // The hidden width defaults to the teacher's channels.
        let loss = VidLossConfig::new()
            .init(&[4, 2, 2], &[3, 2, 2], &device)
            .unwrap();
        assert_eq!(loss.conv1.weight.dims(), [3, 4, 1, 1]);
        let loss = VidLossConfig::new()
            .with_mid_channels(Some(7))
            .init(&[4, 2, 2], &[3, 2, 2], &device)
            .unwrap();
        assert_eq!(loss.conv2.weight.dims(), [7, 7, 1, 1]);
    }

    #[test]
    fn rejects_bad_configurations_and_shapes() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        let cases = [
            (VidLossConfig::new().with_eps(0.0), "eps"),
            (VidLossConfig::new().with_eps(f64::NAN), "eps"),
            (
                VidLossConfig::new().with_init_pred_var(1e-6),
                "init_pred_var",
            ),
            (
                VidLossConfig::new().with_init_pred_var(f64::INFINITY),
                "init_pred_var",
            ),
            (
                VidLossConfig::new().with_mid_channels(Some(0)),
                "mid_channels",
            ),
        ];
        for (config, key) in cases {
            let err = config.init(&[4, 2, 2], &[3, 2, 2], &device).unwrap_err();
            assert_eq!(err.key(), key, "{config:?}");
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("`{key}` is ")), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
        let err = VidLossConfig::new()
            .init(&[4], &[3, 2, 2], &device)
            .unwrap_err();
        assert_eq!(err.key(), "features");
        let msg = err.to_string();
        assert!(msg.contains("[4]") && msg.contains("[3, 2, 2]"), "{msg}");
    }
}
