//! Patch embedding: a strided convolution that turns each `p x p` patch into one token.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;

/// Splits an image into non-overlapping patches and projects each to `embed_dim`, as timm's
/// `PatchEmbed` (no normalisation).
///
/// The projection is a `patch_size x patch_size` convolution with the same stride and
/// PyTorch's default initialisation (uniform in `±1/sqrt(fan_in)`), which timm keeps.
///
/// # Shapes
/// - input: `[batch, in_chans, image_size, image_size]`
/// - output: `[batch, (image_size / patch_size)², embed_dim]`
#[derive(Module, Debug)]
pub struct PatchEmbed {
    /// The patch projection, weight `[embed_dim, in_chans, patch_size, patch_size]`.
    pub proj: Conv2d,
}

impl PatchEmbed {
    /// A projection of `in_chans`-channel patches of side `patch_size` to `embed_dim`.
    pub fn new(patch_size: usize, in_chans: usize, embed_dim: usize, device: &Device) -> Self {
        Self {
            proj: Conv2dConfig::new([in_chans, embed_dim], [patch_size, patch_size])
                .with_stride([patch_size, patch_size])
                .init(device),
        }
    }

    /// Patch tokens, `[batch, patches, embed_dim]`, patches in row-major order.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        self.proj.forward(x).flatten::<3>(2, 3).swap_dims(1, 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_row_major_patches() {
        let device = Device::flex();
        let embed = PatchEmbed::new(4, 1, 2, &device);
        let image =
            Tensor::<4>::random([1, 1, 8, 12], burn::tensor::Distribution::Default, &device);
        let tokens = embed.forward(image.clone());
        assert_eq!(tokens.dims(), [1, 6, 2]);
        // Token 4 is the patch at row 1, column 1.
        let patch = image.slice(s![.., .., 4..8, 4..8]);
        let direct = embed.proj.forward(patch).reshape([1, 2]);
        let token = tokens.slice(s![.., 4, ..]).reshape([1, 2]);
        token
            .into_data()
            .assert_approx_eq::<f32>(&direct.into_data(), burn::tensor::Tolerance::absolute(1e-6));
    }
}
