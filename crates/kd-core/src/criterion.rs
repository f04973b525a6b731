use burn::prelude::*;

/// Classification targets: hard class indices or soft distributions (mixup, smoothing).
#[derive(Debug, Clone)]
pub enum Targets {
    /// Class indices, `[batch]`.
    Hard(Tensor<1, Int>),
    /// Class probabilities, `[batch, num_classes]`, rows summing to one.
    Soft(Tensor<2>),
}

impl Targets {
    /// Hard class indices; soft targets give their argmax, as SuperGradients' metrics do.
    pub fn class_indices(&self) -> Tensor<1, Int> {
        match self {
            Targets::Hard(t) => t.clone(),
            Targets::Soft(t) => t.clone().argmax(1).squeeze_dim(1),
        }
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        match self {
            Targets::Hard(t) => t.dims()[0],
            Targets::Soft(t) => t.dims()[0],
        }
    }

    /// Targets as probabilities over `num_classes`, with label smoothing `eps`
    /// (`(1 - eps) * y + eps / num_classes`, PyTorch's convention).
    pub fn to_probs(&self, num_classes: usize, eps: f64) -> Tensor<2> {
        let probs = match self {
            Targets::Hard(t) => t.clone().one_hot::<2>(num_classes).float(),
            Targets::Soft(t) => t.clone(),
        };
        if eps > 0.0 {
            probs
                .mul_scalar(1.0 - eps)
                .add_scalar(eps / num_classes as f64)
        } else {
            probs
        }
    }

    /// Moves the targets to another device.
    pub fn to_device(self, device: &Device) -> Self {
        match self {
            Targets::Hard(t) => Targets::Hard(t.to_device(device)),
            Targets::Soft(t) => Targets::Soft(t.to_device(device)),
        }
    }
}

/// A loss value and its named components, as the training loop logs them.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// The scalar to differentiate, shape `[1]`.
    pub loss: Tensor<1>,
    /// Detached components in the order of [`Criterion::component_names`], shape `[n]`;
    /// the first is the total loss.
    pub components: Tensor<1>,
}

/// A training criterion over a model output `O` (logits, or a [`crate::KdOutput`]).
pub trait Criterion<O> {
    /// The class name used as a prefix in logs (`KdLogitsLoss/Task Loss`).
    fn name(&self) -> &str;
    /// The component names, total first (`Loss`, `Task Loss`, `Distillation Loss`).
    fn component_names(&self) -> Vec<String>;
    /// Computes the loss for one batch.
    fn forward(&self, output: &O, targets: &Targets) -> LossOutput;
}
