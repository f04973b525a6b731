//! `*_checkpoint_params`: building a network and loading its weights, as SuperGradients'
//! `models.get(..., checkpoint_path=..., strict_load=..., load_backbone=...,
//! checkpoint_num_classes=...)` does.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use kd_core::ImageClassifier;
use kd_models::{LoadOptions, LoadReport, StrictLoad, load_state_dict, read_state_dict};
use kd_trainer::load_student;
use serde_yaml::{Mapping, Value};

use crate::schema::CheckpointParams;
use crate::{Network, RecipeError, registry};

/// Reads `strict_load` (SuperGradients' `StrictLoad`): `true`/`on`/`no_key_matching` (the
/// default), `false`/`off`, or `key_matching`.
pub fn strict_load(value: &Option<Value>, key: &str) -> Result<StrictLoad, RecipeError> {
    let err = |v: &str| {
        RecipeError::invalid(
            key,
            format!(
                "`{v}` is not a strict_load mode: use true, false, key_matching or no_key_matching"
            ),
        )
    };
    Ok(match value {
        None | Some(Value::Bool(true)) => StrictLoad::On,
        Some(Value::Bool(false)) => StrictLoad::Off,
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "on" | "true" | "no_key_matching" => StrictLoad::On,
            "off" | "false" => StrictLoad::Off,
            "key_matching" => StrictLoad::KeyMatching,
            _ => return Err(err(s)),
        },
        Some(other) => return Err(err(&format!("{other:?}"))),
    })
}

/// The weights file named by `checkpoint_path`, or by `pretrained_weights` when it is a path.
pub fn checkpoint_file(
    params: &CheckpointParams,
    section: &str,
) -> Result<Option<PathBuf>, RecipeError> {
    let path = match (&params.checkpoint_path, &params.pretrained_weights) {
        (Some(p), _) => p.clone(),
        (None, Some(w)) if Path::new(w).is_file() => PathBuf::from(w),
        (None, Some(w)) => {
            return Err(RecipeError::invalid(
                &format!("{section}.pretrained_weights"),
                format!(
                    "`{w}` is neither a file nor weights kd can download (this build downloads nothing): download the weights and pass the file as `checkpoint_path`"
                ),
            ));
        }
        (None, None) => return Ok(None),
    };
    if !path.is_file() {
        return Err(RecipeError::invalid(
            &format!("{section}.checkpoint_path"),
            format!(
                "`{}` does not exist: check the path (relative paths start at the working folder)",
                path.display()
            ),
        ));
    }
    Ok(Some(path))
}

/// Builds `arch` with `arch_params` and applies `params` (see the module docs); `key` is
/// `student` or `teacher`. Each load prints its report on stderr.
///
/// With `checkpoint_num_classes`, the network is built with that many classes, loaded, and
/// its head replaced by a freshly initialised one of the recipe's class count.
pub fn build_network(
    arch: &str,
    arch_params: &Mapping,
    params: &CheckpointParams,
    key: &str,
    device: &Device,
) -> Result<Network, RecipeError> {
    let section = format!("{key}_checkpoint_params");
    let strict = strict_load(&params.strict_load, &format!("{section}.strict_load"))?;
    let Some(path) = checkpoint_file(params, &section)? else {
        for (name, set) in [
            (
                "checkpoint_num_classes",
                params.checkpoint_num_classes.is_some(),
            ),
            ("load_backbone", params.load_backbone == Some(true)),
        ] {
            if set {
                return Err(RecipeError::invalid(
                    &format!("{section}.{name}"),
                    "it applies to loaded weights, but no `checkpoint_path` is set: add one or remove the key",
                ));
            }
        }
        return registry::get(arch, arch_params, key, device);
    };
    let net = match params.checkpoint_num_classes {
        Some(n) => {
            let mut with_ckpt_head = arch_params.clone();
            with_ckpt_head.insert(Value::from("num_classes"), Value::from(n as u64));
            registry::get(arch, &with_ckpt_head, key, device)?
        }
        None => registry::get(arch, arch_params, key, device)?,
    };
    let (net, report) = load_into(
        net,
        &path,
        strict,
        params.load_backbone == Some(true),
        &section,
    )?;
    if let Some(report) = report {
        eprintln!("{key}: {report}");
    } else {
        eprintln!("{key}: loaded {}", path.display());
    }
    match params.checkpoint_num_classes {
        Some(_) => {
            let target = registry::num_classes(arch, arch_params, key)?;
            eprintln!(
                "{key}: replaced the {}-class head with a new {target}-class head",
                net.num_classes()
            );
            Ok(net.replace_head(target, device))
        }
        None => Ok(net),
    }
}

/// Loads `path` into `net`: kd's own `.bpk` records strictly, PyTorch and safetensors files
/// through the network's weight map.
fn load_into(
    net: Network,
    path: &Path,
    strict: StrictLoad,
    load_backbone: bool,
    section: &str,
) -> Result<(Network, Option<LoadReport>), RecipeError> {
    let is_bpk = path.extension().and_then(|e| e.to_str()) == Some("bpk");
    if is_bpk {
        if load_backbone || strict != StrictLoad::On {
            return Err(RecipeError::invalid(
                section,
                "kd `.bpk` checkpoints load strictly and whole: remove `load_backbone` and `strict_load`",
            ));
        }
        return Ok((load_student(net, path)?, None));
    }
    let weights_err = |source| RecipeError::Weights {
        key: section.to_string(),
        source,
    };
    let (mut state, source) = read_state_dict(path).map_err(weights_err)?;
    net.fix_state_dict(&mut state)
        .map_err(|e| RecipeError::invalid(section, format!("{}: {e}", path.display())))?;
    let options = LoadOptions {
        strict,
        load_backbone,
    };
    let map = net.weight_map();
    let (net, report) =
        load_state_dict(net, state, &source, &map, &options).map_err(weights_err)?;
    Ok((net, Some(report)))
}
