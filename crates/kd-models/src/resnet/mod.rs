//! torchvision's ResNet family (ResNet-18 to ResNet-152, v1.5 bottlenecks) with feature taps.
//!
//! The structure and field names follow torchvision, so that its state-dict keys need only a
//! short rename table ([`weights`]):
//!
//! ```text
//! conv1 -> bn1 -> relu -> maxpool -> layer1 -> layer2 -> layer3 -> layer4 -> avgpool -> fc
//! ```
//!
//! # Parameter paths
//!
//! `#[derive(Module)]` names a `Vec` element by its index and an enum by its variant name, and an
//! `Option` adds no level. A native record (`Module::into_record`) therefore holds:
//!
//! | Burn path | torchvision key |
//! |---|---|
//! | `conv1.weight` | `conv1.weight` |
//! | `bn1.gamma`, `bn1.beta`, `bn1.running_mean`, `bn1.running_var` | `bn1.weight`, `bn1.bias`, `bn1.running_mean`, `bn1.running_var` |
//! | `layer1.0.BasicBlock.conv1.weight` | `layer1.0.conv1.weight` |
//! | `layer3.0.Bottleneck.bn3.gamma` | `layer3.0.bn3.weight` |
//! | `layer2.0.BasicBlock.downsample.conv.weight` | `layer2.0.downsample.0.weight` |
//! | `layer2.0.BasicBlock.downsample.bn.gamma` | `layer2.0.downsample.1.weight` |
//! | `fc.weight` (`[in, out]`) | `fc.weight` (`[out, in]`, transposed) |
//! | `fc.bias` | `fc.bias` |
//!
//! burn-store drops the variant segment (`BasicBlock`, `Bottleneck`) with `skip_enum_variants`,
//! which `PytorchStore` enables by default, and its PyTorch adapter renames `gamma`/`beta` and
//! transposes `fc.weight`. torchvision's `num_batches_tracked` buffers have no counterpart.
//!
//! # Feature taps
//!
//! | tap | feature | small input 28x28, ResNet-18 |
//! |---|---|---|
//! | `stem` | after `conv1`, `bn1`, `relu` and `maxpool` | `[B, 64, 28, 28]` |
//! | `layer1`..`layer4` | output of each stage | `[B, 64, 28, 28]` .. `[B, 512, 4, 4]` |
//! | `pre_logits` | pooled and flattened `layer4` ([`kd_core::Feature::Vector`]) | `[B, 512]` |

pub(crate) mod block;
pub mod weights;

pub use block::{BasicBlock, Block, BlockKind, Bottleneck, Downsample};

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::pretrained::{Interpolation, PretrainedConfig};
use crate::taps::TapCollector;
use block::{batch_norm, conv3x3};

/// Blocks per stage of ResNet-18.
pub const RESNET18_LAYERS: [usize; 4] = [2, 2, 2, 2];
/// Blocks per stage of ResNet-34.
pub const RESNET34_LAYERS: [usize; 4] = [3, 4, 6, 3];
/// Blocks per stage of ResNet-50.
pub const RESNET50_LAYERS: [usize; 4] = [3, 4, 6, 3];
/// Blocks per stage of ResNet-101.
pub const RESNET101_LAYERS: [usize; 4] = [3, 4, 23, 3];
/// Blocks per stage of ResNet-152.
pub const RESNET152_LAYERS: [usize; 4] = [3, 8, 36, 3];

/// The feature taps of a [`ResNet`], in forward order.
pub const RESNET_TAPS: [&str; 6] = ["stem", "layer1", "layer2", "layer3", "layer4", "pre_logits"];

/// Width of each stage before the block expansion, in units of the base width (64 in
/// torchvision: 64, 128, 256, 512).
const STAGE_MULTIPLIERS: [usize; 4] = [1, 2, 4, 8];
/// torchvision's base width: the stem's channels and the first stage's planes.
pub const RESNET_BASE_WIDTH: usize = 64;

fn default_base_width() -> usize {
    RESNET_BASE_WIDTH
}
/// Stride of the first block of each stage.
const STAGE_STRIDES: [usize; 4] = [1, 2, 2, 2];

/// The preprocessing of torchvision's ImageNet ResNet weights (`IMAGENET1K_V1`): resize the
/// shorter side to 256 bilinearly, centre-crop 224, normalise with the ImageNet mean and std.
pub const RESNET_PRETRAINED: PretrainedConfig = PretrainedConfig {
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    input_size: [3, 224, 224],
    interpolation: Interpolation::Bilinear,
    crop_pct: 0.875,
};

