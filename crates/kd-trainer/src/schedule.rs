//! Learning-rate schedules with SuperGradients' semantics, as pure functions of the position
//! in training (so resuming needs no scheduler state).
//!
//! [`LrSchedule::lr_accumulated`] replays SuperGradients' lr callbacks (warmups, per-step
//! schedules applied after each optimizer step, the step schedule applied after each epoch);
//! `tests/fixtures/schedules.json` holds the values of a Python replay of those callbacks
//! (`tools/reference/schedules.py`).

use crate::TrainError;

/// The decay after warmup (SuperGradients' `lr_mode`).
#[derive(Debug, Clone, PartialEq)]
pub enum LrMode {
    /// `CosineLRScheduler`: per step, `0.5·lr0·(1 + cos(π·it/(max_it + 1)))` mapped into
    /// `[ratio·lr0, lr0]`, with `it = ipe·(epoch − E) + batch − W` (at least 0) and
    /// `max_it = ipe·(max_epochs − E − cooldown) − W` (`E` warmup epochs, `W` warmup steps).
    Cosine {
        /// `cosine_final_lr_ratio` (default 0.01).
        final_lr_ratio: f64,
    },
    /// `StepLRScheduler`: after each epoch `e`, `lr0 · factor^(number of lr_updates ≤ e)`, so
    /// an update at epoch `u` takes effect from epoch `u + 1`, as in SuperGradients.
    Step {
        /// `lr_updates`: the epochs at which the lr is multiplied by the factor.
        lr_updates: Vec<usize>,
        /// `lr_decay_factor`.
        lr_decay_factor: f64,
    },
    /// `PolyLRScheduler`: per step, `lr0 · (1 − it/max_it)^0.9`, `it = ipe·(epoch − E) + batch`,
    /// `max_it = ipe·(max_epochs − E − cooldown)`.
    Poly,
    /// `ExponentialLRScheduler`: per step, `lr0 · factor^((ipe·(epoch − E) + batch)/ipe)`
    /// (a fractional number of epochs).
    Exponential {
        /// `lr_decay_factor`.
        lr_decay_factor: f64,
    },
    /// A constant learning rate (no `lr_mode`; the warmups still apply).
    Constant,
}

