//! Input preprocessing that a model's weights expect, as timm's `pretrained_cfg`.
//!
//! Each model family keeps its own values next to its code ([`crate::RESNET_PRETRAINED`],
//! [`crate::RESNET_CIFAR_PRETRAINED`], [`crate::WRN_PRETRAINED`],
//! [`crate::SMALL_CNN_PRETRAINED`], [`crate::beit::pretrained::BEIT_PRETRAINED`]).

use serde::{Deserialize, Serialize};

/// How an image is resampled when resized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// Nearest neighbour.
    Nearest,
    /// Bilinear.
    Bilinear,
    /// Bicubic.
    Bicubic,
}

/// Input preprocessing of a pretrained model, as timm's `pretrained_cfg`.
///
/// Evaluation resizes the shorter side to `floor(input_size / crop_pct)` with
/// `interpolation`, centre-crops `input_size`, scales pixels to `[0, 1]` and normalises each
/// channel with `(x - mean) / std`. Grey models repeat their single mean and std three times;
/// only the first `input_size[0]` entries are used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainedConfig {
    /// Per-channel mean, RGB, on `[0, 1]` pixels.
    pub mean: [f64; 3],
    /// Per-channel standard deviation, RGB.
    pub std: [f64; 3],
    /// Input `[channels, height, width]`.
    pub input_size: [usize; 3],
    /// Resampling of the evaluation resize.
    pub interpolation: Interpolation,
    /// Centre-crop fraction of the evaluation resize.
    pub crop_pct: f64,
}

impl PretrainedConfig {
    /// The shorter side after the evaluation resize, `floor(input_size / crop_pct)` (timm's
    /// `scale_size`), from the input height.
    pub fn resize_size(&self) -> usize {
        (self.input_size[1] as f64 / self.crop_pct).floor() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// timm 1.0.31 `resolve_data_config` + `create_transform`: `Resize(256)` for
    /// `input_size 224, crop_pct 0.875`, `Resize(248)` for `224, 0.9`, `Resize(32)` for
    /// `32, 1.0`.
    #[test]
    fn resize_size_is_timms_scale_size() {
        let at = |size, crop_pct| PretrainedConfig {
            mean: [0.5; 3],
            std: [0.5; 3],
            input_size: [3, size, size],
            interpolation: Interpolation::Bilinear,
            crop_pct,
        };
        assert_eq!(at(224, 0.875).resize_size(), 256);
        assert_eq!(at(224, 0.9).resize_size(), 248);
        assert_eq!(at(32, 1.0).resize_size(), 32);
    }
}
