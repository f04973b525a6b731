//! Checkpoint files, always written to a temporary file and renamed into place.
//!
//! - `ckpt_latest.kd`: the whole training state (the KD module: student, teacher and adapters;
//!   the optimizer; the position in the run; the best metric) in one file: a magic line, a JSON
//!   header and named burnpack blobs.
//! - `ckpt_best.bpk`: the student alone, a plain Burn record (`ModuleRecord`) that loads into a
//!   bare student with `student.load_file("ckpt_best.bpk")` or [`load_student`].

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use kd_core::ImageClassifier;
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// File name of the resumable state.
pub const LATEST_NAME: &str = "ckpt_latest.kd";
/// File name of the best student.
pub const BEST_NAME: &str = "ckpt_best.bpk";
/// File name of the mid-epoch state written every `ckpt_every_n_steps` optimizer steps.
pub const STEP_NAME: &str = "ckpt_step.kd";
const MAGIC: &[u8; 8] = b"KDCKPT01";

/// The JSON header of `ckpt_latest.kd`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckpointMeta {
    /// `supervised` or `kd`.
    pub kind: String,
    /// The last completed epoch (0-based).
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub global_step: usize,
    /// `max_epochs` of the run that wrote it.
    pub max_epochs: usize,
    /// The watched metric's name.
    pub metric_to_watch: String,
    /// Its best value so far.
    pub best_metric: Option<f64>,
    /// The epoch of that best value.
    pub best_epoch: Option<usize>,
    /// The run's seed.
    pub seed: u64,
    /// Batches of `epoch` already trained, for a mid-epoch (`ckpt_step.kd`) state; `None`
    /// when `epoch` is complete.
    #[serde(default)]
    pub step_in_epoch: Option<usize>,
}

impl CheckpointMeta {
    /// The same header for a mid-epoch state, `done` batches into its epoch.
    pub fn at_step(mut self, done: usize) -> Self {
        self.step_in_epoch = Some(done);
        self
    }
}

/// A parsed `ckpt_latest.kd`.
#[derive(Debug)]
pub struct Checkpoint {
    /// The header.
    pub meta: CheckpointMeta,
    /// Named blobs (`model`, `optimizer`).
    pub blobs: Vec<(String, Vec<u8>)>,
}

impl Checkpoint {
    /// Serialises to bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let meta = serde_json::to_vec(&self.meta).unwrap_or_default();
        let mut out = Vec::with_capacity(
            64 + meta.len()
                + self
                    .blobs
                    .iter()
                    .map(|(n, b)| n.len() + b.len() + 12)
                    .sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(meta.len() as u64).to_le_bytes());
        out.extend_from_slice(&meta);
        out.extend_from_slice(&(self.blobs.len() as u32).to_le_bytes());
        for (name, blob) in &self.blobs {
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(blob.len() as u64).to_le_bytes());
            out.extend_from_slice(blob);
        }
        out
    }

    /// Parses bytes read from `path` (named in errors).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, TrainError> {
        let bad = |message: String| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message,
        };
        let mut r = Reader { bytes, pos: 0 };
        if r.take(8).ok() != Some(&MAGIC[..]) {
            return Err(bad(
                "not a kd checkpoint (bad magic): pass a `ckpt_latest.kd` written by kd".into(),
            ));
        }
        let truncated = |_| bad("file is truncated or corrupt: use an intact checkpoint".into());
        let meta_len = r.u64().map_err(truncated)? as usize;
        let meta = r.take(meta_len).map_err(truncated)?;
        let meta: CheckpointMeta =
            serde_json::from_slice(meta).map_err(|e| bad(format!("unreadable header: {e}")))?;
        let n = r.u32().map_err(truncated)? as usize;
        let mut blobs = Vec::with_capacity(n);
        for _ in 0..n {
            let name_len = r.u32().map_err(truncated)? as usize;
            let name = String::from_utf8_lossy(r.take(name_len).map_err(truncated)?).into_owned();
            let len = r.u64().map_err(truncated)? as usize;
            blobs.push((name, r.take(len).map_err(truncated)?.to_vec()));
        }
        Ok(Self { meta, blobs })
    }

    /// Reads and parses a checkpoint file.
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
            action: "cannot read checkpoint",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        write_atomic(path, &self.to_bytes())
    }

    /// A blob by name, or an error naming the file.
    pub fn blob(&self, name: &str, path: &Path) -> Result<&[u8], TrainError> {
        self.blobs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
            .ok_or_else(|| TrainError::Checkpoint {
                path: path.to_path_buf(),
                message: format!(
                    "missing section `{name}`: the file was not written by this kd version"
                ),
            })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ()> {
        let end = self.pos.checked_add(n).ok_or(())?;
        let s = self.bytes.get(self.pos..end).ok_or(())?;
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, ()> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| ())?,
        ))
    }
    fn u64(&mut self) -> Result<u64, ()> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| ())?,
        ))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, then renames it, so a
