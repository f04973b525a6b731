//! `Normalize`.

use super::invalid;
use crate::error::DataError;

/// Per-channel `(x - mean) / std` (torchvision `Normalize(mean, std)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    /// One mean per channel.
    pub mean: Vec<f32>,
    /// One positive standard deviation per channel.
    pub std: Vec<f32>,
}

impl Normalize {
    pub(crate) fn validate(&self) -> Result<(), DataError> {
        if self.mean.is_empty() || self.mean.len() != self.std.len() {
            return Err(invalid(
                "Normalize",
                format!(
                    "mean has {} values and std has {}: give one mean and one std per channel",
                    self.mean.len(),
                    self.std.len()
                ),
            ));
        }
        if let Some((c, m)) = self.mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
            return Err(invalid(
                "Normalize",
                format!("mean of channel {c} is {m}: give finite means"),
            ));
        }
        if let Some((c, s)) = self
            .std
            .iter()
            .enumerate()
            .find(|(_, s)| !(s.is_finite() && **s > 0.0))
        {
            return Err(invalid(
                "Normalize",
                format!("std of channel {c} is {s}: standard deviations must be positive"),
            ));
        }
        Ok(())
    }

    pub(crate) fn check_channels(&self, channels: usize) -> Result<(), DataError> {
        if self.mean.len() != channels {
            return Err(invalid(
                "Normalize",
                format!(
                    "{} mean/std values for images with {channels} channels: give one value per channel",
                    self.mean.len()
                ),
            ));
        }
        Ok(())
    }

    /// Normalizes `data` (`shape`) in place.
    pub(crate) fn apply(&self, data: &mut [f32], [_, h, w]: [usize; 3]) {
        for ((plane, &m), &s) in data.chunks_exact_mut(h * w).zip(&self.mean).zip(&self.std) {
            plane.iter_mut().for_each(|v| *v = (*v - m) / s);
        }
    }
}
