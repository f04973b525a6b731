//! Datasets, transforms and a seeded multi-threaded loader for knowledge distillation.
//!
//! - [`ImageDataset`]: random access to `u8` `C×H×W` images and class labels, implemented by
//!   [`IdxDataset`] (Fashion-MNIST, MNIST, any IDX file pair), [`CifarDataset`] (CIFAR-10 and
//!   CIFAR-100 binary files), [`ImageFolder`] (JPEG/PNG class folders such as ImageNet, decoded
//!   on the loader's workers), [`InMemoryDataset`] and [`Subset`] (a capped or random view).
//! - [`Transforms`]: torchvision-style `ToTensor`, [`RandomCrop`], [`CenterCrop`],
//!   [`RandomResizedCrop`], [`Resize`], [`RandomHorizontalFlip`], [`ColorJitter`],
//!   [`RandAugment`] (timm), [`RandomErasing`] and [`Normalize`], with randomness drawn per
//!   `(seed, epoch, sample index)` from [`sample_rng`]; each calls an explicit-parameter
//!   operation of [`functional`], checked against torchvision, timm and Pillow.
//! - [`Sampler`]: every sample, a distributed replica's share, or repeated augmentation.
//! - [`Mixup`]: Mixup/CutMix of whole batches with soft, label-smoothed targets.
//! - [`DataLoader`]: batches of `[B, C, H, W]` images and [`kd_core::Targets`] (hard labels, or
//!   soft ones with mixing), built on a background thread and a pool of `num_workers` threads;
//!   the batches of an epoch are the same for every run and every worker count.
//!
//! Datasets on disk are found by [`locate_fashion_mnist`], [`locate_mnist`],
//! [`locate_cifar10`], [`locate_cifar100`] and [`locate_imagenet`]: an explicit folder, else
//! `$KD_DATA_DIR/<name>`, `./data/<name>`, then `/usr/share/datasets/<name>`.
//!
//! ```
//! use std::sync::Arc;
//! use burn::prelude::*;
//! use kd_data::{
//!     DataLoader, InMemoryDataset, LoaderConfig, Normalize, RandomCrop, RandomHorizontalFlip,
//!     Transforms,
//! };
//!
//! # fn main() -> Result<(), kd_data::DataError> {
//! // Ten 1×4×4 images in two classes.
//! let images: Vec<u8> = (0..10 * 16).map(|i| (i % 256) as u8).collect();
//! let labels: Vec<usize> = (0..10).map(|i| i % 2).collect();
//! let dataset = Arc::new(InMemoryDataset::new(images, labels, [1, 4, 4], 2)?);
//!
//! let transforms = Transforms::new(vec![
//!     RandomCrop { size: 4, padding: 1 }.into(),
//!     RandomHorizontalFlip { p: 0.5 }.into(),
//!     Normalize { mean: vec![0.5], std: vec![0.25] }.into(),
//! ])?;
//! let config = LoaderConfig { batch_size: 4, shuffle: true, drop_last: false, num_workers: 2, seed: 7 };
//! let loader = DataLoader::new(dataset, transforms, config)?;
//! assert_eq!(loader.num_batches(), 3);
//!
//! let device = Device::flex();
//! let mut seen = 0;
//! for batch in loader.iter(0, &device) {
//!     let batch = batch?;
//!     assert_eq!(batch.images.dims()[1..], [1, 4, 4]);
//!     assert_eq!(batch.targets.batch_size(), batch.indices.len());
//!     seen += batch.indices.len();
//! }
//! assert_eq!(seen, 10);
//! # Ok(())
//! # }
//! ```

mod bench;
mod cifar;
mod dataset;
mod error;
pub mod functional;
pub mod idx;
mod idx_dataset;
mod image_folder;
mod loader;
mod locate;
mod mixup;
pub mod npy;
mod random;
mod sampler;
mod seed;
mod subset;
#[cfg(test)]
mod test_util;
mod transforms;

pub use bench::{BENCH_BATCH_SIZE, BenchPipeline, bench_image_folder, write_bench_jpegs};
pub use cifar::{
    CIFAR_SHAPE, CIFAR10_CLASSES, CIFAR100_COARSE_CLASSES, CIFAR100_FINE_CLASSES, CifarDataset,
    LabelType,
};
pub use dataset::{ImageDataset, InMemoryDataset, ReadBuffers, Sample};
pub use error::DataError;
pub use idx_dataset::{FASHION_MNIST_CLASSES, IdxDataset, Split};
pub use image_folder::{IMAGE_EXTENSIONS, ImageFolder};
pub use loader::{Batch, BatchIter, DataLoader, LoaderConfig, PREFETCH};
pub use locate::{
    DATA_DIR_ENV, SYSTEM_DATA_DIR, locate_cifar10, locate_cifar100, locate_fashion_mnist,
    locate_imagenet, locate_mnist,
};
pub use mixup::{MixDraw, MixMode, Mixup, cutmix_box, mix_targets};
pub use sampler::{EpochItem, Sampler};
pub use seed::{mix_seed, repeat_rng, sample_rng, splitmix64};
pub use subset::Subset;
pub use transforms::{
    AugmentOp, CenterCrop, ColorJitter, EraseValue, Interpolation, JitterParams, Normalize,
    RAND_INCREASING_TRANSFORMS, RAND_TRANSFORMS, RandAugment, RandAugmentOp, RandomCrop,
    RandomErasing, RandomHorizontalFlip, RandomResizedCrop, Resize, ResizeTo, Transform,
    Transforms, Workspace,
};
