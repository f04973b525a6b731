//! Names of ResNet parameters in torchvision state dicts.
//!
//! The Burn modules keep torchvision's field names, so only these differ:
//!
//! | Burn (store path) | torchvision key | applied by |
//! |---|---|---|
//! | `…downsample.conv.…` | `…downsample.0.…` | [`TORCHVISION_KEY_MAP`] |
//! | `…downsample.bn.…` | `…downsample.1.…` | [`TORCHVISION_KEY_MAP`] |
//! | `<bn>.gamma`, `<bn>.beta` | `<bn>.weight`, `<bn>.bias` | [`BATCH_NORM_PARAM_MAP`]; burn-store's `PyTorchToBurnAdapter` when loading |
//! | `fc.weight` `[in, out]` | `fc.weight` `[out, in]` | a transpose; `PyTorchToBurnAdapter` when loading |
//! | `layer1.0.BasicBlock.conv1.weight` (native record) | `layer1.0.conv1.weight` | [`BLOCK_VARIANTS`] dropped; `skip_enum_variants` in burn-store |
//!
//! To load a torchvision file with burn-store, turn each [`TORCHVISION_KEY_MAP`] pair into a
//! key remapping from torch to Burn, for example
//! `PytorchStore::with_key_remapping(r"(^|\.)downsample\.0\.", "${1}downsample.conv.")`.
//! The same table serves the CIFAR ResNets ([`crate::ResNetCifar`]), whose reference
//! implementations use the same keys, and [`crate::SmallCnn`], which needs only the batch-norm
//! renames.

/// Structural renames as (Burn path segments, torchvision key segments), both dot-separated.
pub const TORCHVISION_KEY_MAP: &[(&str, &str)] = &[
    ("downsample.conv", "downsample.0"),
    ("downsample.bn", "downsample.1"),
];

/// Parameter renames inside a batch norm as (Burn name, PyTorch name).
pub const BATCH_NORM_PARAM_MAP: &[(&str, &str)] = &[("gamma", "weight"), ("beta", "bias")];

/// Enum variant names that `#[derive(Module)]` adds to native record paths of ResNet blocks.
pub const BLOCK_VARIANTS: &[&str] = &["BasicBlock", "Bottleneck"];

/// Applies [`TORCHVISION_KEY_MAP`] to dot-separated `segments`, Burn to torch or back.
fn rename_structure(segments: &[&str], to_torch: bool) -> String {
    let patterns: Vec<(Vec<&str>, Vec<&str>)> = TORCHVISION_KEY_MAP
        .iter()
        .map(|&(burn, torch)| {
            let (from, to) = if to_torch {
                (burn, torch)
            } else {
                (torch, burn)
            };
            (from.split('.').collect(), to.split('.').collect())
        })
        .collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let mut rest = segments;
    while let Some((first, tail)) = rest.split_first() {
        match patterns.iter().find(|(from, _)| rest.starts_with(from)) {
            Some((from, to)) => {
                out.extend(to);
                rest = &rest[from.len()..];
            }
            None => {
                out.push(first);
                rest = tail;
            }
        }
    }
    out.join(".")
}

/// The torchvision state-dict key of a Burn parameter path.
///
/// Accepts native record paths (with `BasicBlock`/`Bottleneck` segments) and burn-store paths
/// (without). Batch-norm `gamma`/`beta` leaves become `weight`/`bias`; Burn has no other
/// parameters with those names. The Linear transpose is not a key change and is left to the
/// caller.
pub fn burn_to_torchvision_key(path: &str) -> String {
    let segments: Vec<&str> = path
        .split('.')
        .filter(|segment| !BLOCK_VARIANTS.contains(segment))
        .collect();
    let mut segments = segments;
    if let Some(last) = segments.last_mut()
        && let Some((_, torch)) = BATCH_NORM_PARAM_MAP.iter().find(|(burn, _)| burn == last)
    {
        *last = torch;
    }
    rename_structure(&segments, true)
}

/// The burn-store path of a torchvision key, up to the batch-norm renames.
///
/// Only the structural renames of [`TORCHVISION_KEY_MAP`] are applied: whether a `weight`
/// belongs to a batch norm depends on the module, which burn-store's `PyTorchToBurnAdapter`
/// knows when it applies [`BATCH_NORM_PARAM_MAP`].
pub fn torchvision_to_burn_key(key: &str) -> String {
    let segments: Vec<&str> = key.split('.').collect();
    rename_structure(&segments, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_burn_paths_to_torchvision_keys() {
        let cases = [
            ("conv1.weight", "conv1.weight"),
            ("bn1.gamma", "bn1.weight"),
            ("bn1.running_var", "bn1.running_var"),
            ("layer1.0.BasicBlock.bn2.beta", "layer1.0.bn2.bias"),
            (
                "layer2.0.downsample.conv.weight",
                "layer2.0.downsample.0.weight",
            ),
            (
                "layer3.0.Bottleneck.downsample.bn.gamma",
                "layer3.0.downsample.1.weight",
            ),
            (
                "layer3.0.downsample.bn.running_mean",
                "layer3.0.downsample.1.running_mean",
            ),
            ("fc.weight", "fc.weight"),
            ("stage1.bn.gamma", "stage1.bn.weight"),
        ];
        for (burn, torch) in cases {
            assert_eq!(burn_to_torchvision_key(burn), torch, "{burn}");
        }
    }

    #[test]
    fn maps_torchvision_keys_back_structurally() {
        assert_eq!(
            torchvision_to_burn_key("layer4.0.downsample.0.weight"),
            "layer4.0.downsample.conv.weight"
        );
        assert_eq!(
            torchvision_to_burn_key("layer4.0.downsample.1.running_var"),
            "layer4.0.downsample.bn.running_var"
        );
        // A block index equal to 0 or 1 is not a downsample segment.
        assert_eq!(
            torchvision_to_burn_key("layer1.0.conv1.weight"),
            "layer1.0.conv1.weight"
        );
        assert_eq!(
            torchvision_to_burn_key("layer1.1.bn1.weight"),
            "layer1.1.bn1.weight"
        );
    }
}
