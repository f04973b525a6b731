//! RandAugment (Cubuk et al., 2020, "RandAugment: Practical automated data augmentation with a
//! reduced search space") with timm's operations, magnitudes and `rand-m9-mstd0.5` strings.

use rand::Rng;
use rand::rngs::StdRng;

use super::{Interpolation, invalid};
use crate::error::DataError;
use crate::functional::{self, Resample};
use crate::random::{normal, uniform};

/// The magnitude scale: level `m` maps to `m / 10` of each operation's range.
const LEVEL_DENOM: f64 = 10.0;

/// One RandAugment operation with explicit arguments, as timm's `auto_augment` functions take
/// them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AugmentOp {
    /// Pillow `autocontrast`.
    AutoContrast,
    /// Pillow `equalize`.
    Equalize,
    /// Pillow `invert`.
    Invert,
    /// Rotation by `degrees` counter-clockwise.
    Rotate {
        /// Angle in degrees.
        degrees: f64,
    },
    /// Keep `bits` most significant bits.
    Posterize {
        /// Bits kept, 0–8.
        bits: u8,
    },
    /// Invert levels at or above `threshold`.
    Solarize {
        /// Threshold level, 0–256.
        threshold: u16,
    },
    /// Add `add` to levels below `threshold`.
    SolarizeAdd {
        /// Levels added.
        add: u8,
        /// Threshold level.
        threshold: u8,
    },
    /// Pillow `ImageEnhance.Color`.
    Color {
        /// Blend factor.
        factor: f32,
    },
    /// Pillow `ImageEnhance.Contrast`.
    Contrast {
        /// Blend factor.
        factor: f32,
    },
    /// Pillow `ImageEnhance.Brightness`.
    Brightness {
        /// Blend factor.
        factor: f32,
    },
    /// Pillow `ImageEnhance.Sharpness`.
    Sharpness {
        /// Blend factor.
        factor: f32,
    },
    /// Horizontal shear.
    ShearX {
        /// Shear factor.
        factor: f64,
    },
    /// Vertical shear.
    ShearY {
        /// Shear factor.
        factor: f64,
    },
    /// Horizontal translation.
    TranslateX {
        /// Shift in pixels.
        pixels: f64,
    },
    /// Vertical translation.
    TranslateY {
        /// Shift in pixels.
        pixels: f64,
    },
}

impl AugmentOp {
    /// Applies the operation to `data` (`shape`) in place; geometric operations resample with
    /// `filter`, fill uncovered pixels with `fill` (one value per channel) and use `tmp` as
    /// working memory.
    pub fn apply(
        &self,
        data: &mut Vec<f32>,
        shape: [usize; 3],
        filter: Resample,
        fill: &[f32],
        tmp: &mut Vec<f32>,
    ) -> Result<(), DataError> {
        let geometric = match *self {
            AugmentOp::AutoContrast => return functional::autocontrast(data, shape),
            AugmentOp::Equalize => return functional::equalize(data, shape),
            AugmentOp::Invert => {
                functional::invert(data);
                return Ok(());
            }
            AugmentOp::Posterize { bits } => return functional::posterize(data, shape, bits),
            AugmentOp::Solarize { threshold } => {
                return functional::solarize(data, shape, threshold);
            }
            AugmentOp::SolarizeAdd { add, threshold } => {
                return functional::solarize_add(data, shape, add, threshold);
            }
            AugmentOp::Color { factor } => return functional::enhance_color(data, shape, factor),
            AugmentOp::Contrast { factor } => {
                return functional::enhance_contrast(data, shape, factor);
            }
            AugmentOp::Brightness { factor } => {
                functional::enhance_brightness(data, factor);
                return Ok(());
            }
            AugmentOp::Sharpness { factor } => {
                return functional::enhance_sharpness(data, shape, factor);
            }
            AugmentOp::Rotate { degrees } => {
                functional::rotate(data, shape, degrees, filter, fill, tmp)
            }
            AugmentOp::ShearX { factor } => {
                functional::shear_x(data, shape, factor, filter, fill, tmp)
            }
            AugmentOp::ShearY { factor } => {
                functional::shear_y(data, shape, factor, filter, fill, tmp)
            }
            AugmentOp::TranslateX { pixels } => {
                functional::translate_x(data, shape, pixels, filter, fill, tmp)
            }
            AugmentOp::TranslateY { pixels } => {
                functional::translate_y(data, shape, pixels, filter, fill, tmp)
            }
        };
        geometric?;
        std::mem::swap(data, tmp);
        Ok(())
    }
}