/// Configuration of a [`ResNet`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResNetConfig {
    /// The residual block.
    pub block: BlockKind,
    /// Blocks in `layer1`..`layer4`.
    pub layers: [usize; 4],
    /// Classes the head predicts.
    pub num_classes: usize,
    /// Input channels (3 for RGB, 1 for Fashion-MNIST).
    pub in_channels: usize,
    /// A 3x3 stride-1 stem without max-pool, for 28–32 px inputs, instead of the 7x7 stride-2
    /// stem followed by a stride-2 max-pool.
    pub small_input: bool,
    /// Zero the scale of the last batch norm of every residual branch, as torchvision's
    /// `zero_init_residual`.
    pub zero_init_residual: bool,
    /// Channels of the stem and planes of `layer1` (64 in torchvision); the stages have
    /// 1, 2, 4 and 8 times as many planes. Narrow widths make tiny test networks.
    #[serde(default = "default_base_width")]
    pub base_width: usize,
}

impl ResNetConfig {
    /// A ResNet of `block`s with `layers` blocks per stage, for RGB input and the standard stem.
    pub fn new(block: BlockKind, layers: [usize; 4], num_classes: usize) -> Self {
        Self {
            block,
            layers,
            num_classes,
            in_channels: 3,
            small_input: false,
            zero_init_residual: false,
            base_width: RESNET_BASE_WIDTH,
        }
    }

    /// ResNet-18: basic blocks, [`RESNET18_LAYERS`].
    pub fn resnet18(num_classes: usize) -> Self {
        Self::new(BlockKind::Basic, RESNET18_LAYERS, num_classes)
    }

    /// ResNet-34: basic blocks, [`RESNET34_LAYERS`].
    pub fn resnet34(num_classes: usize) -> Self {
        Self::new(BlockKind::Basic, RESNET34_LAYERS, num_classes)
    }

    /// ResNet-50: bottlenecks, [`RESNET50_LAYERS`].
    pub fn resnet50(num_classes: usize) -> Self {
        Self::new(BlockKind::Bottleneck, RESNET50_LAYERS, num_classes)
    }

    /// ResNet-101: bottlenecks, [`RESNET101_LAYERS`].
    pub fn resnet101(num_classes: usize) -> Self {
        Self::new(BlockKind::Bottleneck, RESNET101_LAYERS, num_classes)
    }

    /// ResNet-152: bottlenecks, [`RESNET152_LAYERS`].
    pub fn resnet152(num_classes: usize) -> Self {
        Self::new(BlockKind::Bottleneck, RESNET152_LAYERS, num_classes)
    }

    /// Sets the number of input channels.
    pub fn with_in_channels(mut self, in_channels: usize) -> Self {
        self.in_channels = in_channels;
        self
    }

    /// Chooses the small-input stem (3x3 stride-1 convolution, no max-pool).
    pub fn with_small_input(mut self, small_input: bool) -> Self {
        self.small_input = small_input;
        self
    }

    /// Chooses whether the last batch norm of each residual branch starts at zero.
    pub fn with_zero_init_residual(mut self, zero_init_residual: bool) -> Self {
        self.zero_init_residual = zero_init_residual;
        self
    }

    /// Sets the base width (64 in torchvision).
    pub fn with_base_width(mut self, base_width: usize) -> Self {
        self.base_width = base_width;
        self
    }

    /// Checks that every size is positive.
    pub fn validate(&self) -> Result<(), ModelError> {
        let zero = |field: String| ModelError::ZeroSize {
            model: "resnet",
            field,
        };
        if self.base_width == 0 {
            return Err(zero("base_width".into()));
        }
        if self.num_classes == 0 {
            return Err(zero("num_classes".into()));
        }
        if self.in_channels == 0 {
            return Err(zero("in_channels".into()));
        }
        if let Some(stage) = self.layers.iter().position(|&n| n == 0) {
            return Err(zero(format!("layers[{stage}]")));
        }
        Ok(())
    }

