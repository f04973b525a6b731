//! CIFAR-10 and CIFAR-100 read from their official binary files.
//!
//! Every record is a label byte (CIFAR-10) or a coarse and a fine label byte (CIFAR-100),
//! followed by a 32×32 colour image as 1024 red, 1024 green and 1024 blue bytes, rows top to
//! bottom: already the `C×H×W` layout the transforms expect.

use std::path::{Path, PathBuf};

use crate::dataset::{ImageDataset, ReadBuffers, Sample, fill_sample, item};
use crate::error::DataError;
use crate::idx_dataset::Split;
use crate::locate::{CIFAR10, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, CIFAR100, locate};

/// Shape of every CIFAR image.
pub const CIFAR_SHAPE: [usize; 3] = [3, 32, 32];

/// Bytes of one CIFAR image.
const IMAGE_BYTES: usize = 3 * 32 * 32;

/// CIFAR-10 class names, in label order.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// CIFAR-100 fine class names, in label order.
pub const CIFAR100_FINE_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// CIFAR-100 coarse class (superclass) names, in label order.
pub const CIFAR100_COARSE_CLASSES: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

/// Which CIFAR-100 label a dataset yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LabelType {
    /// The 100 fine classes (the usual benchmark).
    #[default]
    Fine,
    /// The 20 coarse superclasses.
    Coarse,
}

/// The layout of one binary record family.
#[derive(Debug, Clone, Copy)]
struct RecordFormat {
    /// Label bytes before the image.
    label_bytes: usize,
    /// Which of those bytes is the label.
    label_at: usize,
    /// Number of classes the label must be below.
    num_classes: usize,
}

impl RecordFormat {
    fn record_bytes(self) -> usize {
        self.label_bytes + IMAGE_BYTES
    }
}

/// CIFAR-10 or CIFAR-100 held in memory: 3×32×32 `u8` images and their labels.
#[derive(Debug, Clone)]
pub struct CifarDataset {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    class_names: Vec<String>,
    files: Vec<PathBuf>,
}

impl CifarDataset {
    /// CIFAR-10 (50,000 train / 10,000 test images, 10 classes) from `root`, or from the first
    /// folder [`crate::locate_cifar10`] finds.
    pub fn cifar10(split: Split, root: Option<&Path>) -> Result<Self, DataError> {
        let dir = locate(&CIFAR10, root)?;
        let files: Vec<PathBuf> = match split {
            Split::Train => CIFAR10_TRAIN_FILES.iter().map(|f| dir.join(f)).collect(),
            Split::Test => vec![dir.join(CIFAR10_TEST_FILE)],
        };
        Self::cifar10_from_files(&files)
    }

    /// CIFAR-100 (50,000 train / 10,000 test images) with fine (100) or coarse (20) labels, from
    /// `root`, or from the first folder [`crate::locate_cifar100`] finds.
    pub fn cifar100(
        split: Split,
        label_type: LabelType,
        root: Option<&Path>,
    ) -> Result<Self, DataError> {
        let dir = locate(&CIFAR100, root)?;
        let file = match split {
            Split::Train => "train.bin",
            Split::Test => "test.bin",
        };
        Self::cifar100_from_files(&[dir.join(file)], label_type)
    }

    /// Reads CIFAR-10 binary files (1 label byte + 3072 pixel bytes per record), in order.
    ///
    /// Fails when a file is unreadable, empty or ends inside a record (naming the file and the
    /// record), or when a label is above 9.
    pub fn cifar10_from_files(files: &[PathBuf]) -> Result<Self, DataError> {
        let format = RecordFormat {
            label_bytes: 1,
            label_at: 0,
            num_classes: 10,
        };
        let names = CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect();
        Self::read(files, format, names)
    }

