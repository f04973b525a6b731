//! Recipe `dataset_params` → datasets and loaders.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kd_data::{
    CenterCrop, CifarDataset, ColorJitter, DataLoader, EraseValue, IdxDataset, ImageDataset,
    ImageFolder, Interpolation, LabelType, LoaderConfig, MixMode, Mixup, Normalize, RandAugment,
    RandomCrop, RandomErasing, RandomHorizontalFlip, RandomResizedCrop, Resize, ResizeTo, Sampler,
    Split, Subset, Transform, Transforms,
};

use crate::error::did_you_mean;
use crate::schema::{
    CollateSpec, DatasetParams, DatasetSpec, EraseValueSpec, InterpolationSpec, LabelTypeSpec,
    LoaderSpec, MixModeSpec, SamplerSpec, SizeSpec, TransformSpec,
};
use crate::{Recipe, RecipeError};

/// The registered dataloader names: `(name, dataset, split)`; `val` and `test` both read the
/// test split (ImageNet's `val` folder).
pub const DATALOADERS: [(&str, &str, Split); 14] = [
    ("fashion_mnist_train", "fashion_mnist", Split::Train),
    ("fashion_mnist_val", "fashion_mnist", Split::Test),
    ("fashion_mnist_test", "fashion_mnist", Split::Test),
    ("mnist_train", "mnist", Split::Train),
    ("mnist_val", "mnist", Split::Test),
    ("mnist_test", "mnist", Split::Test),
    ("cifar10_train", "cifar10", Split::Train),
    ("cifar10_val", "cifar10", Split::Test),
    ("cifar10_test", "cifar10", Split::Test),
    ("cifar100_train", "cifar100", Split::Train),
    ("cifar100_val", "cifar100", Split::Test),
    ("cifar100_test", "cifar100", Split::Test),
    ("imagenet_train", "imagenet", Split::Train),
    ("imagenet_val", "imagenet", Split::Test),
];

