//! Reader for the IDX format of MNIST and Fashion-MNIST (<http://yann.lecun.com/exdb/mnist/>).
//!
//! An IDX file is a big-endian header, `0x00 0x00 <type> <rank>` followed by `rank` u32
//! dimensions, then the raw values. Images are `u8` with rank 3 (magic `0x00000803`, `N×H×W`),
//! labels are `u8` with rank 1 (magic `0x00000801`). Files may be gzip-compressed; compression is
//! detected from the content (the gzip magic `1f 8b`), whatever the file name.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::error::DataError;

/// Magic number of an IDX file of `u8` images (`N×H×W`).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of `u8` labels (`N`).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Largest expansion ratio of deflate, used to bound the allocation hint of a gzip stream.
const MAX_DEFLATE_RATIO: usize = 1032;

/// Images read from an IDX file, stored row-major as `count × height × width` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// All pixels, one byte each, image after image.
    pub pixels: Vec<u8>,
}

/// Reads an IDX image file (magic `0x00000803`), gzip-compressed or raw.
pub fn read_idx_images(path: &Path) -> Result<IdxImages, DataError> {
    let bytes = read_maybe_gzip(path)?;
    let dims = parse_header(path, &bytes, "images", IDX_IMAGES_MAGIC)?;
    let [count, height, width] = [dims[0], dims[1], dims[2]];
    if height == 0 || width == 0 {
        return Err(DataError::EmptyImages {
            path: path.to_path_buf(),
            height,
            width,
        });
    }
    let header = header_len(3);
    Ok(IdxImages {
        count,
        height,
        width,
        pixels: strip_header(bytes, header),
    })
}

/// Reads an IDX label file (magic `0x00000801`), gzip-compressed or raw.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = read_maybe_gzip(path)?;
    parse_header(path, &bytes, "labels", IDX_LABELS_MAGIC)?;
    Ok(strip_header(bytes, header_len(1)))
}

/// Reads a whole file, decompressing it when it starts with the gzip magic.
fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>, DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io_err)?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    // The gzip trailer stores the uncompressed size modulo 2^32: a good capacity hint.
    let hint = raw
        .len()
        .checked_sub(4)
        .map(|at| u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]) as usize)
        .unwrap_or(0)
        .min(raw.len().saturating_mul(MAX_DEFLATE_RATIO));
    let mut out = Vec::with_capacity(hint);
    GzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(out)
}

/// Byte length of an IDX header of the given rank.
fn header_len(rank: usize) -> usize {
    4 + 4 * rank
}

/// Validates the header and total size of an IDX buffer and returns its dimensions.
fn parse_header(
    path: &Path,
    bytes: &[u8],
    kind: &'static str,
    magic: u32,
) -> Result<Vec<usize>, DataError> {
    let path_buf = || -> PathBuf { path.to_path_buf() };
    let Some(head) = bytes.first_chunk::<4>() else {
        return Err(DataError::Truncated {
            path: path_buf(),
            expected: 4,
            found: bytes.len(),
        });
    };
    let found = u32::from_be_bytes(*head);
    // The top three bytes name the format and the value type; the last one is the rank.
    if found & 0xffff_ff00 != magic & 0xffff_ff00 {
        return Err(DataError::BadMagic {
            path: path_buf(),
            kind,
            expected: magic,
            found,
        });
    }
    let rank = (found & 0xff) as usize;
    let expected_rank = (magic & 0xff) as usize;
    if rank != expected_rank {
        return Err(DataError::WrongRank {
            path: path_buf(),
            kind,
            expected: expected_rank,
            found: rank,
        });
    }
    let header = header_len(rank);
    if bytes.len() < header {
        return Err(DataError::Truncated {
            path: path_buf(),
            expected: header,
            found: bytes.len(),
        });
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|values| values.checked_add(header))
        .unwrap_or(usize::MAX);
    if bytes.len() < expected {
        return Err(DataError::Truncated {
            path: path_buf(),
            expected,
            found: bytes.len(),
        });
    }
    if bytes.len() > expected {
        return Err(DataError::TrailingBytes {
            path: path_buf(),
            expected,
            found: bytes.len(),
        });
    }
    Ok(dims)
}

