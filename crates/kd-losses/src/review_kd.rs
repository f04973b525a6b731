use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use burn::tensor::module::{adaptive_avg_pool2d, interpolate};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use crate::LossError;

/// The pooled sizes of the hierarchical context loss, in order.
const HCL_LEVELS: [usize; 3] = [4, 2, 1];

/// Configuration of a [`ReviewKdLoss`].
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewKdLossConfig {
    /// Channels of the fused features inside every ABF. `None` (the default) uses
    /// `min(512, channels of the deepest student map)`, the rule of the paper's CIFAR code; its
    /// ImageNet code uses 512 for ResNet-18 and 256 for MobileNet students.
    pub mid_channel: Option<usize>,
}

impl ReviewKdLossConfig {
    /// The defaults: `mid_channel = min(512, deepest student channels)`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the fused width (`None` for `min(512, deepest student channels)`).
    pub fn with_mid_channel(mut self, mid_channel: Option<usize>) -> Self {
        self.mid_channel = mid_channel;
        self
    }

    /// Checks the configuration and the shapes, and builds one ABF per stage on `device` (the
    /// training device, so that the optimizer trains them).
    ///
    /// `student` and `teacher` list the per-sample `[C, H, W]` shapes of the tapped maps,
    /// shallow to deep, one teacher map per student map. Any sizes combine: the review path and
    /// the outputs are resized with nearest-neighbour interpolation. `mid_channel`, when set,
    /// must be positive.
    pub fn init(
        &self,
        student: &[Vec<usize>],
        teacher: &[Vec<usize>],
        device: &Device,
    ) -> Result<ReviewKdLoss, LossError> {
        if student.len() != teacher.len() || student.is_empty() {
            return Err(LossError::StageCount {
                key: "features".into(),
                student: student.len(),
                teacher: teacher.len(),
            });
        }
        if self.mid_channel == Some(0) {
            return Err(LossError::InvalidValue {
                key: "mid_channel".into(),
                value: 0.0,
                expected: "positive: leave it unset for min(512, deepest student channels)".into(),
            });
        }
        let mut channels = Vec::with_capacity(student.len());
        for (stage, (s, t)) in student.iter().zip(teacher).enumerate() {
            match (s.as_slice(), t.as_slice()) {
                (&[c_s, h_s, w_s], &[c_t, h_t, w_t])
                    if [c_s, h_s, w_s, c_t, h_t, w_t].iter().all(|&d| d > 0) =>
                {
                    channels.push((c_s, c_t));
                }
                _ => {
                    return Err(LossError::IncompatibleShapes {
                        loss: "review_kd".into(),
                        key: format!("features[{stage}]"),
                        student: s.clone(),
                        teacher: t.clone(),
                        reason: "ReviewKD needs feature maps [C, H, W] with positive dimensions at every stage".into(),
                    });
                }
            }
        }
        let deepest = channels[channels.len() - 1].0;
        let mid = self.mid_channel.unwrap_or(deepest.min(512));
        let last = channels.len() - 1;
        let abfs = channels
            .iter()
            .enumerate()
            .map(|(stage, &(c_s, c_t))| Abf::new(c_s, mid, c_t, stage < last, device))
            .collect();
        Ok(ReviewKdLoss { abfs })
    }
}

/// An attention-based fusion (ABF) module of ReviewKD: it maps one stage's student features to
/// `mid` channels, fuses them with the review path from the deeper stages through two attention
/// maps, and maps the result to the teacher's channels.
///
/// ```text
/// x   = BN(conv1×1(F_s))                                  (C_s → mid, no bias)
/// if fusing: r = nearest(residual, size of F_s);  a = sigmoid(conv1×1(cat[x, r]))  (2 maps)
///            x = x·a₀ + r·a₁
/// x   = nearest(x, teacher size)      when the sizes differ
/// out = BN(conv3×3(x))                                    (mid → C_t, padding 1, no bias)
/// ```
///
/// `x` is passed on as the residual of the next shallower stage. The deepest stage does not
/// fuse. The convolutions are initialised Kaiming-uniform with `a = 1`, as the paper's code.
#[derive(Module, Debug)]
pub struct Abf {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    att_conv: Option<Conv2d>,
}