    /// Reads CIFAR-100 binary files (coarse label byte, fine label byte, 3072 pixel bytes per
    /// record), in order, keeping the fine or the coarse label.
    ///
    /// Fails like [`CifarDataset::cifar10_from_files`], or when a label is out of range for its
    /// kind.
    pub fn cifar100_from_files(
        files: &[PathBuf],
        label_type: LabelType,
    ) -> Result<Self, DataError> {
        let (format, names): (RecordFormat, &[&str]) = match label_type {
            LabelType::Fine => (
                RecordFormat {
                    label_bytes: 2,
                    label_at: 1,
                    num_classes: 100,
                },
                &CIFAR100_FINE_CLASSES,
            ),
            LabelType::Coarse => (
                RecordFormat {
                    label_bytes: 2,
                    label_at: 0,
                    num_classes: 20,
                },
                &CIFAR100_COARSE_CLASSES,
            ),
        };
        Self::read(files, format, names.iter().map(|s| s.to_string()).collect())
    }

    fn read(
        files: &[PathBuf],
        format: RecordFormat,
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        let record = format.record_bytes();
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for path in files {
            let bytes = std::fs::read(path).map_err(|source| DataError::Io {
                path: path.clone(),
                source,
            })?;
            if bytes.is_empty() {
                return Err(DataError::EmptyFile { path: path.clone() });
            }
            let (whole, rest) = bytes.split_at(bytes.len() / record * record);
            if !rest.is_empty() {
                return Err(DataError::TruncatedRecord {
                    path: path.clone(),
                    record: whole.len() / record,
                    found: rest.len(),
                    expected: record,
                });
            }
            pixels.reserve(whole.len() / record * IMAGE_BYTES);
            for (r, chunk) in whole.chunks_exact(record).enumerate() {
                let label = chunk[format.label_at];
                if usize::from(label) >= format.num_classes {
                    return Err(DataError::LabelOutOfRange {
                        path: path.clone(),
                        index: r,
                        label: usize::from(label),
                        num_classes: format.num_classes,
                    });
                }
                labels.push(label);
                pixels.extend_from_slice(&chunk[format.label_bytes..]);
            }
        }
        Ok(Self {
            pixels,
            labels,
            class_names,
            files: files.to_vec(),
        })
    }

    /// All labels, in sample order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// All pixels, `len() × 3072` bytes, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The files this dataset was read from, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl ImageDataset for CifarDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    fn image_shape(&self) -> [usize; 3] {
        CIFAR_SHAPE
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
        let pixels = &self.pixels[index * IMAGE_BYTES..][..IMAGE_BYTES];
        fill_sample(sample, pixels, CIFAR_SHAPE, usize::from(label));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    /// A record whose pixel `p` is `(seed + p) % 256`, after `labels`.
    fn record(labels: &[u8], seed: usize) -> Vec<u8> {
        let mut r = labels.to_vec();
        r.extend((0..IMAGE_BYTES).map(|p| ((seed + p) % 256) as u8));
        r
    }

    #[test]
    fn cifar10_reads_records_in_file_order() {
        let dir = TempDir::new("cifar10");
        let a: Vec<u8> = [record(&[3], 0), record(&[9], 1)].concat();
        let b = record(&[0], 2);
        std::fs::write(dir.path().join("a.bin"), &a).unwrap();
        std::fs::write(dir.path().join("b.bin"), &b).unwrap();
        let files = [dir.path().join("a.bin"), dir.path().join("b.bin")];
        let ds = CifarDataset::cifar10_from_files(&files).unwrap();
        assert_eq!(ds.len(), 3);
        assert_eq!(ds.num_classes(), 10);
        assert_eq!(ds.labels(), [3, 9, 0]);
        let s = ds.get(2).unwrap();
        assert_eq!((s.label, s.shape), (0, [3, 32, 32]));
        // Channel-major: the first green byte is pixel 1024 of the record.
        assert_eq!(s.image[1024], ((2 + 1024) % 256) as u8);
        assert_eq!(ds.class_names()[9], "truck");
    }

