//! Finding datasets on disk.
//!
//! An MNIST-style dataset folder holds the four IDX files `train-images-idx3-ubyte`,
//! `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each either
//! raw or gzip-compressed with a `.gz` suffix (the raw file wins when both exist). A CIFAR folder
//! holds the files of the official binary archive, and an ImageNet folder its `train` and `val`
//! class-folder trees. Without an explicit folder, these places are searched in order and the
//! first complete one is used:
//!
//! 1. `$KD_DATA_DIR/<name>` when `KD_DATA_DIR` is set, so a user can override everything else;
//! 2. `./data/<name>`, relative to the current directory (where `cargo xtask data` downloads);
//! 3. `/usr/share/datasets/<name>`, where a system package installs it.
//!
//! `<name>` is `fashion-mnist`, `mnist`, `cifar-10-batches-bin`, `cifar-100-binary` or
//! `imagenet`. An explicit folder is the only place searched.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::DataError;

/// Environment variable naming a folder that holds one sub-folder per dataset.
pub const DATA_DIR_ENV: &str = "KD_DATA_DIR";

/// Folder the system package `dataset-fashion-mnist` installs to.
pub const SYSTEM_DATA_DIR: &str = "/usr/share/datasets";

/// File stems of an MNIST-style dataset: train images, train labels, test images, test labels.
pub(crate) const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// What the search needs to know about one dataset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DatasetSpec {
    /// Name used in messages.
    pub name: &'static str,
    /// Folder name under each data root.
    pub folder: &'static str,
    /// Files (or folders) a complete dataset folder holds.
    pub files: &'static [&'static str],
    /// Whether a file may also be present gzip-compressed, with a `.gz` suffix.
    pub gzip: bool,
    /// How to install the dataset, shown when it is missing.
    pub fix: &'static str,
}

/// Fashion-MNIST (Xiao et al., 2017).
pub(crate) const FASHION_MNIST: DatasetSpec = DatasetSpec {
    name: "fashion-mnist",
    folder: "fashion-mnist",
    files: &IDX_FILES,
    gzip: true,
    fix: "install it with `apt-get install dataset-fashion-mnist` or `cargo xtask data fashion-mnist`, \
          or download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz \
          and t10k-labels-idx1-ubyte.gz from http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ \
          (see https://github.com/zalandoresearch/fashion-mnist) into ./data/fashion-mnist or \
          $KD_DATA_DIR/fashion-mnist",
};

/// MNIST (LeCun et al., 1998).
pub(crate) const MNIST: DatasetSpec = DatasetSpec {
    name: "mnist",
    folder: "mnist",
    files: &IDX_FILES,
    gzip: true,
    fix: "download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz \
          and t10k-labels-idx1-ubyte.gz from https://ossci-datasets.s3.amazonaws.com/mnist/ \
          (the mirror torchvision uses; original at http://yann.lecun.com/exdb/mnist/) into \
          ./data/mnist or $KD_DATA_DIR/mnist",
};

/// File names of the CIFAR-10 binary archive's training batches.
pub(crate) const CIFAR10_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];

/// File name of the CIFAR-10 binary archive's test batch.
pub(crate) const CIFAR10_TEST_FILE: &str = "test_batch.bin";

/// CIFAR-10 (Krizhevsky, 2009), binary version.
pub(crate) const CIFAR10: DatasetSpec = DatasetSpec {
    name: "cifar-10",
    folder: "cifar-10-batches-bin",
    files: &[
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ],
    gzip: false,
    fix: "download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz and extract it into ./data \
          or $KD_DATA_DIR (it unpacks to cifar-10-batches-bin/), or pass the folder as `root`",
};

/// CIFAR-100 (Krizhevsky, 2009), binary version.
pub(crate) const CIFAR100: DatasetSpec = DatasetSpec {
    name: "cifar-100",
    folder: "cifar-100-binary",
    files: &["train.bin", "test.bin"],
    gzip: false,
    fix: "download https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz and extract it into ./data \
          or $KD_DATA_DIR (it unpacks to cifar-100-binary/), or pass the folder as `root`",
};

/// ImageNet-1k (ILSVRC 2012) as class folders.
pub(crate) const IMAGENET: DatasetSpec = DatasetSpec {
    name: "imagenet",
    folder: "imagenet",
    files: &["train", "val"],
    gzip: false,
    fix: "ImageNet cannot be downloaded automatically: get ILSVRC2012 from https://image-net.org, \
          lay it out as imagenet/train/<wnid>/*.JPEG and imagenet/val/<wnid>/*.JPEG (the validation \
          images sorted into class folders) under ./data or $KD_DATA_DIR, or pass the split folder as `root`",
};

