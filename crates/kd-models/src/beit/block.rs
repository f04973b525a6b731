//! The BEiT transformer block and its parts: the MLP and stochastic depth.

use burn::module::{Flag, Param};
use burn::nn::{Dropout, DropoutConfig, Gelu, LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;
use burn::tensor::Distribution;

use super::attention::{Attention, AttentionOptions};
use super::init::{constant_param, timm_linear};

/// Stochastic depth ("drop path", Huang et al. 2016, <https://arxiv.org/abs/1603.09382>): in
/// training, zeroes a residual branch for a whole sample with probability `prob` and scales
/// the kept samples by `1 / (1 - prob)`, as timm's `DropPath`.
///
/// Like burn's `Dropout`, it acts only when its `training` flag is on **and** the input lives
/// on an autodiff device; a [`Module::valid`] copy passes its input through.
///
/// # Shapes
/// - input and output: `[batch, ...]`
#[derive(Module, Debug)]
pub struct DropPath {
    /// Probability of dropping the branch of a sample, in `[0, 1)`.
    pub prob: f64,
    /// Whether to behave as during training; cleared by `valid` and `freeze`.
    pub training: Param<Flag>,
}

impl DropPath {
    /// A drop path with probability `prob`, which must lie in `[0, 1)`.
    pub fn new(prob: f64) -> Self {
        Self {
            prob,
            training: Param::from_bool(true),
        }
    }

    /// Whether a forward pass on `device` drops paths.
    pub fn is_active(&self, device: &Device) -> bool {
        self.prob > 0.0 && self.training.is_enabled() && device.is_autodiff()
    }

    /// Drops whole samples of `x` in training; the identity otherwise.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if !self.is_active(&x.device()) {
            return x;
        }
        let keep = 1.0 - self.prob;
        let mut shape = [1; D];
        shape[0] = x.dims()[0];
        let mask = Tensor::<D>::random(shape, Distribution::Bernoulli(keep), &x.device());
        x * mask.div_scalar(keep)
    }
}

/// The transformer MLP as timm's `Mlp`: `fc1`, exact GELU, dropout, `fc2`, dropout.
///
/// # Shapes
/// - input and output: `[batch, tokens, dim]`
#[derive(Module, Debug)]
pub struct Mlp {
    /// Expansion, weight `[dim, hidden]`.
    pub fc1: Linear,
    /// The activation (exact, erf-based GELU).
    pub act: Gelu,
    /// Dropout after the activation.
    pub drop1: Dropout,
    /// Projection back, weight `[hidden, dim]`.
    pub fc2: Linear,
    /// Dropout after `fc2`.
    pub drop2: Dropout,
}

impl Mlp {
    /// An MLP of hidden width `hidden`, truncated-normal weights (std 0.02, `fc2` times
    /// `fc2_scale`), zero biases and dropout `drop` in `[0, 1)`.
    pub(crate) fn new(
        dim: usize,
        hidden: usize,
        drop: f64,
        fc2_scale: f64,
        device: &Device,
    ) -> Self {
        Self {
            fc1: timm_linear(dim, hidden, true, 1.0, device),
            act: Gelu::new(),
            drop1: DropoutConfig::new(drop).init(),
            fc2: timm_linear(hidden, dim, true, fc2_scale, device),
            drop2: DropoutConfig::new(drop).init(),
        }
    }

    /// Applies the MLP to every token.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.drop1.forward(self.act.forward(self.fc1.forward(x)));
        self.drop2.forward(self.fc2.forward(x))
    }
}

