//! A small, strict reader and writer of NumPy's `.npy` format for float arrays.
//!
//! A `.npy` file (<https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html>) is
//! the magic `\x93NUMPY`, a major and minor version byte, a little-endian header length (`u16`
//! for version 1.0, `u32` for 2.0 and 3.0), then an ASCII (3.0: UTF-8) Python dict literal such
//! as `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 224, 224), }` padded with
//! spaces and ended by `\n`, then the raw values.
//!
//! The reader accepts little-endian `float32` (`<f4`) and `float64` (`<f8`, converted to
//! `f32`) arrays in C order, with exactly the three keys above and exactly as many data bytes
//! as the shape needs; anything else is an [`NpyError`] that names the file and the fix. The
//! writer writes version 1.0 (2.0 when the header does not fit), `<f4`, C order, with the
//! header padded so that the data starts on a 64-byte boundary, as `numpy.save` does.
//!
//! ```
//! use kd_data::npy::{NpyArray, parse_npy, to_npy_bytes};
//! use std::path::Path;
//!
//! let array = NpyArray::new(vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
//! let bytes = to_npy_bytes(&array);
//! let back = parse_npy(&bytes, Path::new("<memory>")).unwrap();
//! assert_eq!(back, array);
//! ```

use std::path::{Path, PathBuf};

/// The six bytes every `.npy` file starts with.
pub const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Alignment of the data section that `numpy.save` uses (and this writer follows).
const ALIGN: usize = 64;

/// Errors raised while reading or writing a `.npy` file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file cannot be opened, read or written.
    #[error("cannot access `{path}`: {source}: check the path and its permissions")]
    Io {
        /// Offending file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file does not start with `\x93NUMPY`.
    #[error(
        "`{path}` is not a .npy file (bad magic, expected \\x93NUMPY): write it with numpy.save"
    )]
    BadMagic {
        /// Offending file.
        path: PathBuf,
    },
    /// A format version other than 1.0, 2.0 or 3.0.
    #[error(
        "`{path}` uses .npy format version {major}.{minor}, which kd does not read: write it with numpy.save (versions 1.0 to 3.0)"
    )]
    Version {
        /// Offending file.
        path: PathBuf,
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header is cut short or is not the dict literal numpy writes.
    #[error("`{path}` has a malformed .npy header: {reason}: write the file with numpy.save")]
    Header {
        /// Offending file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The array is stored in Fortran (column-major) order.
    #[error(
        "`{path}` is stored in Fortran order: save a C-order array instead, e.g. numpy.save(path, numpy.ascontiguousarray(x))"
    )]
    FortranOrder {
        /// Offending file.
        path: PathBuf,
    },
    /// An element type other than little-endian float32 or float64.
    #[error(
        "`{path}` holds dtype `{descr}`, but kd reads little-endian float32 (`<f4`) or float64 (`<f8`): convert it with x.astype(numpy.float32)"
    )]
    Dtype {
        /// Offending file.
        path: PathBuf,
        /// The header's `descr`.
        descr: String,
    },
    /// The data section is shorter or longer than the shape needs.
    #[error(
        "`{path}` holds {found} data bytes but its shape {shape:?} needs {expected}: the file is truncated or corrupt, write it again"
    )]
    DataSize {
        /// Offending file.
        path: PathBuf,
        /// Declared shape.
        shape: Vec<usize>,
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
    /// The array does not have the rank the caller needs.
    #[error(
        "`{path}` holds an array of shape {shape:?}, but a rank-{expected} array is needed{hint}"
    )]
    Rank {
        /// Offending file.
        path: PathBuf,
        /// Shape found.
        shape: Vec<usize>,
        /// Rank needed.
        expected: usize,
        /// What the axes mean, e.g. `: pass images as [N, C, H, W]`, or empty.
        hint: String,
    },
    /// The values do not fill the shape (when building an array).
    #[error(
        "{len} values do not fill shape {shape:?} ({expected} values): pass one value per element"
    )]
    Shape {
        /// Requested shape.
        shape: Vec<usize>,
        /// Values the shape needs.
        expected: usize,
        /// Values given.
        len: usize,
    },
}

/// A C-order `f32` array and its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Size of each axis; empty for a scalar.
    pub shape: Vec<usize>,
    /// The values, last axis fastest.
    pub data: Vec<f32>,
}

