//! Seed derivation: every random stream is a pure function of the loader seed, the epoch and,
//! for augmentation, the dataset index, so results do not depend on thread scheduling.

use rand::SeedableRng;
use rand::rngs::StdRng;

/// Stream tag of the per-epoch shuffle.
pub(crate) const SHUFFLE_STREAM: u64 = 0x5348_5546_464c_4521;
/// Stream tag of the per-sample augmentation.
pub(crate) const AUGMENT_STREAM: u64 = 0x4155_474d_454e_5421;
/// Stream tag of [`crate::Subset::random`].
pub(crate) const SUBSET_STREAM: u64 = 0x5355_4253_4554_2121;
/// Stream tag of repeated visits of a sample within an epoch.
pub(crate) const REPEAT_STREAM: u64 = 0x5245_5045_4154_2121;
/// Stream tag of batch mixing.
pub(crate) const MIX_STREAM: u64 = 0x4d49_5855_5021_2121;

/// The SplitMix64 finaliser, a bijective 64-bit mixer.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Mixes several values into one seed; the order of `parts` matters.
pub fn mix_seed(parts: &[u64]) -> u64 {
    parts.iter().fold(0, |h, &p| splitmix64(h ^ p))
}

/// The augmentation RNG of dataset sample `index` at `epoch` for a loader seeded with `seed`.
///
/// The loader draws every random transform parameter of that sample from this RNG, so a sample's
/// augmentation can be replayed outside the loader.
pub fn sample_rng(seed: u64, epoch: usize, index: usize) -> StdRng {
    StdRng::seed_from_u64(mix_seed(&[
        seed,
        AUGMENT_STREAM,
        epoch as u64,
        index as u64,
    ]))
}

/// The augmentation RNG of visit `repeat` (0 for the first) of dataset sample `index` at
/// `epoch`; the first visit uses [`sample_rng`], so loaders without repeats keep their streams.
pub fn repeat_rng(seed: u64, epoch: usize, index: usize, repeat: usize) -> StdRng {
    if repeat == 0 {
        return sample_rng(seed, epoch, index);
    }
    StdRng::seed_from_u64(mix_seed(&[
        seed,
        REPEAT_STREAM,
        epoch as u64,
        index as u64,
        repeat as u64,
    ]))
}

/// The RNG that mixes batch `batch` of epoch `epoch` of a loader seeded with `seed`.
pub(crate) fn mix_rng(seed: u64, epoch: usize, batch: usize) -> StdRng {
    StdRng::seed_from_u64(mix_seed(&[seed, MIX_STREAM, epoch as u64, batch as u64]))
}

/// The RNG that shuffles epoch `epoch` of a loader seeded with `seed`.
pub(crate) fn shuffle_rng(seed: u64, epoch: usize) -> StdRng {
    StdRng::seed_from_u64(mix_seed(&[seed, SHUFFLE_STREAM, epoch as u64]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn splitmix64_matches_reference_values() {
        // First outputs of the reference SplitMix64 generator seeded with 0 (Vigna's splitmix64.c),
        // whose state advances by the golden-ratio increment before each call.
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(0x9e37_79b9_7f4a_7c15), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn sample_rng_depends_on_every_part() {
        let draw = |s, e, i| sample_rng(s, e, i).random::<u64>();
        let base = draw(1, 2, 3);
        assert_eq!(base, draw(1, 2, 3));
        assert_ne!(base, draw(0, 2, 3));
        assert_ne!(base, draw(1, 3, 3));
        assert_ne!(base, draw(1, 2, 4));
        // Swapping epoch and index must not collide, as a plain xor would.
        assert_ne!(draw(1, 2, 3), draw(1, 3, 2));
    }
}
