//! Learning-rate schedules with SuperGradients' semantics, as pure functions of the position
//! in training (so resuming needs no scheduler state).

use crate::TrainError;

/// The decay after warmup (SuperGradients' `lr_mode`).
#[derive(Debug, Clone, PartialEq)]
pub enum LrMode {
    /// `CosineLRScheduler`: per step, `0.5·lr0·(1 + cos(π·it/(max_it + 1)))` mapped into
    /// `[ratio·lr0, lr0]`.
    Cosine {
        /// `cosine_final_lr_ratio` (default 0.01).
        final_lr_ratio: f64,
    },
    /// `StepLRScheduler`: per epoch, `lr0 · factor^(number of lr_updates ≤ epoch)`.
    Step {
        /// `lr_updates`: the epochs at which the lr is multiplied by the factor.
        lr_updates: Vec<usize>,
        /// `lr_decay_factor`.
        lr_decay_factor: f64,
    },
    /// `PolyLRScheduler`: per step, `lr0 · (1 − it/max_it)^0.9`.
    Poly,
    /// `ExponentialLRScheduler`: per epoch, `lr0 · factor^epoch`.
    Exponential {
        /// `lr_decay_factor`.
        lr_decay_factor: f64,
    },
    /// A constant learning rate.
    Constant,
}

/// Warmup flavour (SuperGradients' `warmup_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarmupMode {
    /// `LinearEpochLRWarmup`: the lr rises once per epoch over `lr_warmup_epochs`.
    LinearEpoch,
    /// `LinearBatchLRWarmup`: the lr rises every step over `lr_warmup_steps`.
    LinearStep,
}

/// A complete schedule: warmup, decay and cooldown.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    /// `initial_lr`.
    pub initial_lr: f64,
    /// `lr_mode`.
    pub mode: LrMode,
    /// `lr_warmup_epochs`.
    pub warmup_epochs: usize,
    /// `lr_warmup_steps`.
    pub warmup_steps: usize,
    /// `warmup_mode`.
    pub warmup_mode: WarmupMode,
    /// `warmup_initial_lr`; `None` means `initial_lr / (warmup + 1)`.
    pub warmup_initial_lr: Option<f64>,
    /// `lr_cooldown_epochs`: the last epochs keep the lr the schedule reached.
    pub cooldown_epochs: usize,
}

impl LrSchedule {
    /// A constant schedule.
    pub fn constant(lr: f64) -> Self {
        Self {
            initial_lr: lr,
            mode: LrMode::Constant,
            warmup_epochs: 0,
            warmup_steps: 0,
            warmup_mode: WarmupMode::LinearEpoch,
            warmup_initial_lr: None,
            cooldown_epochs: 0,
        }
    }

    /// SuperGradients' cosine schedule with its default final ratio 0.01.
    pub fn cosine(lr: f64) -> Self {
        Self {
            mode: LrMode::Cosine {
                final_lr_ratio: 0.01,
            },
            ..Self::constant(lr)
        }
    }

