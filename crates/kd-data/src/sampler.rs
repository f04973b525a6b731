//! Samplers: which dataset samples an epoch visits, in which order, on which replica.

use rand::seq::SliceRandom;

use crate::error::DataError;
use crate::seed::shuffle_rng;

/// One visit of a dataset sample in an epoch.
///
/// `repeat` counts the earlier visits of the same sample in the epoch's global order (over all
/// replicas), so repeated visits draw different augmentations: the loader seeds each visit
/// with [`crate::repeat_rng`]`(seed, epoch, index, repeat)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EpochItem {
    /// Dataset index.
    pub index: usize,
    /// Number of earlier visits of `index` in the epoch.
    pub repeat: usize,
}

/// Which samples an epoch visits and in which order.
///
/// The order starts from the dataset indices, shuffled per `(seed, epoch)` when the loader
/// shuffles; every replica computes the same global order, then takes its share.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Sampler {
    /// Every sample once.
    #[default]
    All,
    /// One replica's share (torch `DistributedSampler`): the order is padded by repeating its
    /// start up to a multiple of `num_replicas`, and replica `rank` takes positions `rank`,
    /// `rank + num_replicas`, ….
    Distributed {
        /// Number of replicas (processes) sharing the dataset.
        num_replicas: usize,
        /// This replica, in `0..num_replicas`.
        rank: usize,
    },
    /// Repeated augmentation (timm and SuperGradients `RepeatAugSampler`; Hoffer et al., 2020,
    /// "Augment your batch"): every sample of the order is visited `num_repeats` times in a
    /// row, the list is padded to a multiple of `num_replicas` and split like `Distributed`,
    /// and each replica keeps its first `⌊len / selected_round⌋ · selected_round /
    /// num_replicas` visits (`⌈len / num_replicas⌉` when `selected_round` is 0), so an epoch
    /// keeps its usual length with fewer distinct samples.
    RepeatAug {
        /// Visits per sample (timm's default 3).
        num_repeats: usize,
        /// Number of replicas sharing the dataset.
        num_replicas: usize,
        /// This replica.
        rank: usize,
        /// Rounding of the per-epoch sample count (timm's default 256; 0 disables it).
        selected_round: usize,
    },
}

impl Sampler {
    /// timm's `RepeatAugSampler(num_repeats)` on a single replica, with `selected_round` 256.
    pub fn repeat_aug(num_repeats: usize) -> Self {
        Sampler::RepeatAug {
            num_repeats,
            num_replicas: 1,
            rank: 0,
            selected_round: 256,
        }
    }

    /// Checks the replica settings, and that an epoch over `len` samples is not empty.
    pub fn validate(&self, len: usize) -> Result<(), DataError> {
        let bad = |field, reason: String| Err(DataError::InvalidSampler { field, reason });
        let (num_replicas, rank) = match *self {
            Sampler::All => return Ok(()),
            Sampler::Distributed { num_replicas, rank } => (num_replicas, rank),
            Sampler::RepeatAug {
                num_replicas,
                rank,
                num_repeats,
                ..
            } => {
                if num_repeats == 0 {
                    return bad(
                        "num_repeats",
                        "0 repeats visit nothing: use 1 or more (timm uses 3)".into(),
                    );
                }
                (num_replicas, rank)
            }
        };
        if num_replicas == 0 {
            return bad(
                "num_replicas",
                "0 replicas: use 1 for a single process".into(),
            );
        }
        if rank >= num_replicas {
            return bad(
                "rank",
                format!("rank {rank} is not below num_replicas {num_replicas}: ranks count from 0"),
            );
        }
        if let Sampler::RepeatAug { selected_round, .. } = self
            && len > 0
            && self.epoch_len(len) == 0
        {
            return bad(
                "selected_round",
                format!(
                    "an epoch of a {len}-sample dataset rounded down to a multiple of {selected_round} is empty: lower selected_round or set it to 0"
                ),
            );
        }
        Ok(())
    }

    /// Number of visits per epoch on this replica for a dataset of `len` samples.
    pub fn epoch_len(&self, len: usize) -> usize {
        match *self {
            Sampler::All => len,
            Sampler::Distributed { num_replicas, .. } => len.div_ceil(num_replicas.max(1)),
            Sampler::RepeatAug {
                num_repeats,
                num_replicas,
                selected_round,
                ..
            } => {
                let replicas = num_replicas.max(1);
                let per_replica = (len * num_repeats).div_ceil(replicas);
                let selected = match len.checked_div(selected_round) {
                    Some(rounds) => rounds * selected_round / replicas,
                    None => len.div_ceil(replicas),
                };
                selected.min(per_replica)
            }
        }
    }

