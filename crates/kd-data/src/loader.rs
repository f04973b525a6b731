//! A seeded, multi-threaded batch loader whose output does not depend on the number of workers.
//!
//! For each epoch a background producer thread walks the epoch's visits (chosen by the
//! [`Sampler`] from a seeded permutation of `(seed, epoch)` when shuffling, sequential
//! otherwise), decodes and transforms the samples of each batch on a pool of `num_workers`
//! threads straight into one preallocated `f32` buffer, optionally mixes the batch
//! ([`Mixup`]), and sends finished batches through a channel holding at most [`PREFETCH`] of
//! them. The consumer turns each buffer into tensors on its device. Every visit's augmentation
//! is drawn from [`crate::repeat_rng`]`(seed, epoch, index, repeat)` and every batch's mixing
//! from its own stream of `(seed, epoch, batch)`, so batches are identical across runs and
//! across `num_workers` values.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use burn::prelude::*;
use kd_core::Targets;
use rayon::prelude::*;

use crate::dataset::{ImageDataset, ReadBuffers, Sample};
use crate::error::DataError;
use crate::mixup::Mixup;
use crate::sampler::{EpochItem, Sampler};
use crate::seed::{mix_rng, repeat_rng};
use crate::transforms::{Transforms, Workspace};

/// Number of finished batches the producer may queue ahead of the consumer.
pub const PREFETCH: usize = 2;

/// What one worker thread reuses from sample to sample: the transforms' buffers, the sample
/// read from the dataset, and the file and decoding buffers.
#[derive(Default)]
struct WorkerScratch {
    workspace: Workspace,
    sample: Sample,
    read: ReadBuffers,
}

thread_local! {
    /// Each worker thread's scratch, so reading and transforming a sample allocates nothing
    /// once its buffers have grown to the largest image.
    static SCRATCH: std::cell::RefCell<WorkerScratch> = std::cell::RefCell::default();
}

/// How a [`DataLoader`] batches, orders and parallelises an epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderConfig {
    /// Samples per batch; must be positive.
    pub batch_size: usize,
    /// Whether each epoch visits the samples in a seeded random order.
    pub shuffle: bool,
    /// Whether to drop the last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// Threads that decode and transform samples; 0 does the work on the producer thread.
    pub num_workers: usize,
    /// Seed of the shuffle and of the random transforms.
    pub seed: u64,
}

impl LoaderConfig {
    /// A sequential, single-threaded configuration with seed 0 that keeps the last batch.
    pub fn new(batch_size: usize) -> Self {
        Self {
            batch_size,
            shuffle: false,
            drop_last: false,
            num_workers: 0,
            seed: 0,
        }
    }
}

/// One batch of transformed images and their targets.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Images, `[B, C, H, W]`, `f32`.
    pub images: Tensor<4>,
    /// Class indices, `Targets::Hard` of shape `[B]`, or with mixing `Targets::Soft` of shape
    /// `[B, num_classes]`.
    pub targets: Targets,
    /// The dataset index of each sample, in batch order.
    pub indices: Vec<usize>,
}

/// Loads a dataset in batches with seeded shuffling and augmentation.
#[derive(Clone)]
pub struct DataLoader {
    dataset: Arc<dyn ImageDataset>,
    transforms: Arc<Transforms>,
    config: LoaderConfig,
    output_shape: [usize; 3],
    pool: Option<Arc<rayon::ThreadPool>>,
    sampler: Sampler,
    mixup: Option<Arc<Mixup>>,
}

