use std::path::PathBuf;

/// Errors raised while training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Reading or writing a file failed.
    #[error("{action} `{path}`: {source}")]
    Io {
        /// What was attempted ("cannot write checkpoint").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A checkpoint could not be read or applied.
    #[error("checkpoint `{path}`: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong, with the fix.
        message: String,
    },
    /// The loss became NaN or infinite; the last good checkpoint is kept.
    #[error(
        "non-finite loss at epoch {epoch}, step {step} ({components}); the run stopped and `{last_good}` holds the last good state: lower the learning rate or check the inputs"
    )]
    NonFiniteLoss {
        /// Epoch (0-based).
        epoch: usize,
        /// Step within the epoch (0-based).
        step: usize,
        /// The loss components as logged.
        components: String,
        /// Where the last good checkpoint is.
        last_good: String,
    },
    /// A training parameter is invalid.
    #[error("training_hyperparams.{key}: {message}")]
    Param {
        /// The offending key.
        key: String,
        /// What is wrong, with the fix.
        message: String,
    },
    /// The data pipeline failed.
    #[error(transparent)]
    Data(#[from] kd_data::DataError),
    /// Assembling the KD module failed.
    #[error(transparent)]
    Kd(#[from] kd_core::KdError),
}

impl TrainError {
    pub(crate) fn param(key: &str, message: impl Into<String>) -> Self {
        TrainError::Param {
            key: key.to_string(),
            message: message.into(),
        }
    }
}