/// The operations RandAugment chooses from, by timm's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RandAugmentOp {
    /// `AutoContrast`.
    AutoContrast,
    /// `Equalize`.
    Equalize,
    /// `Invert`.
    Invert,
    /// `Rotate`: ±30° at magnitude 10.
    Rotate,
    /// `Posterize`: keeps `int(m / 10 · 4)` bits.
    Posterize,
    /// `PosterizeIncreasing`: keeps `4 - int(m / 10 · 4)` bits.
    PosterizeIncreasing,
    /// `Solarize`: threshold `min(256, int(m / 10 · 256))`.
    Solarize,
    /// `SolarizeIncreasing`: threshold `256 - min(256, int(m / 10 · 256))`.
    SolarizeIncreasing,
    /// `SolarizeAdd`: adds `min(128, int(m / 10 · 110))` below 128.
    SolarizeAdd,
    /// `Color`: factor `m / 10 · 1.8 + 0.1`.
    Color,
    /// `ColorIncreasing`: factor `max(0.1, 1 ± m / 10 · 0.9)`.
    ColorIncreasing,
    /// `Contrast`: like `Color`.
    Contrast,
    /// `ContrastIncreasing`: like `ColorIncreasing`.
    ContrastIncreasing,
    /// `Brightness`: like `Color`.
    Brightness,
    /// `BrightnessIncreasing`: like `ColorIncreasing`.
    BrightnessIncreasing,
    /// `Sharpness`: like `Color`.
    Sharpness,
    /// `SharpnessIncreasing`: like `ColorIncreasing`.
    SharpnessIncreasing,
    /// `ShearX`: ±0.3 at magnitude 10.
    ShearX,
    /// `ShearY`: ±0.3 at magnitude 10.
    ShearY,
    /// `TranslateXRel`: ±0.45 of the width at magnitude 10.
    TranslateXRel,
    /// `TranslateYRel`: ±0.45 of the height at magnitude 10.
    TranslateYRel,
}

/// timm's default RandAugment operations (`_RAND_TRANSFORMS`).
pub const RAND_TRANSFORMS: [RandAugmentOp; 15] = [
    RandAugmentOp::AutoContrast,
    RandAugmentOp::Equalize,
    RandAugmentOp::Invert,
    RandAugmentOp::Rotate,
    RandAugmentOp::Posterize,
    RandAugmentOp::Solarize,
    RandAugmentOp::SolarizeAdd,
    RandAugmentOp::Color,
    RandAugmentOp::Contrast,
    RandAugmentOp::Brightness,
    RandAugmentOp::Sharpness,
    RandAugmentOp::ShearX,
    RandAugmentOp::ShearY,
    RandAugmentOp::TranslateXRel,
    RandAugmentOp::TranslateYRel,
];

/// timm's RandAugment operations whose severity grows with the magnitude (`inc1`,
/// `_RAND_INCREASING_TRANSFORMS`).
pub const RAND_INCREASING_TRANSFORMS: [RandAugmentOp; 15] = [
    RandAugmentOp::AutoContrast,
    RandAugmentOp::Equalize,
    RandAugmentOp::Invert,
    RandAugmentOp::Rotate,
    RandAugmentOp::PosterizeIncreasing,
    RandAugmentOp::SolarizeIncreasing,
    RandAugmentOp::SolarizeAdd,
    RandAugmentOp::ColorIncreasing,
    RandAugmentOp::ContrastIncreasing,
    RandAugmentOp::BrightnessIncreasing,
    RandAugmentOp::SharpnessIncreasing,
    RandAugmentOp::ShearX,
    RandAugmentOp::ShearY,
    RandAugmentOp::TranslateXRel,
    RandAugmentOp::TranslateYRel,
];

