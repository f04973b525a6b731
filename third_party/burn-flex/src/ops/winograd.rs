//! kd patch: 3×3 stride-1 convolutions by Winograd's minimal filtering, F(4×4, 3×3).
//!
//! Each 4×4 tile of outputs is computed from the 6×6 tile of inputs around it as
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016, with the interpolation points 0, ±1, ±2 and ∞). Summed over the input
//! channels, the element-wise products become 36 independent GEMMs, one per element of the
//! 6×6 transformed tile: `M[ξ] (c_out × tiles) = U[ξ] (c_out × c_in) · V[ξ] (c_in × tiles)`.
//! They take 36 multiplications per 16 outputs where a direct convolution takes 144, so the
//! GEMM work is a quarter of im2col's.
//!
//! The tiles are taken in blocks (a few dozen to a few hundred tiles) so that the transformed
//! inputs and products of one block stay in cache: a block's inputs are transformed, its 36
//! GEMMs run, and its products are transformed back into the output, on one thread. The
//! transforms run 16 tiles at a time as 16-lane arrays, compiled for AVX-512 or AVX2 when the
//! CPU has them.
//!
//! Results differ from a direct sum by rounding only; the transforms' coefficients (up to 8 in
//! `A`, 5 in `B`) make the error a few times a direct sum's, about 1e-6 relative at ResNet's
//! widths, as for the Winograd kernels of cuDNN and oneDNN.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape};

use crate::{FlexTensor, Layout};

/// Tiles transformed together, as the lanes of one array.
const L: usize = 16;

/// The narrowest convolution (input and output channels) taken: below it the transforms cost
/// more than the GEMMs save.
const MIN_CHANNELS: usize = 16;

/// Whether [`conv3d_winograd_f32`] takes this convolution: a 2D convolution (depth 1) with a
/// 3×3 kernel, stride 1, dilation 1, one group, the same padding (at most 2) before and after,
/// and at least [`MIN_CHANNELS`] channels in and out.
pub(crate) fn should_use_winograd(
    x_shape: &[usize],
    w_shape: &[usize],
    options: &ConvOptions<3>,
) -> bool {
    let [pad_d, pad_h, pad_w] = options.padding_begin();
    options.groups == 1
        && options.stride == [1, 1, 1]
        && options.dilation == [1, 1, 1]
        && options.padding_begin() == options.padding_end()
        && pad_d == 0
        && pad_h <= 2
        && pad_w <= 2
        && x_shape[2] == 1
        && w_shape[2] == 1
        && w_shape[3] == 3
        && w_shape[4] == 3
        && x_shape[3] + 2 * pad_h >= 3
        && x_shape[4] + 2 * pad_w >= 3
        && x_shape[1] >= MIN_CHANNELS
        && w_shape[0] >= MIN_CHANNELS
}

/// Where one tile reads and writes.
#[derive(Clone, Copy)]
struct Tile {
    /// Offset of the tile's image in the input (`b · c_in · h · w`).
    x_image: usize,
    /// Top-left corner of the 6×6 input tile, padding included (may be negative).
    y0: isize,
    x0: isize,
    /// Whether the 6×6 input tile lies wholly inside the image.
    interior: bool,
    /// Offset of the tile's top-left output in channel 0 of its image.
    out: usize,
    /// Output rows and columns of the tile inside the map (4 except at the bottom and right).
    rows: usize,
    cols: usize,
}

