//! BEiT's multi-head self-attention: a fused bias-free `qkv` projection, separate query and
//! value biases (the key bias is zero), and an optional relative-position bias per block.

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::init::{constant_param, timm_linear};
use super::rel_pos::{RelativePositionIndex, num_relative_distance};

/// Multi-head self-attention as timm's `beit.Attention`.
///
/// `softmax(q kᵀ / sqrt(head_dim) + bias) v` per head, where `q = x W_q + q_bias`,
/// `k = x W_k` and `v = x W_v + v_bias` come from one `qkv` projection, and `bias` is the sum
/// of this block's relative-position bias and the model's shared one, whichever exist. The
/// key bias is fixed at zero, as in timm (a key bias shifts every score of a query equally and
/// cancels in the softmax).
///
/// # Shapes
/// - input: `[batch, tokens, dim]`, tokens being `1 + window area` when a relative-position
///   bias is used
/// - output: `[batch, tokens, dim]`
#[derive(Module, Debug)]
pub struct Attention {
    /// Query, key and value projection without bias, weight `[dim, 3 dim]`.
    pub qkv: Linear,
    /// Query bias `[dim]`, initialised to zero; absent without `qkv_bias`.
    pub q_bias: Option<Param<Tensor<1>>>,
    /// Value bias `[dim]`, initialised to zero; absent without `qkv_bias`.
    pub v_bias: Option<Param<Tensor<1>>>,
    /// This block's relative-position biases `[num_relative_distance, heads]`, initialised to
    /// zero; absent without `use_rel_pos_bias`.
    pub relative_position_bias_table: Option<Param<Tensor<2>>>,
    /// The computed index into the table.
    #[module(skip)]
    pub relative_position_index: Option<RelativePositionIndex>,
    /// Dropout on the attention probabilities (active only in training).
    pub attn_drop: Dropout,
    /// Output projection, weight `[dim, dim]`.
    pub proj: Linear,
    /// Dropout after the output projection (active only in training).
    pub proj_drop: Dropout,
    /// Attention heads.
    pub num_heads: usize,
}

/// Options of [`Attention::new`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttentionOptions {
    pub dim: usize,
    pub num_heads: usize,
    pub qkv_bias: bool,
    pub window: Option<[usize; 2]>,
    pub attn_drop: f64,
    pub proj_drop: f64,
    /// Factor on the initial `proj` weight (timm divides it by `sqrt(2 (layer + 1))`).
    pub proj_scale: f64,
}

impl Attention {
    /// Attention initialised as timm: truncated-normal projections (std 0.02), zero biases and
    /// a zero relative-position table. Rates must lie in `[0, 1)`.
    pub(crate) fn new(options: AttentionOptions, device: &Device) -> Self {
        let AttentionOptions {
            dim,
            num_heads,
            qkv_bias,
            window,
            attn_drop,
            proj_drop,
            proj_scale,
        } = options;
        Self {
            qkv: timm_linear(dim, 3 * dim, false, 1.0, device),
            q_bias: qkv_bias.then(|| constant_param([dim], 0.0, device)),
            v_bias: qkv_bias.then(|| constant_param([dim], 0.0, device)),
            relative_position_bias_table: window
                .map(|w| constant_param([num_relative_distance(w), num_heads], 0.0, device)),
            relative_position_index: window.map(RelativePositionIndex::new),
            attn_drop: DropoutConfig::new(attn_drop).init(),
            proj: timm_linear(dim, dim, true, proj_scale, device),
            proj_drop: DropoutConfig::new(proj_drop).init(),
            num_heads,
        }
    }

    /// This block's relative-position bias, `[1, heads, tokens, tokens]`, if it has a table.
    pub fn relative_position_bias(&self) -> Option<Tensor<4>> {
        match (
            &self.relative_position_bias_table,
            &self.relative_position_index,
        ) {
            (Some(table), Some(index)) => Some(index.bias(table.val()).unsqueeze_dim(0)),
            _ => None,
        }
    }

