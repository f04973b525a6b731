//! Image-folder datasets (`root/<class>/<image>.jpg`), torchvision's `ImageFolder`, as used for
//! the ImageNet train and val splits.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dataset::{ImageDataset, ReadBuffers, Sample, item};
use crate::error::DataError;
use crate::idx_dataset::Split;
use crate::locate::{IMAGENET, locate};

/// File extensions an image folder may hold, compared case-insensitively.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// A dataset of JPEG and PNG files sorted into one folder per class.
///
/// Classes are the sub-folders of the root in sorted order, so the label of a class is its rank
/// (ImageNet's sorted WordNet ids give the usual 0–999 labels). Images are found recursively
/// below each class folder and sorted by path; hidden entries (names starting with `.`) are
/// skipped. Images are decoded when a sample is read, on the loader's worker threads, and
/// converted to RGB (grey images are replicated, alpha is dropped), so every sample has 3
/// channels and its own height and width.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    files: Vec<PathBuf>,
    labels: Vec<u32>,
    class_names: Vec<String>,
    first_shape: [usize; 3],
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Whether `path` has one of [`IMAGE_EXTENSIONS`].
fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The sorted, non-hidden entries of `dir`.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        if !is_hidden(&path) {
            entries.push(path);
        }
    }
    entries.sort_unstable();
    Ok(entries)
}

/// Appends the image files below `dir` to `out`, depth first in sorted order.
fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    for path in sorted_entries(dir)? {
        if path.is_dir() {
            collect_images(&path, out)?;
        } else if has_image_extension(&path) {
            out.push(path);
        } else {
            let reason = match path.extension().and_then(|e| e.to_str()) {
                Some(ext) => format!("extension `.{ext}`"),
                None => "no file extension".to_string(),
            };
            return Err(DataError::NotAnImage { path, reason });
        }
    }
    Ok(())
}

/// Decodes an image file into `chw` (`C×H×W` RGB bytes), reusing `buffers` for the file and
/// the decoded pixels: 8-bit RGB images (JPEG photographs, RGB PNGs) allocate nothing once the
/// buffers have grown; other colour types go through the `image` crate's conversion.
pub(crate) fn decode_rgb_into(
    path: &Path,
    buffers: &mut ReadBuffers,
    chw: &mut Vec<u8>,
) -> Result<[usize; 3], DataError> {
    use std::io::Read;

    use image::{ColorType, DynamicImage, ImageDecoder, ImageReader};

    let decode_error = |source| DataError::Decode {
        path: path.to_path_buf(),
        source,
    };
    buffers.file.clear();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buffers.file))
        .map_err(io_error(path))?;
    let decoder = ImageReader::new(std::io::Cursor::new(&buffers.file[..]))
        .with_guessed_format()
        .map_err(io_error(path))?
        .into_decoder()
        .map_err(decode_error)?;
    let (w, h) = decoder.dimensions();
    let (w, h) = (w as usize, h as usize);
    if decoder.color_type() == ColorType::Rgb8 {
        buffers.pixels.resize(3 * w * h, 0);
        decoder
            .read_image(&mut buffers.pixels)
            .map_err(decode_error)?;
    } else {
        let rgb = DynamicImage::from_decoder(decoder)
            .map_err(decode_error)?
            .into_rgb8();
        buffers.pixels.clear();
        buffers.pixels.extend_from_slice(rgb.as_raw());
    }
    let plane = h * w;
    chw.resize(3 * plane, 0);
    let (r, rest) = chw.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    // Zipped iterators carry no bounds checks, so this loop vectorises.
    for (px, (r, (g, b))) in buffers
        .pixels
        .chunks_exact(3)
        .zip(r.iter_mut().zip(g.iter_mut().zip(b.iter_mut())))
    {
        *r = px[0];
        *g = px[1];
        *b = px[2];
    }
    Ok([3, h, w])
}

