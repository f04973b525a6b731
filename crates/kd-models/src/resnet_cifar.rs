//! The CIFAR ResNets of the distillation literature (He et al. 2016, section 4.2), as in the CRD
//! repository (`HobbitLong/RepDistiller`, `models/resnet.py`).
//!
//! A 3x3 stem, three stages of `n` [`BasicBlock`]s with strides 1, 2, 2, global average pool
//! and a linear head; depth = `6n + 2`. Shortcuts that change shape are 1x1 convolutions with
//! batch norm (option B). Widths are `[stem, stage1, stage2, stage3]`: `[16, 16, 32, 64]` for
//! resnet8..resnet110 and `[32, 64, 128, 256]` for the `x4` variants.
//!
//! Parameter paths are torchvision-like (`conv1.weight`, `layer1.0.conv1.weight`,
//! `layer2.0.downsample.conv.weight`, `fc.weight`), with the same renames as
//! [`crate::resnet::weights`]; there is no enum level since every block is a [`BasicBlock`].
//!
//! # Feature taps
//!
//! | tap | 32x32 input, resnet20 |
//! |---|---|
//! | `stem` | `[B, 16, 32, 32]` |
//! | `layer1` | `[B, 16, 32, 32]` |
//! | `layer2` | `[B, 32, 16, 16]` |
//! | `layer3` | `[B, 64, 8, 8]` |
//! | `pre_logits` | `[B, 64]` ([`kd_core::Feature::Vector`]) |

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, Linear, LinearConfig, Relu};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::pretrained::{Interpolation, PretrainedConfig};
use crate::resnet::BasicBlock;
use crate::resnet::block::{batch_norm, conv3x3};
use crate::taps::TapCollector;

/// Widths `[stem, stage1, stage2, stage3]` of resnet8..resnet110.
pub const CIFAR_WIDTHS: [usize; 4] = [16, 16, 32, 64];
/// Widths `[stem, stage1, stage2, stage3]` of resnet8x4 and resnet32x4.
pub const CIFAR_X4_WIDTHS: [usize; 4] = [32, 64, 128, 256];

/// The CIFAR-100 preprocessing of the CRD teachers and students (RepDistiller's
/// `dataset/cifar100.py`: `Normalize((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))` on
/// 32x32 images, no resize or crop).
pub const RESNET_CIFAR_PRETRAINED: PretrainedConfig = PretrainedConfig {
    mean: [0.5071, 0.4867, 0.4408],
    std: [0.2675, 0.2565, 0.2761],
    input_size: [3, 32, 32],
    interpolation: Interpolation::Bilinear,
    crop_pct: 1.0,
};

/// The feature taps of a [`ResNetCifar`], in forward order.
pub const RESNET_CIFAR_TAPS: [&str; 5] = ["stem", "layer1", "layer2", "layer3", "pre_logits"];

/// Stride of the first block of each stage.
const STAGE_STRIDES: [usize; 3] = [1, 2, 2];

/// Configuration of a [`ResNetCifar`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResNetCifarConfig {
    /// Basic blocks per stage, `n = (depth - 2) / 6`.
    pub blocks_per_stage: usize,
    /// Widths `[stem, stage1, stage2, stage3]`.
    pub widths: [usize; 4],
    /// Classes the head predicts.
    pub num_classes: usize,
    /// Input channels.
    pub in_channels: usize,
}

impl ResNetCifarConfig {
    /// A network of depth `6 * blocks_per_stage + 2` with `widths`, for RGB input.
    pub fn new(blocks_per_stage: usize, widths: [usize; 4], num_classes: usize) -> Self {
        Self {
            blocks_per_stage,
            widths,
            num_classes,
            in_channels: 3,
        }
    }

    /// A network of `depth` layers (`6n + 2`) with `widths`, or an error for another depth.
    pub fn from_depth(
        depth: usize,
        widths: [usize; 4],
        num_classes: usize,
    ) -> Result<Self, ModelError> {
        if depth < 8 || !(depth - 2).is_multiple_of(6) {
            return Err(ModelError::CifarDepth { depth });
        }
        Ok(Self::new((depth - 2) / 6, widths, num_classes))
    }

    /// ResNet-8: one block per stage.
    pub fn resnet8(num_classes: usize) -> Self {
        Self::new(1, CIFAR_WIDTHS, num_classes)
    }

    /// ResNet-14: two blocks per stage.
    pub fn resnet14(num_classes: usize) -> Self {
        Self::new(2, CIFAR_WIDTHS, num_classes)
    }

