//! Loading timm BEiT state dicts: key names and the one fix-up they need.
//!
//! The Burn modules keep timm's field names (see the table in [`crate::beit`]), so once
//! burn-store's `PyTorchToBurnAdapter` has renamed layer-norm `weight`/`bias` to
//! `gamma`/`beta` and transposed the `Linear` weights, every timm key is already a Burn path:
//! [`TIMM_KEY_MAP`] is empty. What differs is content, which [`fix_timm_state_dict`] handles:
//! the `relative_position_index` buffers (computed here), a shared relative-position table in
//! pretraining checkpoints, and a fused `qkv` bias written by some exporters.
//!
//! A load therefore runs [`crate::read_state_dict`], [`fix_timm_state_dict`], then
//! [`crate::load_state_dict`] with [`BEIT_WEIGHTS`].

use std::collections::BTreeMap;

use burn::prelude::*;

use super::BeitConfig;
use super::rel_pos::relative_position_index;
use crate::ModelError;

/// Renames from timm keys to Burn paths as (regex on the timm key, replacement), applied in
/// order. Empty: timm's BEiT keys are the Burn paths (layer-norm and `Linear` differences are
/// the adapter's).
pub const TIMM_KEY_MAP: &[(&str, &str)] = &[];

/// Suffix of timm's relative-position index buffers.
pub const RELATIVE_POSITION_INDEX: &str = "relative_position_index";
/// Key of the shared relative-position table.
pub const SHARED_TABLE_KEY: &str = "rel_pos_bias.relative_position_bias_table";

/// The BEiT weight map: [`TIMM_KEY_MAP`], head `head.`.
pub const BEIT_WEIGHTS: crate::WeightMap = crate::WeightMap {
    key_map: TIMM_KEY_MAP,
    head_prefix: "head.",
    ignored: &[],
};

/// Brings a timm (or compatible) BEiT state dict to the entries a [`super::Beit`] built from
/// `config` has, in place:
///
/// 1. Drops every `*.relative_position_index` buffer, after checking that it equals the index
///    computed for `config`'s patch grid (a mismatch means a checkpoint for another image or
///    patch size).
/// 2. When `config` has per-block tables (`use_rel_pos_bias`, not `use_shared_rel_pos_bias`)
///    and the state dict a shared `rel_pos_bias.relative_position_bias_table` (BEiT
///    pretraining checkpoints), copies the shared table into every block and drops it, as
///    the BEiT fine-tuning code does.
/// 3. Splits a fused `blocks.i.attn.qkv.bias` `[3 D]` into `q_bias` and `v_bias`, refusing a
///    non-zero key part (the model has no key bias). With `qkv_bias` off in `config`, an
///    all-zero fused bias is dropped and a non-zero one refused.
pub fn fix_timm_state_dict(
    state: &mut BTreeMap<String, TensorData>,
    config: &BeitConfig,
) -> Result<(), ModelError> {
    drop_relative_position_index(state, config)?;
    share_rel_pos_table(state, config)?;
    split_fused_qkv_bias(state, config)
}

fn state_error(key: &str, reason: String) -> ModelError {
    ModelError::StateDict {
        key: key.to_string(),
        reason,
    }
}

fn drop_relative_position_index(
    state: &mut BTreeMap<String, TensorData>,
    config: &BeitConfig,
) -> Result<(), ModelError> {
    let grid = config.grid_size();
    let expected = relative_position_index([grid, grid]);
    let tokens = grid * grid + 1;
    let keys: Vec<String> = state
        .keys()
        .filter(|key| key.ends_with(RELATIVE_POSITION_INDEX))
        .cloned()
        .collect();
    for key in keys {
        let data = &state[&key];
        if data.shape().as_slice() != [tokens, tokens] {
            return Err(state_error(
                &key,
                format!(
                    "shape {:?} is not [{tokens}, {tokens}] for a {grid}x{grid} patch grid: \
                     the checkpoint is for another image or patch size, set them in the config",
                    data.shape().as_slice()
                ),
            ));
        }
        let values = data.try_to_vec_as::<i64>().map_err(|err| {
            state_error(
                &key,
                format!("cannot be read as integers ({err:?}): re-export it"),
            )
        })?;
        if let Some(at) = values.iter().zip(&expected).position(|(a, b)| a != b) {
            return Err(state_error(
                &key,
                format!(
                    "differs from the computed index at position {at} ({} vs {}): the \
                     checkpoint uses another index layout and cannot be loaded as is",
                    values[at], expected[at]
                ),
            ));
        }
        state.remove(&key);
    }
    Ok(())
}

