//! Applying a PyTorch state dict to a Burn model, with a report.
//!
//! [`load_state_dict`] renames checkpoint keys with a model's regex key map, compares every
//! key and shape with the model's own parameters (in PyTorch naming and layout), and applies
//! the matching tensors through burn-store's `PyTorchToBurnAdapter` (Linear transposes,
//! normalisation `weight`/`bias` to `gamma`/`beta`). What happened is returned as a
//! [`LoadReport`]; in strict mode any missing, unexpected or shape-mismatched key is an error
//! listing them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use burn::module::Module;
use burn::prelude::*;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, bridge};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::{StateDict, StateDictSource, WeightsError};

/// How strictly a checkpoint must match the model (SuperGradients' `strict_load`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrictLoad {
    /// Every model parameter must be in the checkpoint and every checkpoint tensor must be
    /// used (`strict_load: true`, SuperGradients' `StrictLoad.ON`).
    #[default]
    On,
    /// Load the keys both sides share; report the rest (`strict_load: false`).
    Off,
    /// Pair checkpoint tensors with model parameters by position instead of by name, for
    /// checkpoints of the same architecture saved under other names (`key_matching`). The
    /// positions are those of both key lists in natural order (numbers compared as numbers),
    /// since neither pickles nor safetensors keep insertion order; every pair must agree in
    /// shape.
    KeyMatching,
}

/// How to load a state dict into a model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Strictness; mismatched shapes are an error in every mode.
    pub strict: StrictLoad,
    /// Load everything but the classifier head (`load_backbone`): head keys are ignored on
    /// both sides and the model keeps its freshly initialised head.
    pub load_backbone: bool,
}

/// A model's description for loading: its key map and the prefix of its classifier head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightMap {
    /// Regex pairs (checkpoint key pattern, replacement) applied in order to every key.
    pub key_map: &'static [(&'static str, &'static str)],
    /// Key prefix of the classifier head (`fc.` for ResNets, `head.` for BEiT).
    pub head_prefix: &'static str,
    /// Checkpoint keys that are buffers the model recomputes, dropped silently (regexes).
    pub ignored: &'static [&'static str],
}

/// Buffers no model here stores: batch-norm batch counters.
const ALWAYS_IGNORED: &str = r"(^|\.)num_batches_tracked$";

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Where the weights came from.
    pub source: String,
    /// Model parameters that received a checkpoint tensor (PyTorch names).
    pub applied: Vec<String>,
    /// Model parameters the checkpoint lacks.
    pub missing: Vec<String>,
    /// Checkpoint tensors the model has no parameter for.
    pub unexpected: Vec<String>,
    /// `(key, model shape, checkpoint shape)` for tensors whose shapes differ.
    pub mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// Checkpoint keys left out on purpose (batch counters, recomputed buffers, the head
    /// with `load_backbone`).
    pub ignored: Vec<String>,
    /// Checkpoint keys renamed by the key map or by key matching, `(from, to)`.
    pub renamed: Vec<(String, String)>,
}

impl LoadReport {
    /// Whether every model parameter was loaded and every checkpoint tensor used.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

/// At most `n` names, then how many more.
fn listed(names: &[String], n: usize) -> String {
    let mut text = names.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > n {
        text.push_str(&format!(", ... ({} more)", names.len() - n));
    }
    text
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loaded {}: {} applied, {} missing, {} unexpected, {} shape-mismatched, {} ignored",
            self.source,
            self.applied.len(),
            self.missing.len(),
            self.unexpected.len(),
            self.mismatched.len(),
            self.ignored.len()
        )?;
        if !self.missing.is_empty() {
            write!(f, "\n  missing: {}", listed(&self.missing, 8))?;
        }
        if !self.unexpected.is_empty() {
            write!(f, "\n  unexpected: {}", listed(&self.unexpected, 8))?;
        }
        for (key, model, ckpt) in self.mismatched.iter().take(8) {
            write!(
                f,
                "\n  mismatched: `{key}` model {model:?}, checkpoint {ckpt:?}"
            )?;
        }
        Ok(())
    }
}

