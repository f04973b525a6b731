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
//! The tiles are taken in blocks (64 to 256 tiles, fixed by the channel counts) so that the
//! transformed inputs and products of one block stay in cache: a block's inputs are
//! transformed, its 36 GEMMs run, and its products are transformed back into the output, on
//! one thread. The transforms run 16 tiles at a time as 16-lane arrays, compiled for AVX-512 or
//! AVX2 when the CPU has them. The same transforms give the input gradient (a transposed
//! convolution) and the weight gradient.
//!
//! Results differ from a direct sum by rounding only. The transforms' coefficients (up to 8 in
//! `A`, 5 in `B`) make intermediate values larger than the outputs, so the error grows with
//! the channels summed: about 1.3e-5 of the largest output at 512 channels, where a direct sum
//! gives about 1e-6. Full-size ResNets still match PyTorch's logits to about 1e-6.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::{ConvOptions, ConvTransposeOptions};
use burn_std::{Bytes, Shape};

use crate::{FlexTensor, Layout};

/// Tiles transformed together, as the lanes of one array.
const L: usize = 16;

/// The narrowest convolution (input and output channels) taken: below it the transforms cost
/// more than the GEMMs save.
const MIN_CHANNELS: usize = 16;

/// The shapes every Winograd kernel here takes, given as those of the convolution it runs (a
/// transposed convolution runs as one with padding `2 - p`): a 3×3 kernel, padding at most 2,
/// a map that gives at least one output, and at least [`MIN_CHANNELS`] channels in and out.
/// Stride, dilation and groups are the callers' to check.
fn winograd_shapes(
    kernel: [usize; 2],
    map: [usize; 2],
    pad: [usize; 2],
    channels: [usize; 2],
) -> bool {
    kernel == [3, 3]
        && pad[0] <= 2
        && pad[1] <= 2
        && map[0] + 2 * pad[0] >= 3
        && map[1] + 2 * pad[1] >= 3
        && channels[0] >= MIN_CHANNELS
        && channels[1] >= MIN_CHANNELS
}

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
        && x_shape[2] == 1
        && w_shape[2] == 1
        && winograd_shapes(
            [w_shape[3], w_shape[4]],
            [x_shape[3], x_shape[4]],
            [pad_h, pad_w],
            [x_shape[1], w_shape[0]],
        )
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
    let s = x.layout().shape();
    let (batch, c_in, h, w) = (s[0], s[1], s[3], s[4]);
    let c_out = weight.layout().shape()[0];
    let [_, pad_h, pad_w] = options.padding_begin();
    let (out, out_h, out_w) = convolve(
        x,
        weight,
        bias,
        [batch, c_in, h, w],
        c_out,
        false,
        [pad_h, pad_w],
    );
    f32_tensor(out, vec![batch, c_out, 1, out_h, out_w])
}

/// Runs [`winograd_f32`] on the tensors: `x` holds `[batch, c_in, h, w]` (whatever its rank),
/// `weight` the kernels as [`transformed_weights`] reads them.
fn convolve(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    dims: [usize; 4],
    c_out: usize,
    transposed: bool,
    pad: [usize; 2],
) -> (Vec<f32>, usize, usize) {
    let x = x.to_contiguous();
    let weight = weight.to_contiguous();
    let bias = bias.map(|b| b.to_contiguous());
    let isa = Isa::detect();
    let u = transformed_weights(isa, weight.storage(), c_out, dims[1], transposed);
    winograd_f32(
        isa,
        x.storage(),
        dims,
        &u,
        c_out,
        bias.as_ref().map(|b| b.storage()),
        pad,
    )
}

fn f32_tensor(data: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(Shape::from(shape)),
        DType::F32,
    )
}

/// Whether [`conv_transpose2d_winograd_f32`] takes this transposed convolution: the input
/// gradient of a convolution that [`should_use_winograd`] takes (a 3×3 kernel, stride 1,
/// dilation 1, one group, padding at most 2 and no output padding), for an `x` `[b, c, h, w]`
/// and a weight `[c, c_out, 3, 3]`.
pub(crate) fn should_use_winograd_transpose(
    x_shape: &[usize],
    w_shape: &[usize],
    options: &ConvTransposeOptions<2>,
) -> bool {
    // It runs as the convolution with padding `2 - p` (see below).
    let [pad_h, pad_w] = options.padding;
    options.groups == 1
        && options.stride == [1, 1]
        && options.dilation == [1, 1]
        && options.padding_out == [0, 0]
        && pad_h <= 2
        && pad_w <= 2
        && winograd_shapes(
            [w_shape[2], w_shape[3]],
            [x_shape[2], x_shape[3]],
            [2 - pad_h, 2 - pad_w],
            [x_shape[1], w_shape[1]],
        )
}