fn share_rel_pos_table(
    state: &mut BTreeMap<String, TensorData>,
    config: &BeitConfig,
) -> Result<(), ModelError> {
    if !config.use_rel_pos_bias || config.use_shared_rel_pos_bias {
        return Ok(());
    }
    let Some(table) = state.remove(SHARED_TABLE_KEY) else {
        return Ok(());
    };
    for i in 0..config.depth {
        let key = format!("blocks.{i}.attn.relative_position_bias_table");
        if state.contains_key(&key) {
            return Err(state_error(
                &key,
                format!(
                    "present beside the shared `{SHARED_TABLE_KEY}`: drop one of them, or set \
                     use_shared_rel_pos_bias to use both"
                ),
            ));
        }
        state.insert(key, table.clone());
    }
    Ok(())
}

fn split_fused_qkv_bias(
    state: &mut BTreeMap<String, TensorData>,
    config: &BeitConfig,
) -> Result<(), ModelError> {
    let keys: Vec<String> = state
        .keys()
        .filter(|key| key.starts_with("blocks.") && key.ends_with(".attn.qkv.bias"))
        .cloned()
        .collect();
    let dim = config.embed_dim;
    for key in keys {
        let prefix = key.trim_end_matches("qkv.bias");
        let data = &state[&key];
        if data.shape().as_slice() != [3 * dim] {
            return Err(state_error(
                &key,
                format!(
                    "shape {:?} is not [{}] (3 x embed_dim): check embed_dim",
                    data.shape().as_slice(),
                    3 * dim
                ),
            ));
        }
        let dtype = data.dtype();
        let values = data.try_to_vec_as::<f64>().map_err(|err| {
            state_error(
                &key,
                format!("cannot be read as floats ({err:?}): re-export it"),
            )
        })?;
        let (q, rest) = values.split_at(dim);
        let (k, v) = rest.split_at(dim);
        if let Some(at) = k.iter().position(|&x| x != 0.0) {
            return Err(state_error(
                &key,
                format!(
                    "key bias element {at} is {} but BEiT has no key bias: such weights \
                     cannot be loaded into this model",
                    k[at]
                ),
            ));
        }
        if !config.qkv_bias {
            if q.iter().chain(v).any(|&x| x != 0.0) {
                return Err(state_error(
                    &key,
                    "holds non-zero query or value biases but the config has qkv_bias false: \
                     set qkv_bias to true"
                        .into(),
                ));
            }
            state.remove(&key);
            continue;
        }
        let mut part = |name: &str, values: &[f64]| -> Result<(), ModelError> {
            let target = format!("{prefix}{name}");
            if state.contains_key(&target) {
                return Err(state_error(
                    &key,
                    format!(
                        "present beside `{target}`: keep either the fused or the separate biases"
                    ),
                ));
            }
            let data = TensorData::new(values.to_vec(), [dim])
                .try_cast(dtype)
                .map_err(|err| state_error(&key, format!("cannot be cast back ({err:?})")))?;
            state.insert(target, data);
            Ok(())
        };
        part("q_bias", q)?;
        part("v_bias", v)?;
        state.remove(&key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BeitConfig {
        BeitConfig::beit_base_patch16_224(10)
            .with_image_size(12)
            .with_patch_size(4)
            .with_embed_dim(4)
            .with_depth(2)
            .with_num_heads(2)
    }

    fn floats(data: &TensorData) -> Vec<f32> {
        data.try_to_vec::<f32>().unwrap()
    }

    /// The index of a 3x3 grid as timm writes it (int64), row-major.
    fn timm_index() -> TensorData {
        TensorData::new(relative_position_index([3, 3]), [10, 10])
    }

    #[test]
    fn drops_matching_index_buffers_and_refuses_others() {
        let mut state = BTreeMap::from([
            (
                "blocks.0.attn.relative_position_index".to_string(),
                timm_index(),
            ),
            (
                "rel_pos_bias.relative_position_index".to_string(),
                timm_index(),
            ),
            (
                "cls_token".to_string(),
                TensorData::new(vec![0f32; 4], [1, 1, 4]),
            ),
        ]);
        fix_timm_state_dict(&mut state, &config()).unwrap();
        assert_eq!(state.keys().collect::<Vec<_>>(), ["cls_token"]);

        let mut wrong = relative_position_index([3, 3]);
        wrong[17] += 1;
        let mut state = BTreeMap::from([(
            "blocks.1.attn.relative_position_index".to_string(),
            TensorData::new(wrong, [10, 10]),
        )]);
        let err = fix_timm_state_dict(&mut state, &config())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("blocks.1.attn.relative_position_index"),
            "{err}"
        );
        assert!(err.contains("position 17"), "{err}");

        // A 4x4 grid's index does not fit a 3x3 grid.
        let mut state = BTreeMap::from([(
            "blocks.0.attn.relative_position_index".to_string(),
            TensorData::new(relative_position_index([4, 4]), [17, 17]),
        )]);
        let err = fix_timm_state_dict(&mut state, &config())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is not [10, 10] for a 3x3 patch grid"),
            "{err}"
        );
    }

    #[test]
    fn copies_a_shared_table_into_every_block() {
        let table = TensorData::new((0..50).map(|i| i as f32).collect::<Vec<_>>(), [25, 2]);
        let mut state = BTreeMap::from([(SHARED_TABLE_KEY.to_string(), table.clone())]);
        fix_timm_state_dict(&mut state, &config()).unwrap();
        assert_eq!(
            state.keys().collect::<Vec<_>>(),
            [
                "blocks.0.attn.relative_position_bias_table",
                "blocks.1.attn.relative_position_bias_table"
            ]
        );
        assert!(state.values().all(|t| floats(t) == floats(&table)));

        // A config with a shared table keeps it.
        let shared = config()
            .with_use_rel_pos_bias(false)
            .with_use_shared_rel_pos_bias(true);
        let mut state = BTreeMap::from([(SHARED_TABLE_KEY.to_string(), table.clone())]);
        fix_timm_state_dict(&mut state, &shared).unwrap();
        assert_eq!(state.keys().collect::<Vec<_>>(), [SHARED_TABLE_KEY]);

        // Both kinds of table at once are ambiguous.
        let mut state = BTreeMap::from([
            (SHARED_TABLE_KEY.to_string(), table.clone()),
            (
                "blocks.1.attn.relative_position_bias_table".to_string(),
                table,
            ),
        ]);
        let err = fix_timm_state_dict(&mut state, &config())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`blocks.1.attn.relative_position_bias_table`"),
            "{err}"
        );
    }

    #[test]
    fn splits_a_fused_qkv_bias() {
        let fused = vec![1f32, 2., 3., 4., 0., 0., 0., 0., 5., 6., 7., 8.];
        let mut state = BTreeMap::from([(
            "blocks.1.attn.qkv.bias".to_string(),
            TensorData::new(fused.clone(), [12]),
        )]);
        fix_timm_state_dict(&mut state, &config()).unwrap();
        assert_eq!(
            state.keys().collect::<Vec<_>>(),
            ["blocks.1.attn.q_bias", "blocks.1.attn.v_bias"]
        );
        assert_eq!(floats(&state["blocks.1.attn.q_bias"]), [1., 2., 3., 4.]);
        assert_eq!(floats(&state["blocks.1.attn.v_bias"]), [5., 6., 7., 8.]);

        let mut with_k = fused.clone();
        with_k[6] = 0.5;
        let mut state = BTreeMap::from([(
            "blocks.0.attn.qkv.bias".to_string(),
            TensorData::new(with_k, [12]),
        )]);
        let err = fix_timm_state_dict(&mut state, &config())
            .unwrap_err()
            .to_string();
        assert!(err.contains("`blocks.0.attn.qkv.bias`"), "{err}");
        assert!(err.contains("key bias element 2 is 0.5"), "{err}");

        let mut state = BTreeMap::from([
            (
                "blocks.0.attn.qkv.bias".to_string(),
                TensorData::new(fused.clone(), [12]),
            ),
            (
                "blocks.0.attn.q_bias".to_string(),
                TensorData::new(vec![0f32; 4], [4]),
            ),
        ]);
        let err = fix_timm_state_dict(&mut state, &config())
            .unwrap_err()
            .to_string();
        assert!(err.contains("beside `blocks.0.attn.q_bias`"), "{err}");

        // Without qkv_bias, zeros are dropped and values refused.
        let no_bias = config().with_qkv_bias(false);
        let mut state = BTreeMap::from([(
            "blocks.0.attn.qkv.bias".to_string(),
            TensorData::new(vec![0f32; 12], [12]),
        )]);
        fix_timm_state_dict(&mut state, &no_bias).unwrap();
        assert!(state.is_empty());
        let mut state = BTreeMap::from([(
            "blocks.0.attn.qkv.bias".to_string(),
            TensorData::new(fused, [12]),
        )]);
        let err = fix_timm_state_dict(&mut state, &no_bias)
            .unwrap_err()
            .to_string();
        assert!(err.contains("set qkv_bias to true"), "{err}");
    }
}
