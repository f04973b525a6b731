//! Helpers shared by the training-loop tests: a synthetic dataset and weight comparisons.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use burn::module::Module;
use burn::prelude::*;
use kd_core::ImageClassifier;
use kd_data::{DataLoader, InMemoryDataset, LoaderConfig, Transforms};
use kd_losses::{LOGITS_TAP, TapShapes};
use kd_models::{SmallCnn, SmallCnnConfig};

/// `Device::seed` is process-wide (the training loop also seeds every step): tests that train
/// run one at a time.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the process-wide seeding lock for the rest of a test.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SEEDED.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh temporary run folder for test `name` of file `file`, removed when dropped.
pub fn run_dir(file: &str, name: &str) -> RunDir {
    let dir = std::env::temp_dir().join(format!("kd-{file}-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    RunDir(dir)
}

/// A test's run folder: the path, and the folder's removal when the test ends (passing or
/// not), so that repeated test runs leave nothing behind.
pub struct RunDir(PathBuf);

impl std::ops::Deref for RunDir {
    type Target = PathBuf;

    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<std::path::Path> for RunDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for RunDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `n` random 1×8×8 images whose class (of 3) is the brightest third of the image, as a
/// shuffled training loader and an ordered validation loader over the same samples.
pub fn loaders(
    n: usize,
    batch_size: usize,
    seed: u64,
    noise_seed: u64,
) -> (DataLoader, DataLoader) {
    let mut images = Vec::with_capacity(n * 64);
    let mut labels = Vec::with_capacity(n);
    let mut state = noise_seed;
    for i in 0..n {
        let class = i % 3;
        for p in 0..64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let bright = if p / 22 == class { 150 } else { 40 };
            images.push(bright + (state >> 58) as u8);
        }
        labels.push(class);
    }
    let ds = Arc::new(InMemoryDataset::new(images, labels, [1, 8, 8], 3).unwrap());
    let cfg = |shuffle| LoaderConfig {
        batch_size,
        shuffle,
        drop_last: false,
        num_workers: 1,
        seed,
    };
    (
        DataLoader::new(ds.clone(), Transforms::to_tensor_only(), cfg(true)).unwrap(),
        DataLoader::new(ds, Transforms::to_tensor_only(), cfg(false)).unwrap(),
    )
}

/// Every float tensor of `m`, flattened in visit order.
pub fn floats<M: Module>(m: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
            self.0
                .extend(p.val().into_data().try_into_vec_as::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}

/// The largest absolute difference between two equally long slices.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// A small student (widths 4/4/8) and a frozen teacher (8/8/8) for 1×8×8 images of 3 classes,
/// initialised from `seed`.
pub fn small_pair(device: &Device, seed: u64) -> (SmallCnn, SmallCnn) {
    device.seed(seed);
    let student = SmallCnnConfig::new(1, 3)
        .with_widths([4, 4, 8])
        .init(device);
    let teacher = SmallCnnConfig::new(1, 3)
        .with_widths([8, 8, 8])
        .init(device);
    (student, teacher.valid())
}

/// Per-sample shapes of `net`'s taps `names` and its logits, from one forward pass on a
/// 1×8×8 image of zeros.
pub fn shapes(net: &SmallCnn, names: &[String], device: &Device) -> TapShapes {
    let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
    let (logits, features) = net
        .valid()
        .forward_with_taps(Tensor::<4>::zeros([1, 1, 8, 8], device), &wanted);
    let mut out: TapShapes = names
        .iter()
        .zip(features)
        .map(|(n, f)| (n.clone(), f.dims()[1..].to_vec()))
        .collect();
    out.push((LOGITS_TAP.into(), logits.dims()[1..].to_vec()));
    out
}