/// The F(4×4, 3×3) forward convolution of an f32 `x` `[b, c_in, 1, h, w]` with a weight
/// `[c_out, c_in, 1, 3, 3]`; see the module documentation.
pub(crate) fn conv3d_winograd_f32(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: &ConvOptions<3>,
) -> FlexTensor {
    let x = x.to_contiguous();
    let weight = weight.to_contiguous();
    let x_shape = x.layout().shape();
    let w_shape = weight.layout().shape();
    let (batch, c_in, h, w) = (x_shape[0], x_shape[1], x_shape[3], x_shape[4]);
    let c_out = w_shape[0];
    let [_, pad_h, pad_w] = options.padding_begin();
    let (out_h, out_w) = (h + 2 * pad_h - 2, w + 2 * pad_w - 2);
    let x_data: &[f32] = x.storage();
    let bias = bias.map(|b| b.to_contiguous());
    let bias_data: Option<&[f32]> = bias.as_ref().map(|b| b.storage());
    let isa = Isa::detect();

    // SAFETY: the transforms' bodies are safe functions.
    let u = unsafe { transform_weights(isa, weight.storage(), c_out, c_in) };

    let (tiles_h, tiles_w) = (out_h.div_ceil(4), out_w.div_ceil(4));
    let mut tiles = Vec::with_capacity(batch * tiles_h * tiles_w);
    for b in 0..batch {
        for ty in 0..tiles_h {
            for tx in 0..tiles_w {
                let y0 = (4 * ty) as isize - pad_h as isize;
                let x0 = (4 * tx) as isize - pad_w as isize;
                tiles.push(Tile {
                    x_image: b * c_in * h * w,
                    y0,
                    x0,
                    interior: y0 >= 0 && x0 >= 0 && y0 as usize + 6 <= h && x0 as usize + 6 <= w,
                    out: b * c_out * out_h * out_w + 4 * ty * out_w + 4 * tx,
                    rows: (out_h - 4 * ty).min(4),
                    cols: (out_w - 4 * tx).min(4),
                });
            }
        }
    }
    let num_tiles = tiles.len();

    // Blocks of tiles: their transformed inputs and products (36 · block · (c_in + c_out)
    // floats) near 2 MiB, at least 64 tiles so the GEMMs are not too narrow, and a whole
    // number of blocks per thread.
    #[cfg(feature = "rayon")]
    let threads = rayon::current_num_threads().max(1);
    #[cfg(not(feature = "rayon"))]
    let threads = 1;
    let budget = (2 * 1024 * 1024 / (36 * 4 * (c_in + c_out))).clamp(64, 256);
    let rounds = num_tiles.div_ceil(threads * budget);
    let block = num_tiles.div_ceil(threads * rounds).next_multiple_of(L);
    let num_blocks = num_tiles.div_ceil(block);
    let parallel_blocks = num_blocks >= threads && threads > 1;

    let out_len = batch * c_out * out_h * out_w;
    let mut out: Vec<f32> = Vec::with_capacity(out_len);
    let out_ptr = crate::ops::SendMutPtr::new(out.as_mut_ptr());
    let (u, tiles) = (&u[..], &tiles[..]);

    let run_block = |v: &mut Vec<f32>, m: &mut Vec<f32>, block_idx: usize, parallel_gemm: bool| {
        let first = block_idx * block;
        let block_tiles = &tiles[first..(first + block).min(num_tiles)];
        let ld = block_tiles.len().next_multiple_of(L);
        v.resize(36 * c_in * ld, 0.0);
        m.resize(36 * c_out * ld, 0.0);
        // SAFETY: a safe body.
        unsafe { input_transform(isa, x_data, v, block_tiles, c_in, h, w, ld) };
        for xi in 0..36 {
            // SAFETY: `m[xi]` is `[c_out, ld]`, `u[xi]` is `[c_out, c_in]` and `v[xi]` is
            // `[c_in, ld]`, all row-major and inside their buffers.
            unsafe {
                gemm::gemm(
                    c_out,
                    ld,
                    c_in,
                    m[xi * c_out * ld..].as_mut_ptr(),
                    1,
                    ld as isize,
                    false,
                    u[xi * c_out * c_in..].as_ptr(),
                    1,
                    c_in as isize,
                    v[xi * c_in * ld..].as_ptr(),
                    1,
                    ld as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm_parallelism(parallel_gemm),
                );
            }
        }
        // SAFETY: every output element belongs to exactly one tile, and each block's tiles
        // are written by that block's task only.
        unsafe {
            output_transform(
                isa,
                m,
                &out_ptr,
                block_tiles,
                bias_data,
                c_out,
                out_h * out_w,
                out_w,
                ld,
            )
        };
    };
    #[cfg(feature = "rayon")]
    if parallel_blocks {
        use rayon::prelude::*;
        (0..num_blocks).into_par_iter().for_each(|block_idx| {
            <f32 as super::Scratch>::with_scratch(|v, m| run_block(v, m, block_idx, false))
        });
    } else {
        <f32 as super::Scratch>::with_scratch(|v, m| {
            for block_idx in 0..num_blocks {
                run_block(v, m, block_idx, true);
            }
        });
    }
    #[cfg(not(feature = "rayon"))]
    {
        let _ = parallel_blocks;
        let (mut v, mut m) = (Vec::new(), Vec::new());
        for block_idx in 0..num_blocks {
            run_block(&mut v, &mut m, block_idx, false);
        }
    }
    // SAFETY: the tiles cover every output pixel of every image, and each block wrote its
    // tiles' pixels in every output channel.
    unsafe { out.set_len(out_len) };

    let out_shape = Shape::from(vec![batch, c_out, 1, out_h, out_w]);
    FlexTensor::new(
        Bytes::from_elems(out),
        Layout::contiguous(out_shape),
        DType::F32,
    )
}