impl ImageFolder {
    /// Scans `root` for class folders and their images.
    ///
    /// Fails when `root` is unreadable or holds no class folder, when a class folder holds no
    /// image, or when it holds a file without a `.jpg`, `.jpeg` or `.png` extension (each error
    /// names the path), or when the first image cannot be read.
    pub fn new(root: &Path) -> Result<Self, DataError> {
        let classes: Vec<PathBuf> = sorted_entries(root)?
            .into_iter()
            .filter(|p| p.is_dir())
            .collect();
        if classes.is_empty() {
            return Err(DataError::NoClassFolders {
                path: root.to_path_buf(),
            });
        }
        // Class folders are scanned in parallel: ImageNet's train split has 1000 of them.
        let per_class: Vec<Vec<PathBuf>> = classes
            .par_iter()
            .map(|dir| {
                let mut files = Vec::new();
                collect_images(dir, &mut files)?;
                if files.is_empty() {
                    return Err(DataError::EmptyClass { path: dir.clone() });
                }
                Ok(files)
            })
            .collect::<Result<_, DataError>>()?;
        let class_names = classes
            .iter()
            .map(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect();
        let mut files = Vec::with_capacity(per_class.iter().map(Vec::len).sum());
        let mut labels = Vec::with_capacity(files.capacity());
        for (label, class_files) in per_class.into_iter().enumerate() {
            labels.extend(std::iter::repeat_n(label as u32, class_files.len()));
            files.extend(class_files);
        }
        let first_shape = {
            let path = &files[0];
            let (w, h) = image::ImageReader::open(path)
                .map_err(io_error(path))?
                .with_guessed_format()
                .map_err(io_error(path))?
                .into_dimensions()
                .map_err(|source| DataError::Decode {
                    path: path.clone(),
                    source,
                })?;
            [3, h as usize, w as usize]
        };
        Ok(Self {
            root: root.to_path_buf(),
            files,
            labels,
            class_names,
            first_shape,
        })
    }

    /// An ImageNet split: `root` if given (the split folder itself, as SuperGradients'
    /// `root: /data/Imagenet/train`), else `train/` or `val/` (for [`Split::Test`]) of the first
    /// folder [`crate::locate_imagenet`] finds.
    pub fn imagenet(split: Split, root: Option<&Path>) -> Result<Self, DataError> {
        let dir = match root {
            Some(dir) => dir.to_path_buf(),
            None => locate(&IMAGENET, None)?.join(match split {
                Split::Train => "train",
                Split::Test => "val",
            }),
        };
        Self::new(&dir)
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The image files, in sample order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The labels, in sample order.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }
}

impl ImageDataset for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    fn image_shape(&self) -> [usize; 3] {
        self.first_shape
    }

    fn class_names(&self) -> Vec<String> {
        self.class_names.clone()
    }

    fn read_into(
        &self,
        index: usize,
        sample: &mut Sample,
        buffers: &mut ReadBuffers,
    ) -> Result<(), DataError> {
        let path = item(&self.files, index)?;
        sample.shape = decode_rgb_into(path, buffers, &mut sample.image)?;
        sample.label = self.labels[index] as usize;
        Ok(())
    }

    fn sizes_vary(&self) -> bool {
        true
    }

    fn describe(&self, index: usize) -> String {
        match self.files.get(index) {
            Some(path) => format!("`{}`", path.display()),
            None => format!("sample {index}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;
    use image::{ImageFormat, RgbImage};

    /// An RGB image whose pixel (x, y) is `(x * 10 + tag, y * 10, tag)`.
    fn picture(w: u32, h: u32, tag: u8) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([x as u8 * 10 + tag, y as u8 * 10, tag])
        })
    }