/// The folder holding the CIFAR-10 binary files (`data_batch_1.bin` … `data_batch_5.bin`,
/// `test_batch.bin`): `explicit` if given, otherwise the first complete folder among
/// `$KD_DATA_DIR/cifar-10-batches-bin`, `./data/cifar-10-batches-bin` and
/// `/usr/share/datasets/cifar-10-batches-bin`.
pub fn locate_cifar10(explicit: Option<&Path>) -> Result<PathBuf, DataError> {
    locate(&CIFAR10, explicit)
}

/// The folder holding the CIFAR-100 binary files (`train.bin`, `test.bin`), searched like
/// [`locate_cifar10`] with `cifar-100-binary` folders.
pub fn locate_cifar100(explicit: Option<&Path>) -> Result<PathBuf, DataError> {
    locate(&CIFAR100, explicit)
}

/// The ImageNet folder holding `train/` and `val/` class-folder trees, searched like
/// [`locate_cifar10`] with `imagenet` folders.
pub fn locate_imagenet(explicit: Option<&Path>) -> Result<PathBuf, DataError> {
    locate(&IMAGENET, explicit)
}

/// The folder holding Fashion-MNIST: `explicit` if given, otherwise the first complete folder
/// among `$KD_DATA_DIR/fashion-mnist`, `./data/fashion-mnist` and
/// `/usr/share/datasets/fashion-mnist`.
///
/// The error lists every place searched and what it lacked, and how to install the dataset.
pub fn locate_fashion_mnist(explicit: Option<&Path>) -> Result<PathBuf, DataError> {
    locate(&FASHION_MNIST, explicit)
}

/// The folder holding MNIST, searched like [`locate_fashion_mnist`] with `mnist` folders.
pub fn locate_mnist(explicit: Option<&Path>) -> Result<PathBuf, DataError> {
    locate(&MNIST, explicit)
}

