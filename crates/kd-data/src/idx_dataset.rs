//! In-memory datasets read from IDX files: Fashion-MNIST, MNIST, or any image/label file pair.

use std::path::{Path, PathBuf};

use crate::dataset::{ImageDataset, ReadBuffers, Sample, fill_sample, item};
use crate::error::DataError;
use crate::idx::{read_idx_images, read_idx_labels};
use crate::locate::{DatasetSpec, FASHION_MNIST, IDX_FILES, MNIST, locate, resolve_file};

/// Fashion-MNIST class names, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// A dataset split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training split (`train-*` files).
    Train,
    /// The test split (`t10k-*` files).
    Test,
}

/// A grayscale image dataset held in memory, read from an IDX image file and an IDX label file.
#[derive(Debug, Clone)]
pub struct IdxDataset {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    shape: [usize; 3],
    class_names: Vec<String>,
    images_path: PathBuf,
}

impl IdxDataset {
    /// Reads an image file and a label file (raw or gzip) with one name per class.
    ///
    /// Fails when a file is unreadable or malformed, when the counts differ, when `class_names`
    /// is empty or when a label is not below `class_names.len()`.
    pub fn from_files(
        images: &Path,
        labels: &Path,
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        if class_names.is_empty() {
            return Err(DataError::NoClasses);
        }
        let (images_read, labels_read) =
            rayon::join(|| read_idx_images(images), || read_idx_labels(labels));
        let (images_read, label_values) = (images_read?, labels_read?);
        if images_read.count != label_values.len() {
            return Err(DataError::CountMismatch {
                images_path: images.to_path_buf(),
                labels_path: labels.to_path_buf(),
                images: images_read.count,
                labels: label_values.len(),
            });
        }
        let num_classes = class_names.len();
        if let Some((index, &label)) = label_values
            .iter()
            .enumerate()
            .find(|(_, l)| usize::from(**l) >= num_classes)
        {
            return Err(DataError::LabelOutOfRange {
                path: labels.to_path_buf(),
                index,
                label: usize::from(label),
                num_classes,
            });
        }
        Ok(Self {
            pixels: images_read.pixels,
            labels: label_values,
            shape: [1, images_read.height, images_read.width],
            class_names,
            images_path: images.to_path_buf(),
        })
    }

    /// Fashion-MNIST (60,000 train / 10,000 test images of 1×28×28, 10 classes) from `root`, or
    /// from the first folder [`crate::locate_fashion_mnist`] finds.
    pub fn fashion_mnist(split: Split, root: Option<&Path>) -> Result<Self, DataError> {
        let names = FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect();
        Self::from_spec(&FASHION_MNIST, split, root, names)
    }

    /// MNIST (60,000 train / 10,000 test digits of 1×28×28, classes `"0"` to `"9"`) from `root`,
    /// or from the first folder [`crate::locate_mnist`] finds.
    pub fn mnist(split: Split, root: Option<&Path>) -> Result<Self, DataError> {
        let names = (0..10).map(|d| d.to_string()).collect();
        Self::from_spec(&MNIST, split, root, names)
    }

    fn from_spec(
        spec: &DatasetSpec,
        split: Split,
        root: Option<&Path>,
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        let dir = locate(spec, root)?;
        let [images, labels] = match split {
            Split::Train => [IDX_FILES[0], IDX_FILES[1]],
            Split::Test => [IDX_FILES[2], IDX_FILES[3]],
        };
        // `locate` checked that both files exist; a race with a deletion surfaces as an IO error.
        let file = |stem: &str| resolve_file(&dir, stem).unwrap_or_else(|| dir.join(stem));
        Self::from_files(&file(images), &file(labels), class_names)
    }

    /// All pixels, `len() × H × W` bytes, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// All labels, in sample order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The image file this dataset was read from.
    pub fn images_path(&self) -> &Path {
        &self.images_path
    }
}