/// Drops the header in place, keeping the allocation.
fn strip_header(mut bytes: Vec<u8>, header: usize) -> Vec<u8> {
    bytes.drain(..header);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TempDir, idx_images_bytes, idx_labels_bytes, write_file};

    #[test]
    fn reads_raw_and_gzip_images() {
        let dir = TempDir::new("idx-images");
        let pixels: Vec<u8> = (0..2 * 3 * 4).collect();
        let bytes = idx_images_bytes(2, 3, 4, &pixels);
        for gzip in [false, true] {
            let path = dir.path().join(format!("images-{gzip}"));
            write_file(&path, &bytes, gzip);
            let images = read_idx_images(&path).unwrap();
            assert_eq!(
                images,
                IdxImages {
                    count: 2,
                    height: 3,
                    width: 4,
                    pixels: pixels.clone(),
                }
            );
        }
    }

    #[test]
    fn reads_labels() {
        let dir = TempDir::new("idx-labels");
        let path = dir.path().join("labels.gz");
        write_file(&path, &idx_labels_bytes(&[3, 1, 4]), true);
        assert_eq!(read_idx_labels(&path).unwrap(), vec![3, 1, 4]);
    }

    #[test]
    fn rejects_truncated_data() {
        let dir = TempDir::new("idx-truncated");
        let mut bytes = idx_images_bytes(2, 2, 2, &[7; 8]);
        bytes.pop();
        let path = dir.path().join("images");
        write_file(&path, &bytes, false);
        match read_idx_images(&path) {
            Err(DataError::Truncated {
                path: p,
                expected,
                found,
            }) => {
                assert_eq!(p, path);
                assert_eq!((expected, found), (16 + 8, 16 + 7));
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
    }

    #[test]
    fn rejects_truncated_header() {
        let dir = TempDir::new("idx-short-header");
        let path = dir.path().join("images");
        write_file(&path, &[0, 0, 8, 3, 0, 0], false);
        assert!(matches!(
            read_idx_images(&path),
            Err(DataError::Truncated {
                expected: 16,
                found: 6,
                ..
            })
        ));
        write_file(&path, &[0, 0], false);
        assert!(matches!(
            read_idx_images(&path),
            Err(DataError::Truncated { found: 2, .. })
        ));
    }

    #[test]
    fn rejects_trailing_bytes() {
        let dir = TempDir::new("idx-trailing");
        let mut bytes = idx_labels_bytes(&[1, 2]);
        bytes.push(9);
        let path = dir.path().join("labels");
        write_file(&path, &bytes, false);
        assert!(matches!(
            read_idx_labels(&path),
            Err(DataError::TrailingBytes {
                expected: 10,
                found: 11,
                ..
            })
        ));
    }

    #[test]
    fn rejects_wrong_magic_and_rank() {
        let dir = TempDir::new("idx-magic");
        let path = dir.path().join("labels");
        write_file(&path, &idx_labels_bytes(&[1, 2]), false);
        // A label file read as images has the right type byte but rank 1.
        assert!(matches!(
            read_idx_images(&path),
            Err(DataError::WrongRank {
                expected: 3,
                found: 1,
                ..
            })
        ));
        let mut bytes = idx_labels_bytes(&[1, 2]);
        bytes[2] = 0x0d; // f32 values instead of u8.
        write_file(&path, &bytes, false);
        match read_idx_labels(&path) {
            Err(DataError::BadMagic {
                expected, found, ..
            }) => {
                assert_eq!(expected, 0x0801);
                assert_eq!(found, 0x0d01);
            }
            other => panic!("expected BadMagic, got {other:?}"),
        }
        write_file(&path, b"PK\x03\x04 not idx at all", false);
        assert!(matches!(
            read_idx_labels(&path),
            Err(DataError::BadMagic { .. })
        ));
    }

    #[test]
    fn rejects_corrupt_gzip() {
        let dir = TempDir::new("idx-gzip");
        let path = dir.path().join("images.gz");
        write_file(&path, &idx_images_bytes(1, 2, 2, &[1, 2, 3, 4]), true);
        let mut gz = std::fs::read(&path).unwrap();
        gz.truncate(gz.len() / 2);
        std::fs::write(&path, &gz).unwrap();
        match read_idx_images(&path) {
            Err(DataError::Gzip { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected Gzip, got {other:?}"),
        }
    }

    #[test]
    fn rejects_missing_file_and_empty_images() {
        let dir = TempDir::new("idx-missing");
        let path = dir.path().join("absent");
        assert!(matches!(read_idx_images(&path), Err(DataError::Io { .. })));
        write_file(&path, &idx_images_bytes(3, 0, 5, &[]), false);
        assert!(matches!(
            read_idx_images(&path),
            Err(DataError::EmptyImages {
                height: 0,
                width: 5,
                ..
            })
        ));
    }
}
