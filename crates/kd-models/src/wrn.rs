//! Wide residual networks (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016,
//! <https://arxiv.org/abs/1605.07146>), in the CIFAR form the distillation literature uses
//! (the CRD repository's `models/wrn.py`: `wrn_16_2`, `wrn_40_1`, `wrn_40_2`, ...).
//!
//! A 3x3 stem to 16 channels, three groups of `n = (depth - 4) / 6` pre-activation blocks of
//! widths `16k`, `32k`, `64k` (strides 1, 2, 2), a final batch norm and ReLU, global average
//! pooling and a linear head. A block is `BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3`; when its
//! width or stride changes, the shortcut is a 1x1 convolution of the *pre-activated* input.
//!
//! Parameter paths mirror the reference state dict (`conv1`, `block1.layer.0.bn1`,
//! `block1.layer.0.conv_shortcut`, `bn1`, `fc`); only `convShortcut` is renamed, see
//! [`WRN_KEY_MAP`].
//!
//! # Feature taps
//!
//! | tap | 32x32 input, wrn_40_2 |
//! |---|---|
//! | `stem` | `[B, 16, 32, 32]` |
//! | `block1` | `[B, 32, 32, 32]` |
//! | `block2` | `[B, 64, 16, 16]` |
//! | `block3` | `[B, 128, 8, 8]`, after the final batch norm and ReLU (as CRD's `feat[3]`) |
//! | `pre_logits` | `[B, 128]` ([`kd_core::Feature::Vector`]) |

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, Dropout, DropoutConfig, Linear, LinearConfig, Relu};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::pretrained::PretrainedConfig;
use crate::resnet::block::{batch_norm, conv1x1, conv3x3};
use crate::taps::TapCollector;

/// The CIFAR-100 preprocessing of the CRD wide ResNets, the same as
/// [`crate::RESNET_CIFAR_PRETRAINED`].
pub const WRN_PRETRAINED: PretrainedConfig = crate::resnet_cifar::RESNET_CIFAR_PRETRAINED;

/// The feature taps of a [`WideResNet`], in forward order.
pub const WRN_TAPS: [&str; 5] = ["stem", "block1", "block2", "block3", "pre_logits"];

/// Checkpoint keys that differ from Burn paths, as (checkpoint regex, Burn replacement).
///
/// The reference implementation names the shortcut `convShortcut`; Rust fields are snake case.
pub const WRN_KEY_MAP: &[(&str, &str)] = &[(r"\.convShortcut\.", ".conv_shortcut.")];

/// The wide ResNets' weight map: [`WRN_KEY_MAP`], head `fc.`.
pub const WRN_WEIGHTS: crate::WeightMap = crate::WeightMap {
    key_map: WRN_KEY_MAP,
    head_prefix: "fc.",
    ignored: &[],
};

/// Width of the stem and base width of the groups, before the widen factor.
const BASE_WIDTHS: [usize; 3] = [16, 32, 64];
/// Stride of the first block of each group.
const GROUP_STRIDES: [usize; 3] = [1, 2, 2];

/// Configuration of a [`WideResNet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WideResNetConfig {
    /// Depth, of the form `6n + 4`.
    pub depth: usize,
    /// Widen factor `k`.
    pub widen_factor: usize,
    /// Classes the head predicts.
    pub num_classes: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Dropout between the two convolutions of a block, active in training only.
    pub drop_rate: f64,
}

impl WideResNetConfig {
    /// WRN-`depth`-`widen_factor` for RGB input, without dropout.
    pub fn new(depth: usize, widen_factor: usize, num_classes: usize) -> Self {
        Self {
            depth,
            widen_factor,
            num_classes,
            in_channels: 3,
            drop_rate: 0.0,
        }
    }

    /// WRN-16-1.
    pub fn wrn_16_1(num_classes: usize) -> Self {
        Self::new(16, 1, num_classes)
    }

    /// WRN-16-2, a CRD student.
    pub fn wrn_16_2(num_classes: usize) -> Self {
        Self::new(16, 2, num_classes)
    }

    /// WRN-40-1, a CRD student.
    pub fn wrn_40_1(num_classes: usize) -> Self {
        Self::new(40, 1, num_classes)
    }

    /// WRN-40-2, a CRD teacher.
    pub fn wrn_40_2(num_classes: usize) -> Self {
        Self::new(40, 2, num_classes)
    }

    /// Sets the number of input channels.
    pub fn with_in_channels(mut self, in_channels: usize) -> Self {
        self.in_channels = in_channels;
        self
    }

    /// Sets the dropout rate inside the blocks.
    pub fn with_drop_rate(mut self, drop_rate: f64) -> Self {
        self.drop_rate = drop_rate;
        self
    }

    /// Blocks per group, `(depth - 4) / 6`.
    pub fn blocks_per_group(&self) -> usize {
        (self.depth - 4) / 6
    }