impl RandAugmentOp {
    /// Whether the level maps to a signed argument whose sign is drawn.
    pub fn signed(self) -> bool {
        use RandAugmentOp::*;
        matches!(
            self,
            Rotate
                | ShearX
                | ShearY
                | TranslateXRel
                | TranslateYRel
                | ColorIncreasing
                | ContrastIncreasing
                | BrightnessIncreasing
                | SharpnessIncreasing
        )
    }

    /// The explicit operation at `magnitude` (0–10 scale) for an `[height, width]` image,
    /// negating signed arguments when `negate` (timm's `LEVEL_TO_ARG`).
    pub fn at(self, magnitude: f64, negate: bool, [h, w]: [usize; 2]) -> AugmentOp {
        use RandAugmentOp::*;
        let level = magnitude / LEVEL_DENOM;
        let sign = |v: f64| if negate { -v } else { v };
        let enhance = level * 1.8 + 0.1;
        let increasing = (1.0 + sign(level * 0.9)).max(0.1);
        let posterize = (level * 4.0) as u8;
        let solarize = ((level * 256.0) as u16).min(256);
        match self {
            AutoContrast => AugmentOp::AutoContrast,
            Equalize => AugmentOp::Equalize,
            Invert => AugmentOp::Invert,
            Rotate => AugmentOp::Rotate {
                degrees: sign(level * 30.0),
            },
            Posterize => AugmentOp::Posterize { bits: posterize },
            PosterizeIncreasing => AugmentOp::Posterize {
                bits: 4u8.saturating_sub(posterize),
            },
            Solarize => AugmentOp::Solarize {
                threshold: solarize,
            },
            SolarizeIncreasing => AugmentOp::Solarize {
                threshold: 256 - solarize,
            },
            SolarizeAdd => AugmentOp::SolarizeAdd {
                add: ((level * 110.0) as u8).min(128),
                threshold: 128,
            },
            Color => AugmentOp::Color {
                factor: enhance as f32,
            },
            ColorIncreasing => AugmentOp::Color {
                factor: increasing as f32,
            },
            Contrast => AugmentOp::Contrast {
                factor: enhance as f32,
            },
            ContrastIncreasing => AugmentOp::Contrast {
                factor: increasing as f32,
            },
            Brightness => AugmentOp::Brightness {
                factor: enhance as f32,
            },
            BrightnessIncreasing => AugmentOp::Brightness {
                factor: increasing as f32,
            },
            Sharpness => AugmentOp::Sharpness {
                factor: enhance as f32,
            },
            SharpnessIncreasing => AugmentOp::Sharpness {
                factor: increasing as f32,
            },
            ShearX => AugmentOp::ShearX {
                factor: sign(level * 0.3),
            },
            ShearY => AugmentOp::ShearY {
                factor: sign(level * 0.3),
            },
            TranslateXRel => AugmentOp::TranslateX {
                pixels: sign(level * 0.45) * w as f64,
            },
            TranslateYRel => AugmentOp::TranslateY {
                pixels: sign(level * 0.45) * h as f64,
            },
        }
    }
}

/// timm's RandAugment: `num_layers` operations chosen uniformly (with replacement) from
/// `ops`, each applied with probability `prob` at a magnitude drawn from
/// `N(magnitude, magnitude_std²)` (uniform on `[0, magnitude]` when the std is infinite),
/// clipped to `[0, magnitude_max]`.
///
/// Build it from a timm string with [`RandAugment::from_config_str`]. Geometric operations fill
/// uncovered pixels with `fill` and resample with `interpolation` (timm: random bilinear or
/// bicubic per operation).
#[derive(Debug, Clone, PartialEq)]
pub struct RandAugment {
    /// The candidate operations.
    pub ops: Vec<RandAugmentOp>,
    /// Operations applied per image (`n`, default 2).
    pub num_layers: usize,
    /// Mean magnitude on the 0–10 scale (`m`, default 10).
    pub magnitude: f64,
    /// Magnitude noise std (`mstd`, default 0; infinite means uniform sampling).
    pub magnitude_std: f64,
    /// Upper clip of the magnitude (`mmax`, default 10).
    pub magnitude_max: f64,
    /// Probability of applying each chosen operation (`p`, default 0.5).
    pub prob: f64,
    /// Fill of geometric operations, one value per channel in `[0, 1]` (timm: 128/255).
    pub fill: Vec<f32>,
    /// Resampling of geometric operations (timm: random).
    pub interpolation: Interpolation,
}

