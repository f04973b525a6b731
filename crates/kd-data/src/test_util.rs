//! Helpers shared by the unit tests: temporary folders and hand-made IDX files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::Compression;
use flate2::write::GzEncoder;

/// A uniquely named folder under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh folder whose name contains `tag`, the process id and a counter.
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("kd-data-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    /// The folder path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The bytes of an IDX image file of `count` images of `height`×`width` pixels.
pub fn idx_images_bytes(count: u32, height: u32, width: u32, pixels: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 3];
    for d in [count, height, width] {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(pixels);
    bytes
}

/// The bytes of an IDX label file.
pub fn idx_labels_bytes(labels: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 1];
    bytes.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    bytes.extend_from_slice(labels);
    bytes
}

/// Writes `bytes` to `path`, gzip-compressed when `gzip` is set.
pub fn write_file(path: &Path, bytes: &[u8], gzip: bool) {
    if gzip {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).expect("gzip");
        std::fs::write(path, enc.finish().expect("gzip")).expect("write");
    } else {
        std::fs::write(path, bytes).expect("write");
    }
}