    /// ResNet-20: three blocks per stage.
    pub fn resnet20(num_classes: usize) -> Self {
        Self::new(3, CIFAR_WIDTHS, num_classes)
    }

    /// ResNet-32: five blocks per stage.
    pub fn resnet32(num_classes: usize) -> Self {
        Self::new(5, CIFAR_WIDTHS, num_classes)
    }

    /// ResNet-44: seven blocks per stage.
    pub fn resnet44(num_classes: usize) -> Self {
        Self::new(7, CIFAR_WIDTHS, num_classes)
    }

    /// ResNet-56: nine blocks per stage.
    pub fn resnet56(num_classes: usize) -> Self {
        Self::new(9, CIFAR_WIDTHS, num_classes)
    }

    /// ResNet-110: eighteen blocks per stage.
    pub fn resnet110(num_classes: usize) -> Self {
        Self::new(18, CIFAR_WIDTHS, num_classes)
    }

    /// ResNet-8x4: one block per stage, widths [`CIFAR_X4_WIDTHS`].
    pub fn resnet8x4(num_classes: usize) -> Self {
        Self::new(1, CIFAR_X4_WIDTHS, num_classes)
    }

    /// ResNet-32x4: five blocks per stage, widths [`CIFAR_X4_WIDTHS`].
    pub fn resnet32x4(num_classes: usize) -> Self {
        Self::new(5, CIFAR_X4_WIDTHS, num_classes)
    }

    /// Sets the number of input channels.
    pub fn with_in_channels(mut self, in_channels: usize) -> Self {
        self.in_channels = in_channels;
        self
    }

    /// The network depth, `6n + 2`.
    pub fn depth(&self) -> usize {
        6 * self.blocks_per_stage + 2
    }

    /// Checks that every size is positive.
    pub fn validate(&self) -> Result<(), ModelError> {
        let zero = |field: String| ModelError::ZeroSize {
            model: "resnet_cifar",
            field,
        };
        if self.blocks_per_stage == 0 {
            return Err(zero("blocks_per_stage".into()));
        }
        if self.num_classes == 0 {
            return Err(zero("num_classes".into()));
        }
        if self.in_channels == 0 {
            return Err(zero("in_channels".into()));
        }
        if let Some(i) = self.widths.iter().position(|&w| w == 0) {
            return Err(zero(format!("widths[{i}]")));
        }
        Ok(())
    }

    /// Builds the network on `device`, or says which size is invalid.
    ///
    /// Initialisation follows the CRD repository: Kaiming normal (fan-out, ReLU gain) for
    /// convolutions, batch norms weight 1 and bias 0, PyTorch's default for `fc`.
    pub fn try_init(&self, device: &Device) -> Result<ResNetCifar, ModelError> {
        self.validate()?;
        let [stem, stage_widths @ ..] = self.widths;
        let mut inplanes = stem;
        let [layer1, layer2, layer3] = std::array::from_fn(|stage| {
            (0..self.blocks_per_stage)
                .map(|i| {
                    let stride = if i == 0 { STAGE_STRIDES[stage] } else { 1 };
                    let planes = stage_widths[stage];
                    let block = BasicBlock::new(inplanes, planes, stride, false, device);
                    inplanes = planes;
                    block
                })
                .collect::<Vec<_>>()
        });
        Ok(ResNetCifar {
            conv1: conv3x3(self.in_channels, stem, 1, device),
            bn1: batch_norm(stem, device),
            relu: Relu::new(),
            layer1,
            layer2,
            layer3,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(inplanes, self.num_classes).init(device),
            num_classes: self.num_classes,
        })
    }

    /// Builds the network on `device`.
    ///
    /// # Panics
    ///
    /// Panics when [`validate`](Self::validate) fails (a zero size); the named constructors
    /// always validate. Use [`try_init`](Self::try_init) for configurations read from users.
    pub fn init(&self, device: &Device) -> ResNetCifar {
        self.try_init(device)
            .unwrap_or_else(|err| panic!("invalid resnet_cifar configuration: {err}"))
    }
}

