//! CIFAR binary files and image folders made by the tests, loaded end to end: shapes, labels,
//! normalised values, named errors for corrupt inputs, mixing and samplers in the loader.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::prelude::*;
use image::{ImageFormat, RgbImage};
use kd_core::Targets;
use kd_data::{
    BenchPipeline, CenterCrop, CifarDataset, DataError, DataLoader, ImageDataset, ImageFolder,
    LabelType, LoaderConfig, MixMode, Mixup, Normalize, RandomCrop, RandomHorizontalFlip,
    RandomResizedCrop, Resize, ResizeTo, Sampler, Split, Transform, Transforms,
};

/// A fresh folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("kd-data-it-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const MEAN: [f32; 3] = [0.5071, 0.4865, 0.4409];
const STD: [f32; 3] = [0.2673, 0.2564, 0.2762];

fn normalize() -> Transform {
    Normalize {
        mean: MEAN.to_vec(),
        std: STD.to_vec(),
    }
    .into()
}

fn config(batch_size: usize, workers: usize) -> LoaderConfig {
    LoaderConfig {
        batch_size,
        shuffle: false,
        drop_last: false,
        num_workers: workers,
        seed: 3,
    }
}

fn values(t: Tensor<4>) -> Vec<f32> {
    t.to_data().try_to_vec::<f32>().unwrap()
}

fn labels(t: &Targets) -> Vec<i64> {
    t.class_indices()
        .to_data_as::<i64>()
        .try_to_vec::<i64>()
        .unwrap()
}

/// The pixels of CIFAR record `r`: channel `c`, pixel `p` is `(r * 7 + c * 50 + p) % 256`.
fn cifar_pixels(r: usize) -> Vec<u8> {
    (0..3072)
        .map(|i| ((r * 7 + (i / 1024) * 50 + i % 1024) % 256) as u8)
        .collect()
}

fn write_cifar100(path: &Path, labels: &[(u8, u8)]) {
    let mut bytes = Vec::new();
    for (r, &(coarse, fine)) in labels.iter().enumerate() {
        bytes.extend([coarse, fine]);
        bytes.extend(cifar_pixels(r));
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn cifar100_loads_normalised_batches_with_fine_or_coarse_labels() {
    let dir = TempDir::new("cifar100");
    let records = [(3, 71), (19, 99), (0, 4), (7, 13), (11, 50)];
    write_cifar100(&dir.0.join("train.bin"), &records);
    write_cifar100(&dir.0.join("test.bin"), &records[..2]);
    let train =
        Arc::new(CifarDataset::cifar100(Split::Train, LabelType::Fine, Some(&dir.0)).unwrap());
    assert_eq!((train.len(), train.num_classes()), (5, 100));
    let loader = DataLoader::new(
        train,
        Transforms::new(vec![normalize()]).unwrap(),
        config(4, 2),
    )
    .unwrap();
    let device = Device::flex();
    let batches: Vec<_> = loader.iter(0, &device).map(Result::unwrap).collect();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].images.dims(), [4, 3, 32, 32]);
    let fine: Vec<i64> = labels(&batches[0].targets);
    assert_eq!(fine, [71, 99, 4, 13]);
    // Sample 1, channel 2, pixel 5: ((1 * 7 + 2 * 50 + 5) / 255 - mean) / std.
    let v = values(batches[0].images.clone());
    let got = v[3072 + 2 * 1024 + 5];
    let expected = ((7 + 100 + 5) as f32 / 255.0 - MEAN[2]) / STD[2];
    assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");

    let coarse = CifarDataset::cifar100(Split::Test, LabelType::Coarse, Some(&dir.0)).unwrap();
    assert_eq!(
        (coarse.labels(), coarse.num_classes()),
        (&[3u8, 19][..], 20)
    );
}

