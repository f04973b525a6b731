//! Checks against the real Fashion-MNIST, when it is installed (`apt-get install
//! dataset-fashion-mnist`); each test prints a note and passes when it is absent.

use std::sync::Arc;
use std::time::Instant;

use burn::prelude::*;
use kd_data::{
    DataError, DataLoader, IdxDataset, ImageDataset, LoaderConfig, Normalize, RandomCrop,
    RandomHorizontalFlip, Split, Transforms, locate_fashion_mnist,
};

/// The dataset folder, or `None` (with a printed note) when Fashion-MNIST is not installed.
fn root() -> Option<std::path::PathBuf> {
    match locate_fashion_mnist(None) {
        Ok(dir) => Some(dir),
        Err(err @ DataError::NotFound { .. }) => {
            eprintln!("skipping: {err}");
            None
        }
        Err(err) => panic!("{err}"),
    }
}

#[test]
fn splits_have_the_published_sizes_and_statistics() {
    let Some(dir) = root() else { return };
    let start = Instant::now();
    let train = IdxDataset::fashion_mnist(Split::Train, Some(&dir)).unwrap();
    eprintln!("loaded 60k training images in {:?}", start.elapsed());
    let test = IdxDataset::fashion_mnist(Split::Test, Some(&dir)).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    for ds in [&train, &test] {
        assert_eq!(ds.num_classes(), 10);
        assert_eq!(ds.image_shape(), [1, 28, 28]);
        assert_eq!(ds.class_names()[0], "T-shirt/top");
        assert!(ds.labels().iter().all(|&l| l < 10));
        // Fashion-MNIST is balanced: every class has a tenth of the samples.
        let mut counts = [0usize; 10];
        ds.labels().iter().for_each(|&l| counts[l as usize] += 1);
        assert!(counts.iter().all(|&c| c == ds.len() / 10), "{counts:?}");
    }
    let pixels = train.pixels();
    assert_eq!(pixels.len(), 60_000 * 28 * 28);
    let n = pixels.len() as f64;
    let (sum, sum_sq) = pixels.iter().fold((0u64, 0u64), |(s, q), &p| {
        (s + u64::from(p), q + u64::from(p) * u64::from(p))
    });
    let mean = sum as f64 / n / 255.0;
    let std = (sum_sq as f64 / n / (255.0 * 255.0) - mean * mean).sqrt();
    assert!((mean - 0.2860).abs() < 1e-4, "mean {mean}");
    assert!((std - 0.3530).abs() < 1e-4, "std {std}");
}

#[test]
fn an_augmented_epoch_is_fast_and_complete() {
    let Some(dir) = root() else { return };
    let train: Arc<dyn ImageDataset> =
        Arc::new(IdxDataset::fashion_mnist(Split::Train, Some(&dir)).unwrap());
    let transforms = Transforms::new(vec![
        RandomCrop {
            size: 28,
            padding: 4,
        }
        .into(),
        RandomHorizontalFlip { p: 0.5 }.into(),
        Normalize {
            mean: vec![0.2860],
            std: vec![0.3530],
        }
        .into(),
    ])
    .unwrap();
    let config = LoaderConfig {
        batch_size: 128,
        shuffle: true,
        drop_last: false,
        num_workers: 2,
        seed: 0,
    };
    let loader = DataLoader::new(train, transforms, config).unwrap();
    assert_eq!(loader.num_batches(), 469);
    let device = Device::flex();
    let start = Instant::now();
    let mut seen = vec![false; loader.len()];
    let mut sum = 0.0f64;
    for batch in loader.iter(0, &device) {
        let batch = batch.unwrap();
        for &i in &batch.indices {
            assert!(!seen[i], "index {i} seen twice");
            seen[i] = true;
        }
        sum += batch.images.sum().into_scalar::<f64>();
    }
    eprintln!(
        "one augmented epoch of 469 batches in {:?}",
        start.elapsed()
    );
    assert!(seen.iter().all(|&s| s));
    // Normalized with the dataset statistics, the mean sits a little below 0 because padding
    // brings in black pixels.
    let mean = sum / (60_000.0 * 28.0 * 28.0);
    assert!((-0.2..0.05).contains(&mean), "normalized mean {mean}");
}