/// crash never leaves a half-written checkpoint.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let io = |action, source| TrainError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io("cannot create the folder of", e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("cannot write checkpoint", e))?;
    f.write_all(bytes)
        .map_err(|e| io("cannot write checkpoint", e))?;
    f.sync_all().map_err(|e| io("cannot write checkpoint", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| io("cannot move checkpoint into place", e))
}

/// A module's record as burnpack bytes.
pub fn module_bytes<M: Module>(module: &M, path: &Path) -> Result<Vec<u8>, TrainError> {
    module
        .clone()
        .into_record()
        .into_bytes()
        .map(|b| b.to_vec())
        .map_err(|e| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: format!("cannot serialise the model: {e}"),
        })
}

/// Applies burnpack bytes to a module, strictly (every tensor present, none left over).
pub fn load_module_bytes<M: Module>(module: M, bytes: &[u8], path: &Path) -> Result<M, TrainError> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec())).map_err(|e| {
        TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: format!("unreadable model record: {e}"),
        }
    })?;
    module.try_load_record(record).map_err(|e| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: format!(
            "does not fit this model ({e}): build the same architecture and arch_params as the run that wrote it"
        ),
    })
}

/// The checkpoint record of a student as burnpack bytes (what `ckpt_best.bpk` holds).
pub fn student_bytes<M: ImageClassifier>(student: &M, path: &Path) -> Result<Vec<u8>, TrainError> {
    student
        .checkpoint_record()
        .into_bytes()
        .map(|b| b.to_vec())
        .map_err(|e| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: format!("cannot serialise the student: {e}"),
        })
}

/// Loads `ckpt_best.bpk` (or any student record kd wrote) into a bare student, strictly.
pub fn load_student<M: ImageClassifier>(student: M, path: &Path) -> Result<M, TrainError> {
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
        action: "cannot read checkpoint",
        path: path.to_path_buf(),
        source,
    })?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| {
        TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: format!("unreadable model record: {e}"),
        }
    })?;
    student
        .load_checkpoint_record(record)
        .map_err(|e| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: format!(
                "does not fit this network ({e}): build the same architecture and arch_params as the run that wrote it"
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = std::env::temp_dir().join(format!("kd-ckpt-test-{}", std::process::id()));
        let path = dir.join(LATEST_NAME);
        let ckpt = Checkpoint {
            meta: CheckpointMeta {
                kind: "kd".into(),
                epoch: 3,
                global_step: 42,
                max_epochs: 10,
                metric_to_watch: "Accuracy".into(),
                best_metric: Some(0.9),
                best_epoch: Some(2),
                seed: 7,
                step_in_epoch: None,
            },
            blobs: vec![
                ("model".into(), vec![1, 2, 3]),
                ("optimizer".into(), vec![]),
            ],
        };
        ckpt.save(&path).unwrap();
        assert!(!dir.join("ckpt_latest.kd.tmp").exists());
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back.meta, ckpt.meta);
        assert_eq!(back.blob("model", &path).unwrap(), &[1, 2, 3]);
        assert!(
            back.blob("ema", &path)
                .unwrap_err()
                .to_string()
                .contains("ema")
        );

        let bytes = ckpt.to_bytes();
        let err = Checkpoint::from_bytes(&bytes[..bytes.len() - 2], &path).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = Checkpoint::from_bytes(b"hello world, not a checkpoint", &path).unwrap_err();
        assert!(err.to_string().contains("magic"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