    /// Checks the schedule against the run length.
    pub fn validate(&self, max_epochs: usize) -> Result<(), TrainError> {
        if !(self.initial_lr.is_finite() && self.initial_lr >= 0.0) {
            return Err(TrainError::param(
                "initial_lr",
                format!(
                    "{} is not a valid learning rate: use a finite value >= 0",
                    self.initial_lr
                ),
            ));
        }
        if self.warmup_epochs + self.cooldown_epochs >= max_epochs.max(1)
            && (self.warmup_epochs > 0 || self.cooldown_epochs > 0)
        {
            return Err(TrainError::param(
                "lr_warmup_epochs",
                format!(
                    "warmup ({}) plus cooldown ({}) epochs leave no epoch to decay in out of max_epochs {max_epochs}: shorten them",
                    self.warmup_epochs, self.cooldown_epochs
                ),
            ));
        }
        match &self.mode {
            LrMode::Cosine { final_lr_ratio } if !(0.0..=1.0).contains(final_lr_ratio) => {
                Err(TrainError::param(
                    "cosine_final_lr_ratio",
                    format!("{final_lr_ratio} is outside [0, 1]"),
                ))
            }
            LrMode::Step {
                lr_decay_factor, ..
            }
            | LrMode::Exponential { lr_decay_factor }
                if !(lr_decay_factor.is_finite() && *lr_decay_factor > 0.0) =>
            {
                Err(TrainError::param(
                    "lr_decay_factor",
                    format!("{lr_decay_factor} must be a positive number"),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The learning rate for step `iter` of epoch `epoch` (both 0-based), with
    /// `iters_per_epoch` optimizer steps per epoch and `max_epochs` in the run.
    pub fn lr(&self, epoch: usize, iter: usize, iters_per_epoch: usize, max_epochs: usize) -> f64 {
        let lr0 = self.initial_lr;
        let ipe = iters_per_epoch.max(1);
        let global_step = epoch * ipe + iter;
        match self.warmup_mode {
            WarmupMode::LinearEpoch if epoch < self.warmup_epochs => {
                let start = self
                    .warmup_initial_lr
                    .unwrap_or(lr0 / (self.warmup_epochs as f64 + 1.0));
                return start + (lr0 - start) * epoch as f64 / self.warmup_epochs as f64;
            }
            WarmupMode::LinearStep if global_step < self.warmup_steps => {
                let start = self
                    .warmup_initial_lr
                    .unwrap_or(lr0 / (self.warmup_steps as f64 + 1.0));
                return start + (lr0 - start) * global_step as f64 / self.warmup_steps as f64;
            }
            _ => {}
        }
        let warm = match self.warmup_mode {
            WarmupMode::LinearEpoch => self.warmup_epochs,
            WarmupMode::LinearStep => 0,
        };
        let decay_epochs = max_epochs
            .saturating_sub(warm + self.cooldown_epochs)
            .max(1);
        // In the cooldown the schedule is frozen where it ended.
        let (epoch, iter) = if epoch >= warm + decay_epochs {
            (warm + decay_epochs, 0)
        } else {
            (epoch, iter)
        };
        let eff_epoch = epoch.saturating_sub(warm);
        let it = (eff_epoch * ipe + iter) as f64;
        let max_it = (decay_epochs * ipe) as f64;
        match &self.mode {
            LrMode::Constant => lr0,
            LrMode::Cosine { final_lr_ratio } => {
                let lr = 0.5 * lr0 * (1.0 + (it / (max_it + 1.0) * std::f64::consts::PI).cos());
                lr * (1.0 - final_lr_ratio) + lr0 * final_lr_ratio
            }
            LrMode::Poly => lr0 * (1.0 - it / max_it).max(0.0).powf(0.9),
            LrMode::Step {
                lr_updates,
                lr_decay_factor,
            } => {
                let passed = lr_updates.iter().filter(|&&e| e <= epoch).count();
                lr0 * lr_decay_factor.powi(passed as i32)
            }
            LrMode::Exponential { lr_decay_factor } => lr0 * lr_decay_factor.powi(eff_epoch as i32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_starts_at_lr0_and_ends_near_the_ratio() {
        let s = LrSchedule::cosine(0.1);
        assert!((s.lr(0, 0, 10, 5) - 0.1).abs() < 1e-12);
        let last = s.lr(4, 9, 10, 5);
        // it = 49, max_it = 50: SuperGradients' 0.5·lr0·(1 + cos(49/51·π)), mapped into
        // [0.01·lr0, lr0].
        let expect =
            0.5 * 0.1 * (1.0 + (49.0f64 / 51.0 * std::f64::consts::PI).cos()) * 0.99 + 0.001;
        assert!((last - expect).abs() < 1e-15, "{last} vs {expect}");
        assert!(last > 0.001 && last < 0.002, "{last}");
        assert!(s.lr(2, 0, 10, 5) < s.lr(1, 0, 10, 5));
    }

    #[test]
    fn epoch_warmup_follows_supergradients_linspace() {
        // SG: np.linspace(lr0 / (E + 1), lr0, E + 1)[epoch] for epoch < E.
        let s = LrSchedule {
            warmup_epochs: 3,
            ..LrSchedule::cosine(0.4)
        };
        assert!((s.lr(0, 5, 10, 10) - 0.1).abs() < 1e-12);
        assert!((s.lr(1, 0, 10, 10) - 0.2).abs() < 1e-12);
        assert!((s.lr(2, 0, 10, 10) - 0.3).abs() < 1e-12);
        // The decay starts at lr0 after warmup.
        assert!((s.lr(3, 0, 10, 10) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn step_warmup_and_cooldown() {
        let s = LrSchedule {
            warmup_steps: 4,
            warmup_mode: WarmupMode::LinearStep,
            warmup_initial_lr: Some(0.0),
            cooldown_epochs: 2,
            ..LrSchedule::cosine(1.0)
        };
        assert_eq!(s.lr(0, 0, 10, 6), 0.0);
        assert!((s.lr(0, 2, 10, 6) - 0.5).abs() < 1e-12);
        let frozen = s.lr(4, 0, 10, 6);
        assert_eq!(frozen, s.lr(5, 7, 10, 6));
        assert!(frozen < s.lr(3, 9, 10, 6));
    }

    #[test]
    fn step_mode_multiplies_at_each_update() {
        let s = LrSchedule {
            mode: LrMode::Step {
                lr_updates: vec![2, 4],
                lr_decay_factor: 0.1,
            },
            ..LrSchedule::constant(1.0)
        };
        assert_eq!(s.lr(1, 0, 10, 6), 1.0);
        assert!((s.lr(2, 0, 10, 6) - 0.1).abs() < 1e-12);
        assert!((s.lr(5, 0, 10, 6) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn validation_names_the_key() {
        let s = LrSchedule {
            warmup_epochs: 5,
            ..LrSchedule::cosine(0.1)
        };
        let err = s.validate(5).unwrap_err().to_string();
        assert!(err.contains("lr_warmup_epochs"), "{err}");
    }
}