/// A CIFAR-style ResNet. Build it with [`ResNetCifarConfig`].
///
/// # Shapes
/// - input: `[batch, in_channels, height, width]`
/// - output: `[batch, num_classes]`
#[derive(Module, Debug)]
pub struct ResNetCifar {
    /// 3x3 stride-1 stem convolution.
    pub conv1: Conv2d,
    /// Stem batch norm.
    pub bn1: BatchNorm,
    /// The ReLU after the stem.
    pub relu: Relu,
    /// Stage 1, stride 1.
    pub layer1: Vec<BasicBlock>,
    /// Stage 2, stride 2.
    pub layer2: Vec<BasicBlock>,
    /// Stage 3, stride 2.
    pub layer3: Vec<BasicBlock>,
    /// Global average pool.
    pub avgpool: AdaptiveAvgPool2d,
    /// Classifier, weight `[widths[3], num_classes]`.
    pub fc: Linear,
    /// Classes the head predicts.
    pub num_classes: usize,
}

impl ResNetCifar {
    fn features_collecting(&self, x: Tensor<4>, taps: &mut TapCollector) -> Tensor<4> {
        let mut x = self.relu.forward(self.bn1.forward(self.conv1.forward(x)));
        taps.offer_map("stem", &x);
        for (name, stage) in [
            ("layer1", &self.layer1),
            ("layer2", &self.layer2),
            ("layer3", &self.layer3),
        ] {
            x = stage.iter().fold(x, |x, block| block.forward(x));
            taps.offer_map(name, &x);
        }
        x
    }

    /// The output of `layer3`, `[batch, widths[3], height / 4, width / 4]`.
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        self.features_collecting(x, &mut TapCollector::new(&[]))
    }
}

crate::taps::impl_pooled_classifier!(ResNetCifar, RESNET_CIFAR_TAPS, zero_bias_head = false);

#[cfg(test)]
mod tests {
    use super::*;
    use kd_core::{Feature, ImageClassifier};

    #[test]
    fn shapes_and_taps() {
        let device = Device::flex();
        let model = ResNetCifarConfig::resnet8x4(100).init(&device).valid();
        let x = Tensor::<4>::zeros([2, 3, 32, 32], &device);
        let (logits, features) = model.forward_with_taps(x, &RESNET_CIFAR_TAPS);
        assert_eq!(logits.dims(), [2, 100]);
        let dims: Vec<Vec<usize>> = features.iter().map(Feature::dims).collect();
        assert_eq!(
            dims,
            vec![
                vec![2, 32, 32, 32],
                vec![2, 64, 32, 32],
                vec![2, 128, 16, 16],
                vec![2, 256, 8, 8],
                vec![2, 256],
            ]
        );
        let model = ResNetCifarConfig::resnet20(10)
            .with_in_channels(1)
            .init(&device)
            .valid();
        let x = Tensor::<4>::zeros([1, 1, 28, 28], &device);
        assert_eq!(model.forward_features(x.clone()).dims(), [1, 64, 7, 7]);
        assert_eq!(model.forward(x).dims(), [1, 10]);
    }

    /// Trainable parameter counts of the CRD models for 100 classes, from
    /// `tools/reference/models.py` (`sum(p.numel() for p in model.parameters())`): resnet20
    /// 278,324, resnet8x4 1,233,540, resnet32x4 7,433,860. Burn also counts the running mean
    /// and variance of every batch norm.
    #[test]
    fn parameter_counts_match_crd() {
        let device = Device::flex();
        for (config, trainable) in [
            (ResNetCifarConfig::resnet20(100), 278_324usize),
            (ResNetCifarConfig::resnet8x4(100), 1_233_540),
            (ResNetCifarConfig::resnet32x4(100), 7_433_860),
        ] {
            let model = config.init(&device);
            let bn_channels: usize = [&model.layer1, &model.layer2, &model.layer3]
                .into_iter()
                .flatten()
                .map(|b| {
                    let [c] = b.bn2.gamma.shape().dims();
                    2 * c + b.downsample.as_ref().map_or(0, |_| c)
                })
                .sum::<usize>()
                + config.widths[0];
            assert_eq!(
                model.num_params(),
                trainable + 2 * bn_channels,
                "{config:?}"
            );
        }
    }

    #[test]
    fn depths() {
        assert_eq!(ResNetCifarConfig::resnet110(10).depth(), 110);
        assert_eq!(ResNetCifarConfig::resnet32x4(10).depth(), 32);
        assert_eq!(
            ResNetCifarConfig::from_depth(56, CIFAR_WIDTHS, 10).unwrap(),
            ResNetCifarConfig::resnet56(10)
        );
        let err = ResNetCifarConfig::from_depth(18, CIFAR_WIDTHS, 10).unwrap_err();
        assert!(err.to_string().contains("6n + 2"), "{err}");
    }
}