/// The path of file `stem` in `dir`: `stem` if it exists, else `stem.gz` if it exists.
pub(crate) fn resolve_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [dir.join(stem), dir.join(format!("{stem}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

/// Whether `dir` holds entry `name` of `spec`, raw or (when allowed) gzip-compressed.
fn has_entry(spec: &DatasetSpec, dir: &Path, name: &str) -> bool {
    if spec.gzip {
        resolve_file(dir, name).is_some()
    } else {
        dir.join(name).exists()
    }
}

pub(crate) fn locate(spec: &DatasetSpec, explicit: Option<&Path>) -> Result<PathBuf, DataError> {
    search(
        spec,
        candidates(spec, explicit, std::env::var_os(DATA_DIR_ENV)),
    )
}

/// The places to search, each with a label for messages; `None` marks an unset variable.
fn candidates(
    spec: &DatasetSpec,
    explicit: Option<&Path>,
    data_dir: Option<OsString>,
) -> Vec<(String, Option<PathBuf>)> {
    if let Some(dir) = explicit {
        return vec![(format!("`{}`", dir.display()), Some(dir.to_path_buf()))];
    }
    let env = match data_dir.filter(|v| !v.is_empty()) {
        Some(root) => {
            let dir = PathBuf::from(root).join(spec.folder);
            (
                format!("`${DATA_DIR_ENV}/{}` = `{}`", spec.folder, dir.display()),
                Some(dir),
            )
        }
        None => (format!("`${DATA_DIR_ENV}/{}`", spec.folder), None),
    };
    let local = Path::new("./data").join(spec.folder);
    let system = Path::new(SYSTEM_DATA_DIR).join(spec.folder);
    vec![
        env,
        (format!("`{}`", local.display()), Some(local)),
        (format!("`{}`", system.display()), Some(system)),
    ]
}

/// The first candidate folder holding all of the spec's files, or a not-found error explaining
/// each miss.
fn search(
    spec: &DatasetSpec,
    candidates: Vec<(String, Option<PathBuf>)>,
) -> Result<PathBuf, DataError> {
    let mut misses = Vec::with_capacity(candidates.len());
    for (label, dir) in candidates {
        let reason = match dir {
            None => format!("{DATA_DIR_ENV} is not set"),
            Some(dir) if !dir.is_dir() => "no such folder".to_string(),
            Some(dir) => {
                let missing: Vec<String> = spec
                    .files
                    .iter()
                    .filter(|stem| !has_entry(spec, &dir, stem))
                    .map(|stem| {
                        if spec.gzip {
                            format!("{stem}[.gz]")
                        } else {
                            stem.to_string()
                        }
                    })
                    .collect();
                if missing.is_empty() {
                    return Ok(dir);
                }
                format!("missing {}", missing.join(", "))
            }
        };
        misses.push(format!("{label} ({reason})"));
    }
    Err(DataError::NotFound {
        dataset: spec.name,
        searched: misses.join("; "),
        fix: spec.fix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    fn populate(dir: &Path, stems: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        for (i, stem) in stems.iter().enumerate() {
            let name = if i % 2 == 0 {
                format!("{stem}.gz")
            } else {
                stem.to_string()
            };
            std::fs::write(dir.join(name), b"x").unwrap();
        }
    }

    #[test]
    fn env_folder_comes_first_and_explicit_is_exclusive() {
        let tmp = TempDir::new("locate-env");
        let root = tmp.path().join("root");
        populate(&root.join("fashion-mnist"), &IDX_FILES);
        let found = search(
            &FASHION_MNIST,
            candidates(&FASHION_MNIST, None, Some(root.clone().into())),
        )
        .unwrap();
        assert_eq!(found, root.join("fashion-mnist"));

        let explicit = tmp.path().join("elsewhere");
        let err = search(
            &FASHION_MNIST,
            candidates(&FASHION_MNIST, Some(&explicit), Some(root.into())),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("elsewhere` (no such folder)"), "{msg}");
        assert!(!msg.contains("KD_DATA_DIR/fashion-mnist`"), "{msg}");
    }

    #[test]
    fn incomplete_folder_is_skipped_and_reported() {
        let tmp = TempDir::new("locate-partial");
        let dir = tmp.path().join("fm");
        populate(&dir, &IDX_FILES[..3]);
        let err = search(
            &FASHION_MNIST,
            vec![
                ("`$KD_DATA_DIR/fashion-mnist`".into(), None),
                (format!("`{}`", dir.display()), Some(dir.clone())),
            ],
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("fashion-mnist not found; searched: "),
            "{msg}"
        );
        assert!(msg.contains("(KD_DATA_DIR is not set)"), "{msg}");
        assert!(
            msg.contains("(missing t10k-labels-idx1-ubyte[.gz])"),
            "{msg}"
        );
        assert!(
            msg.contains("apt-get install dataset-fashion-mnist"),
            "{msg}"
        );
        assert!(msg.contains("cargo xtask data fashion-mnist"), "{msg}");
        assert!(
            msg.contains("https://github.com/zalandoresearch/fashion-mnist"),
            "{msg}"
        );
        assert!(
            msg.contains("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
            "{msg}"
        );
    }

    #[test]
    fn default_candidates_list_all_three_places_in_order() {
        let labels: Vec<String> = candidates(&FASHION_MNIST, None, None)
            .into_iter()
            .map(|(label, _)| label)
            .collect();
        assert_eq!(
            labels,
            [
                "`$KD_DATA_DIR/fashion-mnist`",
                "`./data/fashion-mnist`",
                "`/usr/share/datasets/fashion-mnist`",
            ]
        );
    }

    #[test]
    fn cifar_folders_need_every_binary_file() {
        let tmp = TempDir::new("locate-cifar");
        let dir = tmp.path().join("cifar-10-batches-bin");
        std::fs::create_dir_all(&dir).unwrap();
        for name in &CIFAR10.files[..5] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let msg = locate_cifar10(Some(&dir)).unwrap_err().to_string();
        assert!(msg.contains("(missing test_batch.bin)"), "{msg}");
        assert!(msg.contains("cifar-10-binary.tar.gz"), "{msg}");
        std::fs::write(dir.join("test_batch.bin"), b"x").unwrap();
        assert_eq!(locate_cifar10(Some(&dir)).unwrap(), dir);
        let found = search(
            &CIFAR10,
            candidates(&CIFAR10, None, Some(tmp.path().into())),
        )
        .unwrap();
        assert_eq!(found, dir);
        let msg = locate_cifar100(Some(&dir)).unwrap_err().to_string();
        assert!(msg.contains("missing train.bin, test.bin"), "{msg}");
    }

    #[test]
    fn raw_file_wins_over_gzip() {
        let tmp = TempDir::new("locate-raw");
        std::fs::write(tmp.path().join("a.gz"), b"x").unwrap();
        assert_eq!(resolve_file(tmp.path(), "a"), Some(tmp.path().join("a.gz")));
        std::fs::write(tmp.path().join("a"), b"x").unwrap();
        assert_eq!(resolve_file(tmp.path(), "a"), Some(tmp.path().join("a")));
        assert_eq!(resolve_file(tmp.path(), "b"), None);
    }
}