    /// Attends over `x` (`[batch, tokens, dim]`), adding `shared_bias`
    /// (`[1, heads, tokens, tokens]`) to the scores when given.
    pub fn forward(&self, x: Tensor<3>, shared_bias: Option<Tensor<4>>) -> Tensor<3> {
        let [batch, tokens, dim] = x.dims();
        let heads = self.num_heads;
        let head_dim = dim / heads;
        let dropout_active = self.attn_drop.prob > 0.0
            && self.attn_drop.training.is_enabled()
            && x.device().is_autodiff();

        // [batch, tokens, 3 dim] -> [3, batch, heads, tokens, head_dim]
        let qkv = self
            .qkv
            .forward(x)
            .reshape([batch, tokens, 3, heads, head_dim])
            .permute([2, 0, 3, 1, 4]);
        let part = |i: usize| qkv.clone().narrow(0, i, 1).squeeze_dim::<4>(0);
        let (mut q, k, mut v) = (part(0), part(1), part(2));
        let per_head = |bias: &Param<Tensor<1>>| bias.val().reshape([1, heads, 1, head_dim]);
        if let Some(bias) = &self.q_bias {
            q = q + per_head(bias);
        }
        if let Some(bias) = &self.v_bias {
            v = v + per_head(bias);
        }

        let bias = match (self.relative_position_bias(), shared_bias) {
            (Some(own), Some(shared)) => Some(own + shared),
            (own, shared) => own.or(shared),
        };
        let scale = (head_dim as f64).powf(-0.5);
        let context = if dropout_active {
            let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
            if let Some(bias) = bias {
                scores = scores + bias;
            }
            self.attn_drop.forward(softmax(scores, 3)).matmul(v)
        } else {
            let bias = bias.map(|b| b.expand([batch, heads, tokens, tokens]));
            let options = AttentionModuleOptions {
                scale: Some(scale),
                ..Default::default()
            };
            attention(q, k, v, None, bias, options)
        };
        let x = context.swap_dims(1, 2).reshape([batch, tokens, dim]);
        self.proj_drop.forward(self.proj.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    fn options(window: Option<[usize; 2]>, attn_drop: f64) -> AttentionOptions {
        AttentionOptions {
            dim: 8,
            num_heads: 2,
            qkv_bias: true,
            window,
            attn_drop,
            proj_drop: 0.0,
            proj_scale: 1.0,
        }
    }

    fn randomize(param: Param<Tensor<1>>) -> Param<Tensor<1>> {
        param.map(|t| t.random_like(Distribution::Normal(0.0, 1.0)))
    }

    /// The fused `attention` call and the explicit softmax path (taken when attention dropout
    /// is active) agree when the dropout keeps everything.
    #[test]
    fn fused_and_explicit_paths_agree() {
        let device = Device::flex();
        device.seed(11);
        let mut attn = Attention::new(options(Some([2, 2]), 0.0), &device);
        attn.q_bias = attn.q_bias.map(randomize);
        attn.v_bias = attn.v_bias.map(randomize);
        attn.relative_position_bias_table = attn
            .relative_position_bias_table
            .map(|p| p.map(|t| t.random_like(Distribution::Normal(0.0, 1.0))));
        let attn = attn.valid();
        let x = Tensor::<3>::random([2, 5, 8], Distribution::Normal(0.0, 1.0), &device);
        let shared = Tensor::<4>::random([1, 2, 5, 5], Distribution::Normal(0.0, 1.0), &device);
        let fused = attn.forward(x.clone(), Some(shared.clone()));

        // The explicit path, written out.
        let [b, n, c] = [2, 5, 8];
        let qkv = attn
            .qkv
            .forward(x)
            .reshape([b, n, 3, 2, 4])
            .permute([2, 0, 3, 1, 4]);
        let part = |i: usize| qkv.clone().narrow(0, i, 1).squeeze_dim::<4>(0);
        let q = part(0) + attn.q_bias.as_ref().unwrap().val().reshape([1, 2, 1, 4]);
        let v = part(2) + attn.v_bias.as_ref().unwrap().val().reshape([1, 2, 1, 4]);
        let scores = q.matmul(part(1).swap_dims(2, 3)).mul_scalar(0.5)
            + attn.relative_position_bias().unwrap()
            + shared;
        let context = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, n, c]);
        let explicit = attn.proj.forward(context);
        fused
            .into_data()
            .assert_approx_eq::<f32>(&explicit.into_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn attention_dropout_only_in_training() {
        let device = Device::flex();
        device.seed(5);
        let train_device = device.clone().autodiff();
        let attn = Attention::new(options(None, 0.5), &train_device);
        let x = Tensor::<3>::random([1, 4, 8], Distribution::Normal(0.0, 1.0), &train_device);
        let a = attn.forward(x.clone(), None);
        let b = attn.forward(x.clone(), None);
        let diff = (a - b).abs().max().into_scalar::<f32>();
        assert!(diff > 1e-4, "dropout left the output unchanged ({diff})");

        let eval = attn.valid();
        let x = x.without_autodiff();
        let a = eval.forward(x.clone(), None);
        let b = eval.forward(x, None);
        a.into_data()
            .assert_approx_eq::<f32>(&b.into_data(), Tolerance::absolute(0.0));
    }
}
