use burn::module::Module;
use burn::prelude::*;
use kd_core::{ImageClassifier, KdModule, KdOutput, Targets};

/// What the training loop knows about a batch besides its images.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// The batch's targets.
    pub targets: Targets,
    /// The dataset index of each sample, `[batch]`.
    pub indices: Tensor<1, Int>,
    /// The 0-based epoch.
    pub epoch: usize,
    /// Whether this is a training step (false in validation).
    pub training: bool,
}

/// A module the training loop can optimise: a plain classifier wrapped in [`Supervised`], or
/// any [`KdModule`].
pub trait TrainModule: Module {
    /// What the criterion receives.
    type Output;
    /// The network saved alone in `ckpt_best`.
    type Student: ImageClassifier;

    /// Runs the module on a batch.
    fn forward_train(&self, x: Tensor<4>, ctx: &StepContext) -> Self::Output;
    /// The logits on which metrics are computed.
    fn metric_logits(output: &Self::Output) -> Tensor<2>;
    /// The network saved in `ckpt_best`.
    fn student_module(&self) -> &Self::Student;
}

impl<K: KdModule> TrainModule for K {
    type Output = KdOutput<K::StudentOutput, K::TeacherOutput>;
    type Student = K::Student;

    fn forward_train(&self, x: Tensor<4>, ctx: &StepContext) -> Self::Output {
        // Training and validation indices name samples of different splits.
        if ctx.training {
            KdModule::forward_indexed(self, x, &ctx.indices)
        } else {
            KdModule::forward_validation(self, x, &ctx.indices)
        }
    }

    fn metric_logits(output: &Self::Output) -> Tensor<2> {
        K::student_logits(&output.student_output)
    }

    fn student_module(&self) -> &K::Student {
        self.student()
    }
}

/// A classifier trained on its own (no teacher): how [`crate::Trainer`] trains a teacher.
#[derive(Module, Debug)]
pub struct Supervised<M> {
    /// The network.
    pub net: M,
}

impl<M: ImageClassifier> TrainModule for Supervised<M> {
    type Output = Tensor<2>;
    type Student = M;

    fn forward_train(&self, x: Tensor<4>, _ctx: &StepContext) -> Tensor<2> {
        self.net.forward(x)
    }

    fn metric_logits(output: &Tensor<2>) -> Tensor<2> {
        output.clone()
    }

    fn student_module(&self) -> &M {
        &self.net
    }
}
