//! `RandomResizedCrop` and `Resize`, both antialiased like torchvision's PIL path.

use rand::Rng;
use rand::rngs::StdRng;

use super::{Buffers, Interpolation, invalid};
use crate::error::DataError;
use crate::functional::{self, CropBox, Resample, resized_crop_of};
use crate::random::uniform;

/// A random crop of random area and aspect ratio, resized to `size` (torchvision
/// `RandomResizedCrop`, timm `RandomResizedCropAndInterpolation`).
///
/// The crop covers a fraction of the image area drawn from `scale` and has a width/height ratio
/// drawn log-uniformly from `ratio`; after ten failed tries to fit such a crop, the largest
/// central crop within `ratio` is used. Defaults (see [`RandomResizedCrop::new`]): scale
/// `(0.08, 1.0)`, ratio `(3/4, 4/3)`, bilinear.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomResizedCrop {
    /// Output `[height, width]`.
    pub size: [usize; 2],
    /// Range of the crop's fraction of the image area.
    pub scale: [f64; 2],
    /// Range of the crop's width/height ratio.
    pub ratio: [f64; 2],
    /// Resampling filter, or `Random` between bilinear and bicubic per sample.
    pub interpolation: Interpolation,
}

impl RandomResizedCrop {
    /// A square `size` crop with torchvision's defaults.
    pub fn new(size: usize) -> Self {
        Self {
            size: [size, size],
            scale: [0.08, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
            interpolation: Interpolation::Bilinear,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), DataError> {
        if self.size.contains(&0) {
            return Err(invalid(
                "RandomResizedCrop",
                format!("size {:?} is empty: give a positive size", self.size),
            ));
        }
        let [s0, s1] = self.scale;
        if !(s0 > 0.0 && s0 <= s1 && s1.is_finite()) {
            return Err(invalid(
                "RandomResizedCrop",
                format!(
                    "scale {:?} is not an increasing pair of positive fractions: use e.g. [0.08, 1.0]",
                    self.scale
                ),
            ));
        }
        let [r0, r1] = self.ratio;
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return Err(invalid(
                "RandomResizedCrop",
                format!(
                    "ratio {:?} is not an increasing pair of positive ratios: use e.g. [0.75, 1.3333]",
                    self.ratio
                ),
            ));
        }
        Ok(())
    }

    /// Draws the crop box of an image of `shape` (torchvision `RandomResizedCrop.get_params`).
    pub fn draw_box(&self, [_, h, w]: [usize; 3], rng: &mut StdRng) -> CropBox {
        let area = (h * w) as f64;
        let (lr0, lr1) = (self.ratio[0].ln(), self.ratio[1].ln());
        for _ in 0..10 {
            let target = area * uniform(rng, self.scale[0], self.scale[1]);
            let aspect = uniform(rng, lr0, lr1).exp();
            let cw = (target * aspect).sqrt().round_ties_even() as usize;
            let ch = (target / aspect).sqrt().round_ties_even() as usize;
            if 0 < cw && cw <= w && 0 < ch && ch <= h {
                let top = rng.random_range(0..=h - ch);
                let left = rng.random_range(0..=w - cw);
                return CropBox {
                    top: top as isize,
                    left: left as isize,
                    height: ch,
                    width: cw,
                };
            }
        }
        // Fallback to the central crop with the ratio clamped into range.
        let in_ratio = w as f64 / h as f64;
        let (cw, ch) = if in_ratio < self.ratio[0] {
            (
                w,
                ((w as f64 / self.ratio[0]).round_ties_even() as usize).clamp(1, h),
            )
        } else if in_ratio > self.ratio[1] {
            (
                ((h as f64 * self.ratio[1]).round_ties_even() as usize).clamp(1, w),
                h,
            )
        } else {
            (w, h)
        };
        CropBox {
            top: ((h - ch) / 2) as isize,
            left: ((w - cw) / 2) as isize,
            height: ch,
            width: cw,
        }
    }

    pub(crate) fn apply(
        &self,
        buf: &mut Buffers,
        shape: [usize; 3],
        rng: &mut StdRng,
    ) -> Result<[usize; 3], DataError> {
        let bx = self.draw_box(shape, rng);
        let filter = self.interpolation.pick(rng);
        let out = functional::resized_crop(
            &buf.cur,
            shape,
            bx,
            self.size,
            filter,
            &mut buf.scratch,
            &mut buf.next,
        )?;
        buf.swap();
        Ok(out)
    }

    /// [`Self::apply`] as the first step of a pipeline: reads the `u8` image directly and
    /// writes `buf.cur`, converting only the pixels the crop covers. Same draws, same output.
    pub(crate) fn apply_u8(
        &self,
        image: &[u8],
        buf: &mut Buffers,
        shape: [usize; 3],
        rng: &mut StdRng,
    ) -> Result<[usize; 3], DataError> {
        let bx = self.draw_box(shape, rng);
        let filter = self.interpolation.pick(rng);
        resized_crop_of(
            image,
            shape,
            bx,
            self.size,
            filter,
            &mut buf.scratch,
            &mut buf.cur,
        )
    }
}

/// The target size of a [`Resize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeTo {
    /// The shorter side becomes this; the longer keeps the aspect ratio (rounded down).
    Shorter(usize),
    /// Exactly `[height, width]`.
    Exact([usize; 2]),
}

