use std::path::PathBuf;

/// Errors raised while reading a recipe or turning it into a run.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The recipe file cannot be read.
    #[error("cannot read recipe `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("{file}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key is unknown, has the wrong type or an invalid value.
    #[error("{file}: `{key}`{line}: {message}")]
    Schema {
        /// The file.
        file: String,
        /// Dotted path of the key.
        key: String,
        /// ` (line N)` when found, or empty.
        line: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A command-line override is malformed.
    #[error("override `{arg}`: {message}")]
    Override {
        /// The argument as given.
        arg: String,
        /// What is wrong.
        message: String,
    },
    /// An architecture name that is not in the registry.
    #[error("unknown architecture `{name}` in `{key}`{suggestion}; known: {known}")]
    UnknownArchitecture {
        /// The recipe key (`student_architecture`).
        key: String,
        /// The name given.
        name: String,
        /// ", did you mean `x`?" or empty.
        suggestion: String,
        /// The registered names.
        known: String,
    },
    /// A value that is well-typed but not usable.
    #[error("`{key}`: {message}")]
    Invalid {
        /// Dotted path of the key.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The data pipeline failed.
    #[error(transparent)]
    Data(#[from] kd_data::DataError),
    /// Training failed.
    #[error(transparent)]
    Train(#[from] kd_trainer::TrainError),
    /// A loss could not be built.
    #[error(transparent)]
    Loss(#[from] kd_losses::LossError),
    /// The KD module could not be built.
    #[error(transparent)]
    Kd(#[from] kd_core::KdError),
    /// Weights could not be read or do not fit the network.
    #[error("`{key}`: {source}")]
    Weights {
        /// The recipe section (`teacher_checkpoint_params`).
        key: String,
        /// What went wrong, naming the file, keys and shapes.
        source: kd_models::WeightsError,
    },
}

impl RecipeError {
    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        RecipeError::Invalid {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

pub(crate) use kd_core::did_you_mean;
