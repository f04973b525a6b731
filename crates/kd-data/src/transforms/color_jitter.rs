//! `ColorJitter`.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::invalid;
use crate::error::DataError;
use crate::functional;
use crate::random::uniform;

/// Random brightness, contrast, saturation and hue changes in a random order (torchvision
/// `ColorJitter(brightness, contrast, saturation, hue)`).
///
/// Brightness, contrast and saturation factors are drawn from `[max(0, 1 - x), 1 + x]`, the hue
/// shift from `[-hue, hue]`; a zero disables that change. Saturation and hue need RGB images.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ColorJitter {
    /// Brightness jitter, ≥ 0.
    pub brightness: f32,
    /// Contrast jitter, ≥ 0.
    pub contrast: f32,
    /// Saturation jitter, ≥ 0.
    pub saturation: f32,
    /// Hue jitter in `[0, 0.5]`.
    pub hue: f32,
}

/// The drawn parameters of one [`ColorJitter`] application.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterParams {
    /// Order of the four changes: 0 brightness, 1 contrast, 2 saturation, 3 hue.
    pub order: [usize; 4],
    /// Brightness factor, if enabled.
    pub brightness: Option<f32>,
    /// Contrast factor, if enabled.
    pub contrast: Option<f32>,
    /// Saturation factor, if enabled.
    pub saturation: Option<f32>,
    /// Hue shift, if enabled.
    pub hue: Option<f32>,
}

impl JitterParams {
    /// Applies the changes to `data` (`shape`) in order.
    pub fn apply(&self, data: &mut [f32], shape: [usize; 3]) -> Result<(), DataError> {
        for step in self.order {
            match step {
                0 => {
                    if let Some(f) = self.brightness {
                        functional::adjust_brightness(data, f);
                    }
                }
                1 => {
                    if let Some(f) = self.contrast {
                        functional::adjust_contrast(data, shape, f)?;
                    }
                }
                2 => {
                    if let Some(f) = self.saturation {
                        functional::adjust_saturation(data, shape, f)?;
                    }
                }
                _ => {
                    if let Some(f) = self.hue {
                        functional::adjust_hue(data, shape, f)?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl ColorJitter {
    pub(crate) fn validate(&self) -> Result<(), DataError> {
        for (name, v) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(
                    "ColorJitter",
                    format!("{name} is {v}: give a non-negative jitter"),
                ));
            }
        }
        if !(0.0..=0.5).contains(&self.hue) {
            return Err(invalid(
                "ColorJitter",
                format!("hue is {}: give a value in [0, 0.5]", self.hue),
            ));
        }
        Ok(())
    }

    pub(crate) fn check_channels(&self, channels: usize) -> Result<(), DataError> {
        if (self.saturation > 0.0 || self.hue > 0.0) && channels != 3 {
            return Err(invalid(
                "ColorJitter",
                format!(
                    "saturation and hue jitter need RGB images, got {channels} channels: set them to 0"
                ),
            ));
        }
        if self.contrast > 0.0 && channels != 3 && channels != 1 {
            return Err(invalid(
                "ColorJitter",
                format!("contrast jitter needs 1 or 3 channels, got {channels}: set it to 0"),
            ));
        }
        Ok(())
    }

    /// Draws the order and factors (torchvision `ColorJitter.get_params`).
    pub fn draw(&self, rng: &mut StdRng) -> JitterParams {
        let mut order = [0, 1, 2, 3];
        order.shuffle(rng);
        let mut factor = |x: f32| {
            (x > 0.0)
                .then(|| uniform(rng, f64::from((1.0 - x).max(0.0)), f64::from(1.0 + x)) as f32)
        };
        let brightness = factor(self.brightness);
        let contrast = factor(self.contrast);
        let saturation = factor(self.saturation);
        let hue = (self.hue > 0.0)
            .then(|| uniform(rng, -f64::from(self.hue), f64::from(self.hue)) as f32);
        JitterParams {
            order,
            brightness,
            contrast,
            saturation,
            hue,
        }
    }
}
