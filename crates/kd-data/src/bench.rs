//! A throughput benchmark of ImageNet-style training pipelines on an image folder.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use image::{ImageFormat, RgbImage};

use crate::error::DataError;
use crate::image_folder::ImageFolder;
use crate::loader::{DataLoader, LoaderConfig};
use crate::transforms::{
    Interpolation, Normalize, RandAugment, RandomHorizontalFlip, RandomResizedCrop, Transforms,
};

/// Images per batch in [`bench_image_folder`].
pub const BENCH_BATCH_SIZE: usize = 64;

/// The transforms [`bench_image_folder`] times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchPipeline {
    /// Decode, `RandomResizedCrop(size)` (bilinear), `RandomHorizontalFlip`, `Normalize`:
    /// torchvision's standard ImageNet training transforms.
    Standard,
    /// SuperGradients' ImageNet KD recipe: `RandomResizedCrop(size, interpolation=random)`,
    /// `RandomHorizontalFlip`, `RandAugment("rand-m7-mstd0.5")`, `Normalize`.
    SuperGradients,
}

impl BenchPipeline {
    /// Names accepted on the command line.
    pub const NAMES: &'static [&'static str] = &["standard", "sg"];

    /// Parses `standard` or `sg`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "standard" => Some(Self::Standard),
            "sg" | "supergradients" => Some(Self::SuperGradients),
            _ => None,
        }
    }

    fn transforms(self, size: usize) -> Result<Transforms, DataError> {
        let mean = vec![0.485, 0.456, 0.406];
        let normalize = Normalize {
            mean: mean.clone(),
            std: vec![0.229, 0.224, 0.225],
        };
        let flip = RandomHorizontalFlip { p: 0.5 };
        Transforms::new(match self {
            Self::Standard => vec![
                RandomResizedCrop::new(size).into(),
                flip.into(),
                normalize.into(),
            ],
            Self::SuperGradients => vec![
                RandomResizedCrop {
                    interpolation: Interpolation::Random,
                    ..RandomResizedCrop::new(size)
                }
                .into(),
                flip.into(),
                RandAugment::from_config_str("rand-m7-mstd0.5", mean)?.into(),
                normalize.into(),
            ],
        })
    }
}

/// Loads `batches` batches of [`BENCH_BATCH_SIZE`] images from the image folder `root` through
/// `pipeline` on `threads` worker threads, and returns the images per second.
///
/// It measures decoding and augmentation into host batches (tensor upload excluded), running
/// as many epochs as `batches` needs; one untimed batch warms the pool first. Fails when the
/// folder cannot be read or an image cannot be decoded.
pub fn bench_image_folder(
    root: &Path,
    size: usize,
    threads: usize,
    batches: usize,
    pipeline: BenchPipeline,
) -> Result<f64, DataError> {
    let dataset = Arc::new(ImageFolder::new(root)?);
    let config = LoaderConfig {
        batch_size: BENCH_BATCH_SIZE,
        shuffle: true,
        drop_last: false,
        num_workers: threads,
        seed: 0,
    };
    let loader = DataLoader::new(dataset, pipeline.transforms(size)?, config)?;
    if loader.epoch_len() == 0 {
        return Ok(0.0);
    }
    // A warm-up batch from an epoch the timed loop never reaches.
    loader.build_host_batches(1_000_000, 1)?;
    let start = Instant::now();
    let (mut images, mut left, mut epoch) = (0, batches, 0);
    while left > 0 {
        let n = left.min(loader.num_batches());
        images += loader.build_host_batches(epoch, n)?;
        left -= n;
        epoch += 1;
    }
    Ok(images as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

/// Writes `count` JPEG photos-like images in `classes` class folders under `root`, at sizes
/// around ImageNet's average (about 500×375, varied per image), for benchmarks. Existing
/// files are overwritten; the content depends only on the image index.
pub fn write_bench_jpegs(root: &Path, count: usize, classes: usize) -> Result<(), DataError> {
    for i in 0..count {
        let (w, h) = (440 + (i * 37 % 121) as u32, 330 + (i * 53 % 91) as u32);
        let seed = i as u32;
        let img = RgbImage::from_fn(w, h, |x, y| {
            // Smooth gradients plus blotches and fine noise, so the encoder sees both
            // flat and detailed areas as in a photograph.
            let n = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ seed.wrapping_mul(31)) % 48;
            let blob = ((x / 23 + y / 17 + seed) % 5) as u8 * 20;
            image::Rgb([
                ((x + seed) % 200) as u8 / 2 + n as u8 + blob,
                ((y * 2 + seed) % 200) as u8 / 2 + n as u8,
                ((x + y) % 200) as u8 / 2 + (47 - n) as u8 + blob / 2,
            ])
        });
        let dir = root.join(format!("class{:03}", i % classes.max(1)));
        std::fs::create_dir_all(&dir).map_err(|e| DataError::Io {
            path: dir.clone(),
            source: e,
        })?;
        let path = dir.join(format!("{i:06}.jpg"));
        img.save_with_format(&path, ImageFormat::Jpeg)
            .map_err(|e| DataError::Io {
                path: path.clone(),
                source: std::io::Error::other(e),
            })?;
    }
    Ok(())
}