    fn save(img: &RgbImage, path: &Path, format: ImageFormat) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        img.save_with_format(path, format).unwrap();
    }

    #[test]
    fn classes_are_sorted_folders_and_files_sorted_paths() {
        let tmp = TempDir::new("folder-scan");
        let root = tmp.path();
        save(&picture(4, 3, 1), &root.join("b/x.png"), ImageFormat::Png);
        save(&picture(5, 2, 2), &root.join("a/2.PNG"), ImageFormat::Png);
        save(&picture(2, 2, 3), &root.join("a/1.png"), ImageFormat::Png);
        save(
            &picture(3, 3, 4),
            &root.join("a/sub/0.png"),
            ImageFormat::Png,
        );
        std::fs::write(root.join(".DS_Store"), b"x").unwrap();
        std::fs::write(root.join("a/.hidden"), b"x").unwrap();
        let ds = ImageFolder::new(root).unwrap();
        assert_eq!(ds.class_names(), ["a", "b"]);
        let names: Vec<_> = ds
            .files()
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a/1.png", "a/2.PNG", "a/sub/0.png", "b/x.png"]);
        assert_eq!(ds.labels(), [0, 0, 0, 1]);
        assert!(ds.sizes_vary());
        assert_eq!(ds.image_shape(), [3, 2, 2]);
        let s = ds.get(1).unwrap();
        assert_eq!((s.shape, s.label), ([3, 2, 5], 0));
        // Pixel (x=3, y=1): red 3*10+2, green 1*10, blue 2, in channel-major order.
        let at = |c: usize| s.image[c * 10 + 5 + 3];
        assert_eq!([at(0), at(1), at(2)], [32, 10, 2]);
        assert!(ds.describe(3).contains("x.png"));
    }

    #[test]
    fn grey_and_alpha_images_become_rgb() {
        let tmp = TempDir::new("folder-modes");
        let root = tmp.path();
        let grey = image::GrayImage::from_fn(3, 2, |x, y| image::Luma([(x + 3 * y) as u8 * 40]));
        std::fs::create_dir_all(root.join("c")).unwrap();
        grey.save(root.join("c/g.png")).unwrap();
        let rgba = image::RgbaImage::from_fn(2, 1, |x, _| image::Rgba([x as u8, 7, 9, 128]));
        rgba.save(root.join("c/h.png")).unwrap();
        let ds = ImageFolder::new(root).unwrap();
        let g = ds.get(0).unwrap();
        assert_eq!(g.shape, [3, 2, 3]);
        assert_eq!(&g.image[..6], &g.image[6..12]);
        assert_eq!(g.image[5], 200);
        let h = ds.get(1).unwrap();
        assert_eq!(h.image, [0, 1, 7, 7, 9, 9]);
    }

    #[test]
    fn stray_files_empty_classes_and_bad_images_are_named() {
        let tmp = TempDir::new("folder-bad");
        let root = tmp.path();
        save(&picture(2, 2, 0), &root.join("cat/a.png"), ImageFormat::Png);
        std::fs::write(root.join("cat/notes.txt"), b"hello").unwrap();
        match ImageFolder::new(root) {
            Err(DataError::NotAnImage { path, reason }) => {
                assert!(path.ends_with("cat/notes.txt"), "{path:?}");
                assert!(reason.contains(".txt"), "{reason}");
            }
            other => panic!("expected NotAnImage, got {other:?}"),
        }
        std::fs::remove_file(root.join("cat/notes.txt")).unwrap();
        std::fs::create_dir_all(root.join("dog")).unwrap();
        match ImageFolder::new(root) {
            Err(err @ DataError::EmptyClass { .. }) => {
                assert!(err.to_string().contains("dog"), "{err}");
            }
            other => panic!("expected EmptyClass, got {other:?}"),
        }
        std::fs::write(root.join("dog/b.jpg"), b"not a jpeg at all").unwrap();
        let ds = ImageFolder::new(root).unwrap();
        match ds.get(1) {
            Err(DataError::Decode { path, .. }) => assert!(path.ends_with("dog/b.jpg")),
            other => panic!("expected Decode, got {other:?}"),
        }
        let empty = TempDir::new("folder-none");
        assert!(matches!(
            ImageFolder::new(empty.path()),
            Err(DataError::NoClassFolders { .. })
        ));
        assert!(matches!(
            ImageFolder::new(&empty.path().join("missing")),
            Err(DataError::Io { .. })
        ));
    }
}