    /// Channels of the stem and the three groups.
    pub fn widths(&self) -> [usize; 4] {
        let k = self.widen_factor;
        [
            BASE_WIDTHS[0],
            BASE_WIDTHS[0] * k,
            BASE_WIDTHS[1] * k,
            BASE_WIDTHS[2] * k,
        ]
    }

    /// Checks the depth, the sizes and the dropout rate.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.depth < 10 || !(self.depth - 4).is_multiple_of(6) {
            return Err(ModelError::WrnDepth { depth: self.depth });
        }
        for (field, value) in [
            ("widen_factor", self.widen_factor),
            ("num_classes", self.num_classes),
            ("in_channels", self.in_channels),
        ] {
            if value == 0 {
                return Err(ModelError::ZeroSize {
                    model: "wide_resnet",
                    field: field.into(),
                });
            }
        }
        if !(0.0..1.0).contains(&self.drop_rate) {
            return Err(ModelError::Rate {
                model: "wide_resnet",
                field: "drop_rate".into(),
                value: self.drop_rate,
            });
        }
        Ok(())
    }

    /// Builds the network on `device`, or says which setting is invalid.
    ///
    /// Initialisation follows the reference: Kaiming normal (fan-out, ReLU gain) for
    /// convolutions, batch norms weight 1 and bias 0, PyTorch's default weight and a zero
    /// bias for `fc`.
    pub fn try_init(&self, device: &Device) -> Result<WideResNet, ModelError> {
        self.validate()?;
        let [stem, group_widths @ ..] = self.widths();
        let mut in_planes = stem;
        let [block1, block2, block3] = std::array::from_fn(|group| {
            let out_planes = group_widths[group];
            let layer = (0..self.blocks_per_group())
                .map(|i| {
                    let (c_in, stride) = if i == 0 {
                        (in_planes, GROUP_STRIDES[group])
                    } else {
                        (out_planes, 1)
                    };
                    WideBlock::new(c_in, out_planes, stride, self.drop_rate, device)
                })
                .collect();
            in_planes = out_planes;
            WideGroup { layer }
        });
        let fc = LinearConfig::new(in_planes, self.num_classes).init(device);
        let fc = crate::head::fresh_head(&fc, self.num_classes, true, device);
        Ok(WideResNet {
            conv1: conv3x3(self.in_channels, stem, 1, device),
            block1,
            block2,
            block3,
            bn1: batch_norm(in_planes, device),
            relu: Relu::new(),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc,
            num_classes: self.num_classes,
        })
    }
}

/// A pre-activation wide block: `BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3` plus a shortcut.
#[derive(Module, Debug)]
pub struct WideBlock {
    /// Batch norm on the block input.
    pub bn1: BatchNorm,
    /// First 3x3 convolution, with the block's stride.
    pub conv1: Conv2d,
    /// Batch norm after the first convolution.
    pub bn2: BatchNorm,
    /// Second 3x3 convolution.
    pub conv2: Conv2d,
    /// 1x1 projection of the pre-activated input when the shape changes.
    pub conv_shortcut: Option<Conv2d>,
    /// Dropout between the convolutions (inactive in eval or at rate 0).
    pub dropout: Dropout,
    /// The shared ReLU.
    pub relu: Relu,
}

impl WideBlock {
    fn new(c_in: usize, c_out: usize, stride: usize, drop_rate: f64, device: &Device) -> Self {
        let conv_shortcut =
            (c_in != c_out || stride != 1).then(|| conv1x1(c_in, c_out, stride, device));
        Self {
            bn1: batch_norm(c_in, device),
            conv1: conv3x3(c_in, c_out, stride, device),
            bn2: batch_norm(c_out, device),
            conv2: conv3x3(c_out, c_out, 1, device),
            conv_shortcut,
            dropout: DropoutConfig::new(drop_rate).init(),
            relu: Relu::new(),
        }
    }

    /// The block output, `[B, c_out, H / stride, W / stride]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let pre = self.relu.forward(self.bn1.forward(x.clone()));
        let out = self
            .relu
            .forward(self.bn2.forward(self.conv1.forward(pre.clone())));
        let out = self.conv2.forward(self.dropout.forward(out));
        let shortcut = match &self.conv_shortcut {
            Some(conv) => conv.forward(pre),
            None => x,
        };
        out + shortcut
    }
}

/// A group of wide blocks; its field name mirrors the reference's `NetworkBlock.layer`.
#[derive(Module, Debug)]
pub struct WideGroup {
    /// The blocks, first one with the group's stride.
    pub layer: Vec<WideBlock>,
}

impl WideGroup {
    /// Runs the blocks in order.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.layer.iter().fold(x, |x, block| block.forward(x))
    }
}

