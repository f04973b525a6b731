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
}
