//! Geometric operations: crop, flip, antialiased resize and affine warps.

use super::{CropBox, Resample, Scratch, Taps, check_len, invalid};
use crate::error::DataError;

/// Copies `bx` of `src` (`shape`) into `dst` (`[C, bx.height, bx.width]`), with zeros where the
/// box extends past the image (torchvision `crop`, which pads with zeros).
pub fn crop(
    src: &[f32],
    shape: [usize; 3],
    bx: CropBox,
    dst: &mut Vec<f32>,
) -> Result<[usize; 3], DataError> {
    check_len("crop", src, shape)?;
    let [c, h, w] = shape;
    let (oh, ow) = (bx.height, bx.width);
    dst.clear();
    dst.resize(c * oh * ow, 0.0);
    // Output column x reads source column left + x; the valid ones form [x0, x1).
    let x0 = (-bx.left).clamp(0, ow as isize) as usize;
    let x1 = (w as isize - bx.left).clamp(x0 as isize, ow as isize) as usize;
    if x1 > x0 {
        for ch in 0..c {
            for y in 0..oh {
                let sy = bx.top + y as isize;
                if sy < 0 || sy >= h as isize {
                    continue;
                }
                // Source column left + x0 is at least 0 by the choice of x0.
                let from = (ch * h + sy as usize) * w + (bx.left + x0 as isize) as usize;
                dst[(ch * oh + y) * ow + x0..(ch * oh + y) * ow + x1]
                    .copy_from_slice(&src[from..from + (x1 - x0)]);
            }
        }
    }
    Ok([c, oh, ow])
}

/// Mirrors every row of `data` (`shape`) in place (torchvision `hflip`).
pub fn hflip(data: &mut [f32], shape: [usize; 3]) -> Result<(), DataError> {
    check_len("hflip", data, shape)?;
    data.chunks_exact_mut(shape[2]).for_each(<[f32]>::reverse);
    Ok(())
}

/// The resampling kernel at distance `x` (in output-scaled units).
fn kernel(filter: Resample, x: f64) -> f64 {
    let x = x.abs();
    match filter {
        Resample::Bilinear => (1.0 - x).max(0.0),
        Resample::Bicubic => {
            // Keys' cubic convolution with a = -0.5, as Pillow and torchvision resize use.
            let a = -0.5;
            if x < 1.0 {
                ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
            } else if x < 2.0 {
                (((x - 5.0) * x + 8.0) * x - 4.0) * a
            } else {
                0.0
            }
        }
    }
}

/// Fills `taps` with the antialiased weights that map `in_size` samples to `out_size`.
///
/// This is Pillow's resampling (also torchvision's `antialias=True`): output `i` is centred at
/// input `(i + 0.5) · scale`, and when shrinking the kernel is stretched by `scale`, so every
/// input pixel contributes.
fn compute_taps(in_size: usize, out_size: usize, filter: Resample, taps: &mut Taps) {
    let scale = in_size as f64 / out_size as f64;
    let base_support = match filter {
        Resample::Bilinear => 1.0,
        Resample::Bicubic => 2.0,
    };
    let (support, inv) = if scale >= 1.0 {
        (base_support * scale, 1.0 / scale)
    } else {
        (base_support, 1.0)
    };
    let stride = (support.ceil() as usize) * 2 + 1;
    taps.stride = stride;
    taps.start.clear();
    taps.len.clear();
    taps.weights.clear();
    taps.weights.resize(out_size * stride, 0.0);
    let mut row = vec![0.0f64; stride];
    for i in 0..out_size {
        let center = (i as f64 + 0.5) * scale;
        // Truncation toward zero, then clamping, as in Pillow.
        let lo = ((center - support + 0.5) as isize).max(0) as usize;
        let hi = ((center + support + 0.5) as isize).clamp(0, in_size as isize) as usize;
        let n = hi.saturating_sub(lo).min(stride);
        let mut sum = 0.0;
        for (k, r) in row.iter_mut().enumerate().take(n) {
            *r = kernel(filter, ((lo + k) as f64 - center + 0.5) * inv);
            sum += *r;
        }
        let norm = if sum == 0.0 { 1.0 } else { 1.0 / sum };
        for (t, r) in taps.weights[i * stride..][..n].iter_mut().zip(&row) {
            *t = (r * norm) as f32;
        }
        taps.start.push(lo);
        taps.len.push(n);
    }
}

