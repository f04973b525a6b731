//! The model registry: one explicit table from architecture names to constructors.

use burn::module::Module;
use burn::prelude::*;
use burn::store::{ModuleRecord, RecordError};
use kd_core::{Feature, ImageClassifier};
use kd_models::beit::weights::BEIT_WEIGHTS;
use kd_models::{
    BEIT_PRETRAINED, Beit, BeitConfig, PretrainedConfig, RESNET_CIFAR_PRETRAINED,
    RESNET_PRETRAINED, RESNET_WEIGHTS, ResNet, ResNetCifar, ResNetCifarConfig, ResNetConfig,
    SMALL_CNN_PRETRAINED, SMALL_CNN_WEIGHTS, SmallCnn, SmallCnnConfig, WRN_PRETRAINED, WRN_WEIGHTS,
    WeightMap, WideResNet, WideResNetConfig,
};
use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use crate::RecipeError;
use crate::error::did_you_mean;

/// Any network of the zoo, as built from a recipe.
///
/// Its checkpoints hold the inner network's record, so a `ckpt_best.bpk` loads into the bare
/// network (a `ResNet`, say) as well as into a `Network`.
// One value per run, never in a hot collection: the variant size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Network {
    /// torchvision-layout ResNets.
    ResNet(ResNet),
    /// The CIFAR ResNets of the KD literature.
    ResNetCifar(ResNetCifar),
    /// The CIFAR wide ResNets of the KD literature.
    WideResNet(WideResNet),
    /// The small Fashion-MNIST student.
    SmallCnn(SmallCnn),
    /// timm's BEiT vision transformers.
    Beit(Beit),
}

impl Network {
    /// The number of input channels the network expects.
    pub fn in_channels(&self) -> usize {
        match self {
            Network::ResNet(m) => m.conv1.weight.dims()[1],
            Network::ResNetCifar(m) => m.conv1.weight.dims()[1],
            Network::WideResNet(m) => m.conv1.weight.dims()[1],
            Network::SmallCnn(m) => m.stage1.conv.weight.dims()[1],
            Network::Beit(m) => m.config.in_chans,
        }
    }

    /// How PyTorch checkpoints of this network are named.
    pub fn weight_map(&self) -> WeightMap {
        match self {
            Network::ResNet(_) | Network::ResNetCifar(_) => RESNET_WEIGHTS,
            Network::WideResNet(_) => WRN_WEIGHTS,
            Network::SmallCnn(_) => SMALL_CNN_WEIGHTS,
            Network::Beit(_) => BEIT_WEIGHTS,
        }
    }

    /// The input preprocessing its weights expect: the family's values (`kd_models::*_PRETRAINED`)
    /// with the network's input channels, and for BEiT its image size.
    ///
    /// A one-channel network of an RGB family (a ResNet with `in_channels: 1`, say) gets the
    /// average of the three means and of the three standard deviations.
    pub fn pretrained_config(&self) -> PretrainedConfig {
        let mut config = match self {
            Network::ResNet(_) => RESNET_PRETRAINED,
            Network::ResNetCifar(_) => RESNET_CIFAR_PRETRAINED,
            Network::WideResNet(_) => WRN_PRETRAINED,
            Network::SmallCnn(_) => SMALL_CNN_PRETRAINED,
            Network::Beit(m) => {
                let size = m.config.image_size;
                PretrainedConfig {
                    input_size: [3, size, size],
                    ..BEIT_PRETRAINED
                }
            }
        };
        let channels = self.in_channels();
        if channels == 1 && config.input_size[0] == 3 {
            config.mean = [config.mean.iter().sum::<f64>() / 3.0; 3];
            config.std = [config.std.iter().sum::<f64>() / 3.0; 3];
        }
        config.input_size[0] = channels;
        config
    }

