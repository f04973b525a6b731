//! A throughput benchmark of the ImageNet training pipeline on an image folder.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::error::DataError;
use crate::image_folder::ImageFolder;
use crate::loader::{DataLoader, LoaderConfig};
use crate::transforms::{
    Interpolation, Normalize, RandAugment, RandomHorizontalFlip, RandomResizedCrop, Transforms,
};

/// Images per batch in [`bench_image_folder`].
pub const BENCH_BATCH_SIZE: usize = 64;

/// Loads `batches` batches of [`BENCH_BATCH_SIZE`] images from the image folder `root` with
/// SuperGradients' ImageNet training transforms (`RandomResizedCrop(size, interpolation=random)`,
/// `RandomHorizontalFlip`, `RandAugment("rand-m7-mstd0.5")`, `Normalize`) on `threads` worker
/// threads, and returns the images per second.
///
/// It measures decoding and augmentation into host batches (tensor upload excluded), running
/// as many epochs as `batches` needs. Fails when the folder cannot be read or an image cannot
/// be decoded.
pub fn bench_image_folder(
    root: &Path,
    size: usize,
    threads: usize,
    batches: usize,
) -> Result<f64, DataError> {
    let dataset = Arc::new(ImageFolder::new(root)?);
    let mean = vec![0.485, 0.456, 0.406];
    let transforms = Transforms::new(vec![
        RandomResizedCrop {
            interpolation: Interpolation::Random,
            ..RandomResizedCrop::new(size)
        }
        .into(),
        RandomHorizontalFlip { p: 0.5 }.into(),
        RandAugment::from_config_str("rand-m7-mstd0.5", mean.clone())?.into(),
        Normalize {
            mean,
            std: vec![0.229, 0.224, 0.225],
        }
        .into(),
    ])?;
    let config = LoaderConfig {
        batch_size: BENCH_BATCH_SIZE,
        shuffle: true,
        drop_last: false,
        num_workers: threads,
        seed: 0,
    };
    let loader = DataLoader::new(dataset, transforms, config)?;
    let start = Instant::now();
    let (mut images, mut left, mut epoch) = (0, batches, 0);
    while left > 0 && loader.epoch_len() > 0 {
        let n = left.min(loader.num_batches());
        images += loader.build_host_batches(epoch, n)?;
        left -= n;
        epoch += 1;
    }
    Ok(images as f64 / start.elapsed().as_secs_f64().max(1e-9))
}