/// A transposed convolution that [`should_use_winograd_transpose`] takes, as the convolution
/// it equals: the kernel turned by 180° with its two channel axes swapped, and padding
/// `2 - padding`. This is a convolution's input gradient.
pub(crate) fn conv_transpose2d_winograd_f32(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: &ConvTransposeOptions<2>,
) -> FlexTensor {
    let s = x.layout().shape();
    let (batch, c_in, h, w) = (s[0], s[1], s[2], s[3]);
    let c_out = weight.layout().shape()[1];
    let pad = [2 - options.padding[0], 2 - options.padding[1]];
    let (out, out_h, out_w) = convolve(x, weight, bias, [batch, c_in, h, w], c_out, true, pad);
    f32_tensor(out, vec![batch, c_out, out_h, out_w])
}

/// The convolution of the NCHW `x` (`[batch, c_in, h, w]`) with the transformed kernels `u`
/// (`[c_out, 36, c_in]`, see [`transformed_weights`]), plus `bias`, with `pad` zeros around
/// each map: the NCHW output and its height and width.
fn winograd_f32(
    isa: Isa,
    x_data: &[f32],
    [batch, c_in, h, w]: [usize; 4],
    u: &[f32],
    c_out: usize,
    bias_data: Option<&[f32]>,
    [pad_h, pad_w]: [usize; 2],
) -> (Vec<f32>, usize, usize) {
    let (out_h, out_w) = (h + 2 * pad_h - 2, w + 2 * pad_w - 2);
    let tiles = make_tiles([batch, c_in, h, w], c_out, [out_h, out_w], [pad_h, pad_w]);
    let num_tiles = tiles.len();

    let threads = rayon_threads();
    let block = block_size(c_in, c_out);
    let num_blocks = num_tiles.div_ceil(block);
    let parallel_blocks = num_blocks >= threads && threads > 1;

    let out_len = batch * c_out * out_h * out_w;
    let mut out: Vec<f32> = Vec::with_capacity(out_len);
    let out_ptr = crate::ops::SendMutPtr::new(out.as_mut_ptr());
    let tiles = &tiles[..];

    let run_block = |v: &mut Vec<f32>, m: &mut Vec<f32>, block_idx: usize, parallel_gemm: bool| {
        let first = block_idx * block;
        let block_tiles = &tiles[first..(first + block).min(num_tiles)];
        let ld = block_tiles.len().next_multiple_of(L);
        v.resize(36 * c_in * ld, 0.0);
        m.resize(36 * c_out * ld, 0.0);
        // SAFETY: a safe body.
        unsafe { input_transform(isa, x_data, v, block_tiles, c_in, h, w, ld) };
        for xi in 0..36 {
            // SAFETY: `m[xi]` is `[c_out, ld]` and `v[xi]` is `[c_in, ld]`, both row-major;
            // `u[xi]` is `[c_out, c_in]` with row stride `36 · c_in`; all inside their buffers.
            unsafe {
                gemm::gemm(
                    c_out,
                    ld,
                    c_in,
                    m[xi * c_out * ld..].as_mut_ptr(),
                    1,
                    ld as isize,
                    false,
                    u[xi * c_in..].as_ptr(),
                    1,
                    (36 * c_in) as isize,
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
    (out, out_h, out_w)
}

/// `U[co][ξ][ci] = (G g Gᵀ)[ξ]` for every 3×3 kernel `g = weight[co][ci]` (with
/// `transposed`, `weight[ci][co]` turned by 180°), in parallel over the output channels: for
/// each `ξ`, the matrix `[c_out, c_in]` with row stride `36 · c_in`.
fn transformed_weights(
    isa: Isa,
    weight: &[f32],
    c_out: usize,
    c_in: usize,
    transposed: bool,
) -> Vec<f32> {
    let len = 36 * c_out * c_in;
    let mut u: Vec<f32> = Vec::with_capacity(len);
    let u_ptr = crate::ops::SendMutPtr::new(u.as_mut_ptr());
    let per_task = (16 * 1024 / (36 * c_in)).max(1);
    let run = |first: usize| {
        // SAFETY: the tasks' output channels are disjoint and inside `u`.
        unsafe {
            transform_weights(
                isa,
                weight,
                &u_ptr,
                first..(first + per_task).min(c_out),
                c_out,
                c_in,
                transposed,
            )
        }
    };
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        (0..c_out).into_par_iter().step_by(per_task).for_each(run);
    }
    #[cfg(not(feature = "rayon"))]
    (0..c_out).step_by(per_task).for_each(run);
    // SAFETY: the tasks wrote every element of every output channel.
    unsafe { u.set_len(len) };
    u
}

/// The 4×4 output tiles of every image, in order (image, tile row, tile column), for a
/// convolution of `[batch, c_in, h, w]` into `[batch, c_out, out_h, out_w]` with `pad` zeros.
fn make_tiles(
    [batch, c_in, h, w]: [usize; 4],
    c_out: usize,
    [out_h, out_w]: [usize; 2],
    [pad_h, pad_w]: [usize; 2],
) -> Vec<Tile> {
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
    tiles
}

/// Tiles per block: their transformed inputs and products (36 · block · (c_in + c_out)
/// floats) near 2 MiB, at least 64 tiles so the GEMMs are not too narrow, and a multiple of
/// the lanes. It depends on the shapes only, not on the number of threads, so the sums (and
/// the weight gradient's partial sums) are the same on any machine.
fn block_size(c_in: usize, c_out: usize) -> usize {
    (2 * 1024 * 1024 / (36 * 4 * (c_in + c_out)))
        .clamp(64, 256)
        .next_multiple_of(L)
}

fn rayon_threads() -> usize {
    #[cfg(feature = "rayon")]
    return rayon::current_num_threads().max(1);
    #[cfg(not(feature = "rayon"))]
    1
}

/// Whether [`conv2d_weight_backward_winograd_f32`] takes the weight gradient of this
/// convolution of an `x` `[b, c_in, h, w]` by a weight `[c_out, c_in, 3, 3]`: the
/// convolutions [`should_use_winograd`] takes.
#[cfg_attr(not(feature = "rayon"), allow(dead_code))]
pub(crate) fn should_use_winograd_weight_backward(
    x_shape: &[usize],
    w_shape: &[usize],
    options: &ConvOptions<2>,
) -> bool {
    options.groups == 1
        && options.stride == [1, 1]
        && options.dilation == [1, 1]
        && options.padding_begin() == options.padding_end()
        && winograd_shapes(
            [w_shape[2], w_shape[3]],
            [x_shape[2], x_shape[3]],
            options.padding_begin(),
            [x_shape[1], w_shape[0]],
        )
}

/// The weight gradient `[c_out, c_in, 3, 3]` of a convolution that
/// [`should_use_winograd_weight_backward`] takes, from its f32 input `x` `[b, c_in, h, w]` and
/// output gradient `[b, c_out, out_h, out_w]`, through the same F(4×4, 3×3) transforms.
///
/// With `Y = Aᵀ M A` and `M[co] = Σ_ci U[co][ci] ⊙ V[ci]` per tile, the gradient of a tile's
/// products is `dM = A dY Aᵀ` (zeros for outputs past the map), so
/// `dU[ξ] (c_out × c_in) = Σ_tiles dM[ξ] (c_out × tiles) · V[ξ]ᵀ (tiles × c_in)`: 36 GEMMs
/// over the tiles, summed per block; and as `U = G g Gᵀ`, `dg = Gᵀ dU G`. The blocks are
/// summed in 1, 2 or 4 groups, each into its own `dU`, and these are added in group order; the
/// groups depend on the shapes only, so the result is the same on any number of threads.
#[cfg_attr(not(feature = "rayon"), allow(dead_code))]
pub(crate) fn conv2d_weight_backward_winograd_f32(
    x: &FlexTensor,
    output_grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let x = x.to_contiguous();
    let output_grad = output_grad.to_contiguous();
    let x_shape = x.layout().shape();
    let g_shape = output_grad.layout().shape();
    let (batch, c_in, h, w) = (x_shape[0], x_shape[1], x_shape[2], x_shape[3]);
    let (c_out, out_h, out_w) = (g_shape[1], g_shape[2], g_shape[3]);
    let pad = options.padding_begin();
    let x_data: &[f32] = x.storage();
    let g_data: &[f32] = output_grad.storage();
    let isa = Isa::detect();

    let tiles = make_tiles([batch, c_in, h, w], c_out, [out_h, out_w], pad);
    let num_tiles = tiles.len();
    #[cfg(feature = "rayon")]
    let threads = rayon_threads();
    let block = block_size(c_in, c_out);
    let num_blocks = num_tiles.div_ceil(block);
    // The blocks are summed in up to 4 groups, fixed by the shapes; a group's GEMMs are split
    // over the threads when there are fewer groups than threads.
    let groups = match num_blocks {
        1 => 1,
        2 | 3 => 2,
        _ => 4,
    };
    let du_len = 36 * c_out * c_in;
    let tiles = &tiles[..];

    // Sums the blocks `blocks` into `du`, writing it first.
    let run_blocks = |du: &mut Vec<f32>, blocks: core::ops::Range<usize>, parallel_gemm: bool| {
        <f32 as super::Scratch>::with_scratch(|v, m| {
            for (i, block_idx) in blocks.enumerate() {
                let first = block_idx * block;
                let block_tiles = &tiles[first..(first + block).min(num_tiles)];
                let ld = block_tiles.len().next_multiple_of(L);
                v.resize(36 * c_in * ld, 0.0);
                m.resize(36 * c_out * ld, 0.0);
                // SAFETY: safe bodies.
                unsafe {
                    input_transform(isa, x_data, v, block_tiles, c_in, h, w, ld);
                    grad_transform(isa, g_data, m, block_tiles, c_out, out_h * out_w, out_w, ld);
                }
                for xi in 0..36 {
                    // SAFETY: `du[xi]` is `[c_out, c_in]` and `m[xi]` is `[c_out, ld]`, both
                    // row-major; `v[xi]` is `[c_in, ld]` row-major, read as its transpose.
                    unsafe {
                        gemm::gemm(
                            c_out,
                            c_in,
                            ld,
                            du[xi * c_out * c_in..].as_mut_ptr(),
                            1,
                            c_in as isize,
                            i > 0,
                            m[xi * c_out * ld..].as_ptr(),
                            1,
                            ld as isize,
                            v[xi * c_in * ld..].as_ptr(),
                            ld as isize,
                            1,
                            1.0,
                            1.0,
                            false,
                            false,
                            false,
                            gemm_parallelism(parallel_gemm),
                        );
                    }
                }
            }
        })
    };
    let mut partials: Vec<Vec<f32>> = (0..groups).map(|_| vec![0.0f32; du_len]).collect();
    let group_blocks = |g: usize| (g * num_blocks / groups)..((g + 1) * num_blocks / groups);
    #[cfg(feature = "rayon")]
    if groups > 1 {
        use rayon::prelude::*;
        partials
            .par_iter_mut()
            .enumerate()
            .for_each(|(g, du)| run_blocks(du, group_blocks(g), groups < threads));
    } else {
        run_blocks(&mut partials[0], group_blocks(0), threads > 1);
    }
    #[cfg(not(feature = "rayon"))]
    for (g, du) in partials.iter_mut().enumerate() {
        run_blocks(du, group_blocks(g), false);
    }
    let mut partials = partials.into_iter();
    let mut du = partials.next().expect("at least one group of blocks");
    let rest: Vec<Vec<f32>> = partials.collect();
    let add_rest = |(chunk, d): (usize, &mut [f32])| {
        for partial in &rest {
            for (d, &p) in d.iter_mut().zip(&partial[chunk * 4096..]) {
                *d += p;
            }
        }
    };
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        du.par_chunks_mut(4096).enumerate().for_each(add_rest);
    }
    #[cfg(not(feature = "rayon"))]
    du.chunks_mut(4096).enumerate().for_each(add_rest);
    // SAFETY: a safe body.
    let grad = unsafe { inverse_transform_weights(isa, &du, c_out, c_in) };
    f32_tensor(grad, vec![c_out, c_in, 3, 3])
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
    /// Writes `U[co][ξ][ci] = (G g Gᵀ)[ξ]` for every 3×3 kernel `g = weight[co][ci]` with
    /// `co` in `co_range`; with `transposed`, `g` is `weight[ci][co]` turned by 180°.
    ///
    /// # Safety
    /// `u` must be valid for writes of `36 · c_out · c_in` elements, and no other thread may
    /// access the rows of `co_range` during the call.
    fn transform_weights(
        weight: &[f32],
        u: &crate::ops::SendMutPtr<f32>,
        co_range: core::ops::Range<usize>,
        c_out: usize,
        c_in: usize,
        transposed: bool,
    ) => transform_weights_body
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

dispatch! {
    #[cfg_attr(not(feature = "rayon"), allow(dead_code))]
    /// Writes `dM[ξ][co][t] = (A dY Aᵀ)[ξ]` for the 4×4 output-gradient tile `dY` of channel
    /// `co` of every tile `t` of the block (zeros past the map), as 36 matrices `[c_out, ld]`.
    fn grad_transform(
        g: &[f32],
        m: &mut [f32],
        tiles: &[Tile],
        c_out: usize,
        plane: usize,
        out_w: usize,
        ld: usize,
    ) => grad_transform_body
}

dispatch! {
    #[cfg_attr(not(feature = "rayon"), allow(dead_code))]
    /// The weight gradient `[c_out, c_in, 3, 3]`, `Gᵀ dU G` for every `dU[·][co][ci]`, from
    /// 36 matrices `dU[ξ]` `[c_out, c_in]`.
    fn inverse_transform_weights(du: &[f32], c_out: usize, c_in: usize) -> Vec<f32> => inverse_transform_weights_body
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

/// `A x` for the 4-vector `x` of each lane (`A` is `Aᵀ`'s transpose, 6×4).
#[inline(always)]
#[cfg_attr(not(feature = "rayon"), allow(dead_code))]
fn a_rows(x: [[f32; L]; 4]) -> [[f32; L]; 6] {
    let mut r = [[0.0; L]; 6];
    for l in 0..L {
        let [y0, y1, y2, y3] = [x[0][l], x[1][l], x[2][l], x[3][l]];
        let (even, odd) = (y0 + y2, y1 + y3);
        let (even4, odd2) = (y0 + 4.0 * y2, 2.0 * y1 + 8.0 * y3);
        r[0][l] = y0;
        r[1][l] = even + odd;
        r[2][l] = even - odd;
        r[3][l] = even4 + odd2;
        r[4][l] = even4 - odd2;
        r[5][l] = y3;
    }
    r
}

/// `Gᵀ x` for the 6-vector `x` of each lane (see [`g_rows`] for `G`).
#[inline(always)]
#[cfg_attr(not(feature = "rayon"), allow(dead_code))]
fn gt_rows(x: [[f32; L]; 6]) -> [[f32; L]; 3] {
    let mut r = [[0.0; L]; 3];
    for l in 0..L {
        let [u0, u1, u2, u3, u4, u5] = [x[0][l], x[1][l], x[2][l], x[3][l], x[4][l], x[5][l]];
        let (sum12, sum34) = (u1 + u2, u3 + u4);
        r[0][l] = u0 * 0.25 - sum12 * (1.0 / 6.0) + sum34 * (1.0 / 24.0);
        r[1][l] = (u2 - u1) * (1.0 / 6.0) + (u3 - u4) * (1.0 / 12.0);
        r[2][l] = (sum34 - sum12) * (1.0 / 6.0) + u5;
    }
    r
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
#[cfg_attr(not(feature = "rayon"), allow(dead_code))]
fn grad_transform_body(
    g: &[f32],
    m: &mut [f32],
    tiles: &[Tile],
    c_out: usize,
    plane: usize,
    out_w: usize,
    ld: usize,
) {
    for co in 0..c_out {
        for (group, group_tiles) in tiles.chunks(L).enumerate() {
            let mut dy = [[0.0f32; L]; 16];
            for (l, tile) in group_tiles.iter().enumerate() {
                let src = tile.out + co * plane;
                for i in 0..tile.rows {
                    for j in 0..tile.cols {
                        dy[i * 4 + j][l] = g[src + i * out_w + j];
                    }
                }
            }
            // Columns of dY (A dY), then rows of the result ((A dY) Aᵀ).
            let mut ady = [[0.0f32; L]; 24];
            for col in 0..4 {
                let r = a_rows([dy[col], dy[4 + col], dy[8 + col], dy[12 + col]]);
                for (i, r) in r.into_iter().enumerate() {
                    ady[i * 4 + col] = r;
                }
            }
            for i in 0..6 {
                let row: [[f32; L]; 4] = core::array::from_fn(|j| ady[i * 4 + j]);
                for (j, r) in a_rows(row).iter().enumerate() {
                    let xi = i * 6 + j;
                    m[(xi * c_out + co) * ld + group * L..][..L].copy_from_slice(r);
                }
            }
        }
    }
}

#[inline(always)]
#[cfg_attr(not(feature = "rayon"), allow(dead_code))]
fn inverse_transform_weights_body(du: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    let mut grad = vec![0.0f32; c_out * c_in * 9];
    for co in 0..c_out {
        for ci0 in (0..c_in).step_by(L) {
            let lanes = L.min(c_in - ci0);
            let mut u = [[0.0f32; L]; 36];
            for (xi, u) in u.iter_mut().enumerate() {
                u[..lanes].copy_from_slice(&du[(xi * c_out + co) * c_in + ci0..][..lanes]);
            }
            // Columns of dU (Gᵀ dU), then rows of the result ((Gᵀ dU) G).
            let mut gu = [[0.0f32; L]; 18];
            for col in 0..6 {
                let r = gt_rows(core::array::from_fn(|i| u[i * 6 + col]));
                for (i, r) in r.into_iter().enumerate() {
                    gu[i * 6 + col] = r;
                }
            }
            for i in 0..3 {
                let r = gt_rows(core::array::from_fn(|j| gu[i * 6 + j]));
                for (j, r) in r.iter().enumerate() {
                    for (l, &v) in r[..lanes].iter().enumerate() {
                        grad[(co * c_in + ci0 + l) * 9 + i * 3 + j] = v;
                    }
                }
            }
        }
    }
    grad
}

/// # Safety
/// See [`transform_weights`].
#[inline(always)]
unsafe fn transform_weights_body(
    weight: &[f32],
    u: &crate::ops::SendMutPtr<f32>,
    co_range: core::ops::Range<usize>,
    c_out: usize,
    c_in: usize,
    transposed: bool,
) {
    for co in co_range {
        for ci0 in (0..c_in).step_by(L) {
            let lanes = L.min(c_in - ci0);
            let mut g = [[0.0f32; L]; 9];
            for l in 0..lanes {
                if transposed {
                    let k = &weight[((ci0 + l) * c_out + co) * 9..][..9];
                    for (e, &v) in k.iter().rev().enumerate() {
                        g[e][l] = v;
                    }
                } else {
                    let k = &weight[(co * c_in + ci0 + l) * 9..][..9];
                    for (e, &v) in k.iter().enumerate() {
                        g[e][l] = v;
                    }
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
                    // SAFETY: `(co, i * 6 + j, ci0..ci0 + lanes)` is inside `u` and `co` is in
                    // this call's range.
                    unsafe {
                        core::ptr::copy_nonoverlapping(
                            r.as_ptr(),
                            u.ptr_add((co * 36 + i * 6 + j) * c_in + ci0),
                            lanes,
                        )
                    };
                }
            }
        }
    }
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

    /// Checks the transposed (input-gradient) Winograd convolution against a direct f64 sum.
    fn check_transpose(batch: usize, c_in: usize, c_out: usize, h: usize, w: usize, pad: usize) {
        let x = seeded(batch * c_in * h * w, 4);
        let wt = seeded(c_in * c_out * 9, 5);
        let bias = seeded(c_out, 6);
        let options = ConvTransposeOptions::new([1, 1], [pad, pad], [0, 0], [1, 1], 1);
        let x_shape = [batch, c_in, h, w];
        let w_shape = [c_in, c_out, 3, 3];
        assert!(should_use_winograd_transpose(&x_shape, &w_shape, &options));
        let (oh, ow) = (h + 2 - 2 * pad, w + 2 - 2 * pad);
        let xt = FlexTensor::from_data(TensorData::new(x.clone(), x_shape.to_vec()));
        let wtt = FlexTensor::from_data(TensorData::new(wt.clone(), w_shape.to_vec()));
        let bt = FlexTensor::from_data(TensorData::new(bias.clone(), [c_out]));
        let out = conv_transpose2d_winograd_f32(xt, wtt, Some(bt), &options);
        assert_eq!(out.layout().shape().to_vec(), vec![batch, c_out, oh, ow]);
        let got: &[f32] = out.storage();
        let mut max_err = 0.0f64;
        for b in 0..batch {
            for co in 0..c_out {
                for y in 0..oh {
                    for xx in 0..ow {
                        // out[y] gathers x[iy] · w[ky] over iy + ky = y + pad.
                        let mut s = bias[co] as f64;
                        for ci in 0..c_in {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let iy = (y + pad) as isize - ky as isize;
                                    let ix = (xx + pad) as isize - kx as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    s += x[((b * c_in + ci) * h + iy as usize) * w + ix as usize]
                                        as f64
                                        * wt[((ci * c_out + co) * 3 + ky) * 3 + kx] as f64;
                                }
                            }
                        }
                        let g = got[((b * c_out + co) * oh + y) * ow + xx] as f64;
                        max_err = max_err.max((g - s).abs());
                    }
                }
            }
        }
        let tol = 2e-5 * (9.0 * c_in as f64).sqrt();
        assert!(
            max_err < tol,
            "transposed {batch}x{c_in}x{h}x{w} -> {c_out}, pad {pad}: max error {max_err} > {tol}"
        );
    }

    #[test]
    fn winograd_transpose_matches_direct_sums() {
        check_transpose(2, 16, 24, 8, 8, 1);
        check_transpose(3, 24, 16, 7, 13, 1);
        check_transpose(2, 16, 17, 9, 10, 0);
        check_transpose(2, 18, 16, 6, 5, 2);
    }

    /// Checks the Winograd weight gradient against a direct f64 sum.
    fn check_weight_grad(batch: usize, c_in: usize, c_out: usize, h: usize, w: usize, pad: usize) {
        let x = seeded(batch * c_in * h * w, 7);
        let (oh, ow) = (h + 2 * pad - 2, w + 2 * pad - 2);
        let dy = seeded(batch * c_out * oh * ow, 8);
        let options = ConvOptions::new([1, 1], [pad, pad], [1, 1], 1);
        assert!(should_use_winograd_weight_backward(
            &[batch, c_in, h, w],
            &[c_out, c_in, 3, 3],
            &options
        ));
        let xt = FlexTensor::from_data(TensorData::new(x.clone(), [batch, c_in, h, w]));
        let gt = FlexTensor::from_data(TensorData::new(dy.clone(), [batch, c_out, oh, ow]));
        let out = conv2d_weight_backward_winograd_f32(&xt, &gt, &options);
        assert_eq!(out.layout().shape().to_vec(), vec![c_out, c_in, 3, 3]);
        let got: &[f32] = out.storage();
        let mut max_err = 0.0f64;
        for co in 0..c_out {
            for ci in 0..c_in {
                for ky in 0..3 {
                    for kx in 0..3 {
                        let mut s = 0.0f64;
                        for b in 0..batch {
                            for y in 0..oh {
                                for xx in 0..ow {
                                    let iy = (y + ky) as isize - pad as isize;
                                    let ix = (xx + kx) as isize - pad as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    s += x[((b * c_in + ci) * h + iy as usize) * w + ix as usize]
                                        as f64
                                        * dy[((b * c_out + co) * oh + y) * ow + xx] as f64;
                                }
                            }
                        }
                        let g = got[((co * c_in + ci) * 3 + ky) * 3 + kx] as f64;
                        max_err = max_err.max((g - s).abs());
                    }
                }
            }
        }
        // The sums have magnitude about sqrt(batch · oh · ow) / 3.
        let tol = 2e-5 * ((batch * oh * ow) as f64).sqrt();
        assert!(
            max_err < tol,
            "weight gradient {batch}x{c_in}x{h}x{w} -> {c_out}, pad {pad}: max error {max_err} > {tol}"
        );
    }

    #[test]
    fn winograd_weight_gradient_matches_direct_sums() {
        check_weight_grad(2, 16, 24, 8, 8, 1);
        // Partial tiles, and several blocks summed per thread and across threads.
        check_weight_grad(40, 17, 16, 7, 13, 1);
        check_weight_grad(2, 16, 17, 9, 10, 0);
        check_weight_grad(3, 18, 16, 6, 5, 2);
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
