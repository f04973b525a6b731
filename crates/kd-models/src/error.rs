/// Errors raised while building a model from its configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A size in a configuration is zero.
    #[error("`{field}` of {model} is 0: give a positive value")]
    ZeroSize {
        /// The model family, such as `resnet`.
        model: &'static str,
        /// The offending field, such as `layers[2]`.
        field: String,
    },
    /// A CIFAR ResNet depth that is not of the form `6n + 2`.
    #[error(
        "resnet_cifar depth {depth} is not of the form 6n + 2 with n >= 1: use 8, 14, 20, 32, 44, 56 or 110"
    )]
    CifarDepth {
        /// The offending depth.
        depth: usize,
    },
    /// A wide ResNet depth that is not of the form `6n + 4`.
    #[error(
        "wide_resnet depth {depth} is not of the form 6n + 4 with n >= 1: use 10, 16, 22, 28 or 40"
    )]
    WrnDepth {
        /// The offending depth.
        depth: usize,
    },
    /// A probability (dropout, drop path) outside `[0, 1)`.
    #[error("`{field}` of {model} is {value}: give a rate in [0, 1)")]
    Rate {
        /// The model family.
        model: &'static str,
        /// The offending field.
        field: String,
        /// The offending value.
        value: f64,
    },
    /// A configuration value outside its valid range.
    #[error("`{field}` of {model} is invalid: {reason}")]
    InvalidConfig {
        /// The model family, such as `beit`.
        model: &'static str,
        /// The offending field, such as `image_size`.
        field: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// An input whose shape the model cannot take.
    #[error(
        "{model} expects input {expected}, got {found:?}: resize the images or change the config"
    )]
    InputShape {
        /// The model family, such as `beit`.
        model: &'static str,
        /// The accepted shape, in words.
        expected: String,
        /// The offending dimensions.
        found: Vec<usize>,
    },
    /// A state-dict entry that cannot be loaded into the model.
    #[error("state-dict key `{key}`: {reason}")]
    StateDict {
        /// The offending key.
        key: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// Errors raised while reading a checkpoint or loading it into a model.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WeightsError {
    /// The weights file does not exist.
    #[error("weights file {path} not found: check the path")]
    NotFound {
        /// The path given.
        path: std::path::PathBuf,
    },
    /// The file extension names no format kd reads.
    #[error(
        "{path}: unknown weights format: give a PyTorch `.pth`/`.pt`/`.bin`/`.ckpt`, a `.safetensors` or a kd `.bpk` file"
    )]
    Format {
        /// The path given.
        path: std::path::PathBuf,
    },
    /// The file could not be parsed.
    #[error("cannot read weights from {path}: {message}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// What the reader said.
        message: String,
    },
    /// The file holds no tensors.
    #[error("{path} holds no tensors: is it a state dict or a model checkpoint?")]
    Empty {
        /// The file.
        path: std::path::PathBuf,
    },
    /// A key-map pattern is not a valid regex.
    #[error("key map pattern `{pattern}` is not a valid regex: {message}")]
    KeyMap {
        /// The pattern.
        pattern: String,
        /// The regex error.
        message: String,
    },
    /// The key map renames two checkpoint keys to the same name.
    #[error(
        "two checkpoint keys both become `{renamed}` under the key map (one is `{key}`): fix the key map"
    )]
    KeyCollision {
        /// The second key that maps to `renamed`.
        key: String,
        /// The shared new name.
        renamed: String,
    },
    /// Key matching needs as many checkpoint tensors as model parameters.
    #[error(
        "key_matching pairs tensors by position, but the checkpoint has {checkpoint} tensors and the model {model} parameters: use strict_load: false or a key map"
    )]
    KeyMatchingCount {
        /// Checkpoint tensors (batch counters excluded).
        checkpoint: usize,
        /// Model parameters.
        model: usize,
    },
    /// Key matching paired two tensors of different shapes.
    #[error(
        "key_matching paired checkpoint `{checkpoint_key}` {checkpoint_shape:?} with model `{model_key}` {model_shape:?}: the architectures differ"
    )]
    KeyMatchingShape {
        /// The checkpoint key.
        checkpoint_key: String,
        /// Its shape.
        checkpoint_shape: Vec<usize>,
        /// The model parameter it was paired with.
        model_key: String,
        /// The model parameter's shape.
        model_shape: Vec<usize>,
    },
    /// The checkpoint does not fit the model.
    #[error("{}", incomplete_message(report))]
    Incomplete {
        /// What matched and what did not.
        report: Box<crate::LoadReport>,
    },
    /// burn-store refused a tensor.
    #[error("cannot apply weights from {source_name}: {message}")]
    Apply {
        /// The file.
        source_name: String,
        /// What burn-store said.
        message: String,
    },
}

fn incomplete_message(report: &crate::LoadReport) -> String {
    let mut parts = Vec::new();
    for (key, model, ckpt) in report.mismatched.iter().take(5) {
        parts.push(format!(
            "`{key}` has shape {ckpt:?} in the checkpoint but {model:?} in the model"
        ));
    }
    if report.mismatched.len() > 5 {
        parts.push(format!(
            "{} more shape mismatches",
            report.mismatched.len() - 5
        ));
    }
    let list = |names: &[String]| {
        let mut s = names
            .iter()
            .take(6)
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if names.len() > 6 {
            s.push_str(&format!(" and {} more", names.len() - 6));
        }
        s
    };
    if !report.missing.is_empty() {
        parts.push(format!(
            "{} missing: {}",
            report.missing.len(),
            list(&report.missing)
        ));
    }
    if !report.unexpected.is_empty() {
        parts.push(format!(
            "{} unexpected: {}",
            report.unexpected.len(),
            list(&report.unexpected)
        ));
    }
    let hint = if report.mismatched.is_empty() {
        "set `strict_load: false` to load the keys that match, or `load_backbone: true` to skip the head"
    } else {
        "for another class count set `checkpoint_num_classes` to the checkpoint's; otherwise the checkpoint belongs to another architecture"
    };
    format!(
        "checkpoint {} does not fit the model: {}; {hint}",
        report.source,
        parts.join("; ")
    )
}