/// Antialiased resize (torchvision `Resize(size, interpolation, antialias=True)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Resize {
    /// Target size.
    pub size: ResizeTo,
    /// Resampling filter (torchvision's default is bilinear).
    pub interpolation: Interpolation,
}

impl Resize {
    pub(crate) fn validate(&self) -> Result<(), DataError> {
        let empty = match self.size {
            ResizeTo::Shorter(s) => s == 0,
            ResizeTo::Exact(hw) => hw.contains(&0),
        };
        if empty {
            return Err(invalid(
                "Resize",
                format!("size {:?} is empty: give a positive size", self.size),
            ));
        }
        Ok(())
    }

    /// The output `[height, width]` for an `h`×`w` image (torchvision's
    /// `_compute_resized_output_size`).
    pub fn target(&self, h: usize, w: usize) -> [usize; 2] {
        match self.size {
            ResizeTo::Exact(hw) => hw,
            ResizeTo::Shorter(s) => {
                let (short, long) = if w <= h { (w, h) } else { (h, w) };
                let new_long = ((s * long) as f64 / short as f64) as usize;
                if w <= h { [new_long, s] } else { [s, new_long] }
            }
        }
    }

    pub(crate) fn apply(
        &self,
        buf: &mut Buffers,
        shape: [usize; 3],
        rng: &mut StdRng,
    ) -> Result<[usize; 3], DataError> {
        let [c, h, w] = shape;
        let size = self.target(h, w);
        let filter = self.interpolation.pick(rng);
        if size == [h, w] {
            return Ok([c, h, w]);
        }
        let out = functional::resize(
            &buf.cur,
            shape,
            size,
            filter,
            &mut buf.scratch,
            &mut buf.next,
        )?;
        buf.swap();
        Ok(out)
    }
}

impl Interpolation {
    /// The filter for one sample: `Random` picks bilinear or bicubic with equal odds.
    pub fn pick(self, rng: &mut StdRng) -> Resample {
        match self {
            Interpolation::Bilinear => Resample::Bilinear,
            Interpolation::Bicubic => Resample::Bicubic,
            Interpolation::Random => {
                if rng.random::<bool>() {
                    Resample::Bicubic
                } else {
                    Resample::Bilinear
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::sample_rng;

    #[test]
    fn drawn_boxes_fit_and_respect_scale_and_ratio() {
        let t = RandomResizedCrop::new(8);
        let shape = [3, 60, 90];
        let mut fallback = 0;
        for i in 0..500 {
            let bx = t.draw_box(shape, &mut sample_rng(1, 0, i));
            assert!(bx.top >= 0 && bx.left >= 0);
            assert!(bx.top as usize + bx.height <= 60 && bx.left as usize + bx.width <= 90);
            let frac = (bx.height * bx.width) as f64 / 5400.0;
            if (bx.height, bx.width) == (60, 80) {
                fallback += 1;
                continue;
            }
            // Rounding of the sides moves area and ratio a little past their ranges.
            assert!((0.06..=1.05).contains(&frac), "{bx:?}");
            let ratio = bx.width as f64 / bx.height as f64;
            assert!((0.7..=1.42).contains(&ratio), "{bx:?}");
        }
        assert!(fallback < 100, "{fallback} fallbacks");
    }

    #[test]
    fn shorter_side_resize_keeps_the_aspect_ratio_rounding_down() {
        let r = Resize {
            size: ResizeTo::Shorter(256),
            interpolation: Interpolation::Bilinear,
        };
        assert_eq!(r.target(375, 500), [256, 341]);
        assert_eq!(r.target(500, 333), [384, 256]);
        assert_eq!(r.target(100, 100), [256, 256]);
    }
}