/// Resizes `bx` of `src` (`shape`) to `size` (`[H, W]`) with antialiasing (torchvision
/// `resized_crop(..., antialias=True)`, equal to Pillow's resize of the crop).
///
/// The box must lie inside the image. Bicubic output is clamped to `[0, 1]`, as the 8-bit
/// images of torchvision's PIL path are.
pub fn resized_crop(
    src: &[f32],
    shape: [usize; 3],
    bx: CropBox,
    size: [usize; 2],
    filter: Resample,
    scratch: &mut Scratch,
    dst: &mut Vec<f32>,
) -> Result<[usize; 3], DataError> {
    resized_crop_of(src, shape, bx, size, filter, scratch, dst)
}

/// A pixel value a resize reads: an `f32` in `[0, 1]`, or a `u8` read as `p / 255` (the
/// value [`crate::Transforms`] would have converted it to first, so both give equal results).
pub(crate) trait Texel: Copy {
    /// `row` as values in `[0, 1]`, converted into `buf` when it is not `f32` already.
    fn as_unit<'a>(row: &'a [Self], buf: &'a mut Vec<f32>) -> &'a [f32];
}

impl Texel for f32 {
    #[inline(always)]
    fn as_unit<'a>(row: &'a [f32], _: &'a mut Vec<f32>) -> &'a [f32] {
        row
    }
}

impl Texel for u8 {
    #[inline(always)]
    fn as_unit<'a>(row: &'a [u8], buf: &'a mut Vec<f32>) -> &'a [f32] {
        buf.clear();
        buf.extend(row.iter().map(|&p| f32::from(p) / 255.0));
        buf
    }
}

/// [`resized_crop`] from `f32` or `u8` pixels: reading the source image directly lets a
/// pipeline that starts with a crop convert only the pixels the crop covers.
pub(crate) fn resized_crop_of<T: Texel>(
    src: &[T],
    shape: [usize; 3],
    bx: CropBox,
    size: [usize; 2],
    filter: Resample,
    scratch: &mut Scratch,
    dst: &mut Vec<f32>,
) -> Result<[usize; 3], DataError> {
    check_len("resized_crop", src, shape)?;
    let [c, h, w] = shape;
    let inside = bx.top >= 0
        && bx.left >= 0
        && bx.height > 0
        && bx.width > 0
        && bx.top as usize + bx.height <= h
        && bx.left as usize + bx.width <= w;
    if !inside {
        return Err(invalid(
            "resized_crop",
            format!(
                "box {bx:?} is not a non-empty part of the {h}x{w} image: keep the box inside the image"
            ),
        ));
    }
    let [oh, ow] = size;
    if oh == 0 || ow == 0 {
        return Err(invalid(
            "resized_crop",
            format!("output size {oh}x{ow} is empty: give a positive size"),
        ));
    }
    let (top, left, ch, cw) = (bx.top as usize, bx.left as usize, bx.height, bx.width);
    compute_taps(cw, ow, filter, &mut scratch.taps_x);
    compute_taps(ch, oh, filter, &mut scratch.taps_y);
    // Horizontal pass: [C, ch, cw] -> [C, ch, ow].
    let tmp = &mut scratch.tmp;
    tmp.clear();
    tmp.resize(c * ch * ow, 0.0);
    let tx = &scratch.taps_x;
    let row_buf = &mut scratch.row;
    for plane in 0..c {
        for y in 0..ch {
            let row = T::as_unit(&src[(plane * h + top + y) * w + left..][..cw], row_buf);
            let out = &mut tmp[(plane * ch + y) * ow..][..ow];
            for (x, o) in out.iter_mut().enumerate() {
                let ws = &tx.weights[x * tx.stride..][..tx.len[x]];
                let inp = &row[tx.start[x]..][..tx.len[x]];
                *o = ws.iter().zip(inp).map(|(a, b)| a * b).sum();
            }
        }
    }
    // Vertical pass: [C, ch, ow] -> [C, oh, ow].
    dst.clear();
    dst.resize(c * oh * ow, 0.0);
    let ty = &scratch.taps_y;
    for plane in 0..c {
        for y in 0..oh {
            let out = &mut dst[(plane * oh + y) * ow..][..ow];
            let ws = &ty.weights[y * ty.stride..][..ty.len[y]];
            for (k, &wk) in ws.iter().enumerate() {
                let inp = &tmp[(plane * ch + ty.start[y] + k) * ow..][..ow];
                out.iter_mut().zip(inp).for_each(|(o, &v)| *o += wk * v);
            }
        }
    }
    if filter == Resample::Bicubic {
        dst.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    }
    Ok([c, oh, ow])
}