/// A wide residual network. Build it with [`WideResNetConfig`].
///
/// # Shapes
/// - input: `[batch, in_channels, height, width]`
/// - output: `[batch, num_classes]`
#[derive(Module, Debug)]
pub struct WideResNet {
    /// 3x3 stem convolution to 16 channels.
    pub conv1: Conv2d,
    /// Group 1, stride 1.
    pub block1: WideGroup,
    /// Group 2, stride 2.
    pub block2: WideGroup,
    /// Group 3, stride 2.
    pub block3: WideGroup,
    /// The final batch norm.
    pub bn1: BatchNorm,
    /// The final ReLU.
    pub relu: Relu,
    /// Global average pool.
    pub avgpool: AdaptiveAvgPool2d,
    /// Classifier, weight `[64k, num_classes]`.
    pub fc: Linear,
    /// Classes the head predicts.
    pub num_classes: usize,
}

impl WideResNet {
    fn features_collecting(&self, x: Tensor<4>, taps: &mut TapCollector) -> Tensor<4> {
        let x = self.conv1.forward(x);
        taps.offer_map("stem", &x);
        let x = self.block1.forward(x);
        taps.offer_map("block1", &x);
        let x = self.block2.forward(x);
        taps.offer_map("block2", &x);
        let x = self.relu.forward(self.bn1.forward(self.block3.forward(x)));
        taps.offer_map("block3", &x);
        x
    }

    /// The activated output of group 3, `[batch, 64k, height / 4, width / 4]`.
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        self.features_collecting(x, &mut TapCollector::new(&[]))
    }
}

crate::taps::impl_pooled_classifier!(WideResNet, WRN_TAPS, zero_bias_head = true);

#[cfg(test)]
mod tests {
    use super::*;
    use kd_core::{Feature, ImageClassifier};

    #[test]
    fn shapes_and_taps() {
        let device = Device::flex();
        let model = WideResNetConfig::wrn_40_2(100)
            .try_init(&device)
            .unwrap()
            .valid();
        let x = Tensor::<4>::zeros([2, 3, 32, 32], &device);
        let (logits, features) = model.forward_with_taps(x, &WRN_TAPS);
        assert_eq!(logits.dims(), [2, 100]);
        let dims: Vec<Vec<usize>> = features.iter().map(Feature::dims).collect();
        assert_eq!(
            dims,
            vec![
                vec![2, 16, 32, 32],
                vec![2, 32, 32, 32],
                vec![2, 64, 16, 16],
                vec![2, 128, 8, 8],
                vec![2, 128],
            ]
        );
    }

    /// Trainable parameter counts from `tools/reference/export_models.py`
    /// (`sum(p.numel() for p in model.parameters())`, 100 classes): wrn_16_2 703,284,
    /// wrn_40_1 569,780, wrn_40_2 2,255,156. Burn also counts batch-norm running statistics.
    #[test]
    fn parameter_counts_match_the_reference() {
        let device = Device::flex();
        for (config, trainable) in [
            (WideResNetConfig::wrn_16_2(100), 703_284usize),
            (WideResNetConfig::wrn_40_1(100), 569_780),
            (WideResNetConfig::wrn_40_2(100), 2_255_156),
        ] {
            let model = config.try_init(&device).unwrap();
            let bn_channels: usize = [&model.block1, &model.block2, &model.block3]
                .into_iter()
                .flat_map(|g| &g.layer)
                .map(|b| b.bn1.gamma.dims()[0] + b.bn2.gamma.dims()[0])
                .sum::<usize>()
                + model.bn1.gamma.dims()[0];
            assert_eq!(
                model.num_params(),
                trainable + 2 * bn_channels,
                "{config:?}"
            );
        }
    }

    #[test]
    fn bad_configurations_are_refused() {
        let device = Device::flex();
        let err = WideResNetConfig::new(18, 2, 10)
            .try_init(&device)
            .unwrap_err();
        assert!(err.to_string().contains("6n + 4"), "{err}");
        let err = WideResNetConfig::wrn_16_2(10)
            .with_drop_rate(1.0)
            .try_init(&device)
            .unwrap_err();
        assert!(err.to_string().contains("drop_rate"), "{err}");
        let err = WideResNetConfig::new(16, 0, 10)
            .try_init(&device)
            .unwrap_err();
        assert!(err.to_string().contains("widen_factor"), "{err}");
    }

    #[test]
    fn replace_head_changes_only_the_classifier() {
        let device = Device::flex();
        let model = WideResNetConfig::wrn_16_2(100).try_init(&device).unwrap();
        let stem = model.conv1.weight.val().into_data();
        let model = model.replace_head(10, &device);
        assert_eq!(model.num_classes, 10);
        assert_eq!(model.fc.weight.dims(), [128, 10]);
        assert_eq!(model.conv1.weight.val().into_data(), stem);
    }
}