impl ImageDataset for IdxDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    fn image_shape(&self) -> [usize; 3] {
        self.shape
    }

    fn class_names(&self) -> Vec<String> {
        self.class_names.clone()
    }

    fn read_into(
        &self,
        index: usize,
        sample: &mut Sample,
        _: &mut ReadBuffers,
    ) -> Result<(), DataError> {
        let label = *item(&self.labels, index)?;
        let n = self.shape[1] * self.shape[2];
        fill_sample(
            sample,
            &self.pixels[index * n..][..n],
            self.shape,
            usize::from(label),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TempDir, idx_images_bytes, idx_labels_bytes, write_file};

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn from_files_reads_samples() {
        let dir = TempDir::new("idxds-read");
        let (img, lbl) = (dir.path().join("img.gz"), dir.path().join("lbl"));
        let pixels: Vec<u8> = (0..3 * 2 * 2).collect();
        write_file(&img, &idx_images_bytes(3, 2, 2, &pixels), true);
        write_file(&lbl, &idx_labels_bytes(&[2, 0, 1]), false);
        let ds = IdxDataset::from_files(&img, &lbl, names(3)).unwrap();
        assert_eq!(ds.len(), 3);
        assert_eq!(ds.num_classes(), 3);
        assert_eq!(ds.image_shape(), [1, 2, 2]);
        assert_eq!(ds.class_names(), names(3));
        assert_eq!(
            ds.get(1).unwrap(),
            Sample {
                image: vec![4, 5, 6, 7],
                shape: [1, 2, 2],
                label: 0
            }
        );
        assert_eq!(ds.pixels(), pixels.as_slice());
        assert_eq!(ds.labels(), [2, 0, 1]);
        assert!(matches!(
            ds.get(3),
            Err(DataError::IndexOutOfRange { index: 3, len: 3 })
        ));
    }

    #[test]
    fn from_files_rejects_count_mismatch_and_bad_labels() {
        let dir = TempDir::new("idxds-bad");
        let (img, lbl) = (dir.path().join("img"), dir.path().join("lbl"));
        write_file(&img, &idx_images_bytes(2, 1, 1, &[0, 1]), false);
        write_file(&lbl, &idx_labels_bytes(&[0, 1, 1]), false);
        match IdxDataset::from_files(&img, &lbl, names(2)) {
            Err(DataError::CountMismatch { images, labels, .. }) => {
                assert_eq!((images, labels), (2, 3))
            }
            other => panic!("expected CountMismatch, got {other:?}"),
        }
        write_file(&lbl, &idx_labels_bytes(&[0, 5]), false);
        match IdxDataset::from_files(&img, &lbl, names(2)) {
            Err(DataError::LabelOutOfRange {
                path,
                index,
                label,
                num_classes,
            }) => {
                assert_eq!(path, lbl);
                assert_eq!((index, label, num_classes), (1, 5, 2));
            }
            other => panic!("expected LabelOutOfRange, got {other:?}"),
        }
        assert!(matches!(
            IdxDataset::from_files(&img, &lbl, vec![]),
            Err(DataError::NoClasses)
        ));
    }

    #[test]
    fn named_constructors_read_the_split_files_of_a_folder() {
        let dir = TempDir::new("idxds-mnist");
        let write = |stem: &str, bytes: Vec<u8>| write_file(&dir.path().join(stem), &bytes, false);
        write(IDX_FILES[0], idx_images_bytes(2, 1, 2, &[1, 2, 3, 4]));
        write(IDX_FILES[1], idx_labels_bytes(&[9, 8]));
        write(IDX_FILES[2], idx_images_bytes(1, 1, 2, &[5, 6]));
        write(IDX_FILES[3], idx_labels_bytes(&[7]));
        let train = IdxDataset::mnist(Split::Train, Some(dir.path())).unwrap();
        let test = IdxDataset::fashion_mnist(Split::Test, Some(dir.path())).unwrap();
        assert_eq!((train.len(), test.len()), (2, 1));
        assert_eq!(train.class_names()[9], "9");
        assert_eq!(test.class_names()[7], "Sneaker");
        assert_eq!(test.get(0).unwrap().image, [5, 6]);

        let empty = TempDir::new("idxds-empty");
        let err = IdxDataset::fashion_mnist(Split::Train, Some(empty.path())).unwrap_err();
        assert!(matches!(
            err,
            DataError::NotFound {
                dataset: "fashion-mnist",
                ..
            }
        ));
    }
}