impl NpyArray {
    /// An array of `shape` holding `data`, or an error when the sizes disagree.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, NpyError> {
        let expected = shape.iter().product::<usize>();
        if expected != data.len() {
            return Err(NpyError::Shape {
                shape,
                expected,
                len: data.len(),
            });
        }
        Ok(Self { shape, data })
    }

    /// Checks that the array has `rank` axes; `path` and `hint` go into the error.
    pub fn check_rank(&self, rank: usize, path: &Path, hint: &str) -> Result<(), NpyError> {
        if self.shape.len() == rank {
            return Ok(());
        }
        Err(NpyError::Rank {
            path: path.to_path_buf(),
            shape: self.shape.clone(),
            expected: rank,
            hint: if hint.is_empty() {
                String::new()
            } else {
                format!(": {hint}")
            },
        })
    }
}

/// Reads a `.npy` file of float32 or float64 values (see the module docs).
pub fn read_npy(path: &Path) -> Result<NpyArray, NpyError> {
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_npy(&bytes, path)
}

/// Writes `array` to `path` as a version 1.0 `<f4` C-order `.npy` file.
pub fn write_npy(path: &Path, array: &NpyArray) -> Result<(), NpyError> {
    std::fs::write(path, to_npy_bytes(array)).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses the bytes of a `.npy` file; `path` only names the file in errors.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<NpyArray, NpyError> {
    let header_err = |reason: String| NpyError::Header {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < 8 || &bytes[..6] != NPY_MAGIC {
        return Err(NpyError::BadMagic {
            path: path.to_path_buf(),
        });
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, utf8) = match (major, minor) {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => {
            return Err(NpyError::Version {
                path: path.to_path_buf(),
                major,
                minor,
            });
        }
    };
    let start = 8 + len_bytes;
    if bytes.len() < start {
        return Err(header_err("the header length is cut short".into()));
    }
    let header_len = if len_bytes == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    let end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            header_err(format!(
                "it declares {header_len} header bytes but the file has {} after the length",
                bytes.len() - start
            ))
        })?;
    let raw = &bytes[start..end];
    if !utf8 && !raw.is_ascii() {
        return Err(header_err("a version 1.0/2.0 header must be ASCII".into()));
    }
    let text = std::str::from_utf8(raw).map_err(|e| header_err(format!("not UTF-8 ({e})")))?;
    let header = parse_header(text).map_err(header_err)?;
    if header.fortran_order {
        return Err(NpyError::FortranOrder {
            path: path.to_path_buf(),
        });
    }
    let width: usize = match header.descr.as_str() {
        "<f4" => 4,
        "<f8" => 8,
        _ => {
            return Err(NpyError::Dtype {
                path: path.to_path_buf(),
                descr: header.descr,
            });
        }
    };
    let data = &bytes[end..];
    let expected = header
        .shape
        .iter()
        .try_fold(width, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| header_err(format!("shape {:?} overflows", header.shape)))?;
    if data.len() != expected {
        return Err(NpyError::DataSize {
            path: path.to_path_buf(),
            shape: header.shape,
            expected,
            found: data.len(),
        });
    }
    let values = if width == 4 {
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect()
    };
    Ok(NpyArray {
        shape: header.shape,
        data: values,
    })
}

