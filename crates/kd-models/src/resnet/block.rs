use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d, Relu};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// torchvision's convolution initialiser: Kaiming normal, fan-out mode, ReLU gain `sqrt(2)`.
pub(crate) fn kaiming_fan_out() -> Initializer {
    Initializer::KaimingNormal {
        gain: std::f64::consts::SQRT_2,
        fan_out_only: true,
    }
}

/// A 3x3 convolution with padding 1 and no bias, initialised like torchvision.
pub(crate) fn conv3x3(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .with_initializer(kaiming_fan_out())
        .init(device)
}

/// A 1x1 convolution with no bias, initialised like torchvision.
pub(crate) fn conv1x1(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [1, 1])
        .with_stride([stride, stride])
        .with_bias(false)
        .with_initializer(kaiming_fan_out())
        .init(device)
}

/// A batch norm with PyTorch's defaults: epsilon 1e-5, momentum 0.1, weight 1, bias 0.
pub(crate) fn batch_norm(num_features: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(num_features)
        .with_epsilon(1e-5)
        .with_momentum(0.1)
        .init(device)
}

/// Sets a batch norm's scale to zero, so that its residual branch starts as the identity.
pub(crate) fn zero_gamma(bn: &mut BatchNorm, device: &Device) {
    let [n] = bn.gamma.shape().dims();
    bn.gamma = Initializer::Zeros.init([n], device);
}

/// The residual block a ResNet is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockKind {
    /// Two 3x3 convolutions (ResNet-18/34), expansion 1.
    Basic,
    /// 1x1, 3x3, 1x1 convolutions with the stride on the 3x3 (ResNet v1.5, ResNet-50/101/152),
    /// expansion 4.
    Bottleneck,
}

impl BlockKind {
    /// How many times wider a block's output is than its `planes`.
    pub const fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => BasicBlock::EXPANSION,
            BlockKind::Bottleneck => Bottleneck::EXPANSION,
        }
    }
}

/// The projection shortcut of a block: a strided 1x1 convolution and a batch norm.
///
/// torchvision stores it as `nn.Sequential(conv1x1, BatchNorm2d)`, whose keys are
/// `downsample.0.*` and `downsample.1.*`; here the fields are `conv` and `bn` (see
/// [`crate::resnet::weights`] for the rename table).
#[derive(Module, Debug)]
pub struct Downsample {
    /// The 1x1 convolution, no bias.
    pub conv: Conv2d,
    /// The batch norm.
    pub bn: BatchNorm,
}

impl Downsample {
    /// A projection from `c_in` to `c_out` channels with `stride`.
    pub(crate) fn new(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv: conv1x1(c_in, c_out, stride, device),
            bn: batch_norm(c_out, device),
        }
    }

    /// Projects `x`.
    ///
    /// # Shapes
    /// - input: `[batch, c_in, height, width]`
    /// - output: `[batch, c_out, height / stride, width / stride]` (rounded up)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward(self.conv.forward(x))
    }
}

/// Builds the shortcut torchvision adds when the stride or the width changes.
fn shortcut(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Option<Downsample> {
    (stride != 1 || c_in != c_out).then(|| Downsample::new(c_in, c_out, stride, device))
}

/// torchvision's `BasicBlock`: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`.
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// 3x3 convolution carrying the stride.
    pub conv1: Conv2d,
    /// Batch norm after `conv1`.
    pub bn1: BatchNorm,
    /// 3x3 convolution.
    pub conv2: Conv2d,
    /// Batch norm after `conv2`; zeroed by `zero_init_residual`.
    pub bn2: BatchNorm,
    /// The ReLU used twice.
    pub relu: Relu,
    /// Projection shortcut, present when the stride or width changes.
    pub downsample: Option<Downsample>,
}

impl BasicBlock {
    /// Output width relative to `planes`.
    pub const EXPANSION: usize = 1;

    /// A block from `inplanes` to `planes` channels.
    pub(crate) fn new(
        inplanes: usize,
        planes: usize,
        stride: usize,
        zero_init_residual: bool,
        device: &Device,
    ) -> Self {
        let mut bn2 = batch_norm(planes, device);
        if zero_init_residual {
            zero_gamma(&mut bn2, device);
        }
        Self {
            conv1: conv3x3(inplanes, planes, stride, device),
            bn1: batch_norm(planes, device),
            conv2: conv3x3(planes, planes, 1, device),
            bn2,
            relu: Relu::new(),
            downsample: shortcut(inplanes, planes * Self::EXPANSION, stride, device),
        }
    }

    /// Runs the block.
    ///
    /// # Shapes
    /// - input: `[batch, inplanes, height, width]`
    /// - output: `[batch, planes, height / stride, width / stride]` (rounded up)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(downsample) => downsample.forward(x.clone()),
            None => x.clone(),
        };
        let out = self.relu.forward(self.bn1.forward(self.conv1.forward(x)));
        let out = self.bn2.forward(self.conv2.forward(out));
        self.relu.forward(out + identity)
    }
}

