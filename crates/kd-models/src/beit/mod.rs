//! BEiT (Bao et al. 2022, "BEiT: BERT Pre-Training of Image Transformers",
//! <https://arxiv.org/abs/2106.08254>) as timm's `beit.Beit`, with feature taps.
//!
//! ```text
//! patch_embed -> [cls, patches] (+ pos_embed) -> blocks.0 .. blocks.{depth-1} -> norm
//!             -> pool (avg of patch tokens + fc_norm, or the cls token) -> head
//! ```
//!
//! Every block adds a relative-position bias to its attention scores: its own table
//! (`use_rel_pos_bias`, the fine-tuned BEiT checkpoints), one table shared by all blocks
//! (`use_shared_rel_pos_bias`), or both. An absolute position embedding is optional.
//!
//! # Parameter paths
//!
//! Field names are timm's state-dict keys, so a timm checkpoint needs only
//! [`weights::fix_timm_state_dict`] and burn-store's `PyTorchToBurnAdapter`:
//!
//! | Burn path | timm key |
//! |---|---|
//! | `patch_embed.proj.weight`, `.bias` | same |
//! | `cls_token` `[1, 1, D]`, `pos_embed` `[1, 1 + N, D]` | same |
//! | `rel_pos_bias.relative_position_bias_table` | same |
//! | `blocks.i.norm1.gamma`, `.beta` | `blocks.i.norm1.weight`, `.bias` (adapter) |
//! | `blocks.i.attn.qkv.weight` `[D, 3D]` | `blocks.i.attn.qkv.weight` `[3D, D]` (adapter transposes) |
//! | `blocks.i.attn.q_bias`, `.v_bias`, `.relative_position_bias_table` | same |
//! | `blocks.i.attn.proj.*`, `blocks.i.mlp.fc1.*`, `blocks.i.mlp.fc2.*` | same (weights transposed) |
//! | `blocks.i.gamma_1`, `blocks.i.gamma_2` | same |
//! | `norm.gamma` (token pooling) or `fc_norm.gamma` (avg pooling) | `norm.weight` or `fc_norm.weight` |
//! | `head.weight` `[D, classes]`, `head.bias` | `head.weight` `[classes, D]`, `head.bias` |
//! | (computed) | `*.relative_position_index` (dropped by the fix-up) |
//!
//! # Feature taps
//!
//! | tap | feature | shape |
//! |---|---|---|
//! | `patch_embed` | patch tokens after the projection ([`Feature::Tokens`]) | `[B, N, D]` |
//! | `blocks.0` .. `blocks.{depth-1}` | each block's output, class token first | `[B, 1 + N, D]` |
//! | `pre_logits` | pooled and normalised features ([`Feature::Vector`]) | `[B, D]` |

mod attention;
mod block;
mod init;
mod patch_embed;
pub mod pretrained;
mod rel_pos;
pub mod weights;

pub use attention::Attention;
pub use block::{Block, DropPath, Mlp};
pub use init::{TIMM_INIT_STD, TIMM_TRUNC_HIGH, TIMM_TRUNC_LOW, trunc_normal};
pub use patch_embed::PatchEmbed;
pub use rel_pos::{
    RelativePositionBias, RelativePositionIndex, num_relative_distance, relative_position_index,
};

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;
use kd_core::{Feature, ImageClassifier, KdError, check_taps};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use attention::AttentionOptions;
use block::BlockOptions;
use init::{timm_linear, trunc_normal_param};

/// The deepest BEiT whose block taps [`Beit::tap_names`] can name (see [`BEIT_BLOCK_TAPS`]).
pub const BEIT_MAX_DEPTH: usize = 48;

/// Names of the block taps `blocks.0` .. `blocks.47`; a model of depth `d` offers the first
/// `d`. `ImageClassifier::tap_names` returns `&'static str`, hence a fixed table.
pub const BEIT_BLOCK_TAPS: [&str; BEIT_MAX_DEPTH] = [
    "blocks.0",
    "blocks.1",
    "blocks.2",
    "blocks.3",
    "blocks.4",
    "blocks.5",
    "blocks.6",
    "blocks.7",
    "blocks.8",
    "blocks.9",
    "blocks.10",
    "blocks.11",
    "blocks.12",
    "blocks.13",
    "blocks.14",
    "blocks.15",
    "blocks.16",
    "blocks.17",
    "blocks.18",
    "blocks.19",
    "blocks.20",
    "blocks.21",
    "blocks.22",
    "blocks.23",
    "blocks.24",
    "blocks.25",
    "blocks.26",
    "blocks.27",
    "blocks.28",
    "blocks.29",
    "blocks.30",
    "blocks.31",
    "blocks.32",
    "blocks.33",
    "blocks.34",
    "blocks.35",
    "blocks.36",
    "blocks.37",
    "blocks.38",
    "blocks.39",
    "blocks.40",
    "blocks.41",
    "blocks.42",
    "blocks.43",
    "blocks.44",
    "blocks.45",
    "blocks.46",
    "blocks.47",
];