    #[test]
    fn cifar100_keeps_fine_or_coarse_labels() {
        let dir = TempDir::new("cifar100");
        let path = dir.path().join("train.bin");
        std::fs::write(&path, [record(&[19, 99], 0), record(&[4, 0], 5)].concat()).unwrap();
        let fine = CifarDataset::cifar100_from_files(std::slice::from_ref(&path), LabelType::Fine)
            .unwrap();
        let coarse =
            CifarDataset::cifar100_from_files(std::slice::from_ref(&path), LabelType::Coarse)
                .unwrap();
        assert_eq!((fine.labels(), fine.num_classes()), (&[99, 0][..], 100));
        assert_eq!((coarse.labels(), coarse.num_classes()), (&[19, 4][..], 20));
        assert_eq!(fine.get(1).unwrap().image, coarse.get(1).unwrap().image);
        assert_eq!(fine.class_names()[99], "worm");
        assert_eq!(coarse.class_names()[19], "vehicles_2");
    }

    #[test]
    fn truncated_record_names_file_and_record() {
        let dir = TempDir::new("cifar-trunc");
        let path = dir.path().join("data_batch_1.bin");
        let mut bytes = [record(&[1], 0), record(&[2], 0)].concat();
        bytes.truncate(bytes.len() - 10);
        std::fs::write(&path, &bytes).unwrap();
        let err = CifarDataset::cifar10_from_files(std::slice::from_ref(&path)).unwrap_err();
        match &err {
            DataError::TruncatedRecord {
                path: p,
                record,
                found,
                expected,
            } => {
                assert_eq!(p, &path);
                assert_eq!((*record, *found, *expected), (1, 3063, 3073));
            }
            other => panic!("expected TruncatedRecord, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("record 1 of") && msg.contains("data_batch_1.bin"),
            "{msg}"
        );
    }

    #[test]
    fn bad_labels_and_empty_files_are_named() {
        let dir = TempDir::new("cifar-bad");
        let path = dir.path().join("test_batch.bin");
        std::fs::write(&path, [record(&[1], 0), record(&[10], 0)].concat()).unwrap();
        assert!(matches!(
            CifarDataset::cifar10_from_files(std::slice::from_ref(&path)),
            Err(DataError::LabelOutOfRange {
                index: 1,
                label: 10,
                num_classes: 10,
                ..
            })
        ));
        std::fs::write(&path, [record(&[20, 5], 0)].concat()).unwrap();
        assert!(matches!(
            CifarDataset::cifar100_from_files(std::slice::from_ref(&path), LabelType::Coarse),
            Err(DataError::LabelOutOfRange { label: 20, .. })
        ));
        std::fs::write(&path, []).unwrap();
        assert!(matches!(
            CifarDataset::cifar10_from_files(std::slice::from_ref(&path)),
            Err(DataError::EmptyFile { .. })
        ));
    }

    #[test]
    fn named_constructors_read_the_split_files_of_a_folder() {
        let dir = TempDir::new("cifar-split");
        for (i, name) in CIFAR10_TRAIN_FILES.iter().enumerate() {
            std::fs::write(dir.path().join(name), record(&[i as u8], i)).unwrap();
        }
        std::fs::write(dir.path().join(CIFAR10_TEST_FILE), record(&[7], 9)).unwrap();
        let train = CifarDataset::cifar10(Split::Train, Some(dir.path())).unwrap();
        let test = CifarDataset::cifar10(Split::Test, Some(dir.path())).unwrap();
        assert_eq!(train.labels(), [0, 1, 2, 3, 4]);
        assert_eq!(test.labels(), [7]);
        let err = CifarDataset::cifar100(Split::Train, LabelType::Fine, Some(dir.path()));
        assert!(matches!(
            err,
            Err(DataError::NotFound {
                dataset: "cifar-100",
                ..
            })
        ));
    }

    #[test]
    fn class_name_lists_are_complete_and_distinct() {
        let mut fine = CIFAR100_FINE_CLASSES.to_vec();
        fine.sort_unstable();
        fine.dedup();
        assert_eq!(fine.len(), 100);
        // Both lists are alphabetical, as in the archive's meta files.
        assert_eq!(fine, CIFAR100_FINE_CLASSES.to_vec());
        let mut coarse = CIFAR100_COARSE_CLASSES.to_vec();
        coarse.sort_unstable();
        assert_eq!(coarse, CIFAR100_COARSE_CLASSES.to_vec());
    }
}
