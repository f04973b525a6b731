//! Preprocessing that timm's pretrained BEiT weights expect (timm's `default_cfgs`).

pub use crate::pretrained::{Interpolation, PretrainedConfig};

/// timm's BEiT v1 preprocessing at 224 px: mean and std 0.5, bicubic, crop 0.9.
pub const BEIT_PRETRAINED: PretrainedConfig = PretrainedConfig {
    mean: [0.5; 3],
    std: [0.5; 3],
    input_size: [3, 224, 224],
    interpolation: Interpolation::Bicubic,
    crop_pct: 0.9,
};

/// The models this module knows, with their preprocessing; every tag of these names
/// (`in22k_ft_in22k_in1k`, `in22k_ft_in22k`) shares it.
const PRETRAINED: &[(&str, PretrainedConfig)] = &[
    ("beit_base_patch16_224", BEIT_PRETRAINED),
    ("beit_large_patch16_224", BEIT_PRETRAINED),
];

/// The preprocessing of timm model `name` (for example `beit_base_patch16_224` or
/// `beit_base_patch16_224.in22k_ft_in22k_in1k`), or `None` for a name not listed here.
pub fn beit_pretrained_config(name: &str) -> Option<PretrainedConfig> {
    let architecture = name.split_once('.').map_or(name, |(arch, _tag)| arch);
    PRETRAINED
        .iter()
        .find(|(known, _)| *known == architecture)
        .map(|(_, config)| config.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// timm 1.0.31: `timm.create_model("beit_large_patch16_224").pretrained_cfg` has
    /// `input_size (3, 224, 224)`, `interpolation 'bicubic'`, `crop_pct 0.9`,
    /// `mean (0.5, 0.5, 0.5)`, `std (0.5, 0.5, 0.5)`; so has `beit_base_patch16_224`.
    #[test]
    fn beit_224_matches_timm() {
        for name in [
            "beit_base_patch16_224",
            "beit_large_patch16_224",
            "beit_base_patch16_224.in22k_ft_in22k_in1k",
        ] {
            let config = beit_pretrained_config(name).unwrap();
            assert_eq!(config.mean, [0.5; 3]);
            assert_eq!(config.std, [0.5; 3]);
            assert_eq!(config.input_size, [3, 224, 224]);
            assert_eq!(config.interpolation, Interpolation::Bicubic);
            assert_eq!(config.crop_pct, 0.9);
        }
        assert_eq!(beit_pretrained_config("beit_base_patch16_384"), None);
        assert_eq!(beit_pretrained_config("resnet50"), None);
    }
}
