//! Reading PyTorch-world checkpoints into a flat state dict.
//!
//! [`read_state_dict`] opens `.pth`/`.pt`/`.bin`/`.ckpt` files (every container `torch.save`
//! writes, through burn-store's pickle reader) and `.safetensors` files, then unwraps the
//! usual nestings: SuperGradients' `{"net", "ema_net", ...}` (preferring `ema_net`), training
//! checkpoints' `state_dict` / `model_state_dict` / `model`, and DistributedDataParallel's
//! `module.` prefix. Floating-point tensors are converted to `f32`; integer buffers
//! (`num_batches_tracked`, `relative_position_index`) keep their type.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::pytorch_reader::PytorchReader;
use burn::store::{ModuleStore, SafetensorsStore, bridge};

use crate::WeightsError;

/// Checkpoint tensors by their (PyTorch) key.
pub type StateDict = BTreeMap<String, TensorData>;

/// Containers a state dict is looked for in, in order of preference.
///
/// `ema_net` comes before `net`, so a SuperGradients checkpoint trained with EMA yields its
/// EMA weights, which are the ones SuperGradients evaluates and exports.
pub const CONTAINER_KEYS: [&str; 5] = ["ema_net", "net", "state_dict", "model_state_dict", "model"];

/// Where a state dict came from, for load reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDictSource {
    /// The file read.
    pub path: PathBuf,
    /// The container the weights were taken from (`ema_net`, `state_dict`, ...), if any.
    pub container: Option<String>,
    /// A prefix removed from every key (`module.`), if any.
    pub stripped_prefix: Option<String>,
}

impl std::fmt::Display for StateDictSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(container) = &self.container {
            write!(f, " [{container}]")?;
        }
        if let Some(prefix) = &self.stripped_prefix {
            write!(f, " (prefix `{prefix}` removed)")?;
        }
        Ok(())
    }
}

/// Reads a PyTorch or safetensors checkpoint and unwraps it (see the module docs).
pub fn read_state_dict(path: &Path) -> Result<(StateDict, StateDictSource), WeightsError> {
    let raw = read_raw(path)?;
    if raw.is_empty() {
        return Err(WeightsError::Empty {
            path: path.to_path_buf(),
        });
    }
    let (state, container) = unwrap_container(raw);
    let (state, stripped_prefix) = strip_common_prefix(state, "module.");
    Ok((
        state,
        StateDictSource {
            path: path.to_path_buf(),
            container,
            stripped_prefix,
        },
    ))
}

/// Every tensor of the file under its full dotted key, floats as `f32`.
fn read_raw(path: &Path) -> Result<StateDict, WeightsError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let read_err = |message: String| WeightsError::Read {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(WeightsError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let mut state = StateDict::new();
    match ext.as_str() {
        "safetensors" => {
            let mut store = SafetensorsStore::from_file(path);
            let tensors = store
                .get_all_tensors()
                .map_err(|e| read_err(e.to_string()))?;
            for (name, tensor) in tensors {
                let data = bridge::to_data(tensor).map_err(|e| read_err(e.to_string()))?;
                state.insert(name.clone(), to_f32(data));
            }
        }
        "pth" | "pt" | "bin" | "ckpt" | "tar" => {
            let reader = PytorchReader::new(path).map_err(|e| read_err(e.to_string()))?;
            for (name, tensor) in reader.into_tensors() {
                let data = bridge::into_data(bridge::from_pytorch(tensor))
                    .map_err(|e| read_err(format!("tensor `{name}`: {e}")))?;
                state.insert(name, to_f32(data));
            }
        }
        _ => {
            return Err(WeightsError::Format {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(state)
}

/// Floating-point data as `f32`; other data unchanged.
fn to_f32(data: TensorData) -> TensorData {
    if data.dtype().is_float() && data.dtype() != burn::tensor::DType::F32 {
        data.convert::<f32>()
    } else {
        data
    }
}

/// Picks the first of [`CONTAINER_KEYS`] that holds tensors, or keeps the whole dict.
pub fn unwrap_container(state: StateDict) -> (StateDict, Option<String>) {
    for container in CONTAINER_KEYS {
        let prefix = format!("{container}.");
        if state.keys().any(|k| k.starts_with(&prefix)) {
            return (select_prefix(state, &prefix), Some(container.to_string()));
        }
    }
    (state, None)
}

/// The entries under `prefix`, with the prefix removed.
pub fn select_prefix(state: StateDict, prefix: &str) -> StateDict {
    state
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|rest| (rest.to_string(), v)))
        .collect()
}

/// Removes `prefix` from every key when every key has it.
pub fn strip_common_prefix(state: StateDict, prefix: &str) -> (StateDict, Option<String>) {
    if !state.is_empty() && state.keys().all(|k| k.starts_with(prefix)) {
        (select_prefix(state, prefix), Some(prefix.to_string()))
    } else {
        (state, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(keys: &[&str]) -> StateDict {
        keys.iter()
            .map(|k| (k.to_string(), TensorData::new(vec![1.0f32], [1])))
            .collect()
    }

    #[test]
    fn prefers_ema_weights_and_strips_module() {
        let state = dict(&[
            "net.module.fc.weight",
            "ema_net.module.fc.weight",
            "ema_net.module.conv1.weight",
        ]);
        let (state, container) = unwrap_container(state);
        assert_eq!(container.as_deref(), Some("ema_net"));
        let (state, prefix) = strip_common_prefix(state, "module.");
        assert_eq!(prefix.as_deref(), Some("module."));
        assert_eq!(
            state.keys().collect::<Vec<_>>(),
            ["conv1.weight", "fc.weight"]
        );
    }

    #[test]
    fn plain_dicts_stay_as_they_are() {
        let state = dict(&["conv1.weight", "fc.bias"]);
        let (state, container) = unwrap_container(state);
        assert_eq!(container, None);
        let (state, prefix) = strip_common_prefix(state, "module.");
        assert_eq!(prefix, None);
        assert_eq!(state.len(), 2);
    }

    #[test]
    fn bad_files_are_named() {
        let err = read_state_dict(Path::new("/nonexistent/w.pth")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/w.pth"), "{err}");
        let dir = std::env::temp_dir().join(format!("kd-sd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let txt = dir.join("weights.txt");
        std::fs::write(&txt, "hello").unwrap();
        let err = read_state_dict(&txt).unwrap_err().to_string();
        assert!(
            err.contains("weights.txt") && err.contains(".safetensors"),
            "{err}"
        );
        let bad = dir.join("broken.pth");
        std::fs::write(&bad, "not a pickle").unwrap();
        let err = read_state_dict(&bad).unwrap_err().to_string();
        assert!(err.contains("broken.pth"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