/// Resizes the whole of `src` (`shape`) to `size` (`[H, W]`); see [`resized_crop`].
pub fn resize(
    src: &[f32],
    shape: [usize; 3],
    size: [usize; 2],
    filter: Resample,
    scratch: &mut Scratch,
    dst: &mut Vec<f32>,
) -> Result<[usize; 3], DataError> {
    let bx = CropBox {
        top: 0,
        left: 0,
        height: shape[1],
        width: shape[2],
    };
    resized_crop(src, shape, bx, size, filter, scratch, dst)
}

/// Cubic convolution weights with Pillow's transform coefficient (a = -1) for fraction `d`.
fn cubic_weights(d: f32) -> [f32; 4] {
    // p(d) = v2 + d(-v1 + v3) + d²(2v1 - 2v2 + v3 - v4) + d³(-v1 + v2 - v3 + v4), per input.
    let (d2, d3) = (d * d, d * d * d);
    [
        -d + 2.0 * d2 - d3,
        1.0 - 2.0 * d2 + d3,
        d + d2 - d3,
        -d2 + d3,
    ]
}

/// Warps `src` (`shape`) by the inverse affine map `matrix` = `[a, b, c, d, e, f]`: output pixel
/// centre `(x, y)` samples the input at `(a·x + b·y + c, d·x + e·y + f)` (Pillow
/// `Image.transform(size, AFFINE, matrix, resample, fillcolor)`).
///
/// Samples outside the image take `fill` (one value per channel); edge pixels are replicated
/// for the filter taps near the border. `dst` has the input's shape.
pub fn affine(
    src: &[f32],
    shape: [usize; 3],
    matrix: [f64; 6],
    filter: Resample,
    fill: &[f32],
    dst: &mut Vec<f32>,
) -> Result<(), DataError> {
    check_len("affine", src, shape)?;
    let [c, h, w] = shape;
    if fill.len() != c {
        return Err(invalid(
            "affine",
            format!(
                "{} fill values for {c} channels: give one fill value per channel",
                fill.len()
            ),
        ));
    }
    let plane = h * w;
    dst.clear();
    dst.resize(c * plane, 0.0);
    let [a, b, cc, d, e, f] = matrix;
    let clamp_x = |x: isize| x.clamp(0, w as isize - 1) as usize;
    let clamp_y = |y: isize| y.clamp(0, h as isize - 1) as usize;
    for y in 0..h {
        let py = y as f64 + 0.5;
        for x in 0..w {
            let px = x as f64 + 0.5;
            let xin = a * px + b * py + cc;
            let yin = d * px + e * py + f;
            let at = y * w + x;
            if !(xin >= 0.0 && xin < w as f64 && yin >= 0.0 && yin < h as f64) {
                for (ch, &v) in fill.iter().enumerate() {
                    dst[ch * plane + at] = v;
                }
                continue;
            }
            let (xs, ys) = (xin - 0.5, yin - 0.5);
            let (x0, y0) = (xs.floor(), ys.floor());
            let (dx, dy) = ((xs - x0) as f32, (ys - y0) as f32);
            let (x0, y0) = (x0 as isize, y0 as isize);
            match filter {
                Resample::Bilinear => {
                    let (xa, xb) = (clamp_x(x0), clamp_x(x0 + 1));
                    let (ya, yb) = (clamp_y(y0) * w, clamp_y(y0 + 1) * w);
                    for (ch, p) in src.chunks_exact(plane).enumerate() {
                        let top = p[ya + xa] + (p[ya + xb] - p[ya + xa]) * dx;
                        let bot = p[yb + xa] + (p[yb + xb] - p[yb + xa]) * dx;
                        dst[ch * plane + at] = top + (bot - top) * dy;
                    }
                }
                Resample::Bicubic => {
                    let (wx, wy) = (cubic_weights(dx), cubic_weights(dy));
                    let xs: [usize; 4] = std::array::from_fn(|k| clamp_x(x0 - 1 + k as isize));
                    let rows: [usize; 4] =
                        std::array::from_fn(|k| clamp_y(y0 - 1 + k as isize) * w);
                    for (ch, p) in src.chunks_exact(plane).enumerate() {
                        let mut v = 0.0;
                        for (&row, &wr) in rows.iter().zip(&wy) {
                            let r = &p[row..row + w];
                            v += wr
                                * (r[xs[0]] * wx[0]
                                    + r[xs[1]] * wx[1]
                                    + r[xs[2]] * wx[2]
                                    + r[xs[3]] * wx[3]);
                        }
                        dst[ch * plane + at] = v.clamp(0.0, 1.0);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Rotates `src` by `degrees` counter-clockwise about the image centre, keeping the size
/// (Pillow `Image.rotate(degrees, resample, fillcolor=fill)`).
pub fn rotate(
    src: &[f32],
    shape: [usize; 3],
    degrees: f64,
    filter: Resample,
    fill: &[f32],
    dst: &mut Vec<f32>,
) -> Result<(), DataError> {
    let (cx, cy) = (shape[2] as f64 / 2.0, shape[1] as f64 / 2.0);
    let angle = -degrees.to_radians();
    // Pillow rounds the rotation matrix to 15 decimals, which makes 90° turns exact.
    let round15 = |v: f64| (v * 1e15).round() / 1e15;
    let (cos, sin) = (round15(angle.cos()), round15(angle.sin()));
    let (a, b, d, e) = (cos, sin, -sin, cos);
    let c = a * -cx + b * -cy + cx;
    let f = d * -cx + e * -cy + cy;
    affine(src, shape, [a, b, c, d, e, f], filter, fill, dst)
}

/// Shears horizontally: output `(x, y)` samples input `(x + factor·y, y)` (timm `shear_x`).
pub fn shear_x(
    src: &[f32],
    shape: [usize; 3],
    factor: f64,
    filter: Resample,
    fill: &[f32],
    dst: &mut Vec<f32>,
) -> Result<(), DataError> {
    affine(
        src,
        shape,
        [1.0, factor, 0.0, 0.0, 1.0, 0.0],
        filter,
        fill,
        dst,
    )
}

/// Shears vertically: output `(x, y)` samples input `(x, factor·x + y)` (timm `shear_y`).
pub fn shear_y(
    src: &[f32],
    shape: [usize; 3],
    factor: f64,
    filter: Resample,
    fill: &[f32],
    dst: &mut Vec<f32>,
) -> Result<(), DataError> {
    affine(
        src,
        shape,
        [1.0, 0.0, 0.0, factor, 1.0, 0.0],
        filter,
        fill,
        dst,
    )
}

/// Translates horizontally: output `(x, y)` samples input `(x + pixels, y)` (timm
/// `translate_x_abs`; `translate_x_rel` passes `pct · width`).
pub fn translate_x(
    src: &[f32],
    shape: [usize; 3],
    pixels: f64,
    filter: Resample,
    fill: &[f32],
    dst: &mut Vec<f32>,
) -> Result<(), DataError> {
    affine(
        src,
        shape,
        [1.0, 0.0, pixels, 0.0, 1.0, 0.0],
        filter,
        fill,
        dst,
    )
}

/// Translates vertically: output `(x, y)` samples input `(x, y + pixels)` (timm
/// `translate_y_abs`; `translate_y_rel` passes `pct · height`).
pub fn translate_y(
    src: &[f32],
    shape: [usize; 3],
    pixels: f64,
    filter: Resample,
    fill: &[f32],
    dst: &mut Vec<f32>,
) -> Result<(), DataError> {
    affine(
        src,
        shape,
        [1.0, 0.0, 0.0, 0.0, 1.0, pixels],
        filter,
        fill,
        dst,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_pads_outside_the_image_with_zeros() {
        let src: Vec<f32> = (1..=6).map(|v| v as f32).collect();
        let mut dst = Vec::new();
        let bx = CropBox {
            top: -1,
            left: 1,
            height: 3,
            width: 3,
        };
        let shape = crop(&src, [1, 2, 3], bx, &mut dst).unwrap();
        assert_eq!(shape, [1, 3, 3]);
        assert_eq!(dst, [0., 0., 0., 2., 3., 0., 5., 6., 0.]);
    }

    #[test]
    fn resize_to_the_same_size_is_the_identity() {
        let src: Vec<f32> = (0..2 * 5 * 7).map(|v| (v % 11) as f32 / 11.0).collect();
        let mut scratch = Scratch::default();
        let mut dst = Vec::new();
        for filter in [Resample::Bilinear, Resample::Bicubic] {
            resize(&src, [2, 5, 7], [5, 7], filter, &mut scratch, &mut dst).unwrap();
            for (a, b) in dst.iter().zip(&src) {
                assert!((a - b).abs() < 1e-6, "{filter:?}");
            }
        }
    }

    #[test]
    fn downscaling_by_two_with_bilinear_averages_pixel_pairs_and_neighbours() {
        // Antialiased 2x bilinear reduction: weights 1/8, 3/8, 3/8, 1/8 over four inputs.
        let src = [0.0f32, 0.8, 0.4, 0.4, 0.0, 0.8];
        let mut dst = Vec::new();
        resize(
            &src,
            [1, 1, 6],
            [1, 3],
            Resample::Bilinear,
            &mut Scratch::default(),
            &mut dst,
        )
        .unwrap();
        // Output 0 sees inputs 0..3 (the left tap is cut at the border and renormalised).
        let expected0 = (3.0 * 0.0 + 3.0 * 0.8 + 1.0 * 0.4) / 7.0;
        assert!((dst[0] - expected0).abs() < 1e-6, "{dst:?}");
    }

    #[test]
    fn affine_identity_keeps_the_image_and_shift_fills() {
        let src: Vec<f32> = (0..12).map(|v| v as f32 / 12.0).collect();
        let mut dst = Vec::new();
        for filter in [Resample::Bilinear, Resample::Bicubic] {
            affine(
                &src,
                [1, 3, 4],
                [1., 0., 0., 0., 1., 0.],
                filter,
                &[0.5],
                &mut dst,
            )
            .unwrap();
            assert_eq!(dst, src);
        }
        translate_x(&src, [1, 3, 4], 1.0, Resample::Bilinear, &[0.5], &mut dst).unwrap();
        assert_eq!(&dst[..4], &[src[1], src[2], src[3], 0.5]);
    }

    #[test]
    fn bad_boxes_and_lengths_are_errors() {
        let src = vec![0.0; 12];
        let mut dst = Vec::new();
        let bx = CropBox {
            top: 0,
            left: 2,
            height: 3,
            width: 3,
        };
        let mut s = Scratch::default();
        assert!(
            resized_crop(
                &src,
                [1, 3, 4],
                bx,
                [2, 2],
                Resample::Bilinear,
                &mut s,
                &mut dst
            )
            .is_err()
        );
        assert!(hflip(&mut [0.0; 5], [1, 2, 3]).is_err());
        assert!(
            affine(
                &src,
                [1, 3, 4],
                [1., 0., 0., 0., 1., 0.],
                Resample::Bilinear,
                &[],
                &mut dst
            )
            .is_err()
        );
    }
}