/// Factor timm applies to the initial head weight and bias (`head_init_scale`).
pub const TIMM_HEAD_INIT_SCALE: f64 = 0.001;

/// Global pooling by averaging the patch tokens, then `fc_norm` (timm's `"avg"`).
pub const GLOBAL_POOL_AVG: &str = "avg";
/// Global pooling by taking the class token after the final `norm` (timm's `"token"`).
pub const GLOBAL_POOL_TOKEN: &str = "token";

/// Configuration of a [`Beit`]; field names and meanings follow timm's `Beit` arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeitConfig {
    /// Side of the square input image, in pixels.
    pub image_size: usize,
    /// Side of the square patches; must divide `image_size`.
    pub patch_size: usize,
    /// Input channels.
    pub in_chans: usize,
    /// Classes the head predicts.
    pub num_classes: usize,
    /// Token width `D`.
    pub embed_dim: usize,
    /// Transformer blocks, at most [`BEIT_MAX_DEPTH`].
    pub depth: usize,
    /// Attention heads; must divide `embed_dim`.
    pub num_heads: usize,
    /// MLP hidden width over `embed_dim` (the hidden width is `floor(embed_dim * mlp_ratio)`).
    pub mlp_ratio: f64,
    /// Learned query and value biases (the key bias stays zero).
    pub qkv_bias: bool,
    /// An absolute position embedding added to the tokens.
    pub use_abs_pos_emb: bool,
    /// A relative-position bias table in every block.
    pub use_rel_pos_bias: bool,
    /// One relative-position bias table shared by all blocks.
    pub use_shared_rel_pos_bias: bool,
    /// Initial layer scale (`gamma_1`, `gamma_2`); `None` for no layer scale.
    pub init_values: Option<f64>,
    /// Dropout before the head (timm's `drop_rate`).
    pub drop_rate: f64,
    /// Dropout after adding the position embedding (timm's `pos_drop_rate`).
    pub pos_drop_rate: f64,
    /// Dropout after the attention projection and in the MLP (timm's `proj_drop_rate`).
    pub proj_drop_rate: f64,
    /// Dropout on the attention probabilities.
    pub attn_drop_rate: f64,
    /// Stochastic-depth rate of the last block; block `i` uses `i / (depth - 1)` of it.
    pub drop_path_rate: f64,
    /// `"avg"` (mean of the patch tokens, then `fc_norm`) or `"token"` (class token after
    /// `norm`).
    pub global_pool: String,
    /// Epsilon of every layer norm (timm: 1e-6).
    pub layer_norm_eps: f64,
}

impl BeitConfig {
    /// timm's `beit_base_patch16_224`: 224 px, 16 px patches, width 768, 12 blocks of 12
    /// heads, per-block relative-position bias, layer scale 0.1, average pooling.
    pub fn beit_base_patch16_224(num_classes: usize) -> Self {
        Self {
            image_size: 224,
            patch_size: 16,
            in_chans: 3,
            num_classes,
            embed_dim: 768,
            depth: 12,
            num_heads: 12,
            mlp_ratio: 4.0,
            qkv_bias: true,
            use_abs_pos_emb: false,
            use_rel_pos_bias: true,
            use_shared_rel_pos_bias: false,
            init_values: Some(0.1),
            drop_rate: 0.0,
            pos_drop_rate: 0.0,
            proj_drop_rate: 0.0,
            attn_drop_rate: 0.0,
            drop_path_rate: 0.0,
            global_pool: GLOBAL_POOL_AVG.into(),
            layer_norm_eps: 1e-6,
        }
    }

