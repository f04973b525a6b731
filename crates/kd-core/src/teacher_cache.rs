//! An exact cache of the frozen teacher's logits, per training sample.

use std::sync::Mutex;

use crate::KdError;

/// The teacher's logits for each training sample, computed on the sample's first visit and
/// reused on later ones.
///
/// It is exact when a sample's image is the same on every visit (no random transform, no
/// batch mixing) and the teacher is deterministic (eval mode), which `KdTrainer` checks
/// before enabling it. A fraction of the batches can be recomputed anyway
/// (`verify_fraction`): the largest difference found is reported, and the fresh outputs are
/// used for those batches.
///
/// Memory: one `f32` per class per training sample (Fashion-MNIST: 2.4 MB; ImageNet-1k:
/// 5.1 GB).
#[derive(Debug)]
pub struct TeacherCache {
    verify_fraction: f64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    classes: usize,
    rows: Vec<f32>,
    filled: Vec<bool>,
    stats: TeacherCacheStats,
    /// Batches served entirely from the cache or verified, for spacing verifications.
    full_hits: u64,
}

/// What a [`TeacherCache`] did so far.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TeacherCacheStats {
    /// Samples whose logits came from the cache.
    pub hits: u64,
    /// Samples the teacher computed (first visits, and batches with a first visit).
    pub misses: u64,
    /// Fully cached batches the teacher recomputed to check the cache.
    pub verified_batches: u64,
    /// The largest absolute difference between a cached and a recomputed logit.
    pub max_drift: f32,
}

/// How a batch is served.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Every row is cached: `[batch * classes]` logits.
    Cached(Vec<f32>),
    /// Every row is cached, but recompute and compare.
    Verify(Vec<f32>),
    /// Some row is missing: run the teacher and store its output.
    Compute,
}

impl TeacherCache {
    /// An empty cache; `verify_fraction` (0 to 1) of the fully cached batches are recomputed
    /// to check it.
    pub fn new(verify_fraction: f64) -> Result<Self, KdError> {
        if !(0.0..=1.0).contains(&verify_fraction) {
            return Err(KdError::CacheVerifyFraction {
                value: verify_fraction,
            });
        }
        Ok(Self {
            verify_fraction,
            state: Mutex::new(State::default()),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> TeacherCacheStats {
        self.lock().stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides how to serve the batch of samples `indices`.
    pub(crate) fn plan(&self, indices: &[usize]) -> Plan {
        let mut s = self.lock();
        let all = !indices.is_empty()
            && s.classes > 0
            && indices.iter().all(|&i| s.filled.get(i) == Some(&true));
        if !all {
            return Plan::Compute;
        }
        let classes = s.classes;
        let mut rows = Vec::with_capacity(indices.len() * classes);
        for &i in indices {
            rows.extend_from_slice(&s.rows[i * classes..][..classes]);
        }
        s.full_hits += 1;
        // Verify the batches where the running count of verifications should step up, which
        // spreads them evenly at the requested rate.
        let n = s.full_hits as f64;
        let f = self.verify_fraction;
        if (n * f).floor() > ((n - 1.0) * f).floor() {
            Plan::Verify(rows)
        } else {
            s.stats.hits += indices.len() as u64;
            Plan::Cached(rows)
        }
    }

    /// Stores the teacher's `logits` (`[indices.len() * classes]`) for `indices`.
    pub(crate) fn store(&self, indices: &[usize], logits: &[f32], classes: usize) {
        let mut s = self.lock();
        if s.classes != classes {
            // The first batch fixes the row width; a different one starts afresh.
            *s = State {
                classes,
                stats: s.stats,
                ..State::default()
            };
        }
        let needed = indices.iter().max().map_or(0, |&m| m + 1);
        if s.filled.len() < needed {
            s.filled.resize(needed, false);
            s.rows.resize(needed * classes, 0.0);
        }
        for (row, &i) in indices.iter().enumerate() {
            s.rows[i * classes..][..classes].copy_from_slice(&logits[row * classes..][..classes]);
            s.filled[i] = true;
        }
        s.stats.misses += indices.len() as u64;
    }

    /// Records a verified batch: `cached` against the teacher's `fresh` output.
    pub(crate) fn verified(&self, cached: &[f32], fresh: &[f32]) {
        let drift = cached
            .iter()
            .zip(fresh)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        let mut s = self.lock();
        s.stats.verified_batches += 1;
        s.stats.max_drift = s.stats.max_drift.max(drift);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_served_once_every_sample_of_a_batch_is_known() {
        let cache = TeacherCache::new(0.0).unwrap();
        assert!(matches!(cache.plan(&[0, 1]), Plan::Compute));
        cache.store(&[3, 1], &[3.0, 3.5, 1.0, 1.5], 2);
        assert!(matches!(cache.plan(&[1, 2]), Plan::Compute));
        match cache.plan(&[1, 3, 1]) {
            Plan::Cached(rows) => assert_eq!(rows, [1.0, 1.5, 3.0, 3.5, 1.0, 1.5]),
            other => panic!("{other:?}"),
        }
        let stats = cache.stats();
        assert_eq!(
            (stats.hits, stats.misses, stats.verified_batches),
            (3, 2, 0)
        );
    }

    #[test]
    fn verification_runs_at_the_requested_rate_and_reports_drift() {
        let cache = TeacherCache::new(0.25).unwrap();
        cache.store(&[0], &[1.0], 1);
        let verify = (0..8)
            .filter(|_| matches!(cache.plan(&[0]), Plan::Verify(_)))
            .count();
        assert_eq!(verify, 2);
        cache.verified(&[1.0, 2.0], &[1.0, 2.25]);
        assert_eq!(cache.stats().max_drift, 0.25);
        assert!(TeacherCache::new(1.5).is_err());
    }
}
