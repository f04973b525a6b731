//! Recipe `dataset_params` → datasets and loaders.

use std::sync::Arc;

use kd_data::{
    DataLoader, IdxDataset, ImageDataset, LoaderConfig, Normalize, RandomCrop,
    RandomHorizontalFlip, Split, Subset, Transform, Transforms,
};

use crate::error::did_you_mean;
use crate::schema::{DatasetParams, DatasetSpec, LoaderSpec, TransformSpec};
use crate::{Recipe, RecipeError};

/// The registered dataloader names: `(name, dataset, split)`.
pub const DATALOADERS: [(&str, &str, Split); 6] = [
    ("fashion_mnist_train", "fashion_mnist", Split::Train),
    ("fashion_mnist_val", "fashion_mnist", Split::Test),
    ("fashion_mnist_test", "fashion_mnist", Split::Test),
    ("mnist_train", "mnist", Split::Train),
    ("mnist_val", "mnist", Split::Test),
    ("mnist_test", "mnist", Split::Test),
];

fn dataset(
    name: &str,
    key: &str,
    spec: &DatasetSpec,
    seed: u64,
) -> Result<Arc<dyn ImageDataset>, RecipeError> {
    let (_, family, split) = DATALOADERS
        .iter()
        .find(|(n, _, _)| *n == name)
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
        })?;
    let root = spec.root.as_deref();
    let ds: Arc<dyn ImageDataset> = match *family {
        "mnist" => Arc::new(IdxDataset::mnist(*split, root)?),
        _ => Arc::new(IdxDataset::fashion_mnist(*split, root)?),
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

/// Builds the kd-data transform pipeline of a recipe list.
pub fn transforms(specs: &[TransformSpec]) -> Result<Transforms, RecipeError> {
    let steps: Vec<Transform> = specs
        .iter()
        .map(|t| match t {
            TransformSpec::RandomCrop { size, padding } => RandomCrop {
                size: *size,
                padding: *padding,
            }
            .into(),
            TransformSpec::RandomHorizontalFlip { p } => RandomHorizontalFlip { p: *p }.into(),
            TransformSpec::Normalize { mean, std } => Normalize {
                mean: mean.clone(),
                std: std.clone(),
            }
            .into(),
        })
        .collect();
    Ok(Transforms::new(steps)?)
}

fn loader(
    ds: Arc<dyn ImageDataset>,
    spec: &DatasetSpec,
    loader: &LoaderSpec,
    train: bool,
    seed: u64,
) -> Result<DataLoader, RecipeError> {
    let config = LoaderConfig {
        batch_size: loader.batch_size,
        shuffle: loader.shuffle.unwrap_or(train),
        drop_last: loader.drop_last,
        num_workers: loader.num_workers,
        seed,
    };
    Ok(DataLoader::new(ds, transforms(&spec.transforms)?, config)?)
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
    )?;
    let valid = loader(
        val_ds,
        &p.val_dataset_params,
        &p.val_dataloader_params,
        false,
        seed,
    )?;
    Ok((train, valid))
}