impl DataLoader {
    /// Builds a loader that visits every sample once per epoch without mixing; fails when
    /// `batch_size` is 0, when the dataset's image shape has a zero dimension, when the
    /// transforms do not fit that shape (or, for datasets of varying sizes, do not bring every
    /// image to one size), or when the worker threads cannot be started.
    pub fn new(
        dataset: Arc<dyn ImageDataset>,
        transforms: Transforms,
        config: LoaderConfig,
    ) -> Result<Self, DataError> {
        if config.batch_size == 0 {
            return Err(DataError::InvalidLoader {
                field: "batch_size",
                reason: "batch size is 0: give a positive batch size".into(),
            });
        }
        let input_shape = dataset.image_shape();
        if input_shape.contains(&0) {
            return Err(DataError::EmptyShape { shape: input_shape });
        }
        let output_shape = if dataset.sizes_vary() {
            transforms
                .fixed_output_shape(input_shape[0])?
                .ok_or(DataError::UnfixedSize)?
        } else {
            transforms.output_shape(input_shape)?
        };
        let pool = match config.num_workers {
            0 => None,
            n => Some(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("kd-data-{i}"))
                    .build()
                    .map_err(|e| DataError::Threads {
                        reason: e.to_string(),
                    })?,
            )),
        };
        Ok(Self {
            dataset,
            transforms: Arc::new(transforms),
            config,
            output_shape,
            pool,
            sampler: Sampler::All,
            mixup: None,
        })
    }

    /// The same loader visiting the samples `sampler` chooses; fails when its settings are
    /// invalid or leave the epoch empty.
    pub fn with_sampler(mut self, sampler: Sampler) -> Result<Self, DataError> {
        sampler.validate(self.dataset.len())?;
        self.sampler = sampler;
        Ok(self)
    }

    /// The same loader mixing every batch with `mixup`, whose targets become
    /// `Targets::Soft`; fails when its settings are invalid.
    pub fn with_mixup(mut self, mixup: Mixup) -> Result<Self, DataError> {
        mixup.validate()?;
        self.mixup = Some(Arc::new(mixup));
        Ok(self)
    }

    /// The sampler.
    pub fn sampler(&self) -> &Sampler {
        &self.sampler
    }

    /// The batch mixing, if any.
    pub fn mixup(&self) -> Option<&Mixup> {
        self.mixup.as_deref()
    }

    /// Why a sample's image can differ from one epoch to the next (a random transform, or
    /// batch mixing), or `None` when every visit of a sample yields the same image, so that a
    /// frozen network's output on it can be computed once and reused.
    pub fn varies_between_epochs(&self) -> Option<String> {
        if let Some(t) = self.transforms.first_random() {
            return Some(format!("the transform `{}` draws at random", t.name()));
        }
        if self.mixup.is_some() {
            return Some("batches are mixed (CollateMixup)".into());
        }
        None
    }

    /// Number of samples in the dataset, which sizes per-sample memory banks such as CRD's; an
    /// epoch visits [`DataLoader::epoch_len`] of them.
    pub fn len(&self) -> usize {
        self.dataset.len()
    }

    /// Whether the dataset holds no sample.
    pub fn is_empty(&self) -> bool {
        self.dataset.is_empty()
    }

    /// Number of visits per epoch (the dataset's size unless the sampler says otherwise), the
    /// last partial batch included or not.
    pub fn epoch_len(&self) -> usize {
        self.sampler.epoch_len(self.dataset.len())
    }

    /// Number of batches per epoch.
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.epoch_len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<dyn ImageDataset> {
        &self.dataset
    }

    /// The shape of each transformed image, `[C, H, W]`.
    pub fn output_shape(&self) -> [usize; 3] {
        self.output_shape
    }

    /// The dataset indices of epoch `epoch` in visiting order, dropped tail included.
    pub fn epoch_order(&self, epoch: usize) -> Vec<usize> {
        self.epoch_items(epoch).iter().map(|i| i.index).collect()
    }

    /// The visits of epoch `epoch` in order, dropped tail included.
    pub fn epoch_items(&self, epoch: usize) -> Vec<EpochItem> {
        self.sampler.epoch_items(
            self.dataset.len(),
            self.config.shuffle,
            self.config.seed,
            epoch,
        )
    }

    /// Builds up to `max_batches` batches of epoch `epoch` on the calling thread (and the
    /// worker pool) without creating tensors, and returns the number of images built.
    pub(crate) fn build_host_batches(
        &self,
        epoch: usize,
        max_batches: usize,
    ) -> Result<usize, DataError> {
        let job = self.job(epoch);
        let mut images = 0;
        for b in 0..job.num_batches.min(max_batches) {
            let start = b * job.batch_size;
            let end = (start + job.batch_size).min(job.order.len());
            images += job.build(b, &job.order[start..end])?.labels.len();
        }
        Ok(images)
    }

    fn job(&self, epoch: usize) -> Job {
        Job {
            dataset: Arc::clone(&self.dataset),
            transforms: Arc::clone(&self.transforms),
            pool: self.pool.clone(),
            order: self.epoch_items(epoch),
            batch_size: self.config.batch_size,
            num_batches: self.num_batches(),
            output_shape: self.output_shape,
            seed: self.config.seed,
            epoch,
            mixup: self.mixup.clone(),
        }
    }

    /// Iterates over the batches of epoch `epoch`, creating tensors on `device`.
    ///
    /// A producer thread prepares batches ahead of the consumer; dropping the iterator early
    /// stops it after the batch it is building.
    pub fn iter(&self, epoch: usize, device: &Device) -> BatchIter {
        let num_batches = self.num_batches();
        let job = self.job(epoch);
        let (tx, rx) = sync_channel(PREFETCH);
        let spawned = std::thread::Builder::new()
            .name(format!("kd-data-producer-{epoch}"))
            .spawn(move || job.run(&tx));
        let (rx, handle, pending) = match spawned {
            Ok(handle) => (Some(rx), Some(handle), None),
            Err(e) => (
                None,
                None,
                Some(DataError::Threads {
                    reason: e.to_string(),
                }),
            ),
        };
        BatchIter {
            rx,
            handle,
            pending,
            device: device.clone(),
            shape: self.output_shape,
            num_classes: self.dataset.num_classes(),
            received: 0,
            expected: num_batches,
            done: false,
        }
    }
}