    /// timm's `beit_large_patch16_224`: as the base model with width 1024, 24 blocks of 16
    /// heads and layer scale 1e-5.
    pub fn beit_large_patch16_224(num_classes: usize) -> Self {
        Self {
            embed_dim: 1024,
            depth: 24,
            num_heads: 16,
            init_values: Some(1e-5),
            ..Self::beit_base_patch16_224(num_classes)
        }
    }

    /// Sets the image side.
    pub fn with_image_size(mut self, image_size: usize) -> Self {
        self.image_size = image_size;
        self
    }

    /// Sets the patch side.
    pub fn with_patch_size(mut self, patch_size: usize) -> Self {
        self.patch_size = patch_size;
        self
    }

    /// Sets the number of input channels.
    pub fn with_in_chans(mut self, in_chans: usize) -> Self {
        self.in_chans = in_chans;
        self
    }

    /// Sets the number of classes.
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// Sets the token width.
    pub fn with_embed_dim(mut self, embed_dim: usize) -> Self {
        self.embed_dim = embed_dim;
        self
    }

    /// Sets the number of blocks.
    pub fn with_depth(mut self, depth: usize) -> Self {
        self.depth = depth;
        self
    }

    /// Sets the number of attention heads.
    pub fn with_num_heads(mut self, num_heads: usize) -> Self {
        self.num_heads = num_heads;
        self
    }

    /// Sets the MLP ratio.
    pub fn with_mlp_ratio(mut self, mlp_ratio: f64) -> Self {
        self.mlp_ratio = mlp_ratio;
        self
    }

    /// Chooses whether queries and values have biases.
    pub fn with_qkv_bias(mut self, qkv_bias: bool) -> Self {
        self.qkv_bias = qkv_bias;
        self
    }

    /// Chooses whether an absolute position embedding is added.
    pub fn with_use_abs_pos_emb(mut self, use_abs_pos_emb: bool) -> Self {
        self.use_abs_pos_emb = use_abs_pos_emb;
        self
    }

    /// Chooses whether every block has its own relative-position bias.
    pub fn with_use_rel_pos_bias(mut self, use_rel_pos_bias: bool) -> Self {
        self.use_rel_pos_bias = use_rel_pos_bias;
        self
    }

    /// Chooses whether one relative-position bias is shared by all blocks.
    pub fn with_use_shared_rel_pos_bias(mut self, use_shared_rel_pos_bias: bool) -> Self {
        self.use_shared_rel_pos_bias = use_shared_rel_pos_bias;
        self
    }

    /// Sets the initial layer scale, or `None` for no layer scale.
    pub fn with_init_values(mut self, init_values: Option<f64>) -> Self {
        self.init_values = init_values;
        self
    }

    /// Sets the dropout before the head.
    pub fn with_drop_rate(mut self, drop_rate: f64) -> Self {
        self.drop_rate = drop_rate;
        self
    }

    /// Sets the dropout after the position embedding.
    pub fn with_pos_drop_rate(mut self, pos_drop_rate: f64) -> Self {
        self.pos_drop_rate = pos_drop_rate;
        self
    }

    /// Sets the dropout after the attention projection and in the MLP.
    pub fn with_proj_drop_rate(mut self, proj_drop_rate: f64) -> Self {
        self.proj_drop_rate = proj_drop_rate;
        self
    }

    /// Sets the dropout on the attention probabilities.
    pub fn with_attn_drop_rate(mut self, attn_drop_rate: f64) -> Self {
        self.attn_drop_rate = attn_drop_rate;
        self
    }

    /// Sets the stochastic-depth rate of the last block.
    pub fn with_drop_path_rate(mut self, drop_path_rate: f64) -> Self {
        self.drop_path_rate = drop_path_rate;
        self
    }

    /// Sets the global pooling, `"avg"` or `"token"`.
    pub fn with_global_pool(mut self, global_pool: impl Into<String>) -> Self {
        self.global_pool = global_pool.into();
        self
    }

    /// Sets the layer-norm epsilon.
    pub fn with_layer_norm_eps(mut self, layer_norm_eps: f64) -> Self {
        self.layer_norm_eps = layer_norm_eps;
        self
    }

    /// Patches per side, `image_size / patch_size`.
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Patch tokens, `grid_size²` (the sequence has one more, the class token).
    pub fn num_patches(&self) -> usize {
        self.grid_size() * self.grid_size()
    }

    /// MLP hidden width, `floor(embed_dim * mlp_ratio)` as timm's `int(dim * mlp_ratio)`.
    pub fn mlp_hidden(&self) -> usize {
        (self.embed_dim as f64 * self.mlp_ratio) as usize
    }