    /// Replaces the classifier with a freshly initialised one for `num_classes` classes.
    pub fn replace_head(self, num_classes: usize, device: &Device) -> Self {
        match self {
            Network::ResNet(m) => Network::ResNet(m.replace_head(num_classes, device)),
            Network::ResNetCifar(m) => Network::ResNetCifar(m.replace_head(num_classes, device)),
            Network::WideResNet(m) => Network::WideResNet(m.replace_head(num_classes, device)),
            Network::SmallCnn(m) => Network::SmallCnn(m.replace_head(num_classes, device)),
            Network::Beit(m) => Network::Beit(m.replace_head(num_classes, device)),
        }
    }

    /// Brings a PyTorch state dict to what the network holds, before its key map applies
    /// (BEiT: relative-position buffers, shared tables, fused qkv biases).
    pub fn fix_state_dict(
        &self,
        state: &mut kd_models::StateDict,
    ) -> Result<(), kd_models::ModelError> {
        match self {
            Network::Beit(m) => kd_models::beit::weights::fix_timm_state_dict(state, &m.config),
            _ => Ok(()),
        }
    }
}

macro_rules! each {
    ($self:expr, $m:ident => $e:expr) => {
        match $self {
            Network::ResNet($m) => $e,
            Network::ResNetCifar($m) => $e,
            Network::WideResNet($m) => $e,
            Network::SmallCnn($m) => $e,
            Network::Beit($m) => $e,
        }
    };
}

impl ImageClassifier for Network {
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        each!(self, m => m.forward(x))
    }
    fn num_classes(&self) -> usize {
        each!(self, m => m.num_classes())
    }
    fn tap_names(&self) -> Vec<&'static str> {
        each!(self, m => m.tap_names())
    }
    fn forward_with_taps(&self, x: Tensor<4>, taps: &[&str]) -> (Tensor<2>, Vec<Feature>) {
        each!(self, m => m.forward_with_taps(x, taps))
    }
    fn checkpoint_record(&self) -> ModuleRecord {
        each!(self, m => m.checkpoint_record())
    }
    fn load_checkpoint_record(self, record: ModuleRecord) -> Result<Self, RecordError> {
        Ok(match self {
            Network::ResNet(m) => Network::ResNet(m.load_checkpoint_record(record)?),
            Network::ResNetCifar(m) => Network::ResNetCifar(m.load_checkpoint_record(record)?),
            Network::WideResNet(m) => Network::WideResNet(m.load_checkpoint_record(record)?),
            Network::SmallCnn(m) => Network::SmallCnn(m.load_checkpoint_record(record)?),
            Network::Beit(m) => Network::Beit(m.load_checkpoint_record(record)?),
        })
    }
}

/// The family an architecture belongs to, which fixes its `arch_params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// torchvision ResNet: `num_classes` (1000), `in_channels`/`num_input_channels` (3),
    /// `small_input` (false), `zero_init_residual` (false), `base_width` (64), `layers`/
    /// `structure` (blocks per stage, the named depth's by default, e.g. `[3, 4, 6, 3]`).
    ResNet,
    /// CIFAR ResNet: `num_classes` (100), `in_channels` (3).
    ResNetCifar,
    /// CIFAR wide ResNet: `num_classes` (100), `in_channels` (3), `drop_rate` (0).
    WideResNet,
    /// SmallCnn: `num_classes` (10), `in_channels` (1), `widths` ([16, 32, 64]).
    SmallCnn,
    /// BEiT: every field of `kd_models::BeitConfig`, over the named variant's values.
    Beit,
}