fn gemm_parallelism(parallel: bool) -> gemm::Parallelism {
    #[cfg(feature = "rayon")]
    if parallel {
        return gemm::Parallelism::Rayon(0);
    }
    let _ = parallel;
    gemm::Parallelism::None
}

/// The instruction set the transforms are compiled for.
#[derive(Clone, Copy)]
enum Isa {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    Avx512,
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    Avx2,
    Generic,
}

impl Isa {
    fn detect() -> Self {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Generic
    }
}

/// Defines `unsafe fn $name(isa, args..)`, which runs `$body` compiled for `isa`. The
/// function is unsafe because `$body` may be (the caller upholds `$body`'s contract).
macro_rules! dispatch {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:ident) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(isa: Isa, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            {
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    #[allow(unused_unsafe)]
                    unsafe { $body($($arg),*) }
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    #[allow(unused_unsafe)]
                    unsafe { $body($($arg),*) }
                }
                // SAFETY: `Isa::detect` chose these only when the CPU has the features.
                match isa {
                    Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    Isa::Generic => {}
                }
            }
            let _ = isa;
            #[allow(unused_unsafe)]
            unsafe { $body($($arg),*) }
        }
    };
}

dispatch! {
    /// `U[ξ][co][ci] = (G g Gᵀ)[ξ]` for every 3×3 kernel `g = weight[co][ci]`, as 36 matrices
    /// `[c_out, c_in]`.
    fn transform_weights(weight: &[f32], c_out: usize, c_in: usize) -> Vec<f32> => transform_weights_body
}

dispatch! {
    /// Writes `V[ξ][ci][t] = (Bᵀ d B)[ξ]` for the 6×6 input tile `d` of channel `ci` of every
    /// tile `t` of the block, as 36 matrices `[c_in, ld]`; lanes past the block are zeros.
    fn input_transform(
        x: &[f32],
        v: &mut [f32],
        tiles: &[Tile],
        c_in: usize,
        h: usize,
        w: usize,
        ld: usize,
    ) => input_transform_body
}

dispatch! {
    /// Writes `Aᵀ M A (+ bias)` for every tile of the block and output channel into the
    /// output, from the products `M[ξ][co][t]`, 36 matrices `[c_out, ld]`.
    ///
    /// # Safety
    /// `out` must be valid for every output pixel of the block's tiles, which no other thread
    /// may access during the call.
    fn output_transform(
        m: &[f32],
        out: &crate::ops::SendMutPtr<f32>,
        tiles: &[Tile],
        bias: Option<&[f32]>,
        c_out: usize,
        plane: usize,
        out_w: usize,
        ld: usize,
    ) => output_transform_body
}