    /// Whether pooling averages the patch tokens (and `fc_norm` replaces `norm`).
    pub fn avg_pool(&self) -> bool {
        self.global_pool == GLOBAL_POOL_AVG
    }

    /// Stochastic-depth rate of each block, rising linearly from 0 to `drop_path_rate` as
    /// timm's `calculate_drop_path_rates`.
    pub fn drop_path_rates(&self) -> Vec<f64> {
        match self.depth {
            0 => vec![],
            1 => vec![0.0],
            depth => (0..depth)
                .map(|i| self.drop_path_rate * i as f64 / (depth - 1) as f64)
                .collect(),
        }
    }

    /// Checks every field, naming the first invalid one and how to fix it.
    pub fn validate(&self) -> Result<(), ModelError> {
        let zero = |field: &str| ModelError::ZeroSize {
            model: "beit",
            field: field.into(),
        };
        let invalid = |field: &str, reason: String| ModelError::InvalidConfig {
            model: "beit",
            field: field.into(),
            reason,
        };
        for (field, value) in [
            ("image_size", self.image_size),
            ("patch_size", self.patch_size),
            ("in_chans", self.in_chans),
            ("num_classes", self.num_classes),
            ("embed_dim", self.embed_dim),
            ("depth", self.depth),
            ("num_heads", self.num_heads),
        ] {
            if value == 0 {
                return Err(zero(field));
            }
        }
        if !self.image_size.is_multiple_of(self.patch_size) {
            return Err(invalid(
                "image_size",
                format!(
                    "{} is not divisible by patch_size {}: use a multiple of the patch size",
                    self.image_size, self.patch_size
                ),
            ));
        }
        if !self.embed_dim.is_multiple_of(self.num_heads) {
            return Err(invalid(
                "embed_dim",
                format!(
                    "{} is not divisible by num_heads {}: use a multiple of the head count",
                    self.embed_dim, self.num_heads
                ),
            ));
        }
        if self.depth > BEIT_MAX_DEPTH {
            return Err(invalid(
                "depth",
                format!(
                    "{} exceeds the {BEIT_MAX_DEPTH} blocks the tap table names: use at most {BEIT_MAX_DEPTH}",
                    self.depth
                ),
            ));
        }
        if !(self.mlp_ratio.is_finite() && self.mlp_ratio > 0.0) || self.mlp_hidden() == 0 {
            return Err(invalid(
                "mlp_ratio",
                format!(
                    "{} gives an MLP of width {}: use a ratio with embed_dim * mlp_ratio >= 1",
                    self.mlp_ratio,
                    self.mlp_hidden()
                ),
            ));
        }
        if let Some(init) = self.init_values
            && !(init.is_finite() && init != 0.0)
        {
            return Err(invalid(
                "init_values",
                format!(
                    "{init} is not a usable layer scale: use a finite non-zero value, or None for no layer scale"
                ),
            ));
        }
        for (field, rate) in [
            ("drop_rate", self.drop_rate),
            ("pos_drop_rate", self.pos_drop_rate),
            ("proj_drop_rate", self.proj_drop_rate),
            ("attn_drop_rate", self.attn_drop_rate),
            ("drop_path_rate", self.drop_path_rate),
        ] {
            if !(0.0..1.0).contains(&rate) {
                return Err(invalid(
                    field,
                    format!("{rate} is not a probability in [0, 1): use a value such as 0.1"),
                ));
            }
        }
        if self.global_pool != GLOBAL_POOL_AVG && self.global_pool != GLOBAL_POOL_TOKEN {
            return Err(invalid(
                "global_pool",
                format!(
                    "unknown pooling `{}`: use \"{GLOBAL_POOL_AVG}\" or \"{GLOBAL_POOL_TOKEN}\"",
                    self.global_pool
                ),
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(invalid(
                "layer_norm_eps",
                format!(
                    "{} is not a positive number: use 1e-6 as timm",
                    self.layer_norm_eps
                ),
            ));
        }
        Ok(())
    }

    /// Builds the network on `device`, initialised as timm, or says which field is invalid.
    ///
    /// Linear weights, the class token and the position embedding are drawn from timm's
    /// truncated normal (std 0.02, cut at ±2); block `i`'s `attn.proj` and `mlp.fc2` weights
    /// are then divided by `sqrt(2 (i + 1))`, and the head is scaled by
    /// [`TIMM_HEAD_INIT_SCALE`]. Biases, `q_bias`, `v_bias` and relative-position tables start
    /// at zero, layer norms at weight 1 and bias 0, layer scales at `init_values`, and the
    /// patch projection keeps PyTorch's default. Weights are drawn lazily, when first read:
    /// seed the device with [`Device::seed`] before the first forward for repeatable values.
    pub fn init(&self, device: &Device) -> Result<Beit, ModelError> {
        self.validate()?;
        let dim = self.embed_dim;
        let grid = self.grid_size();
        let window = [grid, grid];
        let norm = || {
            LayerNormConfig::new(dim)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let blocks = self
            .drop_path_rates()
            .into_iter()
            .enumerate()
            .map(|(i, drop_path)| {
                let attention = AttentionOptions {
                    dim,
                    num_heads: self.num_heads,
                    qkv_bias: self.qkv_bias,
                    window: self.use_rel_pos_bias.then_some(window),
                    attn_drop: self.attn_drop_rate,
                    proj_drop: self.proj_drop_rate,
                    proj_scale: 1.0 / (2.0 * (i + 1) as f64).sqrt(),
                };
                let options = BlockOptions {
                    attention,
                    mlp_hidden: self.mlp_hidden(),
                    proj_drop: self.proj_drop_rate,
                    drop_path,
                    init_values: self.init_values,
                    layer_norm_eps: self.layer_norm_eps,
                };
                Block::new(options, device)
            })
            .collect();
        let avg_pool = self.avg_pool();
        Ok(Beit {
            patch_embed: PatchEmbed::new(self.patch_size, self.in_chans, dim, device),
            cls_token: trunc_normal_param([1, 1, dim], TIMM_INIT_STD, 1.0, device),
            pos_embed: self.use_abs_pos_emb.then(|| {
                trunc_normal_param([1, self.num_patches() + 1, dim], TIMM_INIT_STD, 1.0, device)
            }),
            pos_drop: DropoutConfig::new(self.pos_drop_rate).init(),
            rel_pos_bias: self
                .use_shared_rel_pos_bias
                .then(|| RelativePositionBias::new(window, self.num_heads, device)),
            blocks,
            norm: (!avg_pool).then(norm),
            fc_norm: avg_pool.then(norm),
            head_drop: DropoutConfig::new(self.drop_rate).init(),
            head: timm_linear(dim, self.num_classes, true, TIMM_HEAD_INIT_SCALE, device),
            config: self.clone(),
        })
    }
}

/// A BEiT image classifier as timm's `Beit`. Build it with [`BeitConfig`].
///
/// Dropout, attention dropout and stochastic depth act only when the model is trained on an
/// autodiff device; a [`Module::valid`] copy is deterministic.
///
/// # Shapes
/// - input: `[batch, in_chans, image_size, image_size]`
/// - output: `[batch, num_classes]`
#[derive(Module, Debug)]
pub struct Beit {
    /// Patch projection.
    pub patch_embed: PatchEmbed,
    /// The class token `[1, 1, D]`.
    pub cls_token: Param<Tensor<3>>,
    /// Absolute position embedding `[1, 1 + N, D]`, with `use_abs_pos_emb`.
    pub pos_embed: Option<Param<Tensor<3>>>,
    /// Dropout after the position embedding.
    pub pos_drop: Dropout,
    /// The shared relative-position bias, with `use_shared_rel_pos_bias`.
    pub rel_pos_bias: Option<RelativePositionBias>,
    /// The transformer blocks.
    pub blocks: Vec<Block>,
    /// Final norm of all tokens, for token pooling.
    pub norm: Option<LayerNorm>,
    /// Norm of the pooled features, for average pooling.
    pub fc_norm: Option<LayerNorm>,
    /// Dropout before the head.
    pub head_drop: Dropout,
    /// Classifier, weight `[D, num_classes]`.
    pub head: Linear,
    /// The configuration the model was built from.
    #[module(skip)]
    pub config: BeitConfig,
}

impl Beit {
    /// Checks that images of dimensions `dims` fit the model: `[batch, in_chans, image_size,
    /// image_size]`. Other sizes would need a resampled position embedding and bias tables.
    pub fn check_input(&self, dims: [usize; 4]) -> Result<(), ModelError> {
        let c = &self.config;
        if dims[1] == c.in_chans && dims[2] == c.image_size && dims[3] == c.image_size {
            Ok(())
        } else {
            Err(ModelError::InputShape {
                model: "beit",
                expected: format!(
                    "[batch, {}, {}, {}]",
                    c.in_chans, c.image_size, c.image_size
                ),
                found: dims.to_vec(),
            })
        }
    }

    fn features_collecting(&self, x: Tensor<4>, taps: &mut TokenTaps) -> Tensor<3> {
        let patches = self.patch_embed.forward(x);
        taps.offer("patch_embed", || Feature::Tokens(patches.clone()));
        let [batch, _, dim] = patches.dims();
        let cls = self.cls_token.val().expand([batch, 1, dim]);
        let mut x = Tensor::cat(vec![cls, patches], 1);
        if let Some(pos_embed) = &self.pos_embed {
            x = x + pos_embed.val();
        }
        x = self.pos_drop.forward(x);
        let shared = self
            .rel_pos_bias
            .as_ref()
            .map(|bias| bias.forward().unsqueeze_dim::<4>(0));
        for (block, name) in self.blocks.iter().zip(BEIT_BLOCK_TAPS) {
            x = block.forward(x, shared.clone());
            taps.offer(name, || Feature::Tokens(x.clone()));
        }
        match &self.norm {
            Some(norm) => norm.forward(x),
            None => x,
        }
    }

    /// The tokens after the last block and the final `norm`, `[batch, 1 + N, D]`, class token
    /// first. With average pooling timm's `norm` is the identity and the normalisation comes
    /// after pooling (`fc_norm`), so the tokens are returned unnormalised, as timm does.
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<3> {
        self.features_collecting(x, &mut TokenTaps::new(&[]))
    }

    /// Pooled features, `[batch, D]`: the mean of the patch tokens then `fc_norm`, or the
    /// class token.
    pub fn pre_logits(&self, tokens: Tensor<3>) -> Tensor<2> {
        let [_, len, _] = tokens.dims();
        let pooled = if self.config.avg_pool() {
            tokens.narrow(1, 1, len - 1).mean_dim(1)
        } else {
            tokens.narrow(1, 0, 1)
        };
        let pooled = pooled.squeeze_dim::<2>(1);
        match &self.fc_norm {
            Some(norm) => norm.forward(pooled),
            None => pooled,
        }
    }

    /// Pools the tokens of [`forward_features`](Self::forward_features) and applies the head:
    /// logits `[batch, num_classes]`.
    pub fn forward_head(&self, tokens: Tensor<3>) -> Tensor<2> {
        self.head
            .forward(self.head_drop.forward(self.pre_logits(tokens)))
    }

    /// Logits `[batch, num_classes]` for images `[batch, in_chans, image_size, image_size]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_head(self.forward_features(x))
    }

    /// Replaces the classifier with a freshly initialised one for `num_classes` classes
    /// (timm's head initialisation), keeping every other weight.
    pub fn replace_head(mut self, num_classes: usize, device: &Device) -> Self {
        let dim = self.config.embed_dim;
        self.head = timm_linear(dim, num_classes, true, TIMM_HEAD_INIT_SCALE, device);
        self.config.num_classes = num_classes;
        self
    }

    /// Logits plus the requested taps (see [`Beit::tap_names`]) from one forward pass, or an
    /// error naming an unknown tap.
    pub fn try_forward_with_taps(
        &self,
        x: Tensor<4>,
        taps: &[&str],
    ) -> Result<(Tensor<2>, Vec<Feature>), KdError> {
        check_taps(&self.tap_names(), taps)?;
        let mut collector = TokenTaps::new(taps);
        let tokens = self.features_collecting(x, &mut collector);
        let pooled = self.pre_logits(tokens);
        collector.offer("pre_logits", || Feature::Vector(pooled.clone()));
        let logits = self.head.forward(self.head_drop.forward(pooled));
        Ok((logits, collector.finish()))
    }

    /// The tap names: `patch_embed`, `blocks.0` .. `blocks.{depth-1}`, `pre_logits`.
    pub fn tap_names(&self) -> Vec<&'static str> {
        std::iter::once("patch_embed")
            .chain(BEIT_BLOCK_TAPS.iter().copied().take(self.blocks.len()))
            .chain(std::iter::once("pre_logits"))
            .collect()
    }
}

impl ImageClassifier for Beit {
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        Beit::forward(self, x)
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn tap_names(&self) -> Vec<&'static str> {
        Beit::tap_names(self)
    }

