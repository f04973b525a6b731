//! A small convolutional student for 28x28 grey images such as Fashion-MNIST.
//!
//! Three stages of 3x3 convolution (no bias), batch norm and ReLU, a 2x2 max-pool after the
//! first two, then global average pool and a linear head. With the default widths
//! `[16, 32, 64]`, one input channel and 10 classes it has 24,058 trainable parameters
//! (24,282 as counted by `num_params`, which includes the batch-norm running statistics),
//! against 11.2 M for a small-input ResNet-18.
//!
//! # Feature taps
//!
//! Taps are taken after each stage's ReLU and before its pool, so at 28x28 they match the
//! resolutions of a small-input ResNet's `layer1`..`layer3`:
//!
//! | tap | 28x28 input, default widths |
//! |---|---|
//! | `stage1` | `[B, 16, 28, 28]` |
//! | `stage2` | `[B, 32, 14, 14]` |
//! | `stage3` | `[B, 64, 7, 7]` |
//! | `pre_logits` | `[B, 64]` ([`kd_core::Feature::Vector`]) |
//!
//! Parameter paths are `stage1.conv.weight`, `stage1.bn.gamma`, …, `fc.weight`; the PyTorch
//! twin in `tools/reference/models.py` uses the same names.

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, Linear, LinearConfig, Relu};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::pretrained::{Interpolation, PretrainedConfig};
use crate::resnet::block::{batch_norm, conv3x3};
use crate::taps::TapCollector;

/// The Fashion-MNIST preprocessing of kd's recipes (`recipes/fashion_mnist/default.yaml`):
/// 28x28 grey images normalised with the training set's mean 0.2860 and std 0.3530.
pub const SMALL_CNN_PRETRAINED: PretrainedConfig = PretrainedConfig {
    mean: [0.2860; 3],
    std: [0.3530; 3],
    input_size: [1, 28, 28],
    interpolation: Interpolation::Bilinear,
    crop_pct: 1.0,
};

/// The feature taps of a [`SmallCnn`], in forward order.
pub const SMALL_CNN_TAPS: [&str; 4] = ["stage1", "stage2", "stage3", "pre_logits"];

/// The SmallCnn weight map: PyTorch names equal Burn paths up to the adapter's renames.
pub const SMALL_CNN_WEIGHTS: crate::WeightMap = crate::WeightMap {
    key_map: &[],
    head_prefix: "fc.",
    ignored: &[],
};

/// Configuration of a [`SmallCnn`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmallCnnConfig {
    /// Input channels (1 for Fashion-MNIST).
    pub in_channels: usize,
    /// Classes the head predicts.
    pub num_classes: usize,
    /// Channels of the three stages.
    pub widths: [usize; 3],
}

impl SmallCnnConfig {
    /// Default stage widths.
    pub const DEFAULT_WIDTHS: [usize; 3] = [16, 32, 64];

    /// A network for `in_channels` inputs and `num_classes` classes with the default widths.
    pub fn new(in_channels: usize, num_classes: usize) -> Self {
        Self {
            in_channels,
            num_classes,
            widths: Self::DEFAULT_WIDTHS,
        }
    }

    /// Sets the stage widths.
    pub fn with_widths(mut self, widths: [usize; 3]) -> Self {
        self.widths = widths;
        self
    }

    /// Checks that every size is positive.
    pub fn validate(&self) -> Result<(), ModelError> {
        let zero = |field: String| ModelError::ZeroSize {
            model: "small_cnn",
            field,
        };
        if self.num_classes == 0 {
            return Err(zero("num_classes".into()));
        }
        if self.in_channels == 0 {
            return Err(zero("in_channels".into()));
        }
        if let Some(stage) = self.widths.iter().position(|&w| w == 0) {
            return Err(zero(format!("widths[{stage}]")));
        }
        Ok(())
    }

    /// Builds the network on `device`, or says which size is invalid.
    ///
    /// Convolutions get Kaiming normal (fan-out, ReLU gain), batch norms weight 1 and bias 0,
    /// and `fc` PyTorch's default Linear initialisation, as in [`crate::ResNet`].
    pub fn try_init(&self, device: &Device) -> Result<SmallCnn, ModelError> {
        self.validate()?;
        let [w1, w2, w3] = self.widths;
        Ok(SmallCnn {
            stage1: ConvBnRelu::new(self.in_channels, w1, device),
            stage2: ConvBnRelu::new(w1, w2, device),
            stage3: ConvBnRelu::new(w2, w3, device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(w3, self.num_classes).init(device),
            num_classes: self.num_classes,
        })
    }

    /// Builds the network on `device`.
    ///
    /// # Panics
    ///
    /// Panics when [`validate`](Self::validate) fails (a zero size). Use
    /// [`try_init`](Self::try_init) for configurations read from users.
    pub fn init(&self, device: &Device) -> SmallCnn {
        self.try_init(device)
            .unwrap_or_else(|err| panic!("invalid small_cnn configuration: {err}"))
    }
}

/// A 3x3 convolution (padding 1, no bias), batch norm and ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    /// The convolution.
    pub conv: Conv2d,
    /// The batch norm.
    pub bn: BatchNorm,
    /// The activation.
    pub relu: Relu,
}

