//! `RandomCrop` (with zero padding) and `CenterCrop`.

use rand::Rng;
use rand::rngs::StdRng;

use super::{Buffers, invalid};
use crate::error::DataError;
use crate::functional::{self, CropBox};

/// Random crop of a `size`×`size` window after zero-padding every side by `padding` pixels
/// (torchvision `RandomCrop(size, padding)` with `fill=0`, `padding_mode="constant"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RandomCrop {
    /// Output height and width.
    pub size: usize,
    /// Zero padding added on each side before cropping.
    pub padding: usize,
}

impl RandomCrop {
    pub(crate) fn validate(&self) -> Result<(), DataError> {
        if self.size == 0 {
            return Err(invalid(
                "RandomCrop",
                "size is 0: give a positive crop size".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn output_shape(&self, [c, h, w]: [usize; 3]) -> Result<[usize; 3], DataError> {
        let (ph, pw) = (h + 2 * self.padding, w + 2 * self.padding);
        if self.size > ph || self.size > pw {
            return Err(invalid(
                "RandomCrop",
                format!(
                    "size {} exceeds the padded image of {ph}x{pw} (image {h}x{w}, padding {}): lower `size` or raise `padding`",
                    self.size, self.padding
                ),
            ));
        }
        Ok([c, self.size, self.size])
    }

    /// The crop window in image coordinates (negative where it starts in the padding).
    pub fn draw(&self, [_, h, w]: [usize; 3], rng: &mut StdRng) -> CropBox {
        let (s, p) = (self.size, self.padding);
        let top = rng.random_range(0..=h + 2 * p - s);
        let left = rng.random_range(0..=w + 2 * p - s);
        CropBox {
            top: top as isize - p as isize,
            left: left as isize - p as isize,
            height: s,
            width: s,
        }
    }

    pub(crate) fn apply(
        &self,
        buf: &mut Buffers,
        shape: [usize; 3],
        rng: &mut StdRng,
    ) -> Result<[usize; 3], DataError> {
        self.output_shape(shape)?;
        let bx = self.draw(shape, rng);
        let out = functional::crop(&buf.cur, shape, bx, &mut buf.next)?;
        buf.swap();
        Ok(out)
    }
}

/// Crop of the central `height`×`width` window, zero-padding images smaller than the window
/// (torchvision `CenterCrop`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CenterCrop {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
}

impl CenterCrop {
    /// A square `size`×`size` centre crop.
    pub fn square(size: usize) -> Self {
        Self {
            height: size,
            width: size,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), DataError> {
        if self.height == 0 || self.width == 0 {
            return Err(invalid(
                "CenterCrop",
                format!(
                    "size {}x{} is empty: give a positive size",
                    self.height, self.width
                ),
            ));
        }
        Ok(())
    }

    /// The centre window of an image of `shape`, torchvision's: offsets round half to even, and
    /// smaller images are padded by `(crop - size) / 2` (floor) before.
    pub fn window(&self, [_, h, w]: [usize; 3]) -> CropBox {
        let offset = |size: usize, crop: usize| -> isize {
            if crop > size {
                -(((crop - size) / 2) as isize)
            } else {
                ((size - crop) as f64 / 2.0).round_ties_even() as isize
            }
        };
        CropBox {
            top: offset(h, self.height),
            left: offset(w, self.width),
            height: self.height,
            width: self.width,
        }
    }

    pub(crate) fn apply(
        &self,
        buf: &mut Buffers,
        shape: [usize; 3],
    ) -> Result<[usize; 3], DataError> {
        let out = functional::crop(&buf.cur, shape, self.window(shape), &mut buf.next)?;
        buf.swap();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn center_window_rounds_half_to_even_and_pads_small_images() {
        let c = CenterCrop::square(2);
        // (5 - 2) / 2 = 1.5 rounds to 2; (3 - 2) / 2 = 0.5 rounds to 0, as Python's round.
        assert_eq!(c.window([1, 5, 3]).top, 2);
        assert_eq!(c.window([1, 5, 3]).left, 0);
        let big = CenterCrop {
            height: 5,
            width: 4,
        };
        let bx = big.window([1, 2, 3]);
        assert_eq!((bx.top, bx.left), (-1, 0));
    }
}