/// A pre-norm transformer block with optional layer scale, as timm's `beit.Block`:
///
/// ```text
/// x = x + drop_path1(gamma_1 * attn(norm1(x), shared_bias))
/// x = x + drop_path2(gamma_2 * mlp(norm2(x)))
/// ```
///
/// # Shapes
/// - input and output: `[batch, tokens, dim]`
#[derive(Module, Debug)]
pub struct Block {
    /// Norm before attention.
    pub norm1: LayerNorm,
    /// Self-attention.
    pub attn: Attention,
    /// Stochastic depth on the attention branch.
    pub drop_path1: DropPath,
    /// Norm before the MLP.
    pub norm2: LayerNorm,
    /// The MLP.
    pub mlp: Mlp,
    /// Stochastic depth on the MLP branch.
    pub drop_path2: DropPath,
    /// Layer scale of the attention branch `[dim]`, initialised to `init_values`.
    pub gamma_1: Option<Param<Tensor<1>>>,
    /// Layer scale of the MLP branch `[dim]`, initialised to `init_values`.
    pub gamma_2: Option<Param<Tensor<1>>>,
}

/// Options of [`Block::new`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockOptions {
    pub attention: AttentionOptions,
    pub mlp_hidden: usize,
    pub proj_drop: f64,
    pub drop_path: f64,
    pub init_values: Option<f64>,
    pub layer_norm_eps: f64,
}

impl Block {
    /// A block initialised as in timm; the caller has validated every rate.
    pub(crate) fn new(options: BlockOptions, device: &Device) -> Self {
        let dim = options.attention.dim;
        let norm = || {
            LayerNormConfig::new(dim)
                .with_epsilon(options.layer_norm_eps)
                .init(device)
        };
        let scale = |init: f64| constant_param([dim], init, device);
        Self {
            norm1: norm(),
            attn: Attention::new(options.attention, device),
            drop_path1: DropPath::new(options.drop_path),
            norm2: norm(),
            mlp: Mlp::new(
                dim,
                options.mlp_hidden,
                options.proj_drop,
                options.attention.proj_scale,
                device,
            ),
            drop_path2: DropPath::new(options.drop_path),
            gamma_1: options.init_values.map(scale),
            gamma_2: options.init_values.map(scale),
        }
    }

    /// Runs the block; `shared_bias` is the model's shared relative-position bias
    /// `[1, heads, tokens, tokens]`, if any.
    pub fn forward(&self, x: Tensor<3>, shared_bias: Option<Tensor<4>>) -> Tensor<3> {
        let scaled = |branch: Tensor<3>, gamma: &Option<Param<Tensor<1>>>| match gamma {
            Some(gamma) => branch * gamma.val().unsqueeze_dims::<3>(&[0, 1]),
            None => branch,
        };
        let branch = self
            .attn
            .forward(self.norm1.forward(x.clone()), shared_bias);
        let x = x + self.drop_path1.forward(scaled(branch, &self.gamma_1));
        let branch = self.mlp.forward(self.norm2.forward(x.clone()));
        x + self.drop_path2.forward(scaled(branch, &self.gamma_2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_path_drops_whole_samples_in_training_only() {
        let device = Device::flex();
        device.seed(1);
        let train_device = device.clone().autodiff();
        let drop = DropPath::new(0.5);
        let x = Tensor::<3>::ones([64, 3, 4], &train_device);
        let y: Vec<f32> = drop.forward(x).into_data().try_into_vec::<f32>().unwrap();
        let mut dropped = 0;
        for sample in y.chunks(12) {
            // Every element of a sample shares its fate: 0 or 1 / (1 - 0.5).
            assert!(sample.iter().all(|&v| v == sample[0]), "{sample:?}");
            assert!(sample[0] == 0.0 || sample[0] == 2.0, "{}", sample[0]);
            dropped += usize::from(sample[0] == 0.0);
        }
        assert!((10..=54).contains(&dropped), "{dropped} of 64 dropped");

        let x = Tensor::<3>::ones([8, 3, 4], &train_device);
        let kept = drop.valid().forward(x.clone()).sum().into_scalar::<f32>();
        assert_eq!(kept, 96.0);
        let kept = DropPath::new(0.0).forward(x).sum().into_scalar::<f32>();
        assert_eq!(kept, 96.0);
        let plain = Tensor::<3>::ones([8, 3, 4], &device);
        assert_eq!(drop.forward(plain).sum().into_scalar::<f32>(), 96.0);
    }
}