/// torchvision's `Bottleneck` (v1.5, the stride on the 3x3 convolution).
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1x1 reduction to `planes`.
    pub conv1: Conv2d,
    /// Batch norm after `conv1`.
    pub bn1: BatchNorm,
    /// 3x3 convolution carrying the stride.
    pub conv2: Conv2d,
    /// Batch norm after `conv2`.
    pub bn2: BatchNorm,
    /// 1x1 expansion to `4 * planes`.
    pub conv3: Conv2d,
    /// Batch norm after `conv3`; zeroed by `zero_init_residual`.
    pub bn3: BatchNorm,
    /// The ReLU used three times.
    pub relu: Relu,
    /// Projection shortcut, present when the stride or width changes.
    pub downsample: Option<Downsample>,
}

impl Bottleneck {
    /// Output width relative to `planes`.
    pub const EXPANSION: usize = 4;

    /// A block from `inplanes` to `4 * planes` channels.
    pub(crate) fn new(
        inplanes: usize,
        planes: usize,
        stride: usize,
        zero_init_residual: bool,
        device: &Device,
    ) -> Self {
        let out = planes * Self::EXPANSION;
        let mut bn3 = batch_norm(out, device);
        if zero_init_residual {
            zero_gamma(&mut bn3, device);
        }
        Self {
            conv1: conv1x1(inplanes, planes, 1, device),
            bn1: batch_norm(planes, device),
            conv2: conv3x3(planes, planes, stride, device),
            bn2: batch_norm(planes, device),
            conv3: conv1x1(planes, out, 1, device),
            bn3,
            relu: Relu::new(),
            downsample: shortcut(inplanes, out, stride, device),
        }
    }

    /// Runs the block.
    ///
    /// # Shapes
    /// - input: `[batch, inplanes, height, width]`
    /// - output: `[batch, 4 * planes, height / stride, width / stride]` (rounded up)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(downsample) => downsample.forward(x.clone()),
            None => x.clone(),
        };
        let out = self.relu.forward(self.bn1.forward(self.conv1.forward(x)));
        let out = self.relu.forward(self.bn2.forward(self.conv2.forward(out)));
        let out = self.bn3.forward(self.conv3.forward(out));
        self.relu.forward(out + identity)
    }
}

/// One residual block of either kind.
///
/// `#[derive(Module)]` adds the variant name to record paths, so a block's parameters read
/// `layer1.0.BasicBlock.conv1.weight` in a native record and `layer1.0.conv1.weight` in
/// burn-store's paths (its `skip_enum_variants`, on by default for PyTorch files).
// Both variants are large (about 2 KB) and built once per model, so boxing gains nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Block {
    /// A [`BasicBlock`].
    BasicBlock(BasicBlock),
    /// A [`Bottleneck`].
    Bottleneck(Bottleneck),
}

impl Block {
    /// A block of `kind` from `inplanes` to `planes * kind.expansion()` channels.
    pub(crate) fn new(
        kind: BlockKind,
        inplanes: usize,
        planes: usize,
        stride: usize,
        zero_init_residual: bool,
        device: &Device,
    ) -> Self {
        match kind {
            BlockKind::Basic => Block::BasicBlock(BasicBlock::new(
                inplanes,
                planes,
                stride,
                zero_init_residual,
                device,
            )),
            BlockKind::Bottleneck => Block::Bottleneck(Bottleneck::new(
                inplanes,
                planes,
                stride,
                zero_init_residual,
                device,
            )),
        }
    }

    /// Runs the block.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Block::BasicBlock(block) => block.forward(x),
            Block::Bottleneck(block) => block.forward(x),
        }
    }

    /// The batch norm that closes the residual branch (`bn2` or `bn3`).
    pub fn last_bn(&self) -> &BatchNorm {
        match self {
            Block::BasicBlock(block) => &block.bn2,
            Block::Bottleneck(block) => &block.bn3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcut_only_when_shape_changes() {
        let device = Device::flex();
        assert!(
            BasicBlock::new(64, 64, 1, false, &device)
                .downsample
                .is_none()
        );
        assert!(
            BasicBlock::new(64, 128, 2, false, &device)
                .downsample
                .is_some()
        );
        // A bottleneck widens 64 -> 256, so even the first stride-1 block projects.
        assert!(
            Bottleneck::new(64, 64, 1, false, &device)
                .downsample
                .is_some()
        );
        assert!(
            Bottleneck::new(256, 64, 1, false, &device)
                .downsample
                .is_none()
        );
    }

    #[test]
    fn bottleneck_strides_on_the_3x3() {
        let device = Device::flex();
        let block = Bottleneck::new(256, 128, 2, false, &device);
        assert_eq!(block.conv1.stride, [1, 1]);
        assert_eq!(block.conv2.stride, [2, 2]);
        let y = block.forward(Tensor::zeros([1, 256, 8, 8], &device));
        assert_eq!(y.dims(), [1, 512, 4, 4]);
    }

    #[test]
    fn conv_init_has_fan_out_variance() {
        // Kaiming normal, fan_out = 64 * 9: std = sqrt(2 / 576) ~ 0.0589.
        let device = Device::flex();
        let conv = conv3x3(64, 64, 1, &device);
        let w: Tensor<1> = conv.weight.val().flatten(0, 3);
        let std = w.var(0).sqrt().into_scalar::<f32>();
        let expected = (2.0f32 / 576.0).sqrt();
        assert!((std - expected).abs() / expected < 0.1, "std {std}");
    }
}