impl RandAugment {
    /// Parses a timm RandAugment string such as `rand-m9-mstd0.5` or `rand-m7-n3-inc1`:
    /// sections `m` (magnitude), `n` (layers), `p` (probability), `mstd` (magnitude std, above
    /// 100 means uniform), `mmax` (magnitude clip) and `inc` (increasing operations), after the
    /// leading `rand`.
    ///
    /// `fill` is the per-channel fill in `[0, 1]`; SuperGradients passes the dataset mean, which
    /// timm rounds to 8-bit levels (done here too).
    pub fn from_config_str(config: &str, fill: Vec<f32>) -> Result<Self, DataError> {
        let bad = |reason: String| invalid("RandAugment", reason);
        let mut parts = config.split('-');
        if parts.next() != Some("rand") {
            return Err(bad(format!(
                "config `{config}` does not start with `rand`: write e.g. `rand-m9-mstd0.5`"
            )));
        }
        let mut ra = Self {
            ops: RAND_TRANSFORMS.to_vec(),
            num_layers: 2,
            magnitude: 10.0,
            magnitude_std: 0.0,
            magnitude_max: LEVEL_DENOM,
            prob: 0.5,
            fill: fill
                .iter()
                .map(|&f| (f * 255.0).round().min(255.0) / 255.0)
                .collect(),
            interpolation: Interpolation::Random,
        };
        for part in parts {
            let split = part
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(part.len());
            let (key, value) = part.split_at(split);
            let number = || -> Result<f64, DataError> {
                value.parse::<f64>().map_err(|_| {
                    bad(format!(
                        "section `{part}` of `{config}` has no number after `{key}`: write e.g. `m9`"
                    ))
                })
            };
            match key {
                "m" => ra.magnitude = number()?.trunc(),
                "n" => ra.num_layers = number()? as usize,
                "p" => ra.prob = number()?,
                "mstd" => {
                    let v = number()?;
                    ra.magnitude_std = if v > 100.0 { f64::INFINITY } else { v };
                }
                "mmax" => ra.magnitude_max = number()?.trunc(),
                "inc" => {
                    if number()? != 0.0 {
                        ra.ops = RAND_INCREASING_TRANSFORMS.to_vec();
                    }
                }
                _ => {
                    return Err(bad(format!(
                        "unknown section `{part}` in `{config}`: use m, n, p, mstd, mmax or inc (weighted op sets `t...` are not supported)"
                    )));
                }
            }
        }
        ra.validate()?;
        Ok(ra)
    }

    pub(crate) fn validate(&self) -> Result<(), DataError> {
        let bad = |reason: String| Err(invalid("RandAugment", reason));
        if self.ops.is_empty() {
            return bad("no operations to choose from: list at least one".into());
        }
        if !(self.magnitude.is_finite() && self.magnitude >= 0.0) {
            return bad(format!(
                "magnitude {} is not a level ≥ 0: use e.g. 9",
                self.magnitude
            ));
        }
        if self.magnitude_std.is_nan() || self.magnitude_std < 0.0 {
            return bad(format!(
                "magnitude std {} is negative: use e.g. 0.5",
                self.magnitude_std
            ));
        }
        if !(self.magnitude_max.is_finite() && self.magnitude_max >= 0.0) {
            return bad(format!(
                "magnitude max {} is not a level ≥ 0: use e.g. 10",
                self.magnitude_max
            ));
        }
        if !(0.0..=1.0).contains(&self.prob) {
            return bad(format!("probability {} is outside [0, 1]", self.prob));
        }
        if self.fill.is_empty() || self.fill.iter().any(|f| !(0.0..=1.0).contains(f)) {
            return bad(format!(
                "fill {:?} is not one or more values in [0, 1]: give the dataset mean",
                self.fill
            ));
        }
        Ok(())
    }