impl Abf {
    fn new(c_in: usize, mid: usize, c_out: usize, fuse: bool, device: &Device) -> Self {
        // PyTorch's kaiming_uniform_(a=1): gain sqrt(2 / (1 + a²)) = 1.
        let kaiming = Initializer::KaimingUniform {
            gain: 1.0,
            fan_out_only: false,
        };
        Self {
            conv1: Conv2dConfig::new([c_in, mid], [1, 1])
                .with_bias(false)
                .with_initializer(kaiming.clone())
                .init(device),
            bn1: BatchNormConfig::new(mid).init(device),
            conv2: Conv2dConfig::new([mid, c_out], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .with_initializer(kaiming)
                .init(device),
            bn2: BatchNormConfig::new(c_out).init(device),
            att_conv: fuse.then(|| Conv2dConfig::new([2 * mid, 2], [1, 1]).init(device)),
        }
    }

    /// Whether this stage fuses a residual from a deeper stage.
    pub fn fuses(&self) -> bool {
        self.att_conv.is_some()
    }

    /// The stage's output at `out_size` (the teacher's `[H, W]`) and the residual for the next
    /// shallower stage. The residual is fused only when this stage fuses and one is given.
    pub fn forward(
        &self,
        student: Tensor<4>,
        residual: Option<Tensor<4>>,
        out_size: [usize; 2],
    ) -> (Tensor<4>, Tensor<4>) {
        let [_, _, h, w] = student.dims();
        let mut x = self.bn1.forward(self.conv1.forward(student));
        if let (Some(att_conv), Some(residual)) = (&self.att_conv, residual) {
            let residual = resize_nearest(residual, [h, w]);
            let attention =
                sigmoid(att_conv.forward(Tensor::cat(vec![x.clone(), residual.clone()], 1)));
            x = x
                .mul(attention.clone().narrow(1, 0, 1))
                .add(residual.mul(attention.narrow(1, 1, 1)));
        }
        let x = resize_nearest(x, out_size);
        (self.bn2.forward(self.conv2.forward(x.clone())), x)
    }
}

/// PyTorch's `F.interpolate(x, size, mode="nearest")`; the identity at the same size.
fn resize_nearest(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    if [h, w] == size {
        return x;
    }
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Nearest).with_output_size(size),
    )
}

/// ReviewKD ("knowledge review"): every stage of the student is fused with the deeper stages
/// through attention-based fusion (ABF) modules along a residual path from deep to shallow, and
/// each fused stage is matched to the teacher's map of the same stage with the hierarchical
/// context loss.
///
/// ```text
/// for i = n−1 … 0 (deep to shallow):  out_i, residual = ABF_i(F_s[i], residual, size of F_t[i])
/// loss = Σ_i HCL(out_i, F_t[i])
/// HCL(a, b) = [ MSE(a, b) + Σ_{l ∈ (4, 2, 1), l < H} w_l·MSE(pool_l(a), pool_l(b)) ] / (1 + Σ w_l)
/// ```
///
/// Chen, Liu, Zhao and Jia, "Distilling Knowledge via Knowledge Review" (CVPR 2021,
/// <https://arxiv.org/abs/2104.09044>). Conventions of the paper's code
/// (dvlab-research/ReviewKD, `reviewkd.py` and `hcl`): `pool_l` is adaptive average pooling to
/// `l × l`; the levels with `l ≥ H` (the map's height) are skipped, and the weights of the kept
/// levels halve from 1/2 (1/2, 1/4, 1/8); the MSEs are means over all elements; the stages are
/// summed. `mid_channel` defaults to `min(512, deepest student channels)` (see
/// [`ReviewKdLossConfig::mid_channel`]). The paper's warm-up of the loss weight over the first
/// epochs is a recipe matter: this is the unweighted loss.
///
/// The ABFs are the trainable parts: build them on the training device and let the optimizer
/// train them with the student; their BatchNorms use batch statistics on an autodiff device.
/// The teacher's maps are detached; they may live on the plain device.
///
/// # Shapes
/// - student: `n` maps `[batch, C_s_i, H_s_i, W_s_i]`; teacher: `n` maps
///   `[batch, C_t_i, H_t_i, W_t_i]`, shallow to deep, the per-sample shapes given to
///   [`ReviewKdLossConfig::init`]
/// - loss: `[1]`
#[derive(Module, Debug)]
pub struct ReviewKdLoss {
    abfs: Vec<Abf>,
}

