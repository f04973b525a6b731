//! Model zoo for knowledge distillation on Burn: ResNets and small students with named
//! feature taps.
//!
//! Every model follows one shape: a serde-friendly config with named constructors and
//! `init(&self, device)`, and a module with `forward_features` (the last feature map),
//! `forward_head` (pool, flatten, classifier), `forward`, and [`kd_core::ImageClassifier`],
//! whose feature taps name intermediate outputs for feature-distillation losses.
//!
//! | model | config | taps |
//! |---|---|---|
//! | torchvision ResNet-18/34/50/101/152 | [`ResNetConfig`] | [`RESNET_TAPS`] |
//! | CIFAR ResNet-8..110, 8x4, 32x4 | [`ResNetCifarConfig`] | [`RESNET_CIFAR_TAPS`] |
//! | CIFAR wide ResNets WRN-16-2, 40-1, 40-2 | [`WideResNetConfig`] | [`WRN_TAPS`] |
//! | three-stage CNN student | [`SmallCnnConfig`] | [`SMALL_CNN_TAPS`] |
//! | timm BEiT base/large, patch 16, 224 px | [`BeitConfig`] | [`Beit::tap_names`]: `patch_embed`, `blocks.i`, `pre_logits` |
//!
//! Field names follow torchvision and timm, so PyTorch state dicts need only the renames of
//! [`resnet::weights`] and the fix-up of [`beit::weights`].
//!
//! # Example
//!
//! A ResNet-18 with the small-input stem for 10 classes of 28x28 grey images:
//!
//! ```
//! use burn::prelude::*;
//! use kd_core::{Feature, ImageClassifier};
//! use kd_models::ResNetConfig;
//!
//! let device = Device::flex();
//! let model = ResNetConfig::resnet18(10)
//!     .with_in_channels(1)
//!     .with_small_input(true)
//!     .init(&device)
//!     .valid();
//! let images = Tensor::<4>::zeros([2, 1, 28, 28], &device);
//! let (logits, taps) = model.forward_with_taps(images, &["layer3", "pre_logits"]);
//! assert_eq!(logits.dims(), [2, 10]);
//! assert_eq!(taps[0].dims(), vec![2, 256, 7, 7]);
//! assert!(matches!(taps[1], Feature::Vector(_)));
//! ```

pub mod beit;
mod error;
mod head;
mod load;
pub mod pretrained;
pub mod resnet;
mod resnet_cifar;
mod small_cnn;
mod state_dict;
mod taps;
pub mod wrn;

pub use beit::{
    BEIT_BLOCK_TAPS, BEIT_MAX_DEPTH, Beit, BeitConfig,
    pretrained::{BEIT_PRETRAINED, beit_pretrained_config},
    weights::fix_timm_state_dict,
};
pub use error::{ModelError, WeightsError};
pub use load::{
    LoadOptions, LoadReport, StrictLoad, WeightMap, apply_key_map, load_state_dict,
    torch_parameter_shapes,
};
pub use pretrained::{Interpolation, PretrainedConfig};
pub use resnet::weights::{RESNET_KEY_MAP, RESNET_WEIGHTS};
pub use resnet::{
    BasicBlock, Block, BlockKind, Bottleneck, Downsample, RESNET_BASE_WIDTH, RESNET_PRETRAINED,
    RESNET_TAPS, RESNET18_LAYERS, RESNET34_LAYERS, RESNET50_LAYERS, RESNET101_LAYERS,
    RESNET152_LAYERS, ResNet, ResNetConfig,
};
pub use resnet_cifar::{
    CIFAR_WIDTHS, CIFAR_X4_WIDTHS, RESNET_CIFAR_PRETRAINED, RESNET_CIFAR_TAPS, ResNetCifar,
    ResNetCifarConfig,
};
pub use small_cnn::{
    ConvBnRelu, SMALL_CNN_PRETRAINED, SMALL_CNN_TAPS, SMALL_CNN_WEIGHTS, SmallCnn, SmallCnnConfig,
};
pub use state_dict::{
    CONTAINER_KEYS, StateDict, StateDictSource, read_state_dict, select_prefix,
    strip_common_prefix, unwrap_container,
};
pub use wrn::{
    WRN_KEY_MAP, WRN_PRETRAINED, WRN_TAPS, WRN_WEIGHTS, WideBlock, WideGroup, WideResNet,
    WideResNetConfig,
};
