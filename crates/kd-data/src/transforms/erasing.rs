//! `RandomErasing`.

use rand::Rng;
use rand::rngs::StdRng;

use super::invalid;
use crate::error::DataError;
use crate::functional::{self, CropBox};
use crate::random::{normal, uniform};

/// What [`RandomErasing`] writes into the erased rectangle.
#[derive(Debug, Clone, PartialEq)]
pub enum EraseValue {
    /// One value per channel, or one value for all channels (torchvision's `value=0`).
    Constant(Vec<f32>),
    /// Standard normal noise per pixel (torchvision's `value="random"`, timm's `mode="pixel"`).
    Random,
}

/// Erases a random rectangle with probability `p` (torchvision `RandomErasing`; Zhong et al.,
/// 2020, "Random Erasing Data Augmentation").
///
/// Usually placed after `Normalize`. The rectangle covers a fraction of the area drawn from
/// `scale` with a height/width ratio drawn log-uniformly from `ratio`; after ten tries that do
/// not fit, nothing is erased. torchvision's defaults: `p` 0.5, scale `(0.02, 0.33)`, ratio
/// `(0.3, 3.3)`, value 0.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomErasing {
    /// Probability of erasing.
    pub p: f64,
    /// Range of the erased fraction of the area.
    pub scale: [f64; 2],
    /// Range of the rectangle's height/width ratio.
    pub ratio: [f64; 2],
    /// The fill.
    pub value: EraseValue,
}

impl Default for RandomErasing {
    fn default() -> Self {
        Self {
            p: 0.5,
            scale: [0.02, 0.33],
            ratio: [0.3, 3.3],
            value: EraseValue::Constant(vec![0.0]),
        }
    }
}

impl RandomErasing {
    pub(crate) fn validate(&self) -> Result<(), DataError> {
        if !(0.0..=1.0).contains(&self.p) {
            return Err(invalid(
                "RandomErasing",
                format!("p is {}: give a probability in [0, 1]", self.p),
            ));
        }
        let [s0, s1] = self.scale;
        if !(0.0 <= s0 && s0 <= s1 && s1 <= 1.0) {
            return Err(invalid(
                "RandomErasing",
                format!(
                    "scale {:?} is not an increasing pair in [0, 1]: use e.g. [0.02, 0.33]",
                    self.scale
                ),
            ));
        }
        let [r0, r1] = self.ratio;
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return Err(invalid(
                "RandomErasing",
                format!(
                    "ratio {:?} is not an increasing pair of positive ratios: use e.g. [0.3, 3.3]",
                    self.ratio
                ),
            ));
        }
        if let EraseValue::Constant(v) = &self.value
            && (v.is_empty() || v.iter().any(|x| !x.is_finite()))
        {
            return Err(invalid(
                "RandomErasing",
                format!("value {v:?} is not one or more finite numbers: give e.g. [0.0]"),
            ));
        }
        Ok(())
    }

    pub(crate) fn check_channels(&self, channels: usize) -> Result<(), DataError> {
        if let EraseValue::Constant(v) = &self.value
            && v.len() != 1
            && v.len() != channels
        {
            return Err(invalid(
                "RandomErasing",
                format!(
                    "{} values for images with {channels} channels: give one value or one per channel",
                    v.len()
                ),
            ));
        }
        Ok(())
    }

    /// Draws the rectangle of an image of `shape`, or `None` when this sample is not erased
    /// (torchvision `RandomErasing.get_params`).
    pub fn draw_box(&self, [_, h, w]: [usize; 3], rng: &mut StdRng) -> Option<CropBox> {
        if rng.random::<f64>() >= self.p {
            return None;
        }
        let area = (h * w) as f64;
        let (lr0, lr1) = (self.ratio[0].ln(), self.ratio[1].ln());
        for _ in 0..10 {
            let erase_area = area * uniform(rng, self.scale[0], self.scale[1]);
            let aspect = uniform(rng, lr0, lr1).exp();
            let eh = (erase_area * aspect).sqrt().round_ties_even() as usize;
            let ew = (erase_area / aspect).sqrt().round_ties_even() as usize;
            if !(eh < h && ew < w) {
                continue;
            }
            let top = rng.random_range(0..=h - eh);
            let left = rng.random_range(0..=w - ew);
            return Some(CropBox {
                top: top as isize,
                left: left as isize,
                height: eh,
                width: ew,
            });
        }
        None
    }

    pub(crate) fn apply(
        &self,
        data: &mut [f32],
        shape: [usize; 3],
        rng: &mut StdRng,
        noise: &mut Vec<f32>,
    ) -> Result<(), DataError> {
        let Some(bx) = self.draw_box(shape, rng) else {
            return Ok(());
        };
        noise.clear();
        match &self.value {
            EraseValue::Constant(v) if v.len() == 1 => noise.resize(shape[0], v[0]),
            EraseValue::Constant(v) => noise.extend_from_slice(v),
            EraseValue::Random => {
                noise.extend((0..shape[0] * bx.height * bx.width).map(|_| normal(rng) as f32))
            }
        }
        functional::erase(data, shape, bx, noise)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::sample_rng;

    #[test]
    fn erased_boxes_fit_and_p_controls_the_rate() {
        let t = RandomErasing::default();
        let shape = [3, 20, 30];
        let mut erased = 0;
        for i in 0..1000 {
            if let Some(bx) = t.draw_box(shape, &mut sample_rng(5, 0, i)) {
                erased += 1;
                assert!(bx.top as usize + bx.height <= 20 && bx.left as usize + bx.width <= 30);
                let frac = (bx.height * bx.width) as f64 / 600.0;
                assert!(frac <= 0.45, "{bx:?}");
            }
        }
        assert!((400..600).contains(&erased), "{erased}");
    }
}