/// `G x` for the 3-vector `x` of each lane: the rows of `G` are `(1/4, 0, 0)`,
/// `(-1/6, -1/6, -1/6)`, `(-1/6, 1/6, -1/6)`, `(1/24, 1/12, 1/6)`, `(1/24, -1/12, 1/6)` and
/// `(0, 0, 1)`.
#[inline(always)]
fn g_rows(x: [[f32; L]; 3]) -> [[f32; L]; 6] {
    let mut r = [[0.0; L]; 6];
    for l in 0..L {
        let [g0, g1, g2] = [x[0][l], x[1][l], x[2][l]];
        let even = g0 + g2;
        let quarter = g0 * (1.0 / 24.0) + g2 * (1.0 / 6.0);
        r[0][l] = g0 * 0.25;
        r[1][l] = -(even + g1) * (1.0 / 6.0);
        r[2][l] = -(even - g1) * (1.0 / 6.0);
        r[3][l] = quarter + g1 * (1.0 / 12.0);
        r[4][l] = quarter - g1 * (1.0 / 12.0);
        r[5][l] = g2;
    }
    r
}

/// `Bᵀ x` for the 6-vector `x` of each lane: the rows of `Bᵀ` are `(4, 0, -5, 0, 1, 0)`,
/// `(0, -4, -4, 1, 1, 0)`, `(0, 4, -4, -1, 1, 0)`, `(0, -2, -1, 2, 1, 0)`,
/// `(0, 2, -1, -2, 1, 0)` and `(0, 4, 0, -5, 0, 1)`.
#[inline(always)]
fn bt_rows(x: [[f32; L]; 6]) -> [[f32; L]; 6] {
    let mut r = [[0.0; L]; 6];
    for l in 0..L {
        let [d0, d1, d2, d3, d4, d5] = [x[0][l], x[1][l], x[2][l], x[3][l], x[4][l], x[5][l]];
        let four = d4 - 4.0 * d2;
        let four_odd = d3 - 4.0 * d1;
        let two = d4 - d2;
        let two_odd = 2.0 * (d3 - d1);
        r[0][l] = 4.0 * d0 - 5.0 * d2 + d4;
        r[1][l] = four + four_odd;
        r[2][l] = four - four_odd;
        r[3][l] = two + two_odd;
        r[4][l] = two - two_odd;
        r[5][l] = 4.0 * d1 - 5.0 * d3 + d5;
    }
    r
}

/// `Aᵀ x` for the 6-vector `x` of each lane: the rows of `Aᵀ` are `(1, 1, 1, 1, 1, 0)`,
/// `(0, 1, -1, 2, -2, 0)`, `(0, 1, 1, 4, 4, 0)` and `(0, 1, -1, 8, -8, 1)`.
#[inline(always)]
fn at_rows(x: [[f32; L]; 6]) -> [[f32; L]; 4] {
    let mut r = [[0.0; L]; 4];
    for l in 0..L {
        let [m0, m1, m2, m3, m4, m5] = [x[0][l], x[1][l], x[2][l], x[3][l], x[4][l], x[5][l]];
        let (sum12, diff12) = (m1 + m2, m1 - m2);
        let (sum34, diff34) = (m3 + m4, m3 - m4);
        r[0][l] = m0 + sum12 + sum34;
        r[1][l] = diff12 + 2.0 * diff34;
        r[2][l] = sum12 + 4.0 * sum34;
        r[3][l] = diff12 + 8.0 * diff34 + m5;
    }
    r
}

#[inline(always)]
fn transform_weights_body(weight: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    let mut u = vec![0.0f32; 36 * c_out * c_in];
    for co in 0..c_out {
        for ci0 in (0..c_in).step_by(L) {
            let lanes = L.min(c_in - ci0);
            let mut g = [[0.0f32; L]; 9];
            for l in 0..lanes {
                let k = &weight[(co * c_in + ci0 + l) * 9..][..9];
                for (e, &v) in k.iter().enumerate() {
                    g[e][l] = v;
                }
            }
            // Columns of g (G g), then rows of the result ((G g) Gᵀ).
            let mut gg = [[0.0f32; L]; 18];
            for col in 0..3 {
                let r = g_rows([g[col], g[3 + col], g[6 + col]]);
                for (i, r) in r.into_iter().enumerate() {
                    gg[i * 3 + col] = r;
                }
            }
            for i in 0..6 {
                let r = g_rows([gg[i * 3], gg[i * 3 + 1], gg[i * 3 + 2]]);
                for (j, r) in r.iter().enumerate() {
                    let dst = &mut u[((i * 6 + j) * c_out + co) * c_in + ci0..][..lanes];
                    dst.copy_from_slice(&r[..lanes]);
                }
            }
        }
    }
    u
}