#[test]
fn cifar10_random_crop_pipeline_keeps_shape_and_labels() {
    let dir = TempDir::new("cifar10");
    for (f, name) in [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ]
    .iter()
    .enumerate()
    {
        let mut bytes = Vec::new();
        for r in 0..3 {
            bytes.push(((f + r) % 10) as u8);
            bytes.extend(cifar_pixels(f * 3 + r));
        }
        std::fs::write(dir.0.join(name), bytes).unwrap();
    }
    let train = Arc::new(CifarDataset::cifar10(Split::Train, Some(&dir.0)).unwrap());
    assert_eq!(train.len(), 15);
    let transforms = Transforms::new(vec![
        RandomCrop {
            size: 32,
            padding: 4,
        }
        .into(),
        RandomHorizontalFlip { p: 0.5 }.into(),
        normalize(),
    ])
    .unwrap();
    let loader = DataLoader::new(
        train,
        transforms,
        LoaderConfig {
            shuffle: true,
            ..config(8, 2)
        },
    )
    .unwrap();
    let device = Device::flex();
    let mut seen = Vec::new();
    for batch in loader.iter(0, &device) {
        let batch = batch.unwrap();
        assert_eq!(batch.images.dims()[1..], [3, 32, 32]);
        let got = labels(&batch.targets);
        for (&i, &l) in batch.indices.iter().zip(&got) {
            // Sample i is record i % 3 of file i / 3, labelled (file + record) % 10.
            assert_eq!(l as usize, (i / 3 + i % 3) % 10);
        }
        seen.extend(batch.indices);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..15).collect::<Vec<_>>());
}

/// A picture of `w`×`h` pixels whose colour depends on the class and position.
fn picture(w: u32, h: u32, class: u8) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([class * 60 + (x % 7) as u8, (y * 3) as u8, 200 - class * 30])
    })
}

/// Two classes of real JPEG and PNG files of different sizes.
fn image_tree(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    let save = |img: RgbImage, rel: &str, format: ImageFormat| {
        let path = dir.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        img.save_with_format(path, format).unwrap();
    };
    save(picture(40, 30, 0), "n01/a.JPEG", ImageFormat::Jpeg);
    save(picture(25, 36, 0), "n01/b.png", ImageFormat::Png);
    save(picture(33, 33, 0), "n01/c.jpg", ImageFormat::Jpeg);
    save(picture(50, 20, 1), "n02/d.jpeg", ImageFormat::Jpeg);
    save(picture(24, 24, 1), "n02/e.png", ImageFormat::Png);
    dir
}

#[test]
fn reading_into_reused_buffers_equals_getting() {
    let dir = image_tree("read-into");
    // Colour types that take the conversion path: grey and RGBA PNGs.
    let grey = image::GrayImage::from_fn(9, 7, |x, y| image::Luma([(x * 20 + y) as u8]));
    grey.save_with_format(dir.0.join("n02/f.png"), ImageFormat::Png)
        .unwrap();
    let rgba = image::RgbaImage::from_fn(6, 11, |x, y| image::Rgba([x as u8, y as u8, 7, 100]));
    rgba.save_with_format(dir.0.join("n02/g.png"), ImageFormat::Png)
        .unwrap();
    let folder = ImageFolder::new(&dir.0).unwrap();
    let memory =
        kd_data::InMemoryDataset::new((0..48).collect(), vec![0, 1, 2], [1, 4, 4], 3).unwrap();
    let datasets: [&dyn ImageDataset; 2] = [&folder, &memory];
    for ds in datasets {
        // One sample and one set of buffers for every read, across sizes and colour types.
        let mut sample = kd_data::Sample::default();
        let mut buffers = kd_data::ReadBuffers::default();
        for i in (0..ds.len()).rev().chain(0..ds.len()) {
            ds.read_into(i, &mut sample, &mut buffers).unwrap();
            assert_eq!(sample, ds.get(i).unwrap(), "sample {i}");
        }
        let err = ds.read_into(ds.len(), &mut sample, &mut buffers);
        assert!(
            matches!(err, Err(DataError::IndexOutOfRange { .. })),
            "{err:?}"
        );
    }
}

