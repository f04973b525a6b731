/// Errors raised while configuring a loss.
///
/// Each variant carries the configuration key it is about; [`LossError::prefixed`] lets a
/// caller that nests loss configurations (a recipe, a composite loss) lengthen that key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LossError {
    /// Label smoothing outside `[0, 1)`.
    #[error(
        "`{key}` is {value} but must be in [0, 1): use 0 for no smoothing or a small value such as 0.1"
    )]
    LabelSmoothing {
        /// The offending key, such as `label_smoothing` or `task_loss.label_smoothing`.
        key: String,
        /// The offending value.
        value: f64,
    },
    /// Distillation weight outside `[0, 1]`.
    #[error(
        "`{key}` is {value} but must be in [0, 1]: 0 trains on the task loss alone, 1 on the distillation loss alone (SuperGradients' default is 0.5)"
    )]
    DistillationCoeff {
        /// The offending key, such as `distillation_loss_coeff`.
        key: String,
        /// The offending value.
        value: f64,
    },
    /// A temperature that is not a positive finite number.
    #[error(
        "`{key}` is {value} but must be positive and finite: use a value such as 4.0, or leave it unset for SuperGradients' behaviour (T = 1, no T² factor)"
    )]
    Temperature {
        /// The offending key, such as `temperature`.
        key: String,
        /// The offending value.
        value: f64,
    },
    /// A hyper-parameter outside its valid range.
    #[error("`{key}` is {value} but must be {expected}")]
    InvalidValue {
        /// The offending key, such as `beta` or `angle_weight`.
        key: String,
        /// The offending value.
        value: f64,
        /// The valid range and the usual value, such as
        /// `non-negative and finite: the paper uses 8 on CIFAR-100`.
        expected: String,
    },
    /// Student and teacher inputs (per-sample shapes, without the batch dimension) that a
    /// loss cannot combine.
    #[error(
        "{loss} cannot pair student shape {student:?} with teacher shape {teacher:?}: {reason}"
    )]
    IncompatibleShapes {
        /// Where the loss sits in a larger configuration; empty for a loss on its own.
        key: String,
        /// The loss, such as `attention_transfer`.
        loss: String,
        /// The student's per-sample shape.
        student: Vec<usize>,
        /// The teacher's per-sample shape.
        teacher: Vec<usize>,
        /// What must hold and how to get there.
        reason: String,
    },
    /// A logit loss given too few classes.
    #[error("{loss} needs at least {min} classes, got {got}: {reason}")]
    TooFewClasses {
        /// Where the loss sits in a larger configuration; empty for a loss on its own.
        key: String,
        /// The loss, such as `dkd`.
        loss: String,
        /// The fewest classes the loss is defined for.
        min: usize,
        /// The number of classes it was given.
        got: usize,
        /// Why, and what to use instead.
        reason: String,
    },
    /// Student and teacher lists of feature maps of different lengths (or empty).
    #[error(
        "`{key}` has {student} student and {teacher} teacher feature maps: tap the same number of layers (at least one) on both networks, listed shallow to deep"
    )]
    StageCount {
        /// The offending key, such as `features`.
        key: String,
        /// The number of student maps.
        student: usize,
        /// The number of teacher maps.
        teacher: usize,
    },
    /// A setting without a default that was left unset.
    #[error("`{key}` is not set: {hint}")]
    Missing {
        /// The missing key, such as `n_data`.
        key: String,
        /// What to set it to.
        hint: String,
    },
    /// An error in one term of a composed loss.
    #[error("`terms[{index}]` ({name}): {source}")]
    InTerm {
        /// The term's position.
        index: usize,
        /// The term's method name.
        name: &'static str,
        /// What is wrong with it.
        source: Box<LossError>,
    },
}

impl LossError {
    /// The configuration key the error is about.
    pub fn key(&self) -> &str {
        match self {
            LossError::LabelSmoothing { key, .. }
            | LossError::DistillationCoeff { key, .. }
            | LossError::Temperature { key, .. }
            | LossError::InvalidValue { key, .. }
            | LossError::IncompatibleShapes { key, .. }
            | LossError::TooFewClasses { key, .. }
            | LossError::StageCount { key, .. }
            | LossError::Missing { key, .. } => key,
            LossError::InTerm { source, .. } => source.key(),
        }
    }

    /// The same error with `prefix.` put in front of its key (`task_loss` gives
    /// `task_loss.label_smoothing`); an empty key (a shape error of a loss on its own) becomes
    /// `prefix`.
    pub fn prefixed(self, prefix: &str) -> Self {
        let join = |key: String| {
            if key.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}.{key}")
            }
        };
        match self {
            LossError::LabelSmoothing { key, value } => LossError::LabelSmoothing {
                key: join(key),
                value,
            },
            LossError::DistillationCoeff { key, value } => LossError::DistillationCoeff {
                key: join(key),
                value,
            },
            LossError::Temperature { key, value } => LossError::Temperature {
                key: join(key),
                value,
            },
            LossError::InvalidValue {
                key,
                value,
                expected,
            } => LossError::InvalidValue {
                key: join(key),
                value,
                expected,
            },
            LossError::IncompatibleShapes {
                key,
                loss,
                student,
                teacher,
                reason,
            } => LossError::IncompatibleShapes {
                key: join(key),
                loss,
                student,
                teacher,
                reason,
            },
            LossError::TooFewClasses {
                key,
                loss,
                min,
                got,
                reason,
            } => LossError::TooFewClasses {
                key: join(key),
                loss,
                min,
                got,
                reason,
            },
            LossError::StageCount {
                key,
                student,
                teacher,
            } => LossError::StageCount {
                key: join(key),
                student,
                teacher,
            },
            LossError::InTerm {
                index,
                name,
                source,
            } => LossError::InTerm {
                index,
                name,
                source: Box::new(source.prefixed(prefix)),
            },
            LossError::Missing { key, hint } => LossError::Missing {
                key: join(key),
                hint,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixing_lengthens_the_key() {
        let _rng = crate::test_rng::lock();
        let err = LossError::LabelSmoothing {
            key: "label_smoothing".into(),
            value: 1.0,
        }
        .prefixed("task_loss");
        assert_eq!(err.key(), "task_loss.label_smoothing");
        let msg = err.to_string();
        assert!(
            msg.starts_with("`task_loss.label_smoothing` is 1 "),
            "{msg}"
        );
        assert!(!msg.ends_with('.'), "{msg}");
    }

    #[test]
    fn an_empty_key_becomes_the_prefix() {
        let _rng = crate::test_rng::lock();
        let err = LossError::TooFewClasses {
            key: String::new(),
            loss: "dkd".into(),
            min: 3,
            got: 2,
            reason: "use hinton_kd".into(),
        };
        assert_eq!(err.key(), "");
        let err = err.prefixed("distillation.losses.0").prefixed("recipe");
        assert_eq!(err.key(), "recipe.distillation.losses.0");
        assert!(
            err.to_string()
                .starts_with("dkd needs at least 3 classes, got 2")
        );
    }
}
