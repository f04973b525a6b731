/// What a KD module returns for one batch: the student's and the teacher's outputs.
///
/// The field types are free, so a custom KD module can return intermediate features
/// (for feature distillation) instead of, or next to, logits.
#[derive(Debug, Clone)]
pub struct KdOutput<S, T = S> {
    /// The student's output; metrics are computed on its logits.
    pub student_output: S,
    /// The teacher's output, computed without gradients.
    pub teacher_output: T,
}