impl ConvBnRelu {
    fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        Self {
            conv: conv3x3(c_in, c_out, 1, device),
            bn: batch_norm(c_out, device),
            relu: Relu::new(),
        }
    }

    /// Runs the stage; height and width are kept.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.relu.forward(self.bn.forward(self.conv.forward(x)))
    }
}

/// A three-stage CNN student. Build it with [`SmallCnnConfig`].
///
/// # Shapes
/// - input: `[batch, in_channels, height, width]`
/// - output: `[batch, num_classes]`
#[derive(Module, Debug)]
pub struct SmallCnn {
    /// Stage 1, full resolution.
    pub stage1: ConvBnRelu,
    /// Stage 2, half resolution.
    pub stage2: ConvBnRelu,
    /// Stage 3, quarter resolution.
    pub stage3: ConvBnRelu,
    /// The 2x2 max-pool after stages 1 and 2.
    pub pool: MaxPool2d,
    /// Global average pool.
    pub avgpool: AdaptiveAvgPool2d,
    /// Classifier, weight `[widths[2], num_classes]`.
    pub fc: Linear,
    /// Classes the head predicts.
    pub num_classes: usize,
}

impl SmallCnn {
    fn features_collecting(&self, x: Tensor<4>, taps: &mut TapCollector) -> Tensor<4> {
        let x = self.stage1.forward(x);
        taps.offer_map("stage1", &x);
        let x = self.stage2.forward(self.pool.forward(x));
        taps.offer_map("stage2", &x);
        let x = self.stage3.forward(self.pool.forward(x));
        taps.offer_map("stage3", &x);
        x
    }

    /// The output of stage 3, `[batch, widths[2], height / 4, width / 4]`.
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        self.features_collecting(x, &mut TapCollector::new(&[]))
    }
}

crate::taps::impl_pooled_classifier!(SmallCnn, SMALL_CNN_TAPS, zero_bias_head = false);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResNetConfig;
    use kd_core::{Feature, ImageClassifier};

    #[test]
    fn shapes_at_28_and_64_px() {
        let device = Device::flex();
        let model = SmallCnnConfig::new(1, 10).init(&device).valid();
        let x = Tensor::<4>::zeros([2, 1, 28, 28], &device);
        let (logits, features) = model.forward_with_taps(x, &SMALL_CNN_TAPS);
        assert_eq!(logits.dims(), [2, 10]);
        let dims: Vec<Vec<usize>> = features.iter().map(Feature::dims).collect();
        assert_eq!(
            dims,
            vec![
                vec![2, 16, 28, 28],
                vec![2, 32, 14, 14],
                vec![2, 64, 7, 7],
                vec![2, 64]
            ]
        );
        let model = SmallCnnConfig::new(3, 5).init(&device).valid();
        let x = Tensor::<4>::zeros([1, 3, 64, 64], &device);
        assert_eq!(model.forward_features(x.clone()).dims(), [1, 64, 16, 16]);
        assert_eq!(model.forward(x).dims(), [1, 5]);
        assert_eq!(model.tap_names(), SMALL_CNN_TAPS.to_vec());
    }

    /// Trainable: 144 + 4,608 + 18,432 (convs) + 2 x (16 + 32 + 64) (BN) + 650 (fc) = 24,058;
    /// plus 224 BN running statistics.
    #[test]
    fn is_far_cheaper_than_resnet18() {
        let device = Device::flex();
        let student = SmallCnnConfig::new(1, 10).init(&device);
        assert_eq!(student.num_params(), 24_058 + 224);
        let teacher = ResNetConfig::resnet18(10)
            .with_in_channels(1)
            .with_small_input(true)
            .init(&device);
        assert!(teacher.num_params() > 400 * student.num_params());
    }

    #[test]
    fn rejects_zero_width_and_unknown_tap() {
        let device = Device::flex();
        let err = SmallCnnConfig::new(1, 10)
            .with_widths([16, 0, 64])
            .try_init(&device)
            .unwrap_err();
        assert!(err.to_string().contains("widths[1]"), "{err}");
        let model = SmallCnnConfig::new(1, 10).init(&device);
        let x = Tensor::<4>::zeros([1, 1, 28, 28], &device);
        let err = model.try_forward_with_taps(x, &["stage4"]).unwrap_err();
        assert!(err.to_string().contains("stage"), "{err}");
    }
}