/// A batch as the producer builds it: host buffers, not yet tensors.
struct RawBatch {
    images: Vec<f32>,
    labels: Vec<i64>,
    soft: Option<Vec<f32>>,
    indices: Vec<usize>,
}

/// Everything the producer thread needs for one epoch.
struct Job {
    dataset: Arc<dyn ImageDataset>,
    transforms: Arc<Transforms>,
    pool: Option<Arc<rayon::ThreadPool>>,
    order: Vec<EpochItem>,
    batch_size: usize,
    num_batches: usize,
    output_shape: [usize; 3],
    seed: u64,
    epoch: usize,
    mixup: Option<Arc<Mixup>>,
}

impl Job {
    /// Builds and sends every batch, stopping at the first error or when the receiver is gone.
    fn run(&self, tx: &SyncSender<Result<RawBatch, DataError>>) {
        for b in 0..self.num_batches {
            let start = b * self.batch_size;
            let end = (start + self.batch_size).min(self.order.len());
            let batch = self.build(b, &self.order[start..end]);
            let failed = batch.is_err();
            if tx.send(batch).is_err() || failed {
                return;
            }
        }
    }

    fn build(&self, batch: usize, items: &[EpochItem]) -> Result<RawBatch, DataError> {
        let sample_len = self.output_shape.iter().product::<usize>();
        let mut images = vec![0.0f32; items.len() * sample_len];
        let mut labels = vec![0i64; items.len()];
        let fill = |((out, label), &item): ((&mut [f32], &mut i64), &EpochItem)| {
            SCRATCH.with_borrow_mut(|scratch| self.fill(item, scratch, out, label))
        };
        match &self.pool {
            Some(pool) => pool.install(|| {
                images
                    .par_chunks_mut(sample_len)
                    .zip(labels.par_iter_mut())
                    .zip(items.par_iter())
                    .try_for_each(fill)
            })?,
            None => images
                .chunks_mut(sample_len)
                .zip(&mut labels)
                .zip(items)
                .try_for_each(fill)?,
        }
        let soft = match &self.mixup {
            Some(mixup) => {
                let mut rng = mix_rng(self.seed, self.epoch, batch);
                Some(mixup.apply(
                    &mut images,
                    self.output_shape,
                    &labels,
                    self.dataset.num_classes(),
                    &mut rng,
                )?)
            }
            None => None,
        };
        Ok(RawBatch {
            images,
            labels,
            soft,
            indices: items.iter().map(|i| i.index).collect(),
        })
    }

    /// Reads and transforms one visit of a dataset sample into `out` and `label`; errors name
    /// the sample.
    fn fill(
        &self,
        item: EpochItem,
        scratch: &mut WorkerScratch,
        out: &mut [f32],
        label: &mut i64,
    ) -> Result<(), DataError> {
        let WorkerScratch {
            workspace: ws,
            sample,
            read,
        } = scratch;
        let index = item.index;
        let named = |source: DataError| match source {
            DataError::VariableSize { .. } | DataError::Sample { .. } => source,
            source => DataError::Sample {
                sample: self.dataset.describe(index),
                source: Box::new(source),
            },
        };
        self.dataset.read_into(index, sample, read).map_err(named)?;
        let num_classes = self.dataset.num_classes();
        if sample.label >= num_classes {
            return Err(DataError::LabelOutOfRange {
                path: "<dataset>".into(),
                index,
                label: sample.label,
                num_classes,
            });
        }
        *label = sample.label as i64;
        let mut rng = repeat_rng(self.seed, self.epoch, index, item.repeat);
        let shape = self
            .transforms
            .run(&sample.image, sample.shape, &mut rng, ws)
            .map_err(named)?;
        if shape != self.output_shape {
            return Err(DataError::VariableSize {
                sample: self.dataset.describe(index),
                found: shape,
                expected: self.output_shape,
            });
        }
        out.copy_from_slice(ws.output());
        Ok(())
    }
}