impl ReviewKdLoss {
    /// The number of stages.
    pub fn stages(&self) -> usize {
        self.abfs.len()
    }

    /// The ABF of each stage, shallow to deep.
    pub fn abfs(&self) -> &[Abf] {
        &self.abfs
    }

    /// The fused student features of every stage, shallow to deep, each at the teacher's size
    /// `out_sizes[i]` and with the teacher's channels.
    ///
    /// # Panics
    /// If the numbers of maps and sizes differ from the number of stages.
    pub fn review(&self, student: Vec<Tensor<4>>, out_sizes: &[[usize; 2]]) -> Vec<Tensor<4>> {
        assert_eq!(
            (student.len(), out_sizes.len()),
            (self.abfs.len(), self.abfs.len()),
            "ReviewKD was built for {} stages",
            self.abfs.len()
        );
        let mut outs = Vec::with_capacity(student.len());
        let mut residual = None;
        for ((abf, map), &size) in self.abfs.iter().zip(student).zip(out_sizes).rev() {
            let (out, next) = abf.forward(map, residual, size);
            outs.push(out);
            residual = Some(next);
        }
        outs.reverse();
        outs
    }

    /// The loss (see [`ReviewKdLoss`]): [`hierarchical_context_loss`] of the reviewed student
    /// features and the (detached) teacher's maps, summed over the stages.
    ///
    /// # Panics
    /// If the numbers of maps differ from the number of stages, or the channels from the ones
    /// given to [`ReviewKdLossConfig::init`].
    pub fn forward(&self, student: Vec<Tensor<4>>, teacher: Vec<Tensor<4>>) -> Tensor<1> {
        let sizes: Vec<[usize; 2]> = teacher
            .iter()
            .map(|t| {
                let [_, _, h, w] = t.dims();
                [h, w]
            })
            .collect();
        let outs = self.review(student, &sizes);
        outs.into_iter()
            .zip(teacher)
            .map(|(s, t)| hierarchical_context_loss(s, t))
            .reduce(Tensor::add)
            .expect("ReviewKdLossConfig::init builds at least one stage")
    }
}