    pub(crate) fn check_channels(&self, channels: usize) -> Result<(), DataError> {
        if self.fill.len() != 1 && self.fill.len() != channels {
            return Err(invalid(
                "RandAugment",
                format!(
                    "{} fill values for images with {channels} channels: give one per channel",
                    self.fill.len()
                ),
            ));
        }
        let needs_rgb = self
            .ops
            .iter()
            .any(|op| matches!(op, RandAugmentOp::Color | RandAugmentOp::ColorIncreasing));
        if needs_rgb && channels != 3 {
            return Err(invalid(
                "RandAugment",
                format!("the Color operation needs RGB images, got {channels} channels"),
            ));
        }
        if channels != 1 && channels != 3 {
            return Err(invalid(
                "RandAugment",
                format!("needs grey or RGB images, got {channels} channels"),
            ));
        }
        Ok(())
    }

    /// Draws the operations applied to one image of `[height, width]`, each with its filter.
    pub fn draw(&self, hw: [usize; 2], rng: &mut StdRng) -> Vec<(AugmentOp, Resample)> {
        let mut chosen = Vec::with_capacity(self.num_layers);
        for _ in 0..self.num_layers {
            let op = self.ops[rng.random_range(0..self.ops.len())];
            if self.prob < 1.0 && rng.random::<f64>() > self.prob {
                continue;
            }
            let mut magnitude = self.magnitude;
            if self.magnitude_std == f64::INFINITY {
                magnitude = uniform(rng, 0.0, magnitude);
            } else if self.magnitude_std > 0.0 {
                magnitude += self.magnitude_std * normal(rng);
            }
            let magnitude = magnitude.clamp(0.0, self.magnitude_max);
            let negate = op.signed() && rng.random::<f64>() > 0.5;
            let filter = self.interpolation.pick(rng);
            chosen.push((op.at(magnitude, negate, hw), filter));
        }
        chosen
    }

    pub(crate) fn apply(
        &self,
        data: &mut Vec<f32>,
        shape: [usize; 3],
        rng: &mut StdRng,
        tmp: &mut Vec<f32>,
        fill: &mut Vec<f32>,
    ) -> Result<(), DataError> {
        fill.clear();
        if self.fill.len() == 1 {
            fill.resize(shape[0], self.fill[0]);
        } else {
            fill.extend_from_slice(&self.fill);
        }
        for (op, filter) in self.draw([shape[1], shape[2]], rng) {
            op.apply(data, shape, filter, fill, tmp)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::sample_rng;

    #[test]
    fn config_strings_parse_like_timm() {
        let ra =
            RandAugment::from_config_str("rand-m7-mstd0.5", vec![0.485, 0.456, 0.406]).unwrap();
        assert_eq!(
            (ra.magnitude, ra.magnitude_std, ra.num_layers),
            (7.0, 0.5, 2)
        );
        assert_eq!((ra.prob, ra.magnitude_max), (0.5, 10.0));
        assert_eq!(ra.ops, RAND_TRANSFORMS);
        // timm rounds the mean to levels: 0.485 · 255 = 123.7 → 124.
        assert_eq!(ra.fill[0], 124.0 / 255.0);
        let ra = RandAugment::from_config_str("rand-m9-n3-mstd101-inc1-p0.7", vec![0.5]).unwrap();
        assert_eq!((ra.num_layers, ra.prob), (3, 0.7));
        assert!(ra.magnitude_std.is_infinite());
        assert_eq!(ra.ops, RAND_INCREASING_TRANSFORMS);
        for bad in ["m9", "rand-x3", "rand-m", "rand-tweights", "rand-p2"] {
            assert!(
                RandAugment::from_config_str(bad, vec![0.5]).is_err(),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn draws_use_the_magnitude_and_probability() {
        let mut ra = RandAugment::from_config_str("rand-m10-p1.0", vec![0.5]).unwrap();
        ra.ops = vec![RandAugmentOp::Rotate];
        let mut signs = [0, 0];
        for i in 0..200 {
            let ops = ra.draw([8, 8], &mut sample_rng(0, 0, i));
            assert_eq!(ops.len(), 2);
            for (op, _) in ops {
                match op {
                    AugmentOp::Rotate { degrees } => {
                        assert_eq!(degrees.abs(), 30.0);
                        signs[usize::from(degrees > 0.0)] += 1;
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        assert!(signs[0] > 150 && signs[1] > 150, "{signs:?}");
        ra.prob = 0.0;
        assert!(ra.draw([8, 8], &mut sample_rng(0, 0, 0)).is_empty());
    }
}