#[test]
fn image_folder_batches_variable_sizes_through_fixed_size_transforms() {
    let dir = image_tree("folder-train");
    let ds = Arc::new(ImageFolder::new(&dir.0).unwrap());
    assert_eq!(ds.class_names(), ["n01", "n02"]);
    let transforms = Transforms::new(vec![
        RandomResizedCrop::new(16).into(),
        RandomHorizontalFlip { p: 0.5 }.into(),
        normalize(),
    ])
    .unwrap();
    let loader = DataLoader::new(ds.clone(), transforms, config(3, 2)).unwrap();
    let device = Device::flex();
    let batches: Vec<_> = loader.iter(0, &device).map(Result::unwrap).collect();
    assert_eq!(batches[0].images.dims(), [3, 3, 16, 16]);
    assert_eq!(batches[1].images.dims(), [2, 3, 16, 16]);
    let all: Vec<i64> = batches.iter().flat_map(|b| labels(&b.targets)).collect();
    assert_eq!(all, [0, 0, 0, 1, 1]);

    // Validation pipeline: the PNG (lossless) has exact normalised values.
    let val = Transforms::new(vec![
        Resize {
            size: ResizeTo::Shorter(24),
            interpolation: Default::default(),
        }
        .into(),
        CenterCrop::square(20).into(),
        normalize(),
    ])
    .unwrap();
    let loader = DataLoader::new(ds, val, config(5, 0)).unwrap();
    let batch = loader.iter(0, &device).next().unwrap().unwrap();
    assert_eq!(batch.images.dims(), [5, 3, 20, 20]);
    // Sample 4 is e.png (24×24, not resized); centre crop offset 2; pixel (x=3, y=1) of the crop
    // is image pixel (5, 3), whose red level is 1 * 60 + 5.
    let v = values(batch.images);
    let got = v[4 * 1200 + 20 + 3];
    let expected = (65.0 / 255.0 - MEAN[0]) / STD[0];
    assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
}

#[test]
fn image_folder_needs_a_fixed_size_and_names_bad_samples() {
    let dir = image_tree("folder-bad");
    let ds = Arc::new(ImageFolder::new(&dir.0).unwrap());
    let shorter = Transforms::new(vec![
        Resize {
            size: ResizeTo::Shorter(20),
            interpolation: Default::default(),
        }
        .into(),
    ])
    .unwrap();
    assert!(matches!(
        DataLoader::new(ds.clone(), shorter, config(2, 0)),
        Err(DataError::UnfixedSize)
    ));
    // A 30-pixel crop does not fit the 24×24 e.png: the error names the file.
    let crop = Transforms::new(vec![
        RandomCrop {
            size: 30,
            padding: 0,
        }
        .into(),
    ])
    .unwrap();
    let loader = DataLoader::new(ds, crop, config(5, 2)).unwrap();
    let err = loader.iter(0, &Device::flex()).next().unwrap().unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("b.png") || msg.contains("e.png") || msg.contains("d.jpeg"),
        "{msg}"
    );
    assert!(matches!(err, DataError::Sample { .. }), "{err:?}");

    // A corrupt JPEG fails when its batch is built, naming the file.
    std::fs::write(dir.0.join("n02/d.jpeg"), b"\xff\xd8\xff broken").unwrap();
    let ds = Arc::new(ImageFolder::new(&dir.0).unwrap());
    let t = Transforms::new(vec![CenterCrop::square(8).into()]).unwrap();
    let loader = DataLoader::new(ds, t, config(5, 0)).unwrap();
    let err = loader.iter(0, &Device::flex()).next().unwrap().unwrap_err();
    assert!(err.to_string().contains("d.jpeg"), "{err}");
}

fn small_cifar(tag: &str, n: usize) -> (TempDir, Arc<CifarDataset>) {
    let dir = TempDir::new(tag);
    let labels: Vec<(u8, u8)> = (0..n).map(|i| ((i % 20) as u8, (i % 100) as u8)).collect();
    write_cifar100(&dir.0.join("train.bin"), &labels);
    let ds =
        CifarDataset::cifar100_from_files(&[dir.0.join("train.bin")], LabelType::Fine).unwrap();
    (dir, Arc::new(ds))
}