/// ReviewKD's hierarchical context loss (HCL) of one stage as a function:
/// `[MSE(s, t) + Σ w_l·MSE(pool_l(s), pool_l(t))] / (1 + Σ w_l)` over the levels `l` of
/// `(4, 2, 1)` below the height `H`, with weights halving from 1/2.
///
/// The teacher's map is detached.
///
/// # Shapes
/// - student (reviewed) and teacher maps: `[batch, C, H, W]`
/// - output: `[1]`
pub fn hierarchical_context_loss(student: Tensor<4>, teacher: Tensor<4>) -> Tensor<1> {
    let teacher = teacher.detach();
    let [_, _, h, _] = student.dims();
    let mut loss = student.clone().sub(teacher.clone()).square().mean();
    let (mut weight, mut total) = (1.0, 1.0);
    for level in HCL_LEVELS.into_iter().filter(|&l| l < h) {
        weight /= 2.0;
        let pooled_s = adaptive_avg_pool2d(student.clone(), [level, level]);
        let pooled_t = adaptive_avg_pool2d(teacher.clone(), [level, level]);
        loss = loss.add(pooled_s.sub(pooled_t).square().mean().mul_scalar(weight));
        total += weight;
    }
    loss.div_scalar(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::{self, StateDict, TensorJson, assert_scalar_close, assert_tensor_close};
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Fixture {
        cases: Vec<Case>,
    }

    #[derive(Deserialize)]
    struct Case {
        name: String,
        mid_channel: Option<usize>,
        students: Vec<TensorJson>,
        teachers: Vec<TensorJson>,
        weights: StateDict,
        loss: f64,
        grads: Vec<TensorJson>,
    }

    // Golden values: tests/fixtures/review_kd.json, written by tools/reference/loss_learnable.py
    // (PyTorch 2.9.0, float32, modules in training mode):
    //
    // ```python
    // class Abf(nn.Module):   # conv1 1x1 -> bn1; att_conv 1x1 (bias, 2 maps) unless deepest;
    //                         # conv2 3x3 pad 1 -> bn2; kaiming_uniform_(a=1) on conv1, conv2
    //     def forward(self, x, residual, out_hw):
    //         h, w = x.shape[2:]
    //         x = self.bn1(self.conv1(x))
    //         if self.att_conv is not None:
    //             residual = F.interpolate(residual, (h, w), mode="nearest")
    //             a = torch.sigmoid(self.att_conv(torch.cat([x, residual], 1)))
    //             x = x * a[:, 0:1] + residual * a[:, 1:2]
    //         if tuple(x.shape[2:]) != tuple(out_hw):
    //             x = F.interpolate(x, tuple(out_hw), mode="nearest")
    //         return self.bn2(self.conv2(x)), x
    // # ReviewKd.forward: for i in reversed(range(n)): outs[i], residual = abfs[i](fs[i], residual,
    // #     ft[i].shape[2:]);  loss = sum(hcl(o, t) for o, t in zip(outs, ft))
    // def hcl(fs, ft):
    //     h = fs.shape[2]; loss = F.mse_loss(fs, ft); weight, total = 1.0, 1.0
    //     for level in (4, 2, 1):
    //         if level >= h: continue
    //         weight /= 2.0
    //         loss = loss + F.mse_loss(F.adaptive_avg_pool2d(fs, level),
    //                                  F.adaptive_avg_pool2d(ft, level)) * weight
    //         total += weight
    //     return loss / total
    // # same_sizes: student [4,8,8] [8,4,4] [8,2,2], teacher [8,8,8] [8,4,4] [16,2,2], mid 8;
    // # teacher_larger: student [4,4,4] [8,2,2], teacher [8,8,8] [8,4,4], mid 6;
    // # BatchNorm gamma = 1 + 0.2 randn, beta = 0.1 randn; grads = each student map's .grad
    // ```
    #[test]
    fn matches_pytorch_review_kd_and_its_gradients() {
        let _rng = crate::test_rng::lock();
        let fixture: Fixture = golden::load("review_kd");
        let names: Vec<&str> = fixture.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["same_sizes", "teacher_larger"]);
        let device = Device::flex();
        let train_device = device.clone().autodiff();
        for case in &fixture.cases {
            let shapes = |maps: &[TensorJson]| -> Vec<Vec<usize>> {
                maps.iter().map(TensorJson::sample_shape).collect()
            };
            let loss = ReviewKdLossConfig::new()
                .with_mid_channel(case.mid_channel)
                .init(
                    &shapes(&case.students),
                    &shapes(&case.teachers),
                    &train_device,
                )
                .unwrap();
            let loss = golden::load_state_dict(loss, &case.weights);
            let students: Vec<Tensor<4>> = case
                .students
                .iter()
                .map(|s| s.float(&train_device).require_grad())
                .collect();
            let teachers = case.teachers.iter().map(|t| t.float(&device)).collect();
            let value = loss.forward(students.clone(), teachers);
            assert_scalar_close(value.clone(), case.loss, &format!("{}: loss", case.name));
            let grads = value.backward();
            for (i, (student, want)) in students.iter().zip(&case.grads).enumerate() {
                let grad = student
                    .grad(&grads)
                    .expect("every student map receives a gradient");
                assert_tensor_close(grad, want, &format!("{}: gradient of map {i}", case.name));
            }
        }
    }

    #[test]
    fn builds_one_abf_per_stage_fusing_all_but_the_deepest() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        let loss = ReviewKdLossConfig::new()
            .init(
                &[vec![16, 8, 8], vec![32, 4, 4], vec![600, 2, 2]],
                &[vec![8, 8, 8], vec![8, 4, 4], vec![8, 2, 2]],
                &device,
            )
            .unwrap();
        assert_eq!(loss.stages(), 3);
        let fuses: Vec<bool> = loss.abfs().iter().map(Abf::fuses).collect();
        assert_eq!(fuses, [true, true, false]);
        // mid_channel = min(512, 600).
        assert_eq!(loss.abfs()[0].conv1.weight.dims(), [512, 16, 1, 1]);
        let loss = ReviewKdLossConfig::new()
            .with_mid_channel(Some(3))
            .init(&[vec![4, 2, 2]], &[vec![5, 1, 1]], &device)
            .unwrap();
        assert_eq!(loss.abfs()[0].conv2.weight.dims(), [5, 3, 3, 3]);
        let out = loss.review(vec![Tensor::ones([2, 4, 2, 2], &device)], &[[1, 1]]);
        assert_eq!(out[0].dims(), [2, 5, 1, 1]);
    }

    #[test]
    fn an_sgd_step_trains_every_abf() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        device.seed(8);
        let loss = ReviewKdLossConfig::new()
            .init(
                &[vec![4, 4, 4], vec![8, 2, 2]],
                &[vec![6, 4, 4], vec![6, 2, 2]],
                &device,
            )
            .unwrap();
        let random = |shape: [usize; 4], device: &Device| {
            Tensor::<4>::random(shape, burn::tensor::Distribution::Default, device)
        };
        let students = vec![random([3, 4, 4, 4], &device), random([3, 8, 2, 2], &device)];
        let teachers = vec![
            random([3, 6, 4, 4], &device.clone().inner()),
            random([3, 6, 2, 2], &device.clone().inner()),
        ];
        let before = golden::values(loss.abfs()[1].conv1.weight.val());
        let value = loss.forward(students, teachers);
        let (loss, with_grad) = golden::sgd_step(loss, value);
        // Shallow ABF: conv1, bn1 (2), conv2, bn2 (2), att_conv weight and bias; deepest: 6.
        assert_eq!(with_grad, 8 + 6);
        assert_ne!(golden::values(loss.abfs()[1].conv1.weight.val()), before);
    }

    #[test]
    fn hcl_of_equal_maps_is_zero_and_skips_levels_at_or_above_the_height() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex();
        let a = Tensor::<4>::random([2, 3, 4, 4], burn::tensor::Distribution::Default, &device);
        let zero = hierarchical_context_loss(a.clone(), a.clone());
        assert_eq!(golden::values(zero), [0.0]);
        // A constant offset c gives MSE c² at every level, so HCL = c² whatever the weights.
        let shifted = a.clone().add_scalar(0.5);
        let hcl = golden::values(hierarchical_context_loss(shifted, a))[0];
        assert!((hcl - 0.25).abs() < 1e-6, "{hcl}");
        // A 1×1 map keeps no level: HCL is the plain MSE.
        let s = Tensor::<4>::from_floats([[[[3.0]]]], &device);
        let t = Tensor::<4>::from_floats([[[[1.0]]]], &device);
        assert_eq!(golden::values(hierarchical_context_loss(s, t)), [4.0]);
    }

    #[test]
    fn rejects_bad_configurations_and_shapes() {
        let _rng = crate::test_rng::lock();
        let device = Device::flex().autodiff();
        let maps = [vec![4, 4, 4], vec![8, 2, 2]];
        let err = ReviewKdLossConfig::new()
            .init(&maps, &maps[..1], &device)
            .unwrap_err();
        assert_eq!(err.key(), "features");
        let msg = err.to_string();
        assert!(msg.contains("2 student and 1 teacher"), "{msg}");
        let err = ReviewKdLossConfig::new()
            .init(&[], &[], &device)
            .unwrap_err();
        assert_eq!(err.key(), "features");
        let err = ReviewKdLossConfig::new()
            .init(&maps, &[vec![4, 4, 4], vec![8]], &device)
            .unwrap_err();
        assert_eq!(err.key(), "features[1]");
        let msg = err.to_string();
        assert!(msg.contains("[8, 2, 2]") && msg.contains("[8]"), "{msg}");
        let err = ReviewKdLossConfig::new()
            .with_mid_channel(Some(0))
            .init(&maps, &maps, &device)
            .unwrap_err();
        assert_eq!(err.key(), "mid_channel");
        assert!(err.to_string().starts_with("`mid_channel` is 0 "));
    }
}