/// The dataset family and split of dataloader `name`, or an error under `key` listing the
/// known names.
fn lookup(name: &str, key: &str) -> Result<(&'static str, Split), RecipeError> {
    DATALOADERS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, family, split)| (family, split))
        .ok_or_else(|| {
            RecipeError::invalid(
                key,
                format!(
                    "unknown dataloader `{name}`{}; known: {}",
                    did_you_mean(name, DATALOADERS.iter().map(|d| d.0)),
                    DATALOADERS
                        .iter()
                        .map(|d| d.0)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}

/// Where the data of dataloader `name` is: `root` when given, else the folder kd-data's
/// search finds; fails with the searched places and how to install the data when it is
/// absent.
pub fn dataset_location(name: &str, root: Option<&Path>) -> Result<PathBuf, RecipeError> {
    let (family, split) = lookup(name, "dataloader")?;
    Ok(match family {
        "mnist" => kd_data::locate_mnist(root)?,
        "fashion_mnist" => kd_data::locate_fashion_mnist(root)?,
        "cifar10" => kd_data::locate_cifar10(root)?,
        "cifar100" => kd_data::locate_cifar100(root)?,
        _ => match root {
            Some(dir) if dir.is_dir() => dir.to_path_buf(),
            Some(dir) => {
                return Err(RecipeError::invalid(
                    "root",
                    format!(
                        "ImageNet split folder `{}` does not exist: point `root` at the folder of class folders",
                        dir.display()
                    ),
                ));
            }
            None => kd_data::locate_imagenet(None)?.join(match split {
                Split::Train => "train",
                Split::Test => "val",
            }),
        },
    })
}

fn dataset(
    name: &str,
    key: &str,
    spec: &DatasetSpec,
    seed: u64,
) -> Result<Arc<dyn ImageDataset>, RecipeError> {
    let (family, split) = lookup(name, key)?;
    let root = spec.root.as_deref();
    if spec.label_type.is_some() && family != "cifar100" {
        return Err(RecipeError::invalid(
            "label_type",
            format!(
                "`{name}` has one kind of label; `label_type` applies to cifar100 only: remove it"
            ),
        ));
    }
    let ds: Arc<dyn ImageDataset> = match family {
        "mnist" => Arc::new(IdxDataset::mnist(split, root)?),
        "fashion_mnist" => Arc::new(IdxDataset::fashion_mnist(split, root)?),
        "cifar10" => Arc::new(CifarDataset::cifar10(split, root)?),
        "cifar100" => {
            let labels = match spec.label_type {
                Some(LabelTypeSpec::Coarse) => LabelType::Coarse,
                _ => LabelType::Fine,
            };
            Arc::new(CifarDataset::cifar100(split, labels, root)?)
        }
        _ => Arc::new(ImageFolder::imagenet(split, root)?),
    };
    Ok(match spec.max_samples {
        Some(0) => {
            return Err(RecipeError::invalid(
                "max_samples",
                "0 samples leaves nothing to train on: remove the key or give a positive number",
            ));
        }
        Some(n) if n < ds.len() => Arc::new(Subset::random(ds, n, seed)),
        _ => ds,
    })
}

fn interpolation(spec: InterpolationSpec) -> Interpolation {
    match spec {
        InterpolationSpec::Bilinear | InterpolationSpec::Default => Interpolation::Bilinear,
        InterpolationSpec::Bicubic => Interpolation::Bicubic,
        InterpolationSpec::Random => Interpolation::Random,
    }
}

fn hw(size: SizeSpec) -> [usize; 2] {
    match size {
        SizeSpec::One(n) => [n, n],
        SizeSpec::Two(hw) => hw,
    }
}

/// Builds the kd-data transform pipeline of a recipe list (`ToTensor` entries are no-ops:
/// every pipeline starts by converting to `[0, 1]`).
pub fn transforms(specs: &[TransformSpec]) -> Result<Transforms, RecipeError> {
    let mut steps: Vec<Transform> = Vec::with_capacity(specs.len());
    for t in specs {
        steps.push(match t {
            TransformSpec::RandomCrop { size, padding } => RandomCrop {
                size: *size,
                padding: *padding,
            }
            .into(),
            TransformSpec::RandomResizedCrop {
                size,
                scale,
                ratio,
                interpolation: interp,
            } => RandomResizedCrop {
                size: hw(*size),
                scale: *scale,
                ratio: *ratio,
                interpolation: interpolation(*interp),
            }
            .into(),
            TransformSpec::Resize {
                size,
                interpolation: interp,
            } => Resize {
                size: match size {
                    SizeSpec::One(n) => ResizeTo::Shorter(*n),
                    SizeSpec::Two(hw) => ResizeTo::Exact(*hw),
                },
                interpolation: interpolation(*interp),
            }
            .into(),
            TransformSpec::CenterCrop { size } => {
                let [height, width] = hw(*size);
                CenterCrop { height, width }.into()
            }
            TransformSpec::RandomHorizontalFlip { p } => RandomHorizontalFlip { p: *p }.into(),
            TransformSpec::ColorJitter {
                brightness,
                contrast,
                saturation,
                hue,
            } => ColorJitter {
                brightness: *brightness,
                contrast: *contrast,
                saturation: *saturation,
                hue: *hue,
            }
            .into(),
            TransformSpec::RandAugment {
                config_str,
                img_mean,
                crop_size: _,
            } => {
                let fill = img_mean.clone().unwrap_or_else(|| vec![0.5]);
                RandAugment::from_config_str(config_str, fill)?.into()
            }
            TransformSpec::RandomErasing {
                p,
                scale,
                ratio,
                value,
            } => RandomErasing {
                p: *p,
                scale: *scale,
                ratio: *ratio,
                value: match value {
                    EraseValueSpec::Zero => EraseValue::Constant(vec![0.0]),
                    EraseValueSpec::Values(v) => EraseValue::Constant(v.clone()),
                    EraseValueSpec::Random => EraseValue::Random,
                },
            }
            .into(),
            TransformSpec::ToTensor => continue,
            TransformSpec::Normalize { mean, std } => Normalize {
                mean: mean.clone(),
                std: std.clone(),
            }
            .into(),
        });
    }
    Ok(Transforms::new(steps)?)
}

fn sampler(spec: &SamplerSpec) -> Sampler {
    match *spec {
        SamplerSpec::RepeatAugSampler {
            num_repeats,
            num_replicas,
            rank,
            selected_round,
        } => Sampler::RepeatAug {
            num_repeats,
            num_replicas,
            rank,
            selected_round,
        },
        SamplerSpec::DistributedSampler { num_replicas, rank } => {
            Sampler::Distributed { num_replicas, rank }
        }
    }
}

fn mixup(spec: &CollateSpec, num_classes: usize, key: &str) -> Result<Mixup, RecipeError> {
    let CollateSpec::CollateMixup {
        mixup_alpha,
        cutmix_alpha,
        prob,
        switch_prob,
        mode,
        label_smoothing,
        num_classes: declared,
        correct_lam,
    } = *spec;
    if let Some(n) = declared
        && n != num_classes
    {
        return Err(RecipeError::invalid(
            &format!("{key}.collate_fn.num_classes"),
            format!(
                "{n} classes but the dataset has {num_classes}: remove the key or set it to {num_classes}"
            ),
        ));
    }
    if correct_lam == Some(false) {
        return Err(RecipeError::invalid(
            &format!("{key}.collate_fn.correct_lam"),
            "kd always sets the CutMix weight from the pasted area: remove the key or set it to true",
        ));
    }
    Ok(Mixup {
        mixup_alpha,
        cutmix_alpha,
        prob,
        switch_prob,
        mode: match mode {
            MixModeSpec::Batch => MixMode::Batch,
            MixModeSpec::Pair => MixMode::Pair,
            MixModeSpec::Elem => MixMode::Elem,
        },
        label_smoothing,
    })
}

fn loader(
    ds: Arc<dyn ImageDataset>,
    spec: &DatasetSpec,
    loader: &LoaderSpec,
    train: bool,
    seed: u64,
    key: &str,
) -> Result<DataLoader, RecipeError> {
    let config = LoaderConfig {
        batch_size: loader.batch_size,
        shuffle: loader.shuffle.unwrap_or(train),
        drop_last: loader.drop_last,
        num_workers: loader.num_workers,
        seed,
    };
    let num_classes = ds.num_classes();
    let mut built = DataLoader::new(ds, transforms(&spec.transforms)?, config)?;
    if let Some(s) = &loader.sampler {
        built = built.with_sampler(sampler(s))?;
    }
    if let Some(c) = &loader.collate_fn {
        built = built.with_mixup(mixup(c, num_classes, key)?)?;
    }
    Ok(built)
}

/// The training and validation loaders of a recipe, seeded with `training_hyperparams.seed`.
pub fn build_loaders(recipe: &Recipe) -> Result<(DataLoader, DataLoader), RecipeError> {
    build_loaders_from(
        recipe,
        &recipe.dataset_params,
        recipe.training_hyperparams.seed,
    )
}

/// The loaders of `p` with the recipe's dataloader names.
pub fn build_loaders_from(
    recipe: &Recipe,
    p: &DatasetParams,
    seed: u64,
) -> Result<(DataLoader, DataLoader), RecipeError> {
    let train_name = recipe
        .train_dataloader
        .as_deref()
        .unwrap_or("fashion_mnist_train");
    let val_name = recipe
        .val_dataloader
        .as_deref()
        .unwrap_or("fashion_mnist_val");
    let train_ds = dataset(
        train_name,
        "train_dataloader",
        &p.train_dataset_params,
        seed,
    )?;
    let val_ds = dataset(val_name, "val_dataloader", &p.val_dataset_params, seed)?;
    let train = loader(
        train_ds,
        &p.train_dataset_params,
        &p.train_dataloader_params,
        true,
        seed,
        "train_dataloader_params",
    )?;
    let valid = loader(
        val_ds,
        &p.val_dataset_params,
        &p.val_dataloader_params,
        false,
        seed,
        "val_dataloader_params",
    )?;
    Ok((train, valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(yaml: &str) -> Vec<TransformSpec> {
        #[derive(serde::Deserialize)]
        struct Wrap {
            #[serde(with = "serde_yaml::with::singleton_map_recursive")]
            transforms: Vec<TransformSpec>,
        }
        serde_yaml::from_str::<Wrap>(yaml).unwrap().transforms
    }

    #[test]
    fn supergradients_imagenet_transforms_build() {
        let train = specs(
            "transforms:
  - RandomResizedCropAndInterpolation: {size: 224, interpolation: random}
  - RandomHorizontalFlip: {}
  - RandomAugmentation: {config_str: rand-m7-mstd0.5, crop_size: 224, img_mean: [0.485, 0.456, 0.406]}
  - ToTensor
  - Normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
  - RandomErasing: {p: 0.25, value: random}
",
        );
        let t = transforms(&train).unwrap();
        assert_eq!(t.steps().len(), 5);
        assert_eq!(t.fixed_output_shape(3).unwrap(), Some([3, 224, 224]));
        let val = specs(
            "transforms:
  - Resize: {size: 256}
  - CenterCrop: {size: 224}
  - ColorJitter: {brightness: 0.4, contrast: 0.4, saturation: 0.4}
",
        );
        let t = transforms(&val).unwrap();
        assert_eq!(t.output_shape([3, 375, 500]).unwrap(), [3, 224, 224]);
        assert!(matches!(
            t.steps()[0],
            Transform::Resize(Resize {
                size: ResizeTo::Shorter(256),
                ..
            })
        ));
    }

    #[test]
    fn bad_transform_keys_and_values_are_rejected() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Wrap {
            #[serde(with = "serde_yaml::with::singleton_map_recursive")]
            transforms: Vec<TransformSpec>,
        }
        let err = serde_yaml::from_str::<Wrap>("transforms: [{RandomCrop: {size: 3, paddin: 1}}]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("paddin"), "{err}");
        let err = transforms(&specs("transforms: [{RandAugment: {config_str: rand-q9}}]"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("rand-q9"), "{err}");
        assert!(serde_yaml::from_str::<Wrap>("transforms: [{Resize: {size: [1, 2, 3]}}]").is_err());
    }

    #[test]
    fn supergradients_sampler_and_mixup_collate_parse_and_convert() {
        let spec: LoaderSpec = serde_yaml::from_str(
            "batch_size: 192
sampler:
  RepeatAugSampler: {num_repeats: 3}
collate_fn:
  CollateMixup: {mixup_alpha: 0.2, cutmix_alpha: 1.0, label_smoothing: 0.1, num_classes: 1000}
",
        )
        .unwrap();
        assert_eq!(
            sampler(spec.sampler.as_ref().unwrap()),
            Sampler::RepeatAug {
                num_repeats: 3,
                num_replicas: 1,
                rank: 0,
                selected_round: 256
            }
        );
        let collate = spec.collate_fn.as_ref().unwrap();
        let m = mixup(collate, 1000, "train_dataloader_params").unwrap();
        assert_eq!((m.mixup_alpha, m.cutmix_alpha, m.prob), (0.2, 1.0, 1.0));
        assert_eq!(
            (m.switch_prob, m.label_smoothing, m.mode),
            (0.5, 0.1, MixMode::Batch)
        );
        let err = mixup(collate, 100, "train_dataloader_params")
            .unwrap_err()
            .to_string();
        assert!(err.contains("collate_fn.num_classes"), "{err}");
        let spec: LoaderSpec =
            serde_yaml::from_str("sampler: {DistributedSampler: {num_replicas: 4, rank: 1}}")
                .unwrap();
        assert_eq!(
            sampler(spec.sampler.as_ref().unwrap()),
            Sampler::Distributed {
                num_replicas: 4,
                rank: 1
            }
        );
        assert!(
            serde_yaml::from_str::<LoaderSpec>("collate_fn: {CollateMixup: {alpha: 1}}").is_err()
        );
    }

    #[test]
    fn unknown_dataloaders_suggest_the_closest() {
        let err = dataset_location("cifar100_trian", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean `cifar100_train`"), "{err}");
    }
}