/// The bytes of `array` as a `<f4` C-order `.npy` file (version 1.0, or 2.0 when the header
/// exceeds 65535 bytes).
pub fn to_npy_bytes(array: &NpyArray) -> Vec<u8> {
    let shape = match array.shape.as_slice() {
        [] => "()".to_string(),
        [one] => format!("({one},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic, version and length, then the dict, spaces and a newline, to a multiple of ALIGN.
    let padded = |prefix: usize| (prefix + dict.len() + 1).div_ceil(ALIGN) * ALIGN - prefix;
    let (version, prefix) = if padded(10) <= u16::MAX as usize {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let header_len = padded(prefix);
    let mut out = Vec::with_capacity(prefix + header_len + 4 * array.data.len());
    out.extend_from_slice(NPY_MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(prefix + header_len - 1, b' ');
    out.push(b'\n');
    for v in &array.data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The three entries of a `.npy` header.
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// A value of the header's dict literal.
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// Parses `{'descr': ..., 'fortran_order': ..., 'shape': (...), }` strictly: each of the three
/// keys exactly once, no other key.
fn parse_header(text: &str) -> Result<Header, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.expect(b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        if !matches!(key.as_str(), "descr" | "fortran_order" | "shape") {
            return Err(format!(
                "unexpected key `{key}` (expected descr, fortran_order and shape)"
            ));
        }
        p.expect(b':')?;
        let value = p.value()?;
        let slot_taken = match (key.as_str(), value) {
            ("descr", Value::Str(s)) => descr.replace(s).is_some(),
            ("fortran_order", Value::Bool(b)) => fortran.replace(b).is_some(),
            ("shape", Value::Tuple(t)) => shape.replace(t).is_some(),
            _ => return Err(format!("`{key}` has a value of the wrong type")),
        };
        if slot_taken {
            return Err(format!("key `{key}` appears twice"));
        }
        p.skip_ws();
        if !p.eat(b',') {
            p.expect(b'}')?;
            break;
        }
    }
    if p.s[p.i..].iter().any(|c| !c.is_ascii_whitespace()) {
        return Err("text after the closing `}`".into());
    }
    Ok(Header {
        descr: descr.ok_or("missing key `descr`")?,
        fortran_order: fortran.ok_or("missing key `fortran_order`")?,
        shape: shape.ok_or("missing key `shape`")?,
    })
}

/// A cursor over the header's bytes.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.skip_ws();
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "expected `{}` at byte {}, found {}",
                c as char,
                self.i,
                self.s
                    .get(self.i)
                    .map_or("the end".to_string(), |&b| format!("`{}`", b as char))
            ))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.skip_ws();
        let quote = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("expected a quoted string at byte {}", self.i)),
        };
        self.i += 1;
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != quote {
            if self.s[self.i] == b'\\' {
                return Err("escape sequences are not supported in header strings".into());
            }
            self.i += 1;
        }
        if self.i == self.s.len() {
            return Err("unterminated string".into());
        }
        let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.i += 1;
        Ok(text)
    }

    fn word(&mut self) -> &[u8] {
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_alphanumeric() {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_ws();
        match self.s.get(self.i) {
            Some(b'\'' | b'"') => self.string().map(Value::Str),
            Some(b'(') => {
                self.i += 1;
                let mut dims = Vec::new();
                loop {
                    self.skip_ws();
                    if self.eat(b')') {
                        break;
                    }
                    let at = self.i;
                    let word = self.word();
                    let dim = std::str::from_utf8(word)
                        .ok()
                        .filter(|w| w.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|w| w.parse::<usize>().ok())
                        .ok_or_else(|| format!("expected a dimension at byte {at}"))?;
                    dims.push(dim);
                    self.skip_ws();
                    if !self.eat(b',') {
                        self.expect(b')')?;
                        break;
                    }
                }
                Ok(Value::Tuple(dims))
            }
            _ => {
                let at = self.i;
                match self.word() {
                    b"True" => Ok(Value::Bool(true)),
                    b"False" => Ok(Value::Bool(false)),
                    other => Err(format!(
                        "unexpected value `{}` at byte {at}",
                        String::from_utf8_lossy(other)
                    )),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(version: [u8; 2], header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = NPY_MAGIC.to_vec();
        out.extend_from_slice(&version);
        if version[0] == 1 {
            out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn err(bytes: &[u8]) -> String {
        parse_npy(bytes, Path::new("batch.npy"))
            .unwrap_err()
            .to_string()
    }

    /// numpy 2.4.6: `io.BytesIO` after `numpy.save(f, numpy.arange(6, dtype=numpy.float32)
    /// .reshape(2, 3))` holds `934e554d505901007600` (magic, version 1.0, header length 118),
    /// then `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`, spaces and `\n` up
    /// to byte 128, then the six values: 152 bytes.
    #[test]
    fn reads_and_writes_exactly_what_numpy_writes() {
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let header = format!("{dict}{}\n", " ".repeat(118 - dict.len() - 1));
        let values = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let bytes = file([1, 0], &header, &f32_bytes(&values));
        assert_eq!(bytes.len(), 152);
        let array = parse_npy(&bytes, Path::new("x.npy")).unwrap();
        assert_eq!(array.shape, [2, 3]);
        assert_eq!(array.data, values);
        assert_eq!(to_npy_bytes(&array), bytes);
    }

    #[test]
    fn writer_matches_numpy_layout_and_round_trips() {
        for shape in [vec![], vec![4], vec![2, 3], vec![2, 1, 3, 2]] {
            let n = shape.iter().product::<usize>();
            let array =
                NpyArray::new(shape.clone(), (0..n).map(|i| i as f32 - 1.5).collect()).unwrap();
            let bytes = to_npy_bytes(&array);
            let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
            assert_eq!((10 + header_len) % 64, 0);
            assert_eq!(bytes[10 + header_len - 1], b'\n');
            assert_eq!(bytes.len(), 10 + header_len + 4 * n);
            assert_eq!(parse_npy(&bytes, Path::new("x.npy")).unwrap(), array);
        }
        let text = String::from_utf8_lossy(
            &to_npy_bytes(&NpyArray::new(vec![5], vec![0.0; 5]).unwrap())[10..],
        )
        .into_owned();
        assert!(
            text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }"),
            "{text}"
        );
    }

    #[test]
    fn float64_is_converted_and_versions_2_and_3_are_read() {
        let data: Vec<u8> = [0.25f64, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        for version in [[1, 0], [2, 0], [3, 0]] {
            let bytes = file(
                version,
                "{\"descr\": \"<f8\", \"shape\": (2,), \"fortran_order\": False}\n",
                &data,
            );
            let array = parse_npy(&bytes, Path::new("x.npy")).unwrap();
            assert_eq!(array.data, [0.25, -2.0]);
        }
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let ok_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
        let e = err(b"PK\x03\x04 not numpy at all");
        assert!(e.contains("`batch.npy`") && e.contains("bad magic"), "{e}");

        let e = err(&file([4, 0], ok_header, &f32_bytes(&[1.0, 2.0])));
        assert!(e.contains("version 4.0"), "{e}");

        let fortran = "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n";
        let e = err(&file([1, 0], fortran, &f32_bytes(&[1.0, 2.0])));
        assert!(
            e.contains("`batch.npy`") && e.contains("Fortran order"),
            "{e}"
        );

        for descr in ["<i8", ">f4", "<f2", "|u1"] {
            let header = ok_header.replace("<f4", descr);
            let e = err(&file([1, 0], &header, &[0; 16]));
            assert!(
                e.contains(&format!("dtype `{descr}`")) && e.contains("astype(numpy.float32)"),
                "{e}"
            );
        }

        let e = err(&file([1, 0], ok_header, &f32_bytes(&[1.0])));
        assert!(
            e.contains("holds 4 data bytes") && e.contains("needs 8"),
            "{e}"
        );
        let e = err(&file([1, 0], ok_header, &f32_bytes(&[1.0, 2.0, 3.0])));
        assert!(e.contains("holds 12 data bytes"), "{e}");

        let cut = file([1, 0], ok_header, &[]);
        let e = err(&cut[..20]);
        assert!(e.contains("malformed .npy header"), "{e}");
    }

    #[test]
    fn header_is_parsed_strictly() {
        let cases = [
            (
                "{'descr': '<f4', 'shape': (2,), }",
                "missing key `fortran_order`",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
                "unexpected key `extra`",
            ),
            (
                "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
                "appears twice",
            ),
            (
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
                "unexpected value `0`",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': [2]}",
                "unexpected value",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}",
                "expected a dimension",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x",
                "text after",
            ),
        ];
        for (header, want) in cases {
            let e = err(&file([1, 0], &format!("{header}\n"), &[0; 8]));
            assert!(e.contains(want), "{header}: {e}");
        }
    }

    #[test]
    fn rank_and_shape_checks() {
        let array = NpyArray::new(vec![2, 3], vec![0.0; 6]).unwrap();
        array.check_rank(2, Path::new("x.npy"), "").unwrap();
        let e = array
            .check_rank(4, Path::new("batch.npy"), "pass images as [N, C, H, W]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`batch.npy`") && e.contains("[2, 3]") && e.contains("rank-4"),
            "{e}"
        );
        let e = NpyArray::new(vec![2, 2], vec![0.0; 3])
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 values do not fill shape [2, 2]"), "{e}");
    }

    #[test]
    fn files_round_trip_and_missing_files_are_named() {
        let dir = std::env::temp_dir().join(format!("kd-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.npy");
        let array = NpyArray::new(vec![1, 2], vec![3.5, -1.0]).unwrap();
        write_npy(&path, &array).unwrap();
        assert_eq!(read_npy(&path).unwrap(), array);
        let e = read_npy(&dir.join("missing.npy")).unwrap_err().to_string();
        assert!(e.contains("missing.npy"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