    /// Builds the network on `device`, initialised like torchvision, or says which size is
    /// invalid.
    pub fn try_init(&self, device: &Device) -> Result<ResNet, ModelError> {
        self.validate()?;
        let stem = self.base_width;
        let (conv1, maxpool) = if self.small_input {
            (conv3x3(self.in_channels, stem, 1, device), None)
        } else {
            let conv1 = Conv2dConfig::new([self.in_channels, stem], [7, 7])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
                .with_bias(false)
                .with_initializer(block::kaiming_fan_out())
                .init(device);
            let maxpool = MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init();
            (conv1, Some(maxpool))
        };

        let mut inplanes = stem;
        // `from_fn` builds the stages in order, so `inplanes` flows from one to the next.
        let [layer1, layer2, layer3, layer4] = std::array::from_fn(|stage| {
            (0..self.layers[stage])
                .map(|i| {
                    let stride = if i == 0 { STAGE_STRIDES[stage] } else { 1 };
                    let planes = self.base_width * STAGE_MULTIPLIERS[stage];
                    let block = Block::new(
                        self.block,
                        inplanes,
                        planes,
                        stride,
                        self.zero_init_residual,
                        device,
                    );
                    inplanes = planes * self.block.expansion();
                    block
                })
                .collect::<Vec<_>>()
        });

        Ok(ResNet {
            conv1,
            bn1: batch_norm(stem, device),
            relu: Relu::new(),
            maxpool,
            layer1,
            layer2,
            layer3,
            layer4,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(inplanes, self.num_classes).init(device),
            num_classes: self.num_classes,
        })
    }

    /// Builds the network on `device`, initialised like torchvision.
    ///
    /// Convolutions get Kaiming normal (fan-out, ReLU gain), batch norms weight 1 and bias 0,
    /// and `fc` burn's `Linear` default, which is PyTorch's default: weight and bias uniform in
    /// `±1/sqrt(fan_in)` (Kaiming uniform with `a = sqrt(5)`).
    ///
    /// # Panics
    ///
    /// Panics when [`validate`](Self::validate) fails (a zero size); the named constructors
    /// always validate. Use [`try_init`](Self::try_init) for configurations read from users.
    pub fn init(&self, device: &Device) -> ResNet {
        self.try_init(device)
            .unwrap_or_else(|err| panic!("invalid resnet configuration: {err}"))
    }
}

/// A torchvision-style ResNet. Build it with [`ResNetConfig`].
///
/// # Shapes
/// - input: `[batch, in_channels, height, width]`
/// - output: `[batch, num_classes]`
#[derive(Module, Debug)]
pub struct ResNet {
    /// Stem convolution: 7x7 stride 2, or 3x3 stride 1 for small inputs.
    pub conv1: Conv2d,
    /// Stem batch norm.
    pub bn1: BatchNorm,
    /// The ReLU after the stem.
    pub relu: Relu,
    /// 3x3 stride-2 max-pool of the standard stem; absent for small inputs.
    pub maxpool: Option<MaxPool2d>,
    /// Stage 1, stride 1.
    pub layer1: Vec<Block>,
    /// Stage 2, stride 2.
    pub layer2: Vec<Block>,
    /// Stage 3, stride 2.
    pub layer3: Vec<Block>,
    /// Stage 4, stride 2.
    pub layer4: Vec<Block>,
    /// Global average pool.
    pub avgpool: AdaptiveAvgPool2d,
    /// Classifier, weight `[features, num_classes]`.
    pub fc: Linear,
    /// Classes the head predicts.
    pub num_classes: usize,
}

impl ResNet {
    fn stem(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.relu.forward(self.bn1.forward(self.conv1.forward(x)));
        match &self.maxpool {
            Some(pool) => pool.forward(x),
            None => x,
        }
    }

    fn features_collecting(&self, x: Tensor<4>, taps: &mut TapCollector) -> Tensor<4> {
        let mut x = self.stem(x);
        taps.offer_map("stem", &x);
        for (name, stage) in [
            ("layer1", &self.layer1),
            ("layer2", &self.layer2),
            ("layer3", &self.layer3),
            ("layer4", &self.layer4),
        ] {
            x = stage.iter().fold(x, |x, block| block.forward(x));
            taps.offer_map(name, &x);
        }
        x
    }

    /// The output of `layer4`, `[batch, 512 * expansion, height / 32, width / 32]` (`/ 8` for
    /// small inputs).
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        self.features_collecting(x, &mut TapCollector::new(&[]))
    }

    /// Every residual block, stage by stage.
    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
    }
}

crate::taps::impl_pooled_classifier!(ResNet, RESNET_TAPS, zero_bias_head = false);

#[cfg(test)]
mod tests {
    use super::*;
    use kd_core::{Feature, ImageClassifier};

    fn dims(features: &[Feature]) -> Vec<Vec<usize>> {
        features.iter().map(Feature::dims).collect()
    }