#[test]
fn mixup_in_the_loader_gives_soft_targets_summing_to_one() {
    let (_dir, ds) = small_cifar("mix", 10);
    let mixup = Mixup {
        mixup_alpha: 0.2,
        cutmix_alpha: 1.0,
        mode: MixMode::Elem,
        ..Mixup::default()
    };
    let loader = DataLoader::new(
        ds,
        Transforms::new(vec![normalize()]).unwrap(),
        config(4, 2),
    )
    .unwrap()
    .with_mixup(mixup)
    .unwrap();
    let device = Device::flex();
    let run = || -> Vec<Vec<f32>> {
        loader
            .iter(1, &device)
            .map(|b| match b.unwrap().targets {
                Targets::Soft(t) => {
                    assert_eq!(t.dims()[1], 100);
                    t.to_data().try_to_vec::<f32>().unwrap()
                }
                Targets::Hard(_) => panic!("mixing gives soft targets"),
            })
            .collect()
    };
    let first = run();
    for targets in &first {
        for row in targets.chunks(100) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
    // Seeded: the same epoch mixes the same way.
    assert_eq!(first, run());
}

#[test]
fn repeated_visits_are_augmented_differently_and_replicas_split_the_data() {
    let (_dir, ds) = small_cifar("repeat", 12);
    let aug = || {
        Transforms::new(vec![
            RandomCrop {
                size: 32,
                padding: 4,
            }
            .into(),
            RandomHorizontalFlip { p: 0.5 }.into(),
        ])
        .unwrap()
    };
    let repeat = Sampler::RepeatAug {
        num_repeats: 3,
        num_replicas: 1,
        rank: 0,
        selected_round: 0,
    };
    let loader = DataLoader::new(ds.clone(), aug(), config(3, 2))
        .unwrap()
        .with_sampler(repeat)
        .unwrap();
    assert_eq!((loader.len(), loader.epoch_len()), (12, 12));
    let device = Device::flex();
    let batch = loader.iter(0, &device).next().unwrap().unwrap();
    assert_eq!(batch.indices, [0, 0, 0]);
    let v = values(batch.images);
    let per = 3 * 32 * 32;
    assert!(v[..per] != v[per..2 * per] || v[per..2 * per] != v[2 * per..]);

    let mut seen = Vec::new();
    for rank in 0..3 {
        let sampler = Sampler::Distributed {
            num_replicas: 3,
            rank,
        };
        let l = DataLoader::new(
            ds.clone(),
            aug(),
            LoaderConfig {
                shuffle: true,
                ..config(2, 0)
            },
        )
        .unwrap()
        .with_sampler(sampler)
        .unwrap();
        assert_eq!((l.len(), l.epoch_len(), l.num_batches()), (12, 4, 2));
        for b in l.iter(2, &device) {
            seen.extend(b.unwrap().indices);
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..12).collect::<Vec<_>>());
    assert!(
        DataLoader::new(ds, aug(), config(2, 0))
            .unwrap()
            .with_sampler(Sampler::Distributed {
                num_replicas: 2,
                rank: 5
            })
            .is_err()
    );
}

#[test]
fn bench_reports_a_positive_rate() {
    let dir = image_tree("bench");
    for pipeline in [BenchPipeline::Standard, BenchPipeline::SuperGradients] {
        let rate = kd_data::bench_image_folder(&dir.0, 16, 2, 3, pipeline).unwrap();
        assert!(rate.is_finite() && rate > 0.0, "{rate}");
    }
    let generated = TempDir::new("bench-jpegs");
    kd_data::write_bench_jpegs(&generated.0, 6, 3).unwrap();
    let folder = ImageFolder::new(&generated.0).unwrap();
    assert_eq!((folder.len(), folder.num_classes()), (6, 3));
    let rate =
        kd_data::bench_image_folder(&generated.0, 32, 1, 1, BenchPipeline::Standard).unwrap();
    assert!(rate > 0.0, "{rate}");
}
