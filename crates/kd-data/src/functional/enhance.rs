//! Pillow's `ImageOps` and `ImageEnhance` operations, which timm's RandAugment applies.
//!
//! The histogram and lookup-table operations (autocontrast, equalize, posterize, solarize,
//! solarize-add) are defined on 8-bit levels: values are quantised to the nearest of the 256
//! levels first, so on 8-bit input they equal Pillow exactly. The enhance operations blend in
//! floating point, as Pillow does before it stores 8-bit values.

use super::{check_len, check_rgb, invalid, to_level};
use crate::error::DataError;

/// Applies a per-channel lookup table of 8-bit levels.
fn apply_lut(data: &mut [f32], shape: [usize; 3], luts: &[[u8; 256]]) {
    let n = shape[1] * shape[2];
    for (plane, lut) in data.chunks_exact_mut(n).zip(luts) {
        plane
            .iter_mut()
            .for_each(|v| *v = f32::from(lut[usize::from(to_level(*v))]) / 255.0);
    }
}

fn histograms(data: &[f32], shape: [usize; 3]) -> Vec<[u64; 256]> {
    let n = shape[1] * shape[2];
    data.chunks_exact(n)
        .map(|plane| {
            let mut h = [0u64; 256];
            plane.iter().for_each(|&v| h[usize::from(to_level(v))] += 1);
            h
        })
        .collect()
}

/// Stretches each channel so its darkest level becomes 0 and its brightest 255 (Pillow
/// `ImageOps.autocontrast` with no cutoff).
pub fn autocontrast(data: &mut [f32], shape: [usize; 3]) -> Result<(), DataError> {
    check_len("autocontrast", data, shape)?;
    let luts: Vec<[u8; 256]> = histograms(data, shape)
        .iter()
        .map(|h| {
            let lo = h.iter().position(|&c| c > 0).unwrap_or(0);
            let hi = h.iter().rposition(|&c| c > 0).unwrap_or(0);
            let mut lut = [0u8; 256];
            if hi <= lo {
                lut.iter_mut().enumerate().for_each(|(i, l)| *l = i as u8);
            } else {
                let scale = 255.0 / (hi - lo) as f64;
                let offset = -(lo as f64) * scale;
                for (i, l) in lut.iter_mut().enumerate() {
                    // Truncation toward zero, then clamping, as Pillow's `int(...)`.
                    *l = ((i as f64 * scale + offset) as i64).clamp(0, 255) as u8;
                }
            }
            lut
        })
        .collect();
    apply_lut(data, shape, &luts);
    Ok(())
}

/// Equalizes each channel's histogram (Pillow `ImageOps.equalize`).
pub fn equalize(data: &mut [f32], shape: [usize; 3]) -> Result<(), DataError> {
    check_len("equalize", data, shape)?;
    let luts: Vec<[u8; 256]> = histograms(data, shape)
        .iter()
        .map(|h| {
            let mut lut = [0u8; 256];
            lut.iter_mut().enumerate().for_each(|(i, l)| *l = i as u8);
            let used: Vec<u64> = h.iter().copied().filter(|&c| c > 0).collect();
            if used.len() <= 1 {
                return lut;
            }
            let step = (used.iter().sum::<u64>() - used[used.len() - 1]) / 255;
            if step == 0 {
                return lut;
            }
            let mut n = step / 2;
            for (i, l) in lut.iter_mut().enumerate() {
                *l = (n / step).min(255) as u8;
                n += h[i];
            }
            lut
        })
        .collect();
    apply_lut(data, shape, &luts);
    Ok(())
}

/// Replaces every value `x` by `1 − x` (Pillow `ImageOps.invert`).
pub fn invert(data: &mut [f32]) {
    data.iter_mut().for_each(|v| *v = 1.0 - *v);
}

/// Keeps the `bits` most significant bits of each 8-bit level (Pillow `ImageOps.posterize`);
/// `bits >= 8` keeps the image.
pub fn posterize(data: &mut [f32], shape: [usize; 3], bits: u8) -> Result<(), DataError> {
    check_len("posterize", data, shape)?;
    if bits >= 8 {
        return Ok(());
    }
    let mask = !((1u16 << (8 - bits)) - 1) as u8;
    let lut: [u8; 256] = std::array::from_fn(|i| i as u8 & mask);
    apply_lut(data, shape, &vec![lut; shape[0]]);
    Ok(())
}

/// Inverts every level at or above `threshold` (0–256; Pillow `ImageOps.solarize`).
pub fn solarize(data: &mut [f32], shape: [usize; 3], threshold: u16) -> Result<(), DataError> {
    check_len("solarize", data, shape)?;
    let lut: [u8; 256] = std::array::from_fn(|i| {
        if i as u16 >= threshold {
            255 - i as u8
        } else {
            i as u8
        }
    });
    apply_lut(data, shape, &vec![lut; shape[0]]);
    Ok(())
}

/// Adds `add` levels (saturating at 255) to every level below `threshold` (timm
/// `solarize_add`).
pub fn solarize_add(
    data: &mut [f32],
    shape: [usize; 3],
    add: u8,
    threshold: u8,
) -> Result<(), DataError> {
    check_len("solarize_add", data, shape)?;
    let lut: [u8; 256] = std::array::from_fn(|i| {
        if (i as u8) < threshold {
            (i as u8).saturating_add(add)
        } else {
            i as u8
        }
    });
    apply_lut(data, shape, &vec![lut; shape[0]]);
    Ok(())
}

/// Pillow's `Image.blend(degenerate, image, factor)`: `d + factor·(x − d)`, clamped.
fn blend(x: f32, degenerate: f32, factor: f32) -> f32 {
    (degenerate + factor * (x - degenerate)).clamp(0.0, 1.0)
}