/// Warmup flavour (SuperGradients' `warmup_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarmupMode {
    /// `LinearEpochLRWarmup`: the lr rises once per epoch over `lr_warmup_epochs`.
    LinearEpoch,
    /// `LinearBatchLRWarmup`: the lr rises every step over `lr_warmup_steps`, at most one
    /// epoch.
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
    /// `warmup_initial_lr`; `None` means `initial_lr / (warmup + 1)`, `warmup` being
    /// `lr_warmup_epochs` or `lr_warmup_steps` (SuperGradients requires it for the step
    /// warmup).
    pub warmup_initial_lr: Option<f64>,
    /// `lr_cooldown_epochs`: in the last epochs the per-step schedules stop, so the lr stays
    /// where they left it (the step schedule ignores it, as in SuperGradients).
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

    /// The learning rate the optimizer uses for batch `iter` of epoch `epoch` (both 0-based),
    /// with `iters_per_epoch` batches per epoch, `max_epochs` in the run and one optimizer step
    /// per batch. See [`LrSchedule::lr_accumulated`].
    pub fn lr(&self, epoch: usize, iter: usize, iters_per_epoch: usize, max_epochs: usize) -> f64 {
        self.lr_accumulated(epoch, iter, iters_per_epoch, max_epochs, 1)
    }

    /// The learning rate the optimizer holds at batch `iter` of epoch `epoch` when an optimizer
    /// step is taken every `batch_accumulate` batches (counted over the whole run, as
    /// SuperGradients counts them).
    ///
    /// This replays SuperGradients' lr callbacks in the order its trainer fires them, as a pure
    /// function of the position (so resuming needs no scheduler state). The optimizer starts at
    /// `initial_lr`; then
    ///
    /// 1. at the start of epoch `e <= lr_warmup_epochs` (epoch warmup): `w0 + e·(lr0 − w0)/E`;
    /// 2. at the start of global batch `g < min(lr_warmup_steps, iters_per_epoch)` (step warmup):
    ///    `linspace(w0, lr0, min(lr_warmup_steps, iters_per_epoch))[g]`;
    /// 3. after each optimizer step, the cosine, poly and exponential schedules compute the lr
    ///    of that batch's position, which therefore applies from the next step;
    /// 4. at the end of each epoch `e >= lr_warmup_epochs`, the step schedule sets
    ///    `lr0·factor^(number of lr_updates <= e)`, which applies from the next epoch.
    ///
    /// The per-step schedules stop in the cooldown epochs, so the lr stays where they left it.
    pub fn lr_accumulated(
        &self,
        epoch: usize,
        iter: usize,
        iters_per_epoch: usize,
        max_epochs: usize,
        batch_accumulate: usize,
    ) -> f64 {
        let ipe = iters_per_epoch.max(1);
        let accumulate = batch_accumulate.max(1);
        let global = epoch * ipe + iter;
        if let Some(lr) = self.step_warmup_at(global, ipe) {
            return lr;
        }
        // Walk back through the events before this batch until one set the lr.
        let (mut e, mut end) = (epoch, global);
        loop {
            let start = e * ipe;
            let after_step = self.last_after_step(start, end, e, ipe, max_epochs, accumulate);
            let warmup = self.last_step_warmup(start, end, ipe);
            match (after_step, warmup) {
                // At one batch, the step warmup acts before the step and the schedule after it.
                (Some((b, lr)), Some((w, _))) if b >= w => return lr,
                (_, Some((_, lr))) | (Some((_, lr)), None) => return lr,
                (None, None) => {}
            }
            if let Some(lr) = self.epoch_warmup_at(e) {
                return lr;
            }
            if e == 0 {
                return self.initial_lr;
            }
            e -= 1;
            if let Some(lr) = self.step_decay_after(e) {
                return lr;
            }
            end = e * ipe + ipe;
        }
    }

    /// The start of the warmup (`warmup_initial_lr`, or `initial_lr / (warmup + 1)`).
    fn warmup_start(&self, warmup: usize) -> f64 {
        self.warmup_initial_lr
            .unwrap_or(self.initial_lr / (warmup as f64 + 1.0))
    }

    /// `LinearEpochLRWarmup` at the start of `epoch`, if it sets the lr there.
    fn epoch_warmup_at(&self, epoch: usize) -> Option<f64> {
        let e = self.warmup_epochs;
        (self.warmup_mode == WarmupMode::LinearEpoch && e > 0 && epoch <= e).then(|| {
            let start = self.warmup_start(e);
            start + epoch as f64 * ((self.initial_lr - start) / e as f64)
        })
    }

    /// The number of warmup steps `LinearBatchLRWarmup` takes (capped at one epoch).
    fn step_warmup_len(&self, ipe: usize) -> usize {
        match self.warmup_mode {
            WarmupMode::LinearStep => self.warmup_steps.min(ipe),
            WarmupMode::LinearEpoch => 0,
        }
    }

    /// `LinearBatchLRWarmup` at the start of global batch `global`: numpy's
    /// `linspace(start, lr0, n)[global]`.
    fn step_warmup_at(&self, global: usize, ipe: usize) -> Option<f64> {
        let n = self.step_warmup_len(ipe);
        (global < n).then(|| {
            let start = self.warmup_start(self.warmup_steps);
            if global + 1 == n && n > 1 {
                self.initial_lr
            } else if n == 1 {
                start
            } else {
                start + global as f64 * ((self.initial_lr - start) / (n - 1) as f64)
            }
        })
    }

    /// The last step-warmup batch in `[start, end)` and the lr it set.
    fn last_step_warmup(&self, start: usize, end: usize, ipe: usize) -> Option<(usize, f64)> {
        let last = end.min(self.step_warmup_len(ipe)).checked_sub(1)?;
        (last >= start).then(|| (last, self.step_warmup_at(last, ipe).unwrap_or_default()))
    }

    /// The last optimizer step in global batches `[start, end)` (all in `epoch`) after which a
    /// per-step schedule set the lr, and that lr.
    fn last_after_step(
        &self,
        start: usize,
        end: usize,
        epoch: usize,
        ipe: usize,
        max_epochs: usize,
        accumulate: usize,
    ) -> Option<(usize, f64)> {
        let before_cooldown = epoch < max_epochs.saturating_sub(self.cooldown_epochs);
        let in_decay = self.warmup_epochs <= epoch && before_cooldown;
        let first = match &self.mode {
            // SuperGradients' cosine with a step warmup runs from batch `lr_warmup_steps` on and
            // forgets the cooldown (its lr then rises again); kd stops it at the cooldown.
            LrMode::Cosine { .. } if self.warmup_steps > 0 && before_cooldown => {
                start.max(self.warmup_steps)
            }
            LrMode::Cosine { .. } if self.warmup_steps > 0 => return None,
            LrMode::Cosine { .. } | LrMode::Poly | LrMode::Exponential { .. } if in_decay => start,
            _ => return None,
        };
        // The last batch `b < end` with `(b + 1) % accumulate == 0`.
        let last = (end / accumulate * accumulate).checked_sub(1)?;
        (last >= first).then(|| {
            let lr = self.per_step(epoch, last - epoch * ipe, ipe, max_epochs, accumulate);
            (last, lr)
        })
    }

    /// The lr a per-step schedule computes after the step of batch `iter` of `epoch`.
    fn per_step(
        &self,
        epoch: usize,
        iter: usize,
        ipe: usize,
        max_epochs: usize,
        accumulate: usize,
    ) -> f64 {
        let lr0 = self.initial_lr;
        let decay_epochs = max_epochs as f64 - (self.warmup_epochs + self.cooldown_epochs) as f64;
        let position = (ipe as f64) * (epoch as f64 - self.warmup_epochs as f64) + iter as f64;
        match &self.mode {
            LrMode::Cosine { final_lr_ratio } => {
                let steps = self.warmup_steps as f64;
                let it = (position - steps).max(0.0);
                let max_it = ipe as f64 * decay_epochs - steps;
                let lr = 0.5 * lr0 * (1.0 + (it / (max_it + 1.0) * std::f64::consts::PI).cos());
                lr * (1.0 - final_lr_ratio) + lr0 * final_lr_ratio
            }
            LrMode::Poly => {
                let k = accumulate as f64;
                let it = position / k;
                let max_it = ipe as f64 * decay_epochs / k;
                lr0 * (1.0 - it / max_it).powf(0.9)
            }
            LrMode::Exponential { lr_decay_factor } => {
                lr0 * lr_decay_factor.powf(position / ipe as f64)
            }
            LrMode::Step { .. } | LrMode::Constant => lr0,
        }
    }

    /// `StepLRScheduler` at the end of `epoch`, if it sets the lr there.
    fn step_decay_after(&self, epoch: usize) -> Option<f64> {
        match &self.mode {
            LrMode::Step {
                lr_updates,
                lr_decay_factor,
            } if self.warmup_epochs <= epoch => {
                let passed = lr_updates.iter().filter(|&&u| u <= epoch).count();
                Some(self.initial_lr * lr_decay_factor.powi(passed as i32))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
        initial_lr: f64,
        lr_mode: Option<String>,
        cosine_final_lr_ratio: f64,
        lr_updates: Vec<usize>,
        lr_decay_factor: Option<f64>,
        lr_warmup_epochs: usize,
        lr_warmup_steps: usize,
        warmup_mode: String,
        warmup_initial_lr: Option<f64>,
        lr_cooldown_epochs: usize,
        iters_per_epoch: usize,
        max_epochs: usize,
        batch_accumulate: usize,
        lrs: Vec<f64>,
    }

    impl Case {
        fn schedule(&self) -> LrSchedule {
            let factor = self.lr_decay_factor.unwrap_or(1.0);
            LrSchedule {
                initial_lr: self.initial_lr,
                mode: match self.lr_mode.as_deref() {
                    None => LrMode::Constant,
                    Some("CosineLRScheduler") => LrMode::Cosine {
                        final_lr_ratio: self.cosine_final_lr_ratio,
                    },
                    Some("StepLRScheduler") => LrMode::Step {
                        lr_updates: self.lr_updates.clone(),
                        lr_decay_factor: factor,
                    },
                    Some("PolyLRScheduler") => LrMode::Poly,
                    Some("ExponentialLRScheduler") => LrMode::Exponential {
                        lr_decay_factor: factor,
                    },
                    Some(other) => panic!("fixture mode {other}"),
                },
                warmup_epochs: self.lr_warmup_epochs,
                warmup_steps: self.lr_warmup_steps,
                warmup_mode: match self.warmup_mode.as_str() {
                    "LinearEpochLRWarmup" => WarmupMode::LinearEpoch,
                    _ => WarmupMode::LinearStep,
                },
                warmup_initial_lr: self.warmup_initial_lr,
                cooldown_epochs: self.lr_cooldown_epochs,
            }
        }
    }

    // Golden values: tests/fixtures/schedules.json, written by tools/reference/schedules.py,
    // which replays SuperGradients' lr callbacks batch by batch:
    //
    // ```python
    // for epoch in range(max_epochs):
    //     if epoch_warmup and e_w > 0 and e_w >= epoch:
    //         lr = start + epoch * step                     # LinearEpochLRWarmup
    //     for batch in range(ipe):
    //         g = epoch * ipe + batch
    //         if batch_warmup and g < w_capped:
    //             lr = float(ramp[g])                       # LinearBatchLRWarmup (np.linspace)
    //         out.append(lr)                                # the lr of this batch's step
    //         if (g + 1) % k == 0:
    //             v = after_step(c, epoch, batch)           # cosine / poly / exponential
    //             if v is not None:
    //                 lr = v
    //     if c["lr_mode"] == "StepLRScheduler" and e_w <= epoch:
    //         lr = lr0 * c["lr_decay_factor"] ** len([u for u in c["lr_updates"] if u <= epoch])
    // ```
    #[test]
    fn matches_supergradients_callbacks() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/schedules.json")).unwrap();
        let cases: Vec<Case> = serde_json::from_value(fixture["cases"].clone()).unwrap();
        assert_eq!(cases.len(), 13);
        let mut worst = 0.0f64;
        for case in &cases {
            let s = case.schedule();
            s.validate(case.max_epochs).unwrap();
            assert_eq!(case.lrs.len(), case.max_epochs * case.iters_per_epoch);
            for (g, want) in case.lrs.iter().enumerate() {
                let (epoch, iter) = (g / case.iters_per_epoch, g % case.iters_per_epoch);
                let got = s.lr_accumulated(
                    epoch,
                    iter,
                    case.iters_per_epoch,
                    case.max_epochs,
                    case.batch_accumulate,
                );
                let err = (got - want).abs() / want.abs().max(1e-12);
                worst = worst.max(err);
                assert!(
                    err < 1e-12,
                    "{}: epoch {epoch} batch {iter}: {got} vs {want}",
                    case.name
                );
            }
        }
        eprintln!("schedules: max relative error {worst:e}");
    }

    #[test]
    fn per_step_values_apply_from_the_next_step() {
        let s = LrSchedule::cosine(0.1);
        assert_eq!(s.lr(0, 0, 10, 5), 0.1);
        assert_eq!(s.lr(0, 1, 10, 5), 0.1);
        // The last step uses the value computed after step 48 of 50 (it = 48, max_it = 50).
        let expect =
            0.5 * 0.1 * (1.0 + (48.0f64 / 51.0 * std::f64::consts::PI).cos()) * 0.99 + 0.001;
        let last = s.lr(4, 9, 10, 5);
        assert!((last - expect).abs() < 1e-15, "{last} vs {expect}");
        assert!(s.lr(2, 0, 10, 5) < s.lr(1, 0, 10, 5));
    }

    #[test]
    fn epoch_warmup_follows_supergradients_linspace() {
        // SG: lr0 / (E + 1) + epoch · (lr0 − lr0 / (E + 1)) / E for epoch <= E.
        let s = LrSchedule {
            warmup_epochs: 3,
            ..LrSchedule::cosine(0.4)
        };
        assert!((s.lr(0, 5, 10, 10) - 0.1).abs() < 1e-12);
        assert!((s.lr(1, 0, 10, 10) - 0.2).abs() < 1e-12);
        assert!((s.lr(2, 9, 10, 10) - 0.3).abs() < 1e-12);
        // The decay starts at lr0 after warmup.
        assert!((s.lr(3, 0, 10, 10) - 0.4).abs() < 1e-12);
        assert!(s.lr(3, 2, 10, 10) < 0.4);
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
        // np.linspace(0, 1, 4)[2]
        assert!((s.lr(0, 2, 10, 6) - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(s.lr(0, 3, 10, 6), 1.0);
        let frozen = s.lr(4, 0, 10, 6);
        assert_eq!(frozen, s.lr(5, 7, 10, 6));
        assert!(frozen < s.lr(3, 9, 10, 6));
    }

    #[test]
    fn step_mode_decays_after_each_update_epoch() {
        let s = LrSchedule {
            mode: LrMode::Step {
                lr_updates: vec![2, 4],
                lr_decay_factor: 0.1,
            },
            ..LrSchedule::constant(1.0)
        };
        assert_eq!(s.lr(2, 9, 10, 6), 1.0);
        assert!((s.lr(3, 0, 10, 6) - 0.1).abs() < 1e-12);
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