/// Every architecture name, its family and a one-line description.
pub const ARCHITECTURES: [(&str, Family, &str); 22] = [
    (
        "resnet18",
        Family::ResNet,
        "torchvision ResNet-18 (basic blocks 2-2-2-2)",
    ),
    (
        "resnet34",
        Family::ResNet,
        "torchvision ResNet-34 (basic blocks 3-4-6-3)",
    ),
    (
        "resnet50",
        Family::ResNet,
        "torchvision ResNet-50 (bottlenecks 3-4-6-3)",
    ),
    (
        "resnet101",
        Family::ResNet,
        "torchvision ResNet-101 (bottlenecks 3-4-23-3)",
    ),
    (
        "resnet152",
        Family::ResNet,
        "torchvision ResNet-152 (bottlenecks 3-8-36-3)",
    ),
    ("resnet8", Family::ResNetCifar, "CIFAR ResNet-8 (16/32/64)"),
    (
        "resnet14",
        Family::ResNetCifar,
        "CIFAR ResNet-14 (16/32/64)",
    ),
    (
        "resnet20",
        Family::ResNetCifar,
        "CIFAR ResNet-20 (16/32/64)",
    ),
    (
        "resnet32",
        Family::ResNetCifar,
        "CIFAR ResNet-32 (16/32/64)",
    ),
    (
        "resnet44",
        Family::ResNetCifar,
        "CIFAR ResNet-44 (16/32/64)",
    ),
    (
        "resnet56",
        Family::ResNetCifar,
        "CIFAR ResNet-56 (16/32/64)",
    ),
    (
        "resnet110",
        Family::ResNetCifar,
        "CIFAR ResNet-110 (16/32/64)",
    ),
    (
        "resnet8x4",
        Family::ResNetCifar,
        "CRD's ResNet-8x4 (64/128/256)",
    ),
    (
        "resnet32x4",
        Family::ResNetCifar,
        "CRD's ResNet-32x4 (64/128/256)",
    ),
    (
        "wrn_16_2",
        Family::WideResNet,
        "wide ResNet 16-2 (CRD student)",
    ),
    (
        "wrn_40_1",
        Family::WideResNet,
        "wide ResNet 40-1 (CRD student)",
    ),
    (
        "wrn_40_2",
        Family::WideResNet,
        "wide ResNet 40-2 (CRD teacher)",
    ),
    (
        "small_cnn",
        Family::SmallCnn,
        "three conv-BN-ReLU stages, ~25k parameters",
    ),
    ("smallcnn", Family::SmallCnn, "alias of small_cnn"),
    (
        "beit_base_patch16_224",
        Family::Beit,
        "timm BEiT-base, patch 16, 224 px (86M parameters)",
    ),
    (
        "beit_large_patch16_224",
        Family::Beit,
        "timm BEiT-large, patch 16, 224 px (304M parameters)",
    ),
    ("simple_cnn", Family::SmallCnn, "alias of small_cnn"),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResNetArchParams {
    #[serde(default = "n1000")]
    num_classes: usize,
    #[serde(default = "c3", alias = "num_input_channels")]
    in_channels: usize,
    #[serde(default)]
    small_input: bool,
    #[serde(default)]
    zero_init_residual: bool,
    #[serde(default = "base64")]
    base_width: usize,
    #[serde(default, alias = "structure")]
    layers: Option<[usize; 4]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CifarArchParams {
    #[serde(default = "n100")]
    num_classes: usize,
    #[serde(default = "c3", alias = "num_input_channels")]
    in_channels: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrnArchParams {
    #[serde(default = "n100")]
    num_classes: usize,
    #[serde(default = "c3", alias = "num_input_channels")]
    in_channels: usize,
    #[serde(default, alias = "dropRate")]
    drop_rate: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SmallCnnArchParams {
    #[serde(default = "n10")]
    num_classes: usize,
    #[serde(default = "c1", alias = "num_input_channels")]
    in_channels: usize,
    #[serde(default)]
    widths: Option<[usize; 3]>,
}

/// A BEiT config: the named variant's values, overridden by `arch_params` (SuperGradients'
/// `in_channels`/`num_input_channels` are accepted for `in_chans`).
fn beit_config(name: &str, arch_params: &Mapping, key: &str) -> Result<BeitConfig, RecipeError> {
    let base = match name {
        "beit_large_patch16_224" => BeitConfig::beit_large_patch16_224(1000),
        _ => BeitConfig::beit_base_patch16_224(1000),
    };
    let Value::Mapping(mut merged) = serde_yaml::to_value(&base)
        .map_err(|e| RecipeError::invalid(key, format!("cannot represent the BEiT config: {e}")))?
    else {
        return Err(RecipeError::invalid(
            key,
            "the BEiT config is not a mapping",
        ));
    };
    for (k, v) in arch_params {
        let k = match k.as_str() {
            Some("in_channels" | "num_input_channels") => Value::from("in_chans"),
            _ => k.clone(),
        };
        let v = match k.as_str() {
            Some(size @ ("image_size" | "patch_size")) => square(v, &format!("{key}.{size}"))?,
            _ => v.clone(),
        };
        merged.insert(k, v);
    }
    parse_params(&merged, key)
}

/// SuperGradients writes BEiT sizes as `[height, width]`; kd's BEiT takes square sizes, so a
/// pair must repeat one number.
fn square(v: &Value, key: &str) -> Result<Value, RecipeError> {
    let Value::Sequence(pair) = v else {
        return Ok(v.clone());
    };
    match pair.as_slice() {
        [h, w] if h == w && h.as_u64().is_some() => Ok(h.clone()),
        _ => Err(RecipeError::invalid(
            key,
            format!(
                "{} is not a square size: kd's BEiT takes one number or `[n, n]`",
                serde_yaml::to_string(v)
                    .unwrap_or_default()
                    .trim()
                    .replace('\n', " ")
            ),
        )),
    }
}

fn base64() -> usize {
    kd_models::RESNET_BASE_WIDTH
}
fn n1000() -> usize {
    1000
}
fn n100() -> usize {
    100
}
fn n10() -> usize {
    10
}
fn c3() -> usize {
    3
}
fn c1() -> usize {
    1
}

pub(crate) fn parse_params<T: for<'de> Deserialize<'de>>(
    params: &Mapping,
    key: &str,
) -> Result<T, RecipeError> {
    serde_path_to_error::deserialize::<_, T>(Value::Mapping(params.clone())).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        let msg = match msg
            .strip_prefix("unknown field `")
            .and_then(|r| r.split_once('`'))
        {
            Some((name, tail)) => {
                let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
                format!(
                    "unknown key `{name}`{}; expected one of: {}",
                    did_you_mean(name, expected.iter().copied()),
                    expected.join(", ")
                )
            }
            None => msg,
        };
        let key = if path == "." || path.is_empty() {
            key.to_string()
        } else {
            format!("{key}.{path}")
        };
        RecipeError::invalid(&key, msg)
    })
}

/// Looks a name up, with a did-you-mean error naming the recipe key.
pub fn lookup(name: &str, key: &str) -> Result<Family, RecipeError> {
    ARCHITECTURES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, f, _)| *f)
        .ok_or_else(|| RecipeError::UnknownArchitecture {
            key: key.to_string(),
            name: name.to_string(),
            suggestion: did_you_mean(name, ARCHITECTURES.iter().map(|(n, _, _)| *n)),
            known: ARCHITECTURES
                .iter()
                .map(|(n, _, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The class count `arch_params` give architecture `name` (the family's default when unset).
pub fn num_classes(name: &str, arch_params: &Mapping, key: &str) -> Result<usize, RecipeError> {
    let family = lookup(name, &format!("{key}_architecture"))?;
    let params_key = format!("{key}_arch_params");
    Ok(match family {
        Family::ResNet => parse_params::<ResNetArchParams>(arch_params, &params_key)?.num_classes,
        Family::ResNetCifar => {
            parse_params::<CifarArchParams>(arch_params, &params_key)?.num_classes
        }
        Family::WideResNet => parse_params::<WrnArchParams>(arch_params, &params_key)?.num_classes,
        Family::SmallCnn => {
            parse_params::<SmallCnnArchParams>(arch_params, &params_key)?.num_classes
        }
        Family::Beit => beit_config(name, arch_params, &params_key)?.num_classes,
    })
}

/// Builds architecture `name` with `arch_params` on `device` (SuperGradients' `models.get`
/// without the weights; see [`crate::build_network`]). `key` names the recipe key in errors,
/// e.g. `student`.
pub fn get(
    name: &str,
    arch_params: &Mapping,
    key: &str,
    device: &Device,
) -> Result<Network, RecipeError> {
    let family = lookup(name, &format!("{key}_architecture"))?;
    let params_key = format!("{key}_arch_params");
    let model_err = |e: kd_models::ModelError| RecipeError::invalid(&params_key, e.to_string());
    Ok(match family {
        Family::ResNet => {
            let p: ResNetArchParams = parse_params(arch_params, &params_key)?;
            let config = match name {
                "resnet18" => ResNetConfig::resnet18(p.num_classes),
                "resnet34" => ResNetConfig::resnet34(p.num_classes),
                "resnet50" => ResNetConfig::resnet50(p.num_classes),
                "resnet101" => ResNetConfig::resnet101(p.num_classes),
                _ => ResNetConfig::resnet152(p.num_classes),
            };
            let mut config = config
                .with_in_channels(p.in_channels)
                .with_small_input(p.small_input)
                .with_zero_init_residual(p.zero_init_residual)
                .with_base_width(p.base_width);
            if let Some(layers) = p.layers {
                config.layers = layers;
            }
            Network::ResNet(config.try_init(device).map_err(model_err)?)
        }
        Family::ResNetCifar => {
            let p: CifarArchParams = parse_params(arch_params, &params_key)?;
            let n = p.num_classes;
            let config = match name {
                "resnet8" => ResNetCifarConfig::resnet8(n),
                "resnet14" => ResNetCifarConfig::resnet14(n),
                "resnet20" => ResNetCifarConfig::resnet20(n),
                "resnet32" => ResNetCifarConfig::resnet32(n),
                "resnet44" => ResNetCifarConfig::resnet44(n),
                "resnet56" => ResNetCifarConfig::resnet56(n),
                "resnet110" => ResNetCifarConfig::resnet110(n),
                "resnet8x4" => ResNetCifarConfig::resnet8x4(n),
                _ => ResNetCifarConfig::resnet32x4(n),
            };
            Network::ResNetCifar(
                config
                    .with_in_channels(p.in_channels)
                    .try_init(device)
                    .map_err(model_err)?,
            )
        }
        Family::WideResNet => {
            let p: WrnArchParams = parse_params(arch_params, &params_key)?;
            let config = match name {
                "wrn_16_2" => WideResNetConfig::wrn_16_2(p.num_classes),
                "wrn_40_1" => WideResNetConfig::wrn_40_1(p.num_classes),
                _ => WideResNetConfig::wrn_40_2(p.num_classes),
            };
            Network::WideResNet(
                config
                    .with_in_channels(p.in_channels)
                    .with_drop_rate(p.drop_rate)
                    .try_init(device)
                    .map_err(model_err)?,
            )
        }
        Family::Beit => Network::Beit(
            beit_config(name, arch_params, &params_key)?
                .init(device)
                .map_err(model_err)?,
        ),
        Family::SmallCnn => {
            let p: SmallCnnArchParams = parse_params(arch_params, &params_key)?;
            let mut config = SmallCnnConfig::new(p.in_channels, p.num_classes);
            if let Some(w) = p.widths {
                config = config.with_widths(w);
            }
            Network::SmallCnn(config.try_init(device).map_err(model_err)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = ARCHITECTURES.iter().map(|(n, _, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ARCHITECTURES.len());
    }

    #[test]
    fn unknown_name_and_bad_params() {
        let device = Device::flex();
        let err = get("resnet19", &Mapping::new(), "student", &device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("student_architecture") && err.contains("did you mean `resnet18`"),
            "{err}"
        );
        let params: Mapping = serde_yaml::from_str("num_clases: 10").unwrap();
        let err = get("small_cnn", &params, "teacher", &device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("teacher_arch_params") && err.contains("did you mean `num_classes`"),
            "{err}"
        );
        let params: Mapping = serde_yaml::from_str("num_classes: ten").unwrap();
        let err = get("resnet18", &params, "student", &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains("student_arch_params.num_classes"), "{err}");
    }

    #[test]
    fn resnet_width_and_structure_overrides() {
        let device = Device::flex();
        for params in [
            "{num_classes: 10, base_width: 8, layers: [1, 2, 1, 1]}",
            "{num_classes: 10, base_width: 8, structure: [1, 2, 1, 1]}",
        ] {
            let p: Mapping = serde_yaml::from_str(params).unwrap();
            let Network::ResNet(net) = get("resnet50", &p, "student", &device).unwrap() else {
                panic!("resnet50 is a torchvision ResNet");
            };
            assert_eq!(net.conv1.weight.dims(), [8, 3, 7, 7]);
            assert_eq!(net.layer2.len(), 2);
            // Bottlenecks expand by 4: layer4 has 8 * 8 * 4 output channels.
            assert_eq!(net.fc.weight.dims(), [256, 10]);
        }
        let p: Mapping = serde_yaml::from_str("{layers: [1, 0, 1, 1]}").unwrap();
        let err = get("resnet18", &p, "student", &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains("layers[1]"), "{err}");
    }

    #[test]
    fn pretrained_config_follows_the_network() {
        let device = Device::flex();
        let p: Mapping = serde_yaml::from_str("{num_classes: 10, base_width: 8}").unwrap();
        let net = get("resnet18", &p, "student", &device).unwrap();
        assert_eq!(net.pretrained_config(), RESNET_PRETRAINED);
        let p: Mapping =
            serde_yaml::from_str("{num_classes: 10, base_width: 8, in_channels: 1}").unwrap();
        let grey = get("resnet18", &p, "student", &device)
            .unwrap()
            .pretrained_config();
        assert_eq!(grey.input_size, [1, 224, 224]);
        assert!((grey.mean[0] - (0.485 + 0.456 + 0.406) / 3.0).abs() < 1e-12);
        // SuperGradients writes sizes as pairs.
        let p: Mapping = serde_yaml::from_str(
            "{image_size: [32, 32], patch_size: 8, embed_dim: 48, depth: 1, num_heads: 4}",
        )
        .unwrap();
        let beit = get("beit_base_patch16_224", &p, "teacher", &device)
            .unwrap()
            .pretrained_config();
        assert_eq!(beit.input_size, [3, 32, 32]);
        assert_eq!(beit.crop_pct, 0.9);
        let p: Mapping = serde_yaml::from_str("{image_size: [32, 48]}").unwrap();
        let err = get("beit_base_patch16_224", &p, "teacher", &device)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("teacher_arch_params.image_size") && err.contains("not a square size"),
            "{err}"
        );
        let net = get("small_cnn", &Mapping::new(), "student", &device).unwrap();
        assert_eq!(net.pretrained_config(), SMALL_CNN_PRETRAINED);
    }

    #[test]
    fn builds_each_family() {
        let device = Device::flex();
        let p: Mapping =
            serde_yaml::from_str("{num_classes: 10, in_channels: 1, small_input: true}").unwrap();
        let net = get("resnet18", &p, "teacher", &device).unwrap();
        assert_eq!(net.num_classes(), 10);
        let out = net.forward(Tensor::<4>::zeros([2, 1, 28, 28], &device));
        assert_eq!(out.dims(), [2, 10]);
        let p: Mapping = serde_yaml::from_str("{num_classes: 10}").unwrap();
        let net = get("small_cnn", &p, "student", &device).unwrap();
        assert_eq!(net.tap_names().last(), Some(&"pre_logits"));
    }
}
