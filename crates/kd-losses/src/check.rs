//! Checks shared by the loss configurations: hyper-parameter ranges and student/teacher shapes.
//!
//! Shapes are per sample, without the batch dimension: `[K]` for logits, `[C, H, W]` for maps.

use crate::LossError;

/// `value` must be positive and finite; `hint` names the usual value.
pub(crate) fn positive(key: &str, value: f64, hint: &str) -> Result<(), LossError> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(invalid(key, value, format!("positive and finite: {hint}")))
    }
}

/// `value` must be zero or positive, and finite; `hint` names the usual value.
pub(crate) fn non_negative(key: &str, value: f64, hint: &str) -> Result<(), LossError> {
    if value >= 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(invalid(
            key,
            value,
            format!("non-negative and finite: {hint}"),
        ))
    }
}

/// An [`LossError::InvalidValue`].
pub(crate) fn invalid(key: &str, value: f64, expected: String) -> LossError {
    LossError::InvalidValue {
        key: key.into(),
        value,
        expected,
    }
}

/// An [`LossError::IncompatibleShapes`] for a loss on its own (empty key).
pub(crate) fn incompatible(
    loss: &str,
    student: &[usize],
    teacher: &[usize],
    reason: String,
) -> LossError {
    LossError::IncompatibleShapes {
        key: String::new(),
        loss: loss.into(),
        student: student.to_vec(),
        teacher: teacher.to_vec(),
        reason,
    }
}

/// Logits `[K]` on both sides, with the same `K > 0`.
pub(crate) fn logits(loss: &str, student: &[usize], teacher: &[usize]) -> Result<(), LossError> {
    if student.len() != 1 || teacher.len() != 1 {
        return Err(incompatible(
            loss,
            student,
            teacher,
            "both must be logits of shape [num_classes]; tap the classifier outputs".into(),
        ));
    }
    non_empty(loss, student, teacher)?;
    if student != teacher {
        return Err(incompatible(
            loss,
            student,
            teacher,
            "student and teacher must predict the same number of classes".into(),
        ));
    }
    Ok(())
}

/// Feature maps `[C, H, W]` on both sides with the same `H` and `W` (channels may differ).
pub(crate) fn maps_with_equal_spatial_size(
    loss: &str,
    student: &[usize],
    teacher: &[usize],
) -> Result<(), LossError> {
    if student.len() != 3 || teacher.len() != 3 {
        return Err(incompatible(
            loss,
            student,
            teacher,
            "both must be feature maps of shape [channels, height, width]; tap convolutional \
             stages"
                .into(),
        ));
    }
    non_empty(loss, student, teacher)?;
    if student[1..] != teacher[1..] {
        return Err(incompatible(
            loss,
            student,
            teacher,
            format!(
                "the spatial sizes must match ({}x{} vs {}x{}); tap a student and a teacher \
                 stage of the same resolution",
                student[1], student[2], teacher[1], teacher[2]
            ),
        ));
    }
    Ok(())
}

/// Features of any shape with at least one element each (they are flattened per sample).
pub(crate) fn non_empty(loss: &str, student: &[usize], teacher: &[usize]) -> Result<(), LossError> {
    if student.contains(&0) || teacher.contains(&0) {
        return Err(incompatible(
            loss,
            student,
            teacher,
            "each sample's features must have at least one element".into(),
        ));
    }
    Ok(())
}

/// Features that flatten to the same number of elements per sample.
pub(crate) fn equal_width(
    loss: &str,
    student: &[usize],
    teacher: &[usize],
) -> Result<(), LossError> {
    non_empty(loss, student, teacher)?;
    let (s, t) = (
        student.iter().product::<usize>(),
        teacher.iter().product::<usize>(),
    );
    if s != t {
        return Err(incompatible(
            loss,
            student,
            teacher,
            format!(
                "the flattened embeddings must have the same width ({s} vs {t}); project both \
                 to a common size with embedding heads first"
            ),
        ));
    }
    Ok(())
}
