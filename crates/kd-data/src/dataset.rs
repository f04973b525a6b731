//! The image-classification dataset contract and a small in-memory dataset.

use crate::error::DataError;

/// One dataset sample: a `u8` image in `C×H×W` order, its shape and its class index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sample {
    /// Pixels in channel-major (`C×H×W`) order.
    pub image: Vec<u8>,
    /// Shape of `image`, `[C, H, W]`.
    pub shape: [usize; 3],
    /// Class index in `0..num_classes`.
    pub label: usize,
}

/// Reusable memory for [`ImageDataset::read_into`]: a file's bytes and its decoded pixels.
#[derive(Debug, Clone, Default)]
pub struct ReadBuffers {
    pub(crate) file: Vec<u8>,
    pub(crate) pixels: Vec<u8>,
}

/// `items[index]`, or [`DataError::IndexOutOfRange`]: the bounds check every dataset's
/// `read_into` starts with.
pub(crate) fn item<T>(items: &[T], index: usize) -> Result<&T, DataError> {
    items.get(index).ok_or(DataError::IndexOutOfRange {
        index,
        len: items.len(),
    })
}

/// Copies `pixels` into `sample`, reusing its buffer.
pub(crate) fn fill_sample(sample: &mut Sample, pixels: &[u8], shape: [usize; 3], label: usize) {
    sample.image.clear();
    sample.image.extend_from_slice(pixels);
    sample.shape = shape;
    sample.label = label;
}

/// A random-access image-classification dataset.
///
/// Images stay `u8` until the transforms run, which keeps the 60k Fashion-MNIST training images
/// at 47 MB. Most datasets hold images of one shape; an image folder holds images of many sizes
/// (same channel count), which the transforms must bring to one size before batching.
pub trait ImageDataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// Number of classes; every label is below it.
    fn num_classes(&self) -> usize;
    /// Shape of every image, `[C, H, W]`; when [`ImageDataset::sizes_vary`], the channel count
    /// every image shares and the size of the first image.
    fn image_shape(&self) -> [usize; 3];
    /// Human-readable class names, one per class.
    fn class_names(&self) -> Vec<String>;
    /// The sample at `index` written into `sample`, reusing its pixel buffer and `buffers`,
    /// or [`DataError::IndexOutOfRange`] past the end. This is the loader's hot path: it
    /// allocates nothing per sample once the buffers have grown to the largest image.
    fn read_into(
        &self,
        index: usize,
        sample: &mut Sample,
        buffers: &mut ReadBuffers,
    ) -> Result<(), DataError>;
    /// The sample at `index` in fresh memory (see [`ImageDataset::read_into`]).
    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let mut sample = Sample::default();
        self.read_into(index, &mut sample, &mut ReadBuffers::default())?;
        Ok(sample)
    }
    /// Whether the dataset holds no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether image heights and widths differ between samples (default false).
    fn sizes_vary(&self) -> bool {
        false
    }
    /// How errors name sample `index`: its file for datasets of files, else `sample <index>`.
    fn describe(&self, index: usize) -> String {
        format!("sample {index}")
    }
}

/// A dataset held in memory as one `u8` buffer, built from raw pixels and labels.
#[derive(Debug, Clone)]
pub struct InMemoryDataset {
    images: Vec<u8>,
    labels: Vec<usize>,
    shape: [usize; 3],
    num_classes: usize,
}

impl InMemoryDataset {
    /// Builds a dataset from `labels.len()` images of `shape` (`[C, H, W]`) stored back to back.
    ///
    /// Class names default to `"0"`, `"1"`, …. Fails when the shape has a zero dimension, when
    /// `num_classes` is zero, when the byte count does not match, or when a label is out of range.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<usize>,
        shape: [usize; 3],
        num_classes: usize,
    ) -> Result<Self, DataError> {
        if shape.contains(&0) {
            return Err(DataError::EmptyShape { shape });
        }
        if num_classes == 0 {
            return Err(DataError::NoClasses);
        }
        let per_image = shape.iter().product::<usize>();
        let expected = per_image.saturating_mul(labels.len());
        if images.len() != expected {
            return Err(DataError::ShapeMismatch {
                shape,
                count: labels.len(),
                expected,
                found: images.len(),
            });
        }
        if let Some((index, &label)) = labels.iter().enumerate().find(|(_, l)| **l >= num_classes) {
            return Err(DataError::LabelOutOfRange {
                path: "<memory>".into(),
                index,
                label,
                num_classes,
            });
        }
        Ok(Self {
            images,
            labels,
            shape,
            num_classes,
        })
    }
}

impl ImageDataset for InMemoryDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn image_shape(&self) -> [usize; 3] {
        self.shape
    }

    fn class_names(&self) -> Vec<String> {
        (0..self.num_classes).map(|c| c.to_string()).collect()
    }

    fn read_into(
        &self,
        index: usize,
        sample: &mut Sample,
        _: &mut ReadBuffers,
    ) -> Result<(), DataError> {
        let label = *item(&self.labels, index)?;
        let n = self.shape.iter().product::<usize>();
        fill_sample(sample, &self.images[index * n..][..n], self.shape, label);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_dataset_returns_samples() {
        let ds = InMemoryDataset::new((0..12).collect(), vec![0, 2], [2, 1, 3], 3).unwrap();
        assert_eq!(ds.len(), 2);
        assert!(!ds.is_empty());
        assert_eq!(ds.image_shape(), [2, 1, 3]);
        assert_eq!(ds.class_names(), ["0", "1", "2"]);
        assert_eq!(
            ds.get(1).unwrap(),
            Sample {
                image: vec![6, 7, 8, 9, 10, 11],
                shape: [2, 1, 3],
                label: 2
            }
        );
        assert!(matches!(
            ds.get(2),
            Err(DataError::IndexOutOfRange { index: 2, len: 2 })
        ));
    }

    #[test]
    fn in_memory_dataset_validates_input() {
        assert!(matches!(
            InMemoryDataset::new(vec![0; 5], vec![0], [1, 2, 3], 2),
            Err(DataError::ShapeMismatch {
                expected: 6,
                found: 5,
                ..
            })
        ));
        assert!(matches!(
            InMemoryDataset::new(vec![0; 6], vec![0, 2], [1, 1, 3], 2),
            Err(DataError::LabelOutOfRange {
                index: 1,
                label: 2,
                ..
            })
        ));
        assert!(matches!(
            InMemoryDataset::new(vec![], vec![], [1, 0, 3], 2),
            Err(DataError::EmptyShape { .. })
        ));
        assert!(matches!(
            InMemoryDataset::new(vec![], vec![], [1, 1, 1], 0),
            Err(DataError::NoClasses)
        ));
    }
}
