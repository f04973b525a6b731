//! Deterministic image operations with explicit parameters, torchvision's `functional` module.
//!
//! Every random transform of [`crate::Transforms`] draws its parameters and then calls one of
//! these functions, so each can be checked against torchvision, timm or Pillow with the same
//! explicit parameters. Images are `f32` in `[0, 1]`, channel-major (`C×H×W`), given as a slice
//! and a shape. Operations that change the size write into a `dst` vector, which they resize
//! (reusing its memory); the others work in place.

mod color;
mod enhance;
mod erase;
mod geometry;

pub use color::{adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, grayscale};
pub use enhance::{
    autocontrast, enhance_brightness, enhance_color, enhance_contrast, enhance_sharpness, equalize,
    invert, posterize, solarize, solarize_add,
};
pub use erase::erase;
pub(crate) use geometry::resized_crop_of;
pub use geometry::{
    affine, crop, hflip, resize, resized_crop, rotate, shear_x, shear_y, translate_x, translate_y,
};

use crate::error::DataError;

/// A resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resample {
    /// Linear interpolation (triangle filter).
    Bilinear,
    /// Cubic convolution.
    Bicubic,
}

/// A rectangle of an image, in pixels; `top` and `left` may be negative and the rectangle may
/// extend past the image where an operation pads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CropBox {
    /// First row.
    pub top: isize,
    /// First column.
    pub left: isize,
    /// Number of rows.
    pub height: usize,
    /// Number of columns.
    pub width: usize,
}

/// Reusable working memory of the operations that need temporary buffers.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    pub(crate) tmp: Vec<f32>,
    pub(crate) row: Vec<f32>,
    pub(crate) taps_x: Taps,
    pub(crate) taps_y: Taps,
}

/// Resampling weights of one axis: for output `i`, `len[i]` weights starting at input `start[i]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Taps {
    pub(crate) start: Vec<usize>,
    pub(crate) len: Vec<usize>,
    pub(crate) weights: Vec<f32>,
    pub(crate) stride: usize,
}

/// Quantises a `[0, 1]` value to the nearest 8-bit level.
pub(crate) fn to_level(x: f32) -> u8 {
    // Adding one half and truncating rounds half up, like `round` on non-negative values, and
    // compiles to a few vector instructions; NaN saturates to 0.
    (x * 255.0 + 0.5).clamp(0.0, 255.0) as u8
}

pub(crate) fn invalid(transform: &'static str, reason: String) -> DataError {
    DataError::InvalidTransform { transform, reason }
}

/// Fails unless `data` holds `shape`'s number of values.
pub(crate) fn check_len<T>(
    op: &'static str,
    data: &[T],
    shape: [usize; 3],
) -> Result<(), DataError> {
    let expected = shape.iter().product::<usize>();
    if data.len() != expected {
        return Err(invalid(
            op,
            format!(
                "the image holds {} values but its shape {shape:?} needs {expected}: pass the image's own shape",
                data.len()
            ),
        ));
    }
    Ok(())
}

/// Fails unless the image has 3 channels.
pub(crate) fn check_rgb(op: &'static str, shape: [usize; 3]) -> Result<(), DataError> {
    if shape[0] != 3 {
        return Err(invalid(
            op,
            format!(
                "needs an RGB image but got {} channels: use it on 3-channel images only",
                shape[0]
            ),
        ));
    }
    Ok(())
}