/// Pillow's RGB → L conversion (ITU-R 601-2 luma), in `[0, 1]`.
fn pil_luma(r: f32, g: f32, b: f32) -> f32 {
    (r * 299.0 + g * 587.0 + b * 114.0) / 1000.0
}

fn check_channels(op: &'static str, shape: [usize; 3]) -> Result<(), DataError> {
    if shape[0] != 1 && shape[0] != 3 {
        return Err(invalid(
            op,
            format!(
                "needs 1 or 3 channels, got {}: use it on grey or RGB images",
                shape[0]
            ),
        ));
    }
    Ok(())
}

/// Blends with the grey version of the image (Pillow `ImageEnhance.Color`; 0 gives grey, 1 the
/// input).
pub fn enhance_color(data: &mut [f32], shape: [usize; 3], factor: f32) -> Result<(), DataError> {
    check_len("enhance_color", data, shape)?;
    check_rgb("enhance_color", shape)?;
    let n = shape[1] * shape[2];
    for i in 0..n {
        let l = pil_luma(data[i], data[n + i], data[2 * n + i]);
        for c in 0..3 {
            data[c * n + i] = blend(data[c * n + i], l, factor);
        }
    }
    Ok(())
}

/// Blends with a uniform image at the mean grey level, rounded to an 8-bit level (Pillow
/// `ImageEnhance.Contrast`).
pub fn enhance_contrast(data: &mut [f32], shape: [usize; 3], factor: f32) -> Result<(), DataError> {
    check_len("enhance_contrast", data, shape)?;
    check_channels("enhance_contrast", shape)?;
    let n = shape[1] * shape[2];
    let sum: f64 = if shape[0] == 3 {
        (0..n)
            .map(|i| f64::from(to_level(pil_luma(data[i], data[n + i], data[2 * n + i]))))
            .sum()
    } else {
        data.iter().map(|&v| f64::from(to_level(v))).sum()
    };
    let mean = ((sum / n as f64) + 0.5).floor() as f32 / 255.0;
    data.iter_mut().for_each(|v| *v = blend(*v, mean, factor));
    Ok(())
}

/// Blends with black (Pillow `ImageEnhance.Brightness`).
pub fn enhance_brightness(data: &mut [f32], factor: f32) {
    data.iter_mut().for_each(|v| *v = blend(*v, 0.0, factor));
}

/// Blends with a smoothed image (Pillow `ImageEnhance.Sharpness`): the degenerate image is the
/// 3×3 `SMOOTH` filter (centre weight 5, others 1, over 13) with the border pixels kept.
pub fn enhance_sharpness(
    data: &mut [f32],
    shape: [usize; 3],
    factor: f32,
) -> Result<(), DataError> {
    check_len("enhance_sharpness", data, shape)?;
    let [c, h, w] = shape;
    if h < 3 || w < 3 {
        return Ok(());
    }
    // Column sums of three rows, then the 3×3 box from three neighbouring column sums.
    let mut cols = vec![0.0f32; w];
    let mut smooth = vec![0.0f32; w * (h - 2)];
    for plane in data.chunks_exact_mut(h * w).take(c) {
        for y in 1..h - 1 {
            let (up, mid, down) = (
                &plane[(y - 1) * w..y * w],
                &plane[y * w..(y + 1) * w],
                &plane[(y + 1) * w..(y + 2) * w],
            );
            for (((s, a), b), d) in cols.iter_mut().zip(up).zip(mid).zip(down) {
                *s = a + b + d;
            }
            let out = &mut smooth[(y - 1) * w..y * w];
            for x in 1..w - 1 {
                let s = cols[x - 1] + cols[x] + cols[x + 1] + 4.0 * mid[x];
                // Pillow rounds the filtered image to 8-bit levels.
                out[x] = f32::from(to_level(s / 13.0)) / 255.0;
            }
        }
        for y in 1..h - 1 {
            let row = &mut plane[y * w + 1..(y + 1) * w - 1];
            let sm = &smooth[(y - 1) * w + 1..y * w - 1];
            for (v, &d) in row.iter_mut().zip(sm) {
                *v = blend(*v, d, factor);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(v: &[u8]) -> Vec<f32> {
        v.iter().map(|&l| f32::from(l) / 255.0).collect()
    }

    #[test]
    fn lut_operations_follow_their_definitions() {
        let shape = [1, 1, 4];
        let mut d = levels(&[0, 100, 128, 255]);
        posterize(&mut d, shape, 2).unwrap();
        assert_eq!(d, levels(&[0, 64, 128, 192]));
        let mut d = levels(&[0, 100, 128, 255]);
        solarize(&mut d, shape, 128).unwrap();
        assert_eq!(d, levels(&[0, 100, 127, 0]));
        let mut d = levels(&[0, 100, 128, 250]);
        solarize_add(&mut d, shape, 30, 128).unwrap();
        assert_eq!(d, levels(&[30, 130, 128, 250]));
        let mut d = levels(&[50, 100, 150, 100]);
        autocontrast(&mut d, shape).unwrap();
        assert_eq!(d, levels(&[0, 127, 255, 127]));
    }

    #[test]
    fn blends_reach_their_degenerate_images_at_factor_zero() {
        let mut d = levels(&[10, 200, 90]);
        enhance_brightness(&mut d, 0.0);
        assert_eq!(d, [0.0; 3]);
        let mut d = levels(&[10, 200, 90, 30]);
        enhance_contrast(&mut d, [1, 2, 2], 0.0).unwrap();
        assert!(d.iter().all(|&v| v == f32::from(83u8) / 255.0), "{d:?}");
    }
}