    /// # Panics
    ///
    /// Panics on a tap name not in [`Beit::tap_names`]; check names first with
    /// [`kd_core::check_taps`] or call [`Beit::try_forward_with_taps`].
    fn forward_with_taps(&self, x: Tensor<4>, taps: &[&str]) -> (Tensor<2>, Vec<Feature>) {
        self.try_forward_with_taps(x, taps)
            .unwrap_or_else(|err| panic!("{err}"))
    }
}

/// Collects the requested taps of one forward pass, in the order asked.
struct TokenTaps<'a> {
    requested: &'a [&'a str],
    slots: Vec<Option<Feature>>,
}

impl<'a> TokenTaps<'a> {
    fn new(requested: &'a [&'a str]) -> Self {
        Self {
            requested,
            slots: vec![None; requested.len()],
        }
    }

    /// Stores the feature `make` builds under `name` if that tap was requested.
    fn offer(&mut self, name: &str, make: impl FnOnce() -> Feature) {
        if !self.requested.contains(&name) {
            return;
        }
        let feature = make();
        for (slot, requested) in self.slots.iter_mut().zip(self.requested) {
            if *requested == name {
                *slot = Some(feature.clone());
            }
        }
    }

    fn finish(self) -> Vec<Feature> {
        self.slots.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    fn tiny() -> BeitConfig {
        BeitConfig::beit_base_patch16_224(5)
            .with_image_size(32)
            .with_patch_size(8)
            .with_embed_dim(24)
            .with_depth(3)
            .with_num_heads(2)
            .with_mlp_ratio(2.0)
    }

    #[test]
    fn shapes_and_taps() {
        let device = Device::flex();
        for config in [
            tiny(),
            tiny()
                .with_global_pool("token")
                .with_use_abs_pos_emb(true)
                .with_use_rel_pos_bias(false)
                .with_use_shared_rel_pos_bias(true)
                .with_init_values(None),
        ] {
            let model = config.init(&device).unwrap().valid();
            assert_eq!(
                model.tap_names(),
                vec![
                    "patch_embed",
                    "blocks.0",
                    "blocks.1",
                    "blocks.2",
                    "pre_logits"
                ]
            );
            let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
            let (logits, taps) =
                model.forward_with_taps(x.clone(), &["pre_logits", "blocks.1", "patch_embed"]);
            assert_eq!(logits.dims(), [2, 5]);
            let dims: Vec<Vec<usize>> = taps.iter().map(Feature::dims).collect();
            assert_eq!(dims, vec![vec![2, 24], vec![2, 17, 24], vec![2, 16, 24]]);
            assert!(matches!(taps[1], Feature::Tokens(_)));
            assert_eq!(model.forward_features(x.clone()).dims(), [2, 17, 24]);
            let direct = model.forward(x.clone());
            let headed = model.forward_head(model.forward_features(x));
            direct
                .clone()
                .into_data()
                .assert_approx_eq::<f32>(&logits.into_data(), Tolerance::absolute(1e-6));
            direct
                .into_data()
                .assert_approx_eq::<f32>(&headed.into_data(), Tolerance::absolute(1e-6));
        }
    }

    #[test]
    fn unknown_tap_and_input_size() {
        let device = Device::flex();
        let model = tiny().init(&device).unwrap();
        let x = Tensor::<4>::zeros([1, 3, 32, 32], &device);
        let err = model.try_forward_with_taps(x, &["blocks.3"]).unwrap_err();
        assert!(err.to_string().contains("did you mean `blocks."), "{err}");
        assert!(model.check_input([4, 3, 32, 32]).is_ok());
        let err = model.check_input([4, 3, 64, 64]).unwrap_err();
        assert!(err.to_string().contains("[batch, 3, 32, 32]"), "{err}");
    }

    #[test]
    fn named_configs_follow_timm() {
        let base = BeitConfig::beit_base_patch16_224(1000);
        assert_eq!(
            (base.embed_dim, base.depth, base.num_heads, base.init_values),
            (768, 12, 12, Some(0.1))
        );
        assert!(!base.use_abs_pos_emb && base.use_rel_pos_bias && !base.use_shared_rel_pos_bias);
        assert_eq!((base.mlp_hidden(), base.num_patches()), (3072, 196));
        let large = BeitConfig::beit_large_patch16_224(1000);
        assert_eq!(
            (
                large.embed_dim,
                large.depth,
                large.num_heads,
                large.init_values
            ),
            (1024, 24, 16, Some(1e-5))
        );
        assert!(base.validate().is_ok() && large.validate().is_ok());
        let json = serde_json::to_string(&large).unwrap();
        assert_eq!(serde_json::from_str::<BeitConfig>(&json).unwrap(), large);
    }

    /// timm: `sum(p.numel() for p in timm.create_model("beit_base_patch16_224").parameters())`
    /// is 86,530,984 (torch 2.9.0, timm 1.0.31); burn counts no flags and no index buffers.
    #[test]
    fn base_parameter_count_matches_timm() {
        let device = Device::flex();
        let model = BeitConfig::beit_base_patch16_224(1000)
            .init(&device)
            .unwrap();
        assert_eq!(model.num_params(), 86_530_984);
    }

    #[test]
    fn drop_path_rates_rise_linearly() {
        let rates = tiny()
            .with_depth(5)
            .with_drop_path_rate(0.2)
            .drop_path_rates();
        let want = [0.0, 0.05, 0.1, 0.15, 0.2];
        for (got, want) in rates.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{rates:?}");
        }
        assert_eq!(
            tiny()
                .with_depth(1)
                .with_drop_path_rate(0.3)
                .drop_path_rates(),
            [0.0]
        );
        let device = Device::flex();
        let model = tiny().with_drop_path_rate(0.1).init(&device).unwrap();
        let probs: Vec<f64> = model.blocks.iter().map(|b| b.drop_path2.prob).collect();
        assert_eq!(probs, [0.0, 0.05, 0.1]);
    }

    #[test]
    fn init_follows_timm() {
        let device = Device::flex();
        device.seed(0);
        let model = BeitConfig::beit_base_patch16_224(1000)
            .with_depth(2)
            .init(&device)
            .unwrap();
        let std = |t: Tensor<2>| {
            let n = t.shape().num_elements() as f32;
            (t.powi_scalar(2).sum().into_scalar::<f32>() / n).sqrt()
        };
        let close = |got: f32, want: f64| (got as f64 - want).abs() < 0.05 * want;
        let qkv = std(model.blocks[1].attn.qkv.weight.val());
        assert!(close(qkv, 0.02), "qkv std {qkv}");
        // Block 1's output projections are divided by sqrt(2 * 2) = 2.
        let proj = std(model.blocks[1].attn.proj.weight.val());
        assert!(close(proj, 0.01), "proj std {proj}");
        let fc2 = std(model.blocks[1].mlp.fc2.weight.val());
        assert!(close(fc2, 0.01), "fc2 std {fc2}");
        let head = std(model.head.weight.val());
        assert!(close(head, 0.02 * TIMM_HEAD_INIT_SCALE), "head std {head}");
        let gamma = model.blocks[0].gamma_2.as_ref().unwrap().val();
        assert_eq!(gamma.clone().min().into_scalar::<f32>(), 0.1);
        assert_eq!(gamma.max().into_scalar::<f32>(), 0.1);
        let table = model.blocks[0]
            .attn
            .relative_position_bias_table
            .as_ref()
            .unwrap()
            .val();
        assert_eq!(table.dims(), [27 * 27 + 3, 12]);
        assert_eq!(table.abs().max().into_scalar::<f32>(), 0.0);
    }

    #[test]
    fn rejects_invalid_configs() {
        let device = Device::flex();
        let cases: [(BeitConfig, &str); 9] = [
            (tiny().with_num_classes(0), "`num_classes` of beit is 0"),
            (tiny().with_image_size(30), "not divisible by patch_size 8"),
            (tiny().with_num_heads(5), "not divisible by num_heads 5"),
            (tiny().with_depth(49), "use at most 48"),
            (tiny().with_mlp_ratio(0.0), "mlp_ratio"),
            (
                tiny().with_init_values(Some(0.0)),
                "or None for no layer scale",
            ),
            (
                tiny().with_drop_path_rate(1.0),
                "`drop_path_rate` of beit is invalid",
            ),
            (tiny().with_global_pool("max"), "unknown pooling `max`"),
            (tiny().with_layer_norm_eps(-1.0), "layer_norm_eps"),
        ];
        for (config, message) in cases {
            let err = config.init(&device).unwrap_err().to_string();
            assert!(err.contains(message), "{err} lacks {message}");
        }
    }
}
