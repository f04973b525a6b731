use burn::module::{Module, ModuleDisplay};
use burn::prelude::*;
use burn::store::{ModuleRecord, RecordError};

/// One intermediate output of a network, addressed by a tap name.
#[derive(Debug, Clone)]
pub enum Feature {
    /// A convolutional feature map, `[batch, channels, height, width]`.
    Map(Tensor<4>),
    /// A token sequence, `[batch, tokens, dim]`.
    Tokens(Tensor<3>),
    /// A vector per sample, `[batch, dim]` (for example `pre_logits`).
    Vector(Tensor<2>),
}

impl Feature {
    /// The same feature, detached from the autodiff graph.
    pub fn detach(self) -> Self {
        match self {
            Feature::Map(t) => Feature::Map(t.detach()),
            Feature::Tokens(t) => Feature::Tokens(t.detach()),
            Feature::Vector(t) => Feature::Vector(t.detach()),
        }
    }

    /// The same feature in `dtype` (a no-op when it already is).
    pub fn cast(self, dtype: burn::tensor::FloatDType) -> Self {
        match self {
            Feature::Map(t) => Feature::Map(t.cast(dtype)),
            Feature::Tokens(t) => Feature::Tokens(t.cast(dtype)),
            Feature::Vector(t) => Feature::Vector(t.cast(dtype)),
        }
    }

    /// The tensor's dimensions.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Feature::Map(t) => t.dims().to_vec(),
            Feature::Tokens(t) => t.dims().to_vec(),
            Feature::Vector(t) => t.dims().to_vec(),
        }
    }
}

/// An image classifier usable as a student or a teacher.
///
/// Every model of the zoo implements it. Besides `forward`, a classifier names its
/// intermediate outputs ("feature taps", such as `layer3` or `pre_logits`) so that
/// feature-distillation losses can address them by name.
pub trait ImageClassifier: Module + ModuleDisplay {
    /// Logits, `[batch, num_classes]`, for images `[batch, channels, height, width]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<2>;

    /// The number of classes the head predicts.
    fn num_classes(&self) -> usize;

    /// The names of the feature taps, in forward order.
    fn tap_names(&self) -> Vec<&'static str>;

    /// Logits plus the requested taps, in the order asked.
    ///
    /// Names must come from [`tap_names`](Self::tap_names); callers check them once when a
    /// run is built (see [`check_taps`]), so an unknown name here is a programming error.
    fn forward_with_taps(&self, x: Tensor<4>, taps: &[&str]) -> (Tensor<2>, Vec<Feature>);

    /// The record saved as this network's checkpoint (`ckpt_best`).
    ///
    /// A wrapper (an enum over architectures, say) returns its inner network's record, so the
    /// file loads into the bare network.
    fn checkpoint_record(&self) -> ModuleRecord {
        self.clone().into_record()
    }

    /// Loads a record written by [`checkpoint_record`](Self::checkpoint_record), strictly.
    fn load_checkpoint_record(self, record: ModuleRecord) -> Result<Self, RecordError> {
        self.try_load_record(record)
    }
}

/// Checks that every requested tap exists, with a did-you-mean for the first unknown one.
pub fn check_taps(available: &[&str], requested: &[&str]) -> Result<(), crate::KdError> {
    match requested.iter().find(|name| !available.contains(name)) {
        None => Ok(()),
        Some(name) => Err(crate::KdError::UnknownTap {
            name: name.to_string(),
            suggestion: crate::did_you_mean(name, available.iter().copied()),
            available: available.join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tap_suggests_the_closest() {
        let err = check_taps(&["stem", "layer1", "layer2"], &["layer1", "layr2"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("did you mean `layer2`"), "{msg}");
        assert!(msg.contains("stem, layer1, layer2"), "{msg}");
    }
}
