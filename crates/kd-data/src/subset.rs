//! A dataset view over chosen indices, used to cap the training-set size in quick recipes.

use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::dataset::{ImageDataset, ReadBuffers, Sample, item};
use crate::error::DataError;
use crate::seed::{SUBSET_STREAM, mix_seed};

/// A view of a dataset restricted to some of its samples, in a fixed order.
#[derive(Clone)]
pub struct Subset {
    dataset: Arc<dyn ImageDataset>,
    indices: Vec<usize>,
}

impl Subset {
    /// A view over `indices` of `dataset`; fails when an index is out of range.
    pub fn new(dataset: Arc<dyn ImageDataset>, indices: Vec<usize>) -> Result<Self, DataError> {
        let len = dataset.len();
        if let Some(&index) = indices.iter().find(|&&i| i >= len) {
            return Err(DataError::IndexOutOfRange { index, len });
        }
        Ok(Self { dataset, indices })
    }

    /// The first `n` samples, or the whole dataset when it holds fewer.
    pub fn first_n(dataset: Arc<dyn ImageDataset>, n: usize) -> Self {
        let indices = (0..n.min(dataset.len())).collect();
        Self { dataset, indices }
    }

    /// `n` distinct samples drawn without replacement with `seed`, in increasing index order,
    /// or the whole dataset when it holds fewer than `n`.
    pub fn random(dataset: Arc<dyn ImageDataset>, n: usize, seed: u64) -> Self {
        let len = dataset.len();
        let mut rng = StdRng::seed_from_u64(mix_seed(&[seed, SUBSET_STREAM]));
        let mut indices = rand::seq::index::sample(&mut rng, len, n.min(len)).into_vec();
        indices.sort_unstable();
        Self { dataset, indices }
    }

    /// The indices of the underlying dataset this view exposes, in order.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl ImageDataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn num_classes(&self) -> usize {
        self.dataset.num_classes()
    }

    fn image_shape(&self) -> [usize; 3] {
        self.dataset.image_shape()
    }

    fn class_names(&self) -> Vec<String> {
        self.dataset.class_names()
    }

    fn read_into(
        &self,
        index: usize,
        sample: &mut Sample,
        buffers: &mut ReadBuffers,
    ) -> Result<(), DataError> {
        let inner = *item(&self.indices, index)?;
        self.dataset.read_into(inner, sample, buffers)
    }

    fn sizes_vary(&self) -> bool {
        self.dataset.sizes_vary()
    }

    fn describe(&self, index: usize) -> String {
        match self.indices.get(index) {
            Some(&inner) => self.dataset.describe(inner),
            None => format!("sample {index}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::InMemoryDataset;

    fn dataset(n: usize) -> Arc<dyn ImageDataset> {
        let images = (0..n).map(|i| i as u8).collect();
        let labels = (0..n).map(|i| i % 3).collect();
        Arc::new(InMemoryDataset::new(images, labels, [1, 1, 1], 3).unwrap())
    }

    #[test]
    fn first_n_takes_a_prefix_and_caps_at_len() {
        let sub = Subset::first_n(dataset(10), 4);
        assert_eq!(sub.indices(), [0, 1, 2, 3]);
        assert_eq!(sub.get(3).unwrap().image, [3]);
        assert!(matches!(
            sub.get(4),
            Err(DataError::IndexOutOfRange { index: 4, len: 4 })
        ));
        assert_eq!(Subset::first_n(dataset(3), 10).len(), 3);
    }

    #[test]
    fn random_is_seeded_distinct_and_sorted() {
        let a = Subset::random(dataset(100), 20, 7);
        let b = Subset::random(dataset(100), 20, 7);
        let c = Subset::random(dataset(100), 20, 8);
        assert_eq!(a.indices(), b.indices());
        assert_ne!(a.indices(), c.indices());
        assert_eq!(a.len(), 20);
        assert!(a.indices().windows(2).all(|w| w[0] < w[1]));
        assert!(a.indices().iter().all(|&i| i < 100));
        let k = a.indices()[5];
        assert_eq!(a.get(5).unwrap(), dataset(100).get(k).unwrap());
        assert_eq!(Subset::random(dataset(5), 20, 7).indices(), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn new_rejects_out_of_range_indices() {
        assert!(matches!(
            Subset::new(dataset(5), vec![1, 5]),
            Err(DataError::IndexOutOfRange { index: 5, len: 5 })
        ));
        assert_eq!(Subset::new(dataset(5), vec![4, 0]).unwrap().len(), 2);
    }
}
