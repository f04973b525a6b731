//! How ResNet checkpoints map onto the Burn modules.
//!
//! The Burn modules keep torchvision's field names, so few keys differ:
//!
//! | checkpoint key | Burn path | source |
//! |---|---|---|
//! | `…downsample.0.…` / `…downsample.1.…` | `…downsample.conv.…` / `…downsample.bn.…` | torchvision, CRD's CIFAR ResNets |
//! | `…shortcut.0.…` / `…shortcut.1.…` | `…downsample.conv.…` / `…downsample.bn.…` | SuperGradients |
//! | `linear.…` | `fc.…` | SuperGradients |
//!
//! burn-store's `PyTorchToBurnAdapter` does the rest when loading: batch-norm
//! `weight`/`bias` become `gamma`/`beta`, and the `fc` weight is transposed (`[out, in]` in
//! PyTorch, `[in, out]` in Burn). `num_batches_tracked` buffers have no counterpart and are
//! ignored.

use crate::WeightMap;

/// Checkpoint key renames as (regex, replacement), applied in order.
pub const RESNET_KEY_MAP: &[(&str, &str)] = &[
    (r"(^|\.)downsample\.0\.", "${1}downsample.conv."),
    (r"(^|\.)downsample\.1\.", "${1}downsample.bn."),
    (r"(^|\.)shortcut\.0\.", "${1}downsample.conv."),
    (r"(^|\.)shortcut\.1\.", "${1}downsample.bn."),
    (r"^linear\.", "fc."),
];

/// The ResNet families' weight map: [`RESNET_KEY_MAP`], head `fc.`.
pub const RESNET_WEIGHTS: WeightMap = WeightMap {
    key_map: RESNET_KEY_MAP,
    head_prefix: "fc.",
    ignored: &[],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StateDict, apply_key_map};
    use burn::prelude::*;

    #[test]
    fn maps_torchvision_and_super_gradients_keys() {
        let keys = [
            (
                "layer2.0.downsample.0.weight",
                "layer2.0.downsample.conv.weight",
            ),
            (
                "layer2.0.downsample.1.running_var",
                "layer2.0.downsample.bn.running_var",
            ),
            (
                "layer3.0.shortcut.0.weight",
                "layer3.0.downsample.conv.weight",
            ),
            ("layer3.0.shortcut.1.bias", "layer3.0.downsample.bn.bias"),
            ("linear.weight", "fc.weight"),
            // Block indices 0 and 1 are not downsample segments.
            ("layer1.0.conv1.weight", "layer1.0.conv1.weight"),
            ("layer1.1.bn1.weight", "layer1.1.bn1.weight"),
            ("fc.bias", "fc.bias"),
        ];
        let state: StateDict = keys
            .iter()
            .map(|(k, _)| (k.to_string(), TensorData::new(vec![0f32], [1])))
            .collect();
        let (mapped, _) = apply_key_map(state, RESNET_KEY_MAP).unwrap();
        let mut expected: Vec<&str> = keys.iter().map(|(_, v)| *v).collect();
        expected.sort_unstable();
        assert_eq!(mapped.keys().collect::<Vec<_>>(), expected);
    }
}