/// Renames every key with the regex pairs of `key_map`, applied in order.
pub fn apply_key_map(
    state: StateDict,
    key_map: &[(&str, &str)],
) -> Result<(StateDict, Vec<(String, String)>), WeightsError> {
    let compiled = key_map
        .iter()
        .map(|(from, to)| {
            Regex::new(from)
                .map(|re| (re, *to))
                .map_err(|e| WeightsError::KeyMap {
                    pattern: from.to_string(),
                    message: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut renamed = Vec::new();
    let mut out = StateDict::new();
    for (key, value) in state {
        let new = compiled.iter().fold(key.clone(), |k, (re, to)| {
            re.replace_all(&k, *to).into_owned()
        });
        if out.contains_key(&new) {
            return Err(WeightsError::KeyCollision { key, renamed: new });
        }
        if new != key {
            renamed.push((key, new.clone()));
        }
        out.insert(new, value);
    }
    Ok((out, renamed))
}

/// The model's parameters as PyTorch would name and shape them, in visit order.
pub fn torch_parameter_shapes<M: Module>(model: &M) -> Vec<(String, Vec<usize>)> {
    model
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect()
}

/// A sort key that compares digit runs as numbers (`layer2` < `layer10`).
fn natural_key(s: &str) -> Vec<(u8, u64, String)> {
    let mut parts = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        let digit = c.is_ascii_digit();
        let mut run = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() != digit {
                break;
            }
            run.push(c);
            chars.next();
        }
        if digit {
            parts.push((0, run.parse().unwrap_or(u64::MAX), String::new()));
        } else {
            parts.push((1, 0, run));
        }
    }
    parts
}

/// Renames checkpoint keys to the model's by position in natural order (see
/// [`StrictLoad::KeyMatching`]).
fn match_keys_by_position(
    state: StateDict,
    model: &[(String, Vec<usize>)],
) -> Result<(StateDict, Vec<(String, String)>), WeightsError> {
    let mut ckpt: Vec<(String, TensorData)> = state.into_iter().collect();
    ckpt.sort_by_cached_key(|(k, _)| natural_key(k));
    let mut model_sorted: Vec<&(String, Vec<usize>)> = model.iter().collect();
    model_sorted.sort_by_cached_key(|(k, _)| natural_key(k));
    if ckpt.len() != model_sorted.len() {
        return Err(WeightsError::KeyMatchingCount {
            checkpoint: ckpt.len(),
            model: model_sorted.len(),
        });
    }
    let mut renamed = Vec::new();
    let mut out = StateDict::new();
    for ((key, data), (model_key, shape)) in ckpt.into_iter().zip(model_sorted) {
        if &data.shape().to_vec() != shape {
            return Err(WeightsError::KeyMatchingShape {
                checkpoint_key: key,
                checkpoint_shape: data.shape().to_vec(),
                model_key: model_key.clone(),
                model_shape: shape.clone(),
            });
        }
        if &key != model_key {
            renamed.push((key, model_key.clone()));
        }
        out.insert(model_key.clone(), data);
    }
    Ok((out, renamed))
}

/// Loads `state` into `model` following `map` and `options`, returning the model and a report.
///
/// Keys are renamed by `map.key_map`; batch counters and `map.ignored` buffers are dropped;
/// with `load_backbone`, keys under `map.head_prefix` are ignored on both sides. A shape
/// mismatch is always an error; missing or unexpected keys are errors unless `strict` is
/// [`StrictLoad::Off`]. Errors list the offending keys (and both shapes).
pub fn load_state_dict<M: Module>(
    mut model: M,
    state: StateDict,
    source: &StateDictSource,
    map: &WeightMap,
    options: &LoadOptions,
) -> Result<(M, LoadReport), WeightsError> {
    let mut report = LoadReport {
        source: source.to_string(),
        ..LoadReport::default()
    };
    let mut ignore = vec![Regex::new(ALWAYS_IGNORED).expect("a valid constant regex")];
    for pattern in map.ignored {
        ignore.push(Regex::new(pattern).map_err(|e| WeightsError::KeyMap {
            pattern: pattern.to_string(),
            message: e.to_string(),
        })?);
    }
    let (state, renamed) = apply_key_map(state, map.key_map)?;
    report.renamed = renamed;
    let is_head = |k: &str| options.load_backbone && k.starts_with(map.head_prefix);
    let mut kept = StateDict::new();
    for (key, value) in state {
        if ignore.iter().any(|re| re.is_match(&key)) || is_head(&key) {
            report.ignored.push(key);
        } else {
            kept.insert(key, value);
        }
    }
    let model_params: Vec<(String, Vec<usize>)> = torch_parameter_shapes(&model)
        .into_iter()
        .filter(|(k, _)| !is_head(k))
        .collect();
    if options.strict == StrictLoad::KeyMatching {
        let (matched, renamed) = match_keys_by_position(kept, &model_params)?;
        report.renamed.extend(renamed);
        kept = matched;
    }
    let model_shapes: BTreeMap<&str, &Vec<usize>> =
        model_params.iter().map(|(k, s)| (k.as_str(), s)).collect();
    let mut to_apply = Vec::new();
    for (key, data) in kept {
        match model_shapes.get(key.as_str()) {
            None => report.unexpected.push(key),
            Some(shape) if **shape != data.shape().to_vec() => {
                report
                    .mismatched
                    .push((key, (*shape).clone(), data.shape().to_vec()))
            }
            Some(_) => {
                report.applied.push(key.clone());
                to_apply.push(bridge::from_data(data, key, None));
            }
        }
    }
    let applied: BTreeSet<&str> = report.applied.iter().map(String::as_str).collect();
    report.missing = model_params
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !applied.contains(k.as_str()))
        .filter(|k| !report.mismatched.iter().any(|(m, _, _)| m == *k))
        .cloned()
        .collect();
    if !report.mismatched.is_empty()
        || (options.strict != StrictLoad::Off
            && (!report.missing.is_empty() || !report.unexpected.is_empty()))
    {
        return Err(WeightsError::Incomplete {
            report: Box::new(report),
        });
    }
    let result = model.apply(to_apply, None, Some(Box::new(PyTorchToBurnAdapter)), true);
    if let Some(err) = result.errors.first() {
        return Err(WeightsError::Apply {
            source_name: report.source.clone(),
            message: err.to_string(),
        });
    }
    Ok((model, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_maps_are_regexes_applied_in_order() {
        let state: StateDict = ["layer1.0.shortcut.0.weight", "linear.bias", "conv1.weight"]
            .iter()
            .map(|k| (k.to_string(), TensorData::new(vec![0f32], [1])))
            .collect();
        let map = [
            (r"\.shortcut\.0\.", ".downsample.conv."),
            (r"^linear\.", "fc."),
        ];
        let (out, renamed) = apply_key_map(state, &map).unwrap();
        assert_eq!(
            out.keys().collect::<Vec<_>>(),
            ["conv1.weight", "fc.bias", "layer1.0.downsample.conv.weight"]
        );
        assert_eq!(renamed.len(), 2);
        let err = apply_key_map(StateDict::new(), &[("(", "")]).unwrap_err();
        assert!(err.to_string().contains("`(`"), "{err}");
        let two: StateDict = ["a.weight", "b.weight"]
            .iter()
            .map(|k| (k.to_string(), TensorData::new(vec![0f32], [1])))
            .collect();
        let err = apply_key_map(two, &[(r"^.*$", "x")]).unwrap_err();
        assert!(err.to_string().contains("both become `x`"), "{err}");
    }

    #[test]
    fn natural_order_compares_numbers() {
        let mut keys = vec!["layer10.w", "layer2.w", "layer1.w"];
        keys.sort_by_cached_key(|k| natural_key(k));
        assert_eq!(keys, ["layer1.w", "layer2.w", "layer10.w"]);
    }
}
