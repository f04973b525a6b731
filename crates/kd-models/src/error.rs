/// Errors raised while building a model from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
