//! Image files to normalised `C×H×W` inputs, as timm's and torchvision's evaluation transform.
//!
//! The steps of `timm.data.create_transform(..., is_training=False)` for a model's
//! [`PretrainedConfig`]: resize the shorter side to `floor(size / crop_pct)` (the longer side
//! to `floor(new_short * long / short)`, as torchvision), centre-crop `size` (offsets rounded
//! half to even, as Python's `round`), scale pixels to `[0, 1]`, then `(x - mean) / std` per
//! channel.
//!
//! Resampling uses the `image` crate's filters: `Triangle` for bilinear and `CatmullRom` (the
//! cubic of Keys with `a = -0.5`, PIL's bicubic kernel) for bicubic, both widened by the
//! scale factor when shrinking, as PIL's antialiased resize. PIL works in two 8-bit passes
//! (horizontal, then vertical) while `image` keeps the intermediate in `f32`, so results match
//! PIL within one 8-bit level (about 0.2 levels on average), not exactly; the unit tests below
//! measure it against fixtures made with torchvision.
//!
//! Grey images feed one-channel networks and are repeated to RGB for three-channel ones (as
//! PIL's `convert("RGB")`); an alpha channel is dropped. A colour image given to a one-channel
//! network is an error rather than a silent conversion.

use std::path::Path;

use anyhow::{Context, Result, bail};
use image::imageops::{self, FilterType};
use image::{ImageBuffer, Pixel};
use kd_models::{Interpolation, PretrainedConfig};