/// The batches of one epoch; yields an error and stops if a sample fails to load.
pub struct BatchIter {
    rx: Option<Receiver<Result<RawBatch, DataError>>>,
    handle: Option<JoinHandle<()>>,
    pending: Option<DataError>,
    device: Device,
    shape: [usize; 3],
    num_classes: usize,
    received: usize,
    expected: usize,
    done: bool,
}

impl BatchIter {
    fn to_batch(&self, raw: RawBatch) -> Batch {
        let [c, h, w] = self.shape;
        let b = raw.labels.len();
        let images =
            Tensor::<4>::from_data(TensorData::new(raw.images, [b, c, h, w]), &self.device);
        let targets = match raw.soft {
            Some(soft) => Targets::Soft(Tensor::<2>::from_data(
                TensorData::new(soft, [b, self.num_classes]),
                &self.device,
            )),
            None => Targets::Hard(Tensor::<1, Int>::from_data(
                TensorData::new(raw.labels, [b]),
                &self.device,
            )),
        };
        Batch {
            images,
            targets,
            indices: raw.indices,
        }
    }

    /// Waits for the producer and describes why it stopped early.
    fn producer_failure(&mut self) -> DataError {
        let reason = match self.handle.take().map(JoinHandle::join) {
            Some(Err(payload)) => payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .map_or_else(
                    || "it panicked".to_string(),
                    |m| format!("it panicked: {m}"),
                ),
            _ => "its channel closed".to_string(),
        };
        DataError::ProducerStopped {
            produced: self.received,
            expected: self.expected,
            reason,
        }
    }
}

impl Iterator for BatchIter {
    type Item = Result<Batch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(err) = self.pending.take() {
            self.done = true;
            return Some(Err(err));
        }
        if self.done {
            return None;
        }
        let message = self.rx.as_ref()?.recv();
        match message {
            Ok(Ok(raw)) => {
                self.received += 1;
                Some(Ok(self.to_batch(raw)))
            }
            Ok(Err(err)) => {
                self.done = true;
                Some(Err(err))
            }
            Err(_) => {
                self.done = true;
                (self.received < self.expected).then(|| Err(self.producer_failure()))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            (0, Some(self.expected - self.received + 1))
        }
    }
}

