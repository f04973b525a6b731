/// Errors raised while assembling a KD module.
#[derive(Debug, thiserror::Error)]
pub enum KdError {
    /// Student and teacher disagree on the number of classes.
    #[error(
        "student predicts {student} classes but teacher predicts {teacher}: set the same `num_classes` in `student_arch_params` and `teacher_arch_params`"
    )]
    ClassCountMismatch {
        /// Student class count.
        student: usize,
        /// Teacher class count.
        teacher: usize,
    },
    /// The adapter statistics do not have one value per channel.
    #[error(
        "normalization adapter `{field}` has {found} values but `{reference}` has {expected}: give one value per channel"
    )]
    AdapterLength {
        /// Offending field.
        field: &'static str,
        /// Field whose length is the reference.
        reference: &'static str,
        /// Expected length.
        expected: usize,
        /// Found length.
        found: usize,
    },
    /// A standard deviation is zero or negative.
    #[error(
        "normalization adapter `{field}` holds {value} at channel {channel}: standard deviations must be positive"
    )]
    AdapterStd {
        /// Offending field.
        field: &'static str,
        /// Channel index.
        channel: usize,
        /// Offending value.
        value: f64,
    },
    /// A feature tap name the network does not offer.
    #[error("unknown feature tap `{name}`{suggestion}; available taps: {available}")]
    UnknownTap {
        /// Requested tap.
        name: String,
        /// ", did you mean `x`?" or empty.
        suggestion: String,
        /// Comma-separated tap names.
        available: String,
    },
    /// The backend cannot compute in the requested precision.
    #[error(
        "this backend ({device}) does not support {precision}: choose another `teacher_precision` (f32 always works)"
    )]
    UnsupportedPrecision {
        /// Requested precision.
        precision: crate::Precision,
        /// The device, as Burn prints it.
        device: String,
    },
    /// A teacher cache's verification rate is not a fraction.
    #[error(
        "teacher cache verify fraction {value} is not between 0 and 1: give a fraction such as 0.05"
    )]
    CacheVerifyFraction {
        /// Offending value.
        value: f64,
    },
    /// A teacher cache was asked for a teacher that runs in training mode.
    #[error(
        "the teacher cache needs a deterministic teacher: set `run_teacher_on_eval: true` or turn the cache off"
    )]
    CacheNeedsEvalTeacher,
}