/// The file extensions read as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Whether `path` names an image kd can read, by its extension.
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Decodes the image at `path` and preprocesses it for `config`; returns `C×H×W` values, C-order.
pub fn load_image(path: &Path, config: &PretrainedConfig) -> Result<Vec<f32>> {
    let image = image::ImageReader::open(path)
        .with_context(|| format!("cannot open image `{}`", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read image `{}`", path.display()))?
        .decode()
        .with_context(|| {
            format!(
                "cannot decode image `{}`: kd reads PNG and JPEG files",
                path.display()
            )
        })?;
    preprocess(&image, config, path)
}

/// Preprocesses a decoded image for `config` (see the module docs); `path` names it in errors.
pub fn preprocess(
    image: &image::DynamicImage,
    config: &PretrainedConfig,
    path: &Path,
) -> Result<Vec<f32>> {
    let channels = config.input_size[0];
    let colour = image.color().has_color();
    match channels {
        1 if colour => bail!(
            "`{}` is a colour image but the network takes 1 channel (grey): convert it to greyscale first, or pass a .npy batch",
            path.display()
        ),
        1 => transform(&image.to_luma8(), config, path),
        3 => transform(&image.to_rgb8(), config, path),
        n => bail!(
            "the network takes {n} input channels, but images give 1 (grey) or 3 (RGB): pass a .npy batch of shape [N, {n}, H, W] instead of `{}`",
            path.display()
        ),
    }
}

/// The `image` filter that stands for `interpolation`.
fn filter(interpolation: Interpolation) -> FilterType {
    match interpolation {
        Interpolation::Nearest => FilterType::Nearest,
        Interpolation::Bilinear => FilterType::Triangle,
        Interpolation::Bicubic => FilterType::CatmullRom,
    }
}

/// The size after resizing the shorter side of `(width, height)` to `short` (torchvision's
/// `_compute_resized_output_size` for an integer size).
fn resized_dims(width: u32, height: u32, short: u32) -> (u32, u32) {
    let long_of = |long: u32, short_side: u32| {
        (f64::from(short) * f64::from(long) / f64::from(short_side)).floor() as u32
    };
    if width <= height {
        (short, long_of(height, width))
    } else {
        (long_of(width, height), short)
    }
}

/// Resize, centre-crop, scale and normalise an 8-bit image with `P::CHANNEL_COUNT` channels.
fn transform<P>(
    image: &ImageBuffer<P, Vec<u8>>,
    config: &PretrainedConfig,
    path: &Path,
) -> Result<Vec<f32>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    let [channels, crop_h, crop_w] = config.input_size;
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        bail!("`{}` is an empty image ({width}x{height})", path.display());
    }
    let short = u32::try_from(config.resize_size()).context("resize size overflows")?;
    let (new_w, new_h) = resized_dims(width, height, short);
    let (crop_w32, crop_h32) = (crop_w as u32, crop_h as u32);
    if new_w < crop_w32 || new_h < crop_h32 || short == 0 {
        bail!(
            "`{}` resizes to {new_w}x{new_h}, smaller than the {crop_w}x{crop_h} crop: the model's crop_pct {} must be at most 1",
            path.display(),
            config.crop_pct
        );
    }
    let resized = imageops::resize(image, new_w, new_h, filter(config.interpolation));
    // torchvision's CenterCrop: int(round((size - crop) / 2.0)), Python rounding half to even.
    let top = (f64::from(new_h - crop_h32) / 2.0).round_ties_even() as u32;
    let left = (f64::from(new_w - crop_w32) / 2.0).round_ties_even() as u32;
    let cropped = imageops::crop_imm(&resized, left, top, crop_w32, crop_h32).to_image();
    let plane = crop_h * crop_w;
    let mut out = vec![0.0f32; channels * plane];
    for (i, pixel) in cropped.pixels().enumerate() {
        for (c, &value) in pixel.channels().iter().enumerate().take(channels) {
            let x = f64::from(value) / 255.0;
            out[c * plane + i] = ((x - config.mean[c]) / config.std[c]) as f32;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kd_data::npy::read_npy;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    fn config(
        channels: usize,
        size: usize,
        interpolation: Interpolation,
        crop_pct: f64,
    ) -> PretrainedConfig {
        PretrainedConfig {
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            input_size: [channels, size, size],
            interpolation,
            crop_pct,
        }
    }

    /// torchvision 0.24.0 `Resize(size)` output sizes, e.g. `Resize(256)` on a 500x375 (WxH)
    /// PIL image gives 341x256, on 375x500 gives 256x341.
    #[test]
    fn resized_dims_follow_torchvision() {
        assert_eq!(resized_dims(500, 375, 256), (341, 256));
        assert_eq!(resized_dims(375, 500, 256), (256, 341));
        assert_eq!(resized_dims(40, 40, 32), (32, 32));
        assert_eq!(resized_dims(57, 43, 36), (47, 36));
    }

    /// Against torchvision on PIL images (tools/reference/export_preprocess.py):
    ///
    /// ```python
    /// T.Compose([T.Resize(floor(size / crop_pct), interpolation), T.CenterCrop(size),
    ///            T.ToTensor(), T.Normalize(mean, std)])(Image.open("preprocess_rgb.png"))
    /// ```
    ///
    /// The difference is measured in 8-bit levels (`|kd - torch| * std * 255`): PIL rounds to
    /// 8 bits between its two passes, `image` does not. Measured: at most 1 level, 0.15 to 0.21
    /// levels on average.
    #[test]
    fn matches_torchvision_within_a_few_levels() {
        let cases = [
            (
                "preprocess_rgb.png",
                3,
                24,
                Interpolation::Bilinear,
                0.875,
                "preprocess_rgb_bilinear.npy",
            ),
            (
                "preprocess_rgb.png",
                3,
                24,
                Interpolation::Bicubic,
                0.9,
                "preprocess_rgb_bicubic.npy",
            ),
            (
                "preprocess_grey.png",
                1,
                16,
                Interpolation::Bilinear,
                1.0,
                "preprocess_grey_bilinear.npy",
            ),
            (
                "preprocess_grey.png",
                3,
                16,
                Interpolation::Bicubic,
                0.875,
                "preprocess_grey_as_rgb_bicubic.npy",
            ),
        ];
        for (image, channels, size, interpolation, crop_pct, want) in cases {
            let mut config = config(channels, size, interpolation, crop_pct);
            if channels == 1 {
                config.mean = [0.2860; 3];
                config.std = [0.3530; 3];
            }
            let got = load_image(&fixture(image), &config).unwrap();
            let want = read_npy(&fixture(want)).unwrap();
            assert_eq!(want.shape, [channels, size, size]);
            let plane = size * size;
            let (mut max_levels, mut mean_levels) = (0.0f64, 0.0f64);
            for (i, (g, w)) in got.iter().zip(&want.data).enumerate() {
                let levels = f64::from((g - w).abs()) * config.std[i / plane] * 255.0;
                max_levels = max_levels.max(levels);
                mean_levels += levels / got.len() as f64;
            }
            assert!(
                max_levels <= 1.01 && mean_levels <= 0.3,
                "{want:?}: max {max_levels:.2} levels, mean {mean_levels:.3}",
                want = (image, interpolation, crop_pct)
            );
        }
    }

    #[test]
    fn same_size_images_are_only_normalised() {
        let image = image::GrayImage::from_fn(4, 4, |x, y| image::Luma([(x * 60 + y) as u8]));
        let config = PretrainedConfig {
            mean: [0.5; 3],
            std: [0.25; 3],
            input_size: [1, 4, 4],
            interpolation: Interpolation::Bicubic,
            crop_pct: 1.0,
        };
        let got = preprocess(&image.clone().into(), &config, Path::new("x.png")).unwrap();
        for (g, p) in got.iter().zip(image.pixels()) {
            let want = (f32::from(p.0[0]) / 255.0 - 0.5) / 0.25;
            assert!((g - want).abs() < 1e-6, "{g} vs {want}");
        }
    }

    #[test]
    fn channel_mismatches_are_errors() {
        let rgb: image::DynamicImage = image::RgbImage::new(8, 8).into();
        let grey = config(1, 8, Interpolation::Bilinear, 1.0);
        let e = preprocess(&rgb, &grey, Path::new("cat.png"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`cat.png` is a colour image") && e.contains("greyscale"),
            "{e}"
        );
        let four = config(4, 8, Interpolation::Bilinear, 1.0);
        let e = preprocess(&rgb, &four, Path::new("cat.png"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("takes 4 input channels") && e.contains(".npy"),
            "{e}"
        );
        let e = load_image(Path::new("missing.png"), &grey).unwrap_err();
        assert!(format!("{e:#}").contains("missing.png"), "{e:#}");
    }
}
