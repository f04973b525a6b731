use std::path::PathBuf;

/// Errors raised while reading datasets, building transforms or loading batches.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened or read.
    #[error("cannot read `{path}`: {source}: check that the file exists and is readable")]
    Io {
        /// Offending file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A gzip stream is corrupt or cut short.
    #[error(
        "cannot decompress `{path}`: {source}: the download is probably incomplete, fetch the file again"
    )]
    Gzip {
        /// Offending file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file does not start with an IDX magic number of the expected kind.
    #[error(
        "`{path}` is not an IDX {kind} file: magic number is {found:#010x}, expected {expected:#010x}; check that images and labels were not swapped"
    )]
    BadMagic {
        /// Offending file.
        path: PathBuf,
        /// `images` or `labels`.
        kind: &'static str,
        /// Expected magic number.
        expected: u32,
        /// Magic number found.
        found: u32,
    },
    /// The IDX header declares a number of dimensions other than the expected one.
    #[error(
        "`{path}` declares {found} dimensions but IDX {kind} files have {expected}: check that images and labels were not swapped"
    )]
    WrongRank {
        /// Offending file.
        path: PathBuf,
        /// `images` or `labels`.
        kind: &'static str,
        /// Expected rank.
        expected: usize,
        /// Rank found.
        found: usize,
    },
    /// The file holds fewer bytes than its header declares.
    #[error(
        "`{path}` is truncated: expected {expected} bytes, found {found}: the download is probably incomplete, fetch the file again"
    )]
    Truncated {
        /// Offending file.
        path: PathBuf,
        /// Expected byte count (header included).
        expected: usize,
        /// Byte count found.
        found: usize,
    },
    /// The file holds more bytes than its header declares.
    #[error(
        "`{path}` has trailing data: expected {expected} bytes, found {found}: the file is corrupt or not an IDX file, fetch it again"
    )]
    TrailingBytes {
        /// Offending file.
        path: PathBuf,
        /// Expected byte count (header included).
        expected: usize,
        /// Byte count found.
        found: usize,
    },
    /// An IDX image file declares a zero height or width.
    #[error(
        "`{path}` declares images of {height}x{width} pixels: height and width must be positive"
    )]
    EmptyImages {
        /// Offending file.
        path: PathBuf,
        /// Declared height.
        height: usize,
        /// Declared width.
        width: usize,
    },
    /// Image and label files hold different numbers of samples.
    #[error(
        "`{images_path}` holds {images} images but `{labels_path}` holds {labels} labels: use the image and label files of the same split"
    )]
    CountMismatch {
        /// Image file.
        images_path: PathBuf,
        /// Label file.
        labels_path: PathBuf,
        /// Number of images.
        images: usize,
        /// Number of labels.
        labels: usize,
    },
    /// A label is not a valid class index.
    #[error(
        "`{path}`: label {label} of sample {index} is out of range for {num_classes} classes: the file is corrupt or belongs to another dataset"
    )]
    LabelOutOfRange {
        /// Offending file, or `<memory>` for in-memory data.
        path: PathBuf,
        /// Sample index.
        index: usize,
        /// Label found.
        label: usize,
        /// Number of classes.
        num_classes: usize,
    },
    /// A dataset was not found in any of the searched places.
    #[error("{dataset} not found; searched: {searched}; {fix}")]
    NotFound {
        /// Dataset name.
        dataset: &'static str,
        /// The places searched, each with what was missing, joined with `; `.
        searched: String,
        /// How to install the dataset.
        fix: &'static str,
    },
    /// In-memory image data does not match the declared shape.
    #[error(
        "in-memory dataset: {found} image bytes do not fill {count} images of shape {shape:?} ({expected} bytes): pass one C*H*W block per label"
    )]
    ShapeMismatch {
        /// Declared image shape, `[C, H, W]`.
        shape: [usize; 3],
        /// Number of labels.
        count: usize,
        /// Expected byte count.
        expected: usize,
        /// Byte count found.
        found: usize,
    },
    /// An image shape has a zero dimension.
    #[error(
        "image shape {shape:?} has a zero dimension: channels, height and width must be positive"
    )]
    EmptyShape {
        /// Offending shape, `[C, H, W]`.
        shape: [usize; 3],
    },
    /// A dataset needs at least one class.
    #[error("a dataset needs at least one class, got 0: pass the number of classes or their names")]
    NoClasses,
    /// A sample index past the end of a dataset.
    #[error("sample index {index} is out of range for a dataset of {len} samples")]
    IndexOutOfRange {
        /// Requested index.
        index: usize,
        /// Dataset length.
        len: usize,
    },
    /// An image does not have as many bytes as its dataset's declared shape.
    #[error(
        "image has {found} bytes but the dataset declares shape {shape:?} ({expected} bytes): make the dataset's `get` and `image_shape` agree"
    )]
    ImageSize {
        /// Declared shape, `[C, H, W]`.
        shape: [usize; 3],
        /// Expected byte count.
        expected: usize,
        /// Byte count found.
        found: usize,
    },
    /// An output buffer does not match the transformed shape.
    #[error(
        "output buffer holds {found} values but the transformed shape {shape:?} needs {expected}: size it with `Transforms::output_shape`"
    )]
    BufferSize {
        /// Transformed shape, `[C, H, W]`.
        shape: [usize; 3],
        /// Expected value count.
        expected: usize,
        /// Value count found.
        found: usize,
    },
    /// A transform parameter is invalid.
    #[error("invalid transform `{transform}`: {reason}")]
    InvalidTransform {
        /// Transform name, e.g. `RandomCrop`.
        transform: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A loader setting is invalid.
    #[error("invalid loader setting `{field}`: {reason}")]
    InvalidLoader {
        /// Offending field of `LoaderConfig`.
        field: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The worker pool or producer thread could not be started.
    #[error("cannot start data loader threads: {reason}: lower `num_workers`")]
    Threads {
        /// Underlying error.
        reason: String,
    },
    /// The producer thread stopped before the epoch was complete.
    #[error(
        "data loader producer stopped after {produced} of {expected} batches: {reason}: this is a bug in kd-data or in a dataset implementation"
    )]
    ProducerStopped {
        /// Batches received.
        produced: usize,
        /// Batches expected.
        expected: usize,
        /// Panic message or cause.
        reason: String,
    },
    /// A binary record file ends in the middle of a record.
    #[error(
        "record {record} of `{path}` is truncated: {found} of {expected} bytes: the download is probably incomplete, fetch the file again"
    )]
    TruncatedRecord {
        /// Offending file.
        path: PathBuf,
        /// Index of the incomplete record in the file.
        record: usize,
        /// Bytes of that record present.
        found: usize,
        /// Bytes per record.
        expected: usize,
    },
    /// A data file holds no record.
    #[error("`{path}` holds no record: the file is empty, fetch it again")]
    EmptyFile {
        /// Offending file.
        path: PathBuf,
    },
    /// An image-folder dataset holds a file that is not a JPEG or PNG image.
    #[error(
        "`{path}` is not an image: {reason}; image folders hold only .jpg, .jpeg and .png files, move the file out of the class folder"
    )]
    NotAnImage {
        /// Offending file.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// A class folder of an image-folder dataset holds no image.
    #[error(
        "class folder `{path}` holds no .jpg, .jpeg or .png image: add images or remove the folder"
    )]
    EmptyClass {
        /// Offending folder.
        path: PathBuf,
    },
    /// An image-folder root holds no class folder.
    #[error(
        "`{path}` holds no class folder: an image folder is laid out as `root/<class>/<image>.jpg`, point `root` at the folder of class folders"
    )]
    NoClassFolders {
        /// Offending root.
        path: PathBuf,
    },
    /// An image file could not be decoded.
    #[error(
        "cannot decode image `{path}`: {source}: the file is corrupt or not a JPEG/PNG image, replace or remove it"
    )]
    Decode {
        /// Offending file.
        path: PathBuf,
        /// Underlying error.
        source: image::ImageError,
    },
    /// A sample failed to load or transform; `sample` names it.
    #[error("{sample}: {source}")]
    Sample {
        /// The sample, e.g. its file path or `sample 12 of <dataset>`.
        sample: String,
        /// What went wrong.
        source: Box<DataError>,
    },
    /// A transformed image does not have the batch's shape.
    #[error(
        "{sample} is {found:?} after the transforms but the batch holds {expected:?} images: end the transforms with RandomResizedCrop, CenterCrop or a two-sided Resize so every image has one size"
    )]
    VariableSize {
        /// The sample, e.g. its file path.
        sample: String,
        /// Shape after the transforms.
        found: [usize; 3],
        /// Shape of the batch.
        expected: [usize; 3],
    },
    /// A dataset of images of different sizes meets transforms that keep sizes as they are.
    #[error(
        "the images of this dataset differ in size and the transforms do not bring them to one size: add RandomResizedCrop, CenterCrop or a two-sided Resize"
    )]
    UnfixedSize,
    /// A batch-mixing (Mixup/CutMix) parameter is invalid.
    #[error("invalid mixup setting `{field}`: {reason}")]
    InvalidMixup {
        /// Offending field of `Mixup`.
        field: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A sampler parameter is invalid.
    #[error("invalid sampler setting `{field}`: {reason}")]
    InvalidSampler {
        /// Offending field of `Sampler`.
        field: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
}