impl Drop for BatchIter {
    fn drop(&mut self) {
        // Closing the channel first makes a producer blocked on `send` return at once.
        drop(self.rx.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{InMemoryDataset, Sample};
    use crate::subset::Subset;
    use crate::transforms::{Normalize, RandomCrop, RandomHorizontalFlip, Transform};
    use std::time::{Duration, Instant};

    const SHAPE: [usize; 3] = [1, 4, 5];

    /// Dataset of `n` images whose pixels encode their index; labels are `index % 7`.
    fn dataset(n: usize) -> Arc<dyn ImageDataset> {
        let per = SHAPE.iter().product::<usize>();
        let images = (0..n * per)
            .map(|i| ((i / per) * 3 + i % per) as u8)
            .collect();
        let labels = (0..n).map(|i| i % 7).collect();
        Arc::new(InMemoryDataset::new(images, labels, SHAPE, 7).unwrap())
    }

    fn augment() -> Transforms {
        Transforms::new(vec![
            Transform::RandomCrop(RandomCrop {
                size: 4,
                padding: 1,
            }),
            Transform::RandomHorizontalFlip(RandomHorizontalFlip { p: 0.5 }),
            Transform::Normalize(Normalize {
                mean: vec![0.3],
                std: vec![0.2],
            }),
        ])
        .unwrap()
    }

    fn config(batch_size: usize, shuffle: bool, drop_last: bool, workers: usize) -> LoaderConfig {
        LoaderConfig {
            batch_size,
            shuffle,
            drop_last,
            num_workers: workers,
            seed: 17,
        }
    }

    /// Every batch of an epoch as (indices, labels, pixels).
    fn collect(loader: &DataLoader, epoch: usize) -> Vec<(Vec<usize>, Vec<i64>, Vec<f32>)> {
        let device = Device::flex();
        loader
            .iter(epoch, &device)
            .map(|batch| {
                let batch = batch.unwrap();
                let labels = batch
                    .targets
                    .class_indices()
                    .to_data_as::<i64>()
                    .try_to_vec::<i64>()
                    .unwrap();
                let pixels = batch.images.to_data().try_to_vec::<f32>().unwrap();
                (batch.indices, labels, pixels)
            })
            .collect()
    }

    #[test]
    fn batch_count_with_and_without_drop_last() {
        let plain = Transforms::to_tensor_only();
        let keep = DataLoader::new(dataset(10), plain.clone(), config(4, false, false, 0)).unwrap();
        let drop = DataLoader::new(dataset(10), plain.clone(), config(4, false, true, 0)).unwrap();
        assert_eq!((keep.len(), keep.num_batches()), (10, 3));
        assert_eq!(drop.num_batches(), 2);
        let sizes = |l: &DataLoader| collect(l, 0).iter().map(|b| b.0.len()).collect::<Vec<_>>();
        assert_eq!(sizes(&keep), [4, 4, 2]);
        assert_eq!(sizes(&drop), [4, 4]);
        let exact = DataLoader::new(dataset(8), plain, config(4, false, true, 0)).unwrap();
        assert_eq!(exact.num_batches(), 2);
    }

    #[test]
    fn batches_have_expected_shapes_labels_and_pixels() {
        let loader = DataLoader::new(
            dataset(6),
            Transforms::to_tensor_only(),
            config(4, false, false, 2),
        )
        .unwrap();
        let device = Device::flex();
        let batch = loader.iter(0, &device).next().unwrap().unwrap();
        assert_eq!(batch.images.dims(), [4, 1, 4, 5]);
        assert_eq!(batch.targets.batch_size(), 4);
        assert_eq!(batch.indices, [0, 1, 2, 3]);
        let batches = collect(&loader, 0);
        let (indices, labels, pixels) = &batches[1];
        assert_eq!(indices, &[4, 5]);
        assert_eq!(labels, &[4, 5]);
        let expected: Vec<f32> = (0..2 * 20)
            .map(|i| f32::from(((4 + i / 20) * 3 + i % 20) as u8) / 255.0)
            .collect();
        assert_eq!(pixels, &expected);
    }

    #[test]
    fn every_index_is_seen_once_per_epoch() {
        for workers in [0, 3] {
            let loader =
                DataLoader::new(dataset(23), augment(), config(5, true, false, workers)).unwrap();
            for epoch in 0..3 {
                let mut seen: Vec<usize> = collect(&loader, epoch)
                    .into_iter()
                    .flat_map(|b| b.0)
                    .collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..23).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn same_seed_and_epoch_give_same_batches_for_any_worker_count() {
        let single = DataLoader::new(dataset(37), augment(), config(8, true, false, 0)).unwrap();
        let multi = DataLoader::new(dataset(37), augment(), config(8, true, false, 3)).unwrap();
        for epoch in [0, 4] {
            let a = collect(&single, epoch);
            assert_eq!(a, collect(&multi, epoch));
            assert_eq!(a, collect(&single, epoch));
            // Labels follow the indices through the shuffle.
            for (indices, labels, _) in &a {
                let expected: Vec<i64> = indices.iter().map(|&i| (i % 7) as i64).collect();
                assert_eq!(labels, &expected);
            }
        }
    }

    #[test]
    fn epochs_differ_in_order_and_augmentation() {
        let loader = DataLoader::new(dataset(40), augment(), config(40, true, false, 2)).unwrap();
        let (e0, e1) = (collect(&loader, 0), collect(&loader, 1));
        assert_ne!(e0[0].0, e1[0].0);
        assert_ne!(loader.epoch_order(0), (0..40).collect::<Vec<_>>());
        // The same sample is augmented differently in different epochs.
        let sequential =
            DataLoader::new(dataset(40), augment(), config(40, false, false, 2)).unwrap();
        let (s0, s1) = (collect(&sequential, 0), collect(&sequential, 1));
        assert_eq!(s0[0].0, s1[0].0);
        assert_ne!(s0[0].2, s1[0].2);
    }

    #[test]
    fn different_seeds_shuffle_differently() {
        let mut other = config(4, true, false, 0);
        other.seed = 18;
        let a = DataLoader::new(dataset(30), augment(), config(4, true, false, 0)).unwrap();
        let b = DataLoader::new(dataset(30), augment(), other).unwrap();
        assert_ne!(a.epoch_order(0), b.epoch_order(0));
    }

    #[test]
    fn dropping_the_iterator_early_does_not_hang() {
        let loader = DataLoader::new(dataset(200), augment(), config(2, true, false, 2)).unwrap();
        let device = Device::flex();
        let start = Instant::now();
        for _ in 0..20 {
            let mut iter = loader.iter(0, &device);
            iter.next().unwrap().unwrap();
            // Let the producer fill the channel and block on `send`.
            std::thread::sleep(Duration::from_millis(5));
            drop(iter);
            drop(loader.iter(1, &device));
        }
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn new_rejects_bad_settings() {
        assert!(matches!(
            DataLoader::new(
                dataset(3),
                Transforms::to_tensor_only(),
                config(0, false, false, 0)
            ),
            Err(DataError::InvalidLoader {
                field: "batch_size",
                ..
            })
        ));
        let three_channels = Transforms::new(vec![Transform::Normalize(Normalize {
            mean: vec![0.5; 3],
            std: vec![0.5; 3],
        })])
        .unwrap();
        assert!(matches!(
            DataLoader::new(dataset(3), three_channels, config(2, false, false, 0)),
            Err(DataError::InvalidTransform { .. })
        ));
        let too_big = Transforms::new(vec![Transform::RandomCrop(RandomCrop {
            size: 8,
            padding: 1,
        })])
        .unwrap();
        assert!(DataLoader::new(dataset(3), too_big, config(2, false, false, 0)).is_err());
    }

    /// A dataset whose sample 3 fails to load, and whose sample 5 panics.
    struct Faulty;

    impl ImageDataset for Faulty {
        fn len(&self) -> usize {
            8
        }
        fn num_classes(&self) -> usize {
            2
        }
        fn image_shape(&self) -> [usize; 3] {
            [1, 1, 1]
        }
        fn class_names(&self) -> Vec<String> {
            vec!["a".into(), "b".into()]
        }
        fn read_into(
            &self,
            index: usize,
            sample: &mut Sample,
            _: &mut ReadBuffers,
        ) -> Result<(), DataError> {
            match index {
                3 => Err(DataError::IndexOutOfRange { index, len: 0 }),
                5 => panic!("sample five is cursed"),
                _ => {
                    *sample = Sample {
                        image: vec![0],
                        shape: [1, 1, 1],
                        label: 0,
                    };
                    Ok(())
                }
            }
        }
    }

    #[test]
    fn load_errors_and_producer_panics_end_the_epoch_with_an_error() {
        let device = Device::flex();
        let loader = DataLoader::new(
            Arc::new(Faulty),
            Transforms::to_tensor_only(),
            config(2, false, false, 0),
        )
        .unwrap();
        let results: Vec<_> = loader.iter(0, &device).collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        match &results[1] {
            Err(DataError::Sample { sample, source }) => {
                assert_eq!(sample, "sample 3");
                assert!(matches!(
                    **source,
                    DataError::IndexOutOfRange { index: 3, .. }
                ));
            }
            other => panic!("expected a sample error, got {other:?}"),
        }

        let results: Vec<_> = panicking_loader().iter(0, &device).collect();
        assert_eq!(results.len(), 3);
        match &results[2] {
            Err(DataError::ProducerStopped {
                produced, reason, ..
            }) => {
                assert_eq!(*produced, 2);
                assert!(reason.contains("sample five is cursed"), "{reason}");
            }
            other => panic!("expected ProducerStopped, got {other:?}"),
        }
    }

    /// A loader over [`Faulty`] without sample 3, so its third batch meets the panic of sample 5.
    fn panicking_loader() -> DataLoader {
        let view = Subset::new(Arc::new(Faulty), vec![0, 1, 2, 4, 5, 6]).unwrap();
        DataLoader::new(
            Arc::new(view),
            Transforms::to_tensor_only(),
            config(2, false, false, 0),
        )
        .unwrap()
    }
}