    #[test]
    fn small_input_shapes_at_28px() {
        let device = Device::flex();
        for config in [ResNetConfig::resnet18(10), ResNetConfig::resnet50(10)] {
            let expansion = config.block.expansion();
            let model = config
                .with_in_channels(1)
                .with_small_input(true)
                .init(&device)
                .valid();
            let x = Tensor::<4>::zeros([2, 1, 28, 28], &device);
            let (logits, features) = model.forward_with_taps(x, &RESNET_TAPS);
            assert_eq!(logits.dims(), [2, 10]);
            let e = expansion;
            assert_eq!(
                dims(&features),
                vec![
                    vec![2, 64, 28, 28],
                    vec![2, 64 * e, 28, 28],
                    vec![2, 128 * e, 14, 14],
                    vec![2, 256 * e, 7, 7],
                    vec![2, 512 * e, 4, 4],
                    vec![2, 512 * e],
                ]
            );
        }
    }

    #[test]
    fn standard_stem_shapes_at_64px() {
        let device = Device::flex();
        let model = ResNetConfig::resnet34(7).init(&device).valid();
        let x = Tensor::<4>::zeros([1, 3, 64, 64], &device);
        let (logits, features) = model.forward_with_taps(x, &["pre_logits", "layer4", "stem"]);
        assert_eq!(logits.dims(), [1, 7]);
        assert_eq!(
            dims(&features),
            vec![vec![1, 512], vec![1, 512, 2, 2], vec![1, 64, 16, 16]]
        );
        let x = Tensor::<4>::zeros([1, 3, 64, 64], &device);
        assert_eq!(model.forward_features(x).dims(), [1, 512, 2, 2]);
    }

    #[test]
    fn forward_agrees_with_taps_and_head() {
        let device = Device::flex();
        let model = ResNetConfig::resnet18(5)
            .with_small_input(true)
            .init(&device)
            .valid();
        let x = Tensor::<4>::random([2, 3, 16, 16], burn::tensor::Distribution::Default, &device);
        let logits = model.forward(x.clone());
        let (tapped, _) = model.forward_with_taps(x.clone(), &["layer2"]);
        let headed = model.forward_head(model.forward_features(x));
        logits
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(&tapped.into_data(), burn::tensor::Tolerance::absolute(1e-6));
        logits
            .into_data()
            .assert_approx_eq::<f32>(&headed.into_data(), burn::tensor::Tolerance::absolute(1e-6));
    }

    #[test]
    fn tap_names_and_unknown_tap() {
        let device = Device::flex();
        let model = ResNetConfig::resnet18(10).init(&device);
        assert_eq!(model.tap_names(), RESNET_TAPS.to_vec());
        assert_eq!(ImageClassifier::num_classes(&model), 10);
        let x = Tensor::<4>::zeros([1, 3, 32, 32], &device);
        let err = model.try_forward_with_taps(x, &["layer5"]).unwrap_err();
        assert!(err.to_string().contains("did you mean `layer"), "{err}");
    }

    /// torchvision: `sum(p.numel() for p in resnet18().parameters()) == 11_689_512`.
    /// Burn also counts the BN running mean and variance: ResNet-18 has 4,800 BN channels
    /// (64 stem + 256 layer1 + 640 layer2 + 1,280 layer3 + 2,560 layer4, downsample BNs
    /// included), so 2 x 4,800 = 9,600 more; there is no `num_batches_tracked`.
    #[test]
    fn resnet18_parameter_count() {
        let device = Device::flex();
        let model = ResNetConfig::resnet18(1000).init(&device);
        assert_eq!(model.num_params(), 11_689_512 + 9_600);
    }

    #[test]
    fn zero_init_residual_zeros_last_bn_of_every_block() {
        let device = Device::flex();
        for config in [ResNetConfig::resnet18(10), ResNetConfig::resnet50(10)] {
            let model = config.with_zero_init_residual(true).init(&device);
            assert_eq!(
                model.blocks().count(),
                if model.layer3.len() == 2 { 8 } else { 16 }
            );
            for block in model.blocks() {
                let gamma = block.last_bn().gamma.val().abs().sum().into_scalar::<f32>();
                assert_eq!(gamma, 0.0);
            }
            // Other batch norms keep weight 1.
            let bn1 = model.bn1.gamma.val().sum().into_scalar::<f32>();
            assert_eq!(bn1, 64.0);
        }
        let model = ResNetConfig::resnet18(10).init(&device);
        for block in model.blocks() {
            assert!(block.last_bn().gamma.val().min().into_scalar::<f32>() == 1.0);
        }
    }

    #[test]
    fn rejects_zero_sizes() {
        let device = Device::flex();
        let err = ResNetConfig::resnet18(0).try_init(&device).unwrap_err();
        assert!(err.to_string().contains("num_classes"), "{err}");
        let mut config = ResNetConfig::resnet50(10);
        config.layers[2] = 0;
        let err = config.try_init(&device).unwrap_err();
        assert!(err.to_string().contains("layers[2]"), "{err}");
    }
}
