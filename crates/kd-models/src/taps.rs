use burn::prelude::*;
use kd_core::Feature;

/// Collects the feature taps asked of one forward pass, in the order they were asked.
///
/// A network offers each of its taps once, as the forward pass reaches it; the collector keeps
/// a handle to the tensor only when that tap was requested, so unrequested taps cost nothing.
#[derive(Debug)]
pub(crate) struct TapCollector<'a> {
    requested: &'a [&'a str],
    slots: Vec<Option<Feature>>,
}

impl<'a> TapCollector<'a> {
    /// A collector for `requested` tap names.
    pub(crate) fn new(requested: &'a [&'a str]) -> Self {
        Self {
            requested,
            slots: vec![None; requested.len()],
        }
    }

    /// Whether any of the requested names is `name`.
    fn wants(&self, name: &str) -> bool {
        self.requested.contains(&name)
    }

    /// Records a feature map under `name` if it was requested.
    pub(crate) fn offer_map(&mut self, name: &str, map: &Tensor<4>) {
        if self.wants(name) {
            self.fill(name, Feature::Map(map.clone()));
        }
    }

    /// Records a per-sample vector under `name` if it was requested.
    pub(crate) fn offer_vector(&mut self, name: &str, vector: &Tensor<2>) {
        if self.wants(name) {
            self.fill(name, Feature::Vector(vector.clone()));
        }
    }

    fn fill(&mut self, name: &str, feature: Feature) {
        for (slot, requested) in self.slots.iter_mut().zip(self.requested) {
            if *requested == name {
                *slot = Some(feature.clone());
            }
        }
    }

    /// The collected features in request order; names never offered are left out.
    pub(crate) fn finish(self) -> Vec<Feature> {
        self.slots.into_iter().flatten().collect()
    }
}

/// Implements [`kd_core::ImageClassifier`] for a model that has `forward`,
/// `try_forward_with_taps`, a `num_classes` field and a constant list of taps.
///
/// Its `forward_with_taps` panics on a tap name not in the list; callers check names first
/// with [`kd_core::check_taps`] (as runs do when they are built) or call
/// `try_forward_with_taps`.
macro_rules! impl_image_classifier {
    ($model:ident, $taps:expr) => {
        impl kd_core::ImageClassifier for $model {
            fn forward(&self, x: Tensor<4>) -> Tensor<2> {
                $model::forward(self, x)
            }

            fn num_classes(&self) -> usize {
                self.num_classes
            }

            fn tap_names(&self) -> Vec<&'static str> {
                $taps.to_vec()
            }

            fn forward_with_taps(
                &self,
                x: Tensor<4>,
                taps: &[&str],
            ) -> (Tensor<2>, Vec<kd_core::Feature>) {
                self.try_forward_with_taps(x, taps)
                    .unwrap_or_else(|err| panic!("{err}"))
            }
        }
    };
}
pub(crate) use impl_image_classifier;

/// The head and the classifier contract of a CNN that ends in global average pooling and a
/// linear classifier: inherent `pre_logits`, `forward_head`, `forward`,
/// `try_forward_with_taps` (its taps plus `pre_logits`) and `replace_head`, and
/// [`kd_core::ImageClassifier`].
///
/// The model needs the fields `avgpool`, `fc` and `num_classes`, and a
/// `features_collecting(x, &mut TapCollector) -> Tensor<4>` that offers its map taps.
/// `zero_bias_head` says whether a replaced head starts with a zero bias.
macro_rules! impl_pooled_classifier {
    ($model:ident, $taps:expr, zero_bias_head = $zero_bias:expr) => {
        impl $model {
            /// Global average pool and flatten: `[batch, C, h, w] -> [batch, C]`.
            pub fn pre_logits(&self, features: Tensor<4>) -> Tensor<2> {
                self.avgpool.forward(features).flatten(1, 3)
            }

            /// Average pool, flatten and `fc`: features to logits `[batch, num_classes]`.
            pub fn forward_head(&self, features: Tensor<4>) -> Tensor<2> {
                self.fc.forward(self.pre_logits(features))
            }

            /// Logits `[batch, num_classes]` for images `[batch, in_channels, height, width]`.
            pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
                self.forward_head(self.forward_features(x))
            }

            /// Logits plus the requested taps (its map taps and `pre_logits`) from one
            /// forward pass, or an error naming an unknown tap.
            pub fn try_forward_with_taps(
                &self,
                x: Tensor<4>,
                taps: &[&str],
            ) -> Result<(Tensor<2>, Vec<kd_core::Feature>), kd_core::KdError> {
                kd_core::check_taps(&$taps, taps)?;
                let mut collector = crate::taps::TapCollector::new(taps);
                let features = self.features_collecting(x, &mut collector);
                let pooled = self.pre_logits(features);
                collector.offer_vector("pre_logits", &pooled);
                let logits = self.fc.forward(pooled);
                Ok((logits, collector.finish()))
            }

            /// Replaces the classifier with a freshly initialised one for `num_classes`
            /// classes, keeping every other weight.
            pub fn replace_head(mut self, num_classes: usize, device: &Device) -> Self {
                self.fc = crate::head::fresh_head(&self.fc, num_classes, $zero_bias, device);
                self.num_classes = num_classes;
                self
            }
        }

        crate::taps::impl_image_classifier!($model, $taps);
    };
}
pub(crate) use impl_pooled_classifier;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_request_order_and_duplicates() {
        let device = Device::flex();
        let map = Tensor::<4>::zeros([1, 2, 3, 3], &device);
        let vector = Tensor::<2>::ones([1, 5], &device);
        let requested = ["pre_logits", "stem", "pre_logits"];
        let mut taps = TapCollector::new(&requested);
        taps.offer_map("stem", &map);
        taps.offer_map("layer1", &map);
        taps.offer_vector("pre_logits", &vector);
        let features = taps.finish();
        let dims: Vec<Vec<usize>> = features.iter().map(Feature::dims).collect();
        assert_eq!(dims, vec![vec![1, 5], vec![1, 2, 3, 3], vec![1, 5]]);
    }
}