#[inline(always)]
fn input_transform_body(
    x: &[f32],
    v: &mut [f32],
    tiles: &[Tile],
    c_in: usize,
    h: usize,
    w: usize,
    ld: usize,
) {
    let plane = h * w;
    for ci in 0..c_in {
        for (group, group_tiles) in tiles.chunks(L).enumerate() {
            let mut d = [[0.0f32; L]; 36];
            for (l, tile) in group_tiles.iter().enumerate() {
                let base = tile.x_image + ci * plane;
                if tile.interior {
                    let src = &x[base + tile.y0 as usize * w + tile.x0 as usize..];
                    for i in 0..6 {
                        let row = &src[i * w..][..6];
                        for j in 0..6 {
                            d[i * 6 + j][l] = row[j];
                        }
                    }
                } else {
                    for i in 0..6 {
                        let y = tile.y0 + i as isize;
                        if y < 0 || y >= h as isize {
                            continue;
                        }
                        let row = &x[base + y as usize * w..][..w];
                        for j in 0..6 {
                            let xx = tile.x0 + j as isize;
                            if xx >= 0 && xx < w as isize {
                                d[i * 6 + j][l] = row[xx as usize];
                            }
                        }
                    }
                }
            }
            // Columns of d (Bᵀ d), then rows of the result ((Bᵀ d) B).
            let mut bd = [[0.0f32; L]; 36];
            for col in 0..6 {
                let r = bt_rows([
                    d[col],
                    d[6 + col],
                    d[12 + col],
                    d[18 + col],
                    d[24 + col],
                    d[30 + col],
                ]);
                for (i, r) in r.into_iter().enumerate() {
                    bd[i * 6 + col] = r;
                }
            }
            for i in 0..6 {
                let row: [[f32; L]; 6] = core::array::from_fn(|j| bd[i * 6 + j]);
                for (j, r) in bt_rows(row).iter().enumerate() {
                    let xi = i * 6 + j;
                    v[(xi * c_in + ci) * ld + group * L..][..L].copy_from_slice(r);
                }
            }
        }
        // Lanes past the block's tiles (the last group's) were zeros above; the groups past it
        // up to `ld` do not exist, as `ld` rounds the tiles up to whole groups.
    }
}

