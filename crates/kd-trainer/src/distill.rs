use burn::module::Module;
use burn::prelude::*;
use kd_core::{Criterion, ImageClassifier, KdModel, LossOutput, Targets};
use kd_losses::{DistillationLoss, TappedOutput, TermContext};

use crate::{StepContext, TrainModule};

/// A KD module whose loss reads feature taps and may have trainable parts: a [`KdModel`] and
/// a [`DistillationLoss`] trained together.
///
/// The loss is part of the module, so the optimizer updates its connectors and embedding
/// heads with the student, and `ckpt_latest` saves them (and CRD's memory banks); `ckpt_best`
/// still holds the student alone. Train it with [`crate::KdTrainer::train_distill`].
#[derive(Module, Debug)]
pub struct DistillModel<S, T> {
    /// Student, teacher and input adapters.
    pub kd: KdModel<S, T>,
    /// The weighted terms, with their trainable parts.
    pub loss: DistillationLoss,
}

/// What a [`DistillModel`] returns for a batch: the student's logits and the loss.
#[derive(Debug, Clone)]
pub struct DistillOutput {
    /// The student's logits, on which metrics are computed.
    pub logits: Tensor<2>,
    /// The weighted sum and its components.
    pub loss: LossOutput,
}

impl<S: ImageClassifier, T: ImageClassifier> TrainModule for DistillModel<S, T> {
    type Output = DistillOutput;
    type Student = S;

    fn forward_train(&self, x: Tensor<4>, ctx: &StepContext) -> DistillOutput {
        let student_taps: Vec<&str> = self.loss.student_taps.iter().map(String::as_str).collect();
        let teacher_taps: Vec<&str> = self.loss.teacher_taps.iter().map(String::as_str).collect();
        let out = self.kd.forward_with_taps_indexed(
            x,
            &student_taps,
            &teacher_taps,
            &ctx.indices,
            ctx.training,
        );
        let (logits, features) = out.student_output;
        let (teacher_logits, teacher_features) = out.teacher_output;
        let student = TappedOutput { logits, features };
        let teacher = TappedOutput {
            logits: teacher_logits,
            features: teacher_features,
        };
        let term_ctx = TermContext {
            targets: &ctx.targets,
            indices: ctx.indices.clone(),
            epoch: ctx.epoch,
            training: ctx.training,
        };
        let loss = self.loss.forward(&student, &teacher, &term_ctx);
        DistillOutput {
            logits: student.logits,
            loss,
        }
    }

    fn metric_logits(output: &DistillOutput) -> Tensor<2> {
        output.logits.clone()
    }

    fn student_module(&self) -> &S {
        &self.kd.student
    }
}

/// The criterion of a [`DistillModel`]: the module computed the loss; this names its parts.
#[derive(Debug, Clone)]
pub struct ComputedLoss {
    name: String,
    components: Vec<String>,
}

impl ComputedLoss {
    /// The criterion for `loss`, logged under `name` (such as `DistillationLoss`).
    pub fn new(name: impl Into<String>, loss: &DistillationLoss) -> Self {
        Self {
            name: name.into(),
            components: loss.component_names(),
        }
    }
}

impl Criterion<DistillOutput> for ComputedLoss {
    fn name(&self) -> &str {
        &self.name
    }

    fn component_names(&self) -> Vec<String> {
        self.components.clone()
    }

    fn forward(&self, output: &DistillOutput, _targets: &Targets) -> LossOutput {
        output.loss.clone()
    }
}
