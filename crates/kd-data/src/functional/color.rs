//! Colour adjustments with torchvision's float-tensor semantics (`ColorJitter`'s operations).

use super::{check_len, check_rgb};
use crate::error::DataError;

/// Luma of an RGB pixel with torchvision's weights (`rgb_to_grayscale`).
fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.2989 * r + 0.587 * g + 0.114 * b
}

/// Writes the luma of the RGB image `data` (`shape`) into `dst` (`[1, H, W]`).
pub fn grayscale(data: &[f32], shape: [usize; 3], dst: &mut Vec<f32>) -> Result<(), DataError> {
    check_len("grayscale", data, shape)?;
    check_rgb("grayscale", shape)?;
    let n = shape[1] * shape[2];
    let (r, rest) = data.split_at(n);
    let (g, b) = rest.split_at(n);
    dst.clear();
    dst.extend((0..n).map(|i| luma(r[i], g[i], b[i])));
    Ok(())
}

/// Multiplies every value by `factor`, clamped to `[0, 1]` (torchvision `adjust_brightness`).
pub fn adjust_brightness(data: &mut [f32], factor: f32) {
    data.iter_mut()
        .for_each(|v| *v = (*v * factor).clamp(0.0, 1.0));
}

/// Blends towards the mean luma of the whole image: `factor·x + (1 − factor)·mean`, clamped
/// (torchvision `adjust_contrast`). Single-channel images use their own mean.
pub fn adjust_contrast(data: &mut [f32], shape: [usize; 3], factor: f32) -> Result<(), DataError> {
    check_len("adjust_contrast", data, shape)?;
    let n = shape[1] * shape[2];
    let mean = match shape[0] {
        3 => {
            let (r, rest) = data.split_at(n);
            let (g, b) = rest.split_at(n);
            (0..n)
                .map(|i| f64::from(luma(r[i], g[i], b[i])))
                .sum::<f64>()
                / n as f64
        }
        1 => data.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64,
        c => {
            return Err(super::invalid(
                "adjust_contrast",
                format!("needs 1 or 3 channels, got {c}: use it on grey or RGB images"),
            ));
        }
    } as f32;
    data.iter_mut()
        .for_each(|v| *v = (factor * *v + (1.0 - factor) * mean).clamp(0.0, 1.0));
    Ok(())
}

/// Blends every pixel with its luma: `factor·x + (1 − factor)·luma`, clamped (torchvision
/// `adjust_saturation`; 0 gives grey, 1 the input).
pub fn adjust_saturation(
    data: &mut [f32],
    shape: [usize; 3],
    factor: f32,
) -> Result<(), DataError> {
    check_len("adjust_saturation", data, shape)?;
    check_rgb("adjust_saturation", shape)?;
    let n = shape[1] * shape[2];
    for i in 0..n {
        let l = luma(data[i], data[n + i], data[2 * n + i]);
        for c in 0..3 {
            let v = &mut data[c * n + i];
            *v = (factor * *v + (1.0 - factor) * l).clamp(0.0, 1.0);
        }
    }
    Ok(())
}

/// Rotates the hue by `hue_factor` turns (in `[-0.5, 0.5]`) through HSV (torchvision
/// `adjust_hue`).
pub fn adjust_hue(data: &mut [f32], shape: [usize; 3], hue_factor: f32) -> Result<(), DataError> {
    check_len("adjust_hue", data, shape)?;
    check_rgb("adjust_hue", shape)?;
    if !(-0.5..=0.5).contains(&hue_factor) {
        return Err(super::invalid(
            "adjust_hue",
            format!("hue factor {hue_factor} is outside [-0.5, 0.5]: give a factor in that range"),
        ));
    }
    let n = shape[1] * shape[2];
    for i in 0..n {
        let (r, g, b) = (data[i], data[n + i], data[2 * n + i]);
        let maxc = r.max(g).max(b);
        let minc = r.min(g).min(b);
        let cr = maxc - minc;
        let (h, s) = if cr == 0.0 {
            (0.0, 0.0)
        } else {
            let s = cr / maxc;
            let rc = (maxc - r) / cr;
            let gc = (maxc - g) / cr;
            let bc = (maxc - b) / cr;
            let h = if maxc == r {
                bc - gc
            } else if maxc == g {
                2.0 + rc - bc
            } else {
                4.0 + gc - rc
            };
            ((h / 6.0 + 1.0) % 1.0, s)
        };
        let h = (h + hue_factor).rem_euclid(1.0);
        let v = maxc;
        let sector = (h * 6.0).floor();
        let frac = h * 6.0 - sector;
        let p = (v * (1.0 - s)).clamp(0.0, 1.0);
        let q = (v * (1.0 - s * frac)).clamp(0.0, 1.0);
        let t = (v * (1.0 - s * (1.0 - frac))).clamp(0.0, 1.0);
        let (r, g, b) = match (sector as i32).rem_euclid(6) {
            0 => (v, t, p),
            1 => (q, v, p),
            2 => (p, v, t),
            3 => (p, q, v),
            4 => (t, p, v),
            _ => (v, p, q),
        };
        data[i] = r;
        data[n + i] = g;
        data[2 * n + i] = b;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hue_round_trip_by_a_full_turn_is_the_identity() {
        let mut data = vec![0.9, 0.2, 0.5, 0.1, 0.3, 0.5, 0.4, 0.4, 0.5];
        let orig = data.clone();
        adjust_hue(&mut data, [3, 1, 3], 0.0).unwrap();
        for (a, b) in data.iter().zip(&orig) {
            assert!((a - b).abs() < 1e-6, "{data:?}");
        }
        // A third of a turn maps pure red to pure green.
        let mut red = vec![1.0, 0.0, 0.0];
        adjust_hue(&mut red, [3, 1, 1], 1.0 / 3.0).unwrap();
        assert!(
            (red[1] - 1.0).abs() < 1e-5 && red[0] < 1e-5 && red[2] < 1e-5,
            "{red:?}"
        );
        assert!(adjust_hue(&mut red, [3, 1, 1], 0.7).is_err());
    }

    #[test]
    fn saturation_zero_gives_grey() {
        let mut data = vec![1.0, 0.0, 0.0];
        adjust_saturation(&mut data, [3, 1, 1], 0.0).unwrap();
        assert!(data.iter().all(|&v| (v - 0.2989).abs() < 1e-6), "{data:?}");
        assert!(adjust_saturation(&mut [0.0; 2], [2, 1, 1], 0.5).is_err());
    }
}