/// # Safety
/// See [`output_transform`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn output_transform_body(
    m: &[f32],
    out: &crate::ops::SendMutPtr<f32>,
    tiles: &[Tile],
    bias: Option<&[f32]>,
    c_out: usize,
    plane: usize,
    out_w: usize,
    ld: usize,
) {
    for co in 0..c_out {
        let b = bias.map_or(0.0, |bias| bias[co]);
        for (group, group_tiles) in tiles.chunks(L).enumerate() {
            let mm: [[f32; L]; 36] = core::array::from_fn(|xi| {
                m[(xi * c_out + co) * ld + group * L..][..L]
                    .try_into()
                    .unwrap()
            });
            // Columns of M (Aᵀ M), then rows of the result ((Aᵀ M) A).
            let mut am = [[0.0f32; L]; 24];
            for col in 0..6 {
                let r = at_rows([
                    mm[col],
                    mm[6 + col],
                    mm[12 + col],
                    mm[18 + col],
                    mm[24 + col],
                    mm[30 + col],
                ]);
                for (i, r) in r.into_iter().enumerate() {
                    am[i * 6 + col] = r;
                }
            }
            let mut y = [[0.0f32; L]; 16];
            for i in 0..4 {
                let row: [[f32; L]; 6] = core::array::from_fn(|j| am[i * 6 + j]);
                for (j, r) in at_rows(row).into_iter().enumerate() {
                    y[i * 4 + j] = r.map(|v| v + b);
                }
            }
            for (l, tile) in group_tiles.iter().enumerate() {
                let dst = tile.out + co * plane;
                for i in 0..tile.rows {
                    for j in 0..tile.cols {
                        // SAFETY: the pixel is inside the output and belongs to this tile.
                        unsafe { out.write(dst + i * out_w + j, y[i * 4 + j][l]) };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_backend::TensorData;

    fn seeded(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Checks the Winograd convolution against a direct f64 sum, with and without a bias.
    fn check(batch: usize, c_in: usize, c_out: usize, h: usize, w: usize, pad: usize) {
        let x = seeded(batch * c_in * h * w, 1);
        let wt = seeded(c_out * c_in * 9, 2);
        let bias = seeded(c_out, 3);
        let options = ConvOptions::new([1, 1, 1], [0, pad, pad], [1, 1, 1], 1);
        let x_shape = [batch, c_in, 1, h, w];
        let w_shape = [c_out, c_in, 1, 3, 3];
        assert!(should_use_winograd(&x_shape, &w_shape, &options));
        let (oh, ow) = (h + 2 * pad - 2, w + 2 * pad - 2);
        for with_bias in [false, true] {
            let xt = FlexTensor::from_data(TensorData::new(x.clone(), x_shape.to_vec()));
            let wtt = FlexTensor::from_data(TensorData::new(wt.clone(), w_shape.to_vec()));
            let bt =
                with_bias.then(|| FlexTensor::from_data(TensorData::new(bias.clone(), [c_out])));
            let out = conv3d_winograd_f32(xt, wtt, bt, &options);
            assert_eq!(out.layout().shape().to_vec(), vec![batch, c_out, 1, oh, ow]);
            let got: &[f32] = out.storage();
            let mut max_err = 0.0f64;
            for b in 0..batch {
                for co in 0..c_out {
                    for y in 0..oh {
                        for xx in 0..ow {
                            let mut s = if with_bias { bias[co] as f64 } else { 0.0 };
                            for ci in 0..c_in {
                                for ky in 0..3 {
                                    for kx in 0..3 {
                                        let (iy, ix) = (
                                            (y + ky) as isize - pad as isize,
                                            (xx + kx) as isize - pad as isize,
                                        );
                                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize
                                        {
                                            continue;
                                        }
                                        s += x
                                            [((b * c_in + ci) * h + iy as usize) * w + ix as usize]
                                            as f64
                                            * wt[((co * c_in + ci) * 3 + ky) * 3 + kx] as f64;
                                    }
                                }
                            }
                            let g = got[((b * c_out + co) * oh + y) * ow + xx] as f64;
                            max_err = max_err.max((g - s).abs());
                        }
                    }
                }
            }
            // The sums have magnitude about sqrt(9 · c_in) / 3.
            let tol = 2e-5 * (9.0 * c_in as f64).sqrt();
            assert!(
                max_err < tol,
                "{batch}x{c_in}x{h}x{w} -> {c_out}, pad {pad}, bias {with_bias}: max error {max_err} > {tol}"
            );
        }
    }

    #[test]
    fn winograd_matches_direct_sums() {
        // Whole tiles, the map a multiple of 4.
        check(2, 16, 24, 8, 8, 1);
        // Partial tiles at the bottom and right, more tiles than one group of lanes, and a
        // block boundary (many images).
        check(3, 17, 16, 7, 13, 1);
        check(40, 16, 16, 5, 6, 1);
        // Valid padding, and padding 2.
        check(2, 16, 16, 9, 10, 0);
        check(1, 20, 18, 6, 5, 2);
        // Channels not a multiple of the lanes, a map smaller than one tile.
        check(5, 33, 40, 3, 3, 1);
    }
}