    /// The visits of epoch `epoch` on this replica, for a dataset of `len` samples.
    pub fn epoch_items(
        &self,
        len: usize,
        shuffle: bool,
        seed: u64,
        epoch: usize,
    ) -> Vec<EpochItem> {
        let mut order: Vec<usize> = (0..len).collect();
        if shuffle {
            order.shuffle(&mut shuffle_rng(seed, epoch));
        }
        if len == 0 {
            return Vec::new();
        }
        let (repeats, replicas, rank) = match *self {
            Sampler::All => {
                return order
                    .into_iter()
                    .map(|index| EpochItem { index, repeat: 0 })
                    .collect();
            }
            Sampler::Distributed { num_replicas, rank } => (1, num_replicas.max(1), rank),
            Sampler::RepeatAug {
                num_repeats,
                num_replicas,
                rank,
                ..
            } => (num_repeats.max(1), num_replicas.max(1), rank),
        };
        let cycle = len * repeats;
        let total = cycle.div_ceil(replicas) * replicas;
        let take = self.epoch_len(len);
        (rank..total)
            .step_by(replicas)
            .take(take)
            .map(|p| {
                let base = p % cycle;
                EpochItem {
                    index: order[base / repeats],
                    repeat: p / cycle * repeats + base % repeats,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indices(items: &[EpochItem]) -> Vec<usize> {
        items.iter().map(|i| i.index).collect()
    }

    #[test]
    fn distributed_split_pads_and_strides_like_torch() {
        // torch: indices = range(10) + [0, 1]; rank 1 of 3 takes [1, 4, 7, 0].
        let s = Sampler::Distributed {
            num_replicas: 3,
            rank: 1,
        };
        let items = s.epoch_items(10, false, 0, 0);
        assert_eq!(indices(&items), [1, 4, 7, 0]);
        assert_eq!(items[3].repeat, 1);
        assert_eq!(s.epoch_len(10), 4);
        // The replicas cover every sample, with the same shuffled global order.
        let mut all: Vec<usize> = (0..3)
            .flat_map(|rank| {
                indices(
                    &Sampler::Distributed {
                        num_replicas: 3,
                        rank,
                    }
                    .epoch_items(10, true, 5, 2),
                )
            })
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn repeat_aug_repeats_each_sample_and_rounds_the_epoch() {
        let s = Sampler::RepeatAug {
            num_repeats: 3,
            num_replicas: 1,
            rank: 0,
            selected_round: 0,
        };
        let items = s.epoch_items(4, false, 0, 0);
        // ceil(4 / 1) = 4 visits: the first sample three times, then the second once.
        assert_eq!(indices(&items), [0, 0, 0, 1]);
        assert_eq!(
            items.iter().map(|i| i.repeat).collect::<Vec<_>>(),
            [0, 1, 2, 0]
        );
        // timm's default rounding to 256 on 600 samples keeps 512 visits.
        assert_eq!(Sampler::repeat_aug(3).epoch_len(600), 512);
        let items = Sampler::repeat_aug(3).epoch_items(600, true, 1, 0);
        assert_eq!(items.len(), 512);
        let mut counts = std::collections::HashMap::new();
        items
            .iter()
            .for_each(|i| *counts.entry(i.index).or_insert(0) += 1);
        assert!(
            counts.values().filter(|&&c| c == 3).count() >= 170,
            "{}",
            counts.len()
        );
        // Two replicas split the repeats of a sample between them.
        let two = |rank| Sampler::RepeatAug {
            num_repeats: 2,
            num_replicas: 2,
            rank,
            selected_round: 0,
        };
        assert_eq!(indices(&two(0).epoch_items(3, false, 0, 0)), [0, 1]);
        assert_eq!(indices(&two(1).epoch_items(3, false, 0, 0)), [0, 1]);
        assert_eq!(two(1).epoch_items(3, false, 0, 0)[0].repeat, 1);
    }

    #[test]
    fn bad_settings_are_rejected() {
        let d = |num_replicas, rank| Sampler::Distributed { num_replicas, rank };
        assert!(d(2, 2).validate(10).is_err());
        assert!(d(0, 0).validate(10).is_err());
        assert!(d(2, 1).validate(10).is_ok());
        assert!(Sampler::repeat_aug(3).validate(100).is_err());
        assert!(Sampler::repeat_aug(0).validate(1000).is_err());
        assert!(Sampler::All.validate(0).is_ok());
    }
}
