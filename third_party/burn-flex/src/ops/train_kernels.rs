//! Training kernels that replace Burn's generic `ModuleOps` defaults on flex (kd patch).
//!
//! Burn's defaults for the convolution weight gradient and for training-mode BatchNorm swap the
//! batch and channel axes and make the result contiguous, which on flex is a transposing copy of
//! every activation, several times per layer and step. These kernels read the NCHW layout as it
//! is:
//!
//! - `conv2d_weight_backward`: per image, im2col of the input, then
//!   `dW[Co, Ci·kh·kw] += dY_b[Co, Ho·Wo] · col_bᵀ` through `gemm` with a column-major right-hand
//!   side (no transpose copy), images split into chunks (fixed by the shapes) with one partial
//!   sum each, run in parallel and summed in order.
//! - `batch_norm_train` and its backward: per-channel sums over the channel's planes, then one
//!   pass over the planes that writes the output, both parallel and free of copies.
//!
//! f32 and f64 run natively; f16 and bf16 go through f32, as flex's convolutions do.

use crate::{FlexTensor, Layout};
use alloc::vec;
use alloc::vec::Vec;
use burn_backend::{DType, Element, TensorMetadata, ops::ConvOptions};
use burn_std::{Bytes, Shape};
use bytemuck::Pod;
use num_traits::Float;
use rayon::prelude::*;

use super::module::{cast_from_f32, cast_to_f32};

/// The scalar types the kernels compute in.
pub(crate) trait KernelFloat:
    Float + Pod + Element + Send + Sync + core::iter::Sum + 'static
{
}
impl KernelFloat for f32 {}
impl KernelFloat for f64 {}

fn tensor_from<T: KernelFloat>(data: Vec<T>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(shape),
        T::dtype(),
    )
}

/// Runs `f` in f32 for half-precision tensors and casts the results back.
fn through_f32(
    tensors: Vec<FlexTensor>,
    f: impl FnOnce(Vec<FlexTensor>) -> Vec<FlexTensor>,
) -> Vec<FlexTensor> {
    let dtype = tensors[0].dtype();
    let up = |t: FlexTensor| match dtype {
        DType::F16 => cast_to_f32::<half::f16>(t, half::f16::to_f32),
        DType::BF16 => cast_to_f32::<half::bf16>(t, half::bf16::to_f32),
        _ => t,
    };
    let down = |t: FlexTensor| match dtype {
        DType::F16 => cast_from_f32::<half::f16>(t, half::f16::from_f32),
        DType::BF16 => cast_from_f32::<half::bf16>(t, half::bf16::from_f32),
        _ => t,
    };
    f(tensors.into_iter().map(up).collect())
        .into_iter()
        .map(down)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Convolution weight gradient.

/// Gradient of a 2-D convolution with respect to its weight. `x` must already carry symmetric
/// padding (the caller pads asymmetric inputs first).
pub(crate) fn conv2d_weight_backward(
    x: FlexTensor,
    output_grad: FlexTensor,
    weight_shape: Shape,
    options: &ConvOptions<2>,
) -> FlexTensor {
    match x.dtype() {
        DType::F32 => conv2d_weight_backward_typed::<f32>(&x, &output_grad, weight_shape, options),
        DType::F64 => conv2d_weight_backward_typed::<f64>(&x, &output_grad, weight_shape, options),
        DType::F16 | DType::BF16 => through_f32(vec![x, output_grad], |t| {
            vec![conv2d_weight_backward_typed::<f32>(
                &t[0],
                &t[1],
                weight_shape,
                options,
            )]
        })
        .remove(0),
        dtype => panic!("conv2d_weight_backward: unsupported dtype {dtype:?}"),
    }
}

fn conv2d_weight_backward_typed<T: KernelFloat>(
    x: &FlexTensor,
    output_grad: &FlexTensor,
    weight_shape: Shape,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let [batch, channels_in, height, width] = x.shape().dims();
    let [_, channels_out, height_out, width_out] = output_grad.shape().dims();
    let [_, channels_in_group, kernel_h, kernel_w] = weight_shape.dims();
    let groups = options.groups;
    let channels_out_group = channels_out / groups;
    debug_assert_eq!(channels_in_group * groups, channels_in);

    // `to_contiguous` copies only non-contiguous views; the kernels borrow the storage.
    let (x, dy) = (x.to_contiguous(), output_grad.to_contiguous());
    let (x, dy) = (x.storage::<T>(), dy.storage::<T>());
    let spatial_out = height_out * width_out;
    let patch = channels_in_group * kernel_h * kernel_w;
    let weight_len = channels_out * patch;
    let geometry = Im2col {
        height,
        width,
        height_out,
        width_out,
        kernel_h,
        kernel_w,
        stride: options.stride,
        padding: options.padding_begin(),
        dilation: options.dilation,
    };

    // Images are split into chunks with one partial gradient each, summed in chunk order. The
    // chunking depends only on the shapes (at most 32 partials, 16 Mi elements in all), not on the
    // thread count, so the result is the same on every machine.
    let max_partials = ((16 << 20) / weight_len.max(1)).clamp(1, 32);
    let chunk = batch.div_ceil(max_partials).max(1);
    let partials: Vec<Vec<T>> = (0..batch.div_ceil(chunk))
        .into_par_iter()
        .map(|c| {
            // The chunk's first image overwrites `dw` (`read_dst` false), so it starts
            // uninitialised; its length is set once that image has written every element.
            let mut dw: Vec<T> = Vec::with_capacity(weight_len);
            let mut col = vec![T::zero(); patch * spatial_out];
            let first = c * chunk;
            for b in first..((c + 1) * chunk).min(batch) {
                for g in 0..groups {
                    let x_group = &x[(b * channels_in + g * channels_in_group) * height * width..]
                        [..channels_in_group * height * width];
                    geometry.fill(x_group, channels_in_group, &mut col);
                    let dy_group = &dy[(b * channels_out + g * channels_out_group) * spatial_out..]
                        [..channels_out_group * spatial_out];
                    // SAFETY: the group's rows of `dw` lie inside its capacity; before the
                    // first image has written them they are only written, never read.
                    let dw_group = unsafe { dw.as_mut_ptr().add(g * channels_out_group * patch) };
                    // dW_g[Co_g, patch] += dY_g[Co_g, L] · colᵀ[L, patch]; col is [patch, L]
                    // row-major, read as a column-major right-hand side.
                    // SAFETY: the three slices hold exactly the extents the strides address:
                    // dst Co_g × patch (row stride patch), lhs Co_g × L (row stride L), rhs
                    // L × patch with element (p, j) at j·L + p.
                    unsafe {
                        gemm::gemm(
                            channels_out_group,
                            patch,
                            spatial_out,
                            dw_group,
                            1,
                            patch as isize,
                            b != first,
                            dy_group.as_ptr(),
                            1,
                            spatial_out as isize,
                            col.as_ptr(),
                            spatial_out as isize,
                            1,
                            T::one(),
                            T::one(),
                            false,
                            false,
                            false,
                            gemm::Parallelism::None,
                        );
                    }
                }
                if b == first {
                    // SAFETY: every group's GEMM has written all of its rows, so all
                    // `weight_len` elements are initialised.
                    unsafe { dw.set_len(weight_len) };
                }
            }
            dw
        })
        .collect();

    // The partials are added in chunk order for every element (so the result does not depend
    // on the thread count), in parallel over the elements.
    let mut partials = partials.into_iter();
    let mut dw = partials
        .next()
        .unwrap_or_else(|| vec![T::zero(); weight_len]);
    let rest: Vec<Vec<T>> = partials.collect();
    if !rest.is_empty() {
        const BLOCK: usize = 1 << 14;
        dw.par_chunks_mut(BLOCK).enumerate().for_each(|(i, acc)| {
            for partial in &rest {
                for (a, &v) in acc.iter_mut().zip(&partial[i * BLOCK..]) {
                    *a = *a + v;
                }
            }
        });
    }
    tensor_from(dw, weight_shape)
}

/// Geometry of one image's im2col.
struct Im2col {
    height: usize,
    width: usize,
    height_out: usize,
    width_out: usize,
    kernel_h: usize,
    kernel_w: usize,
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
}

impl Im2col {
    /// Writes `col[(c, ki, kj), (oh, ow)] = x[c, oh·s + ki·d − p, ow·s + kj·d − p]` (zero outside).
    fn fill<T: KernelFloat>(&self, x: &[T], channels: usize, col: &mut [T]) {
        let spatial_out = self.height_out * self.width_out;
        let mut row = 0;
        for c in 0..channels {
            let plane = &x[c * self.height * self.width..][..self.height * self.width];
            for ki in 0..self.kernel_h {
                for kj in 0..self.kernel_w {
                    let dst = &mut col[row * spatial_out..][..spatial_out];
                    row += 1;
                    for oh in 0..self.height_out {
                        let out_row = &mut dst[oh * self.width_out..][..self.width_out];
                        let ih = (oh * self.stride[0] + ki * self.dilation[0]) as isize
                            - self.padding[0] as isize;
                        if ih < 0 || ih >= self.height as isize {
                            out_row.fill(T::zero());
                            continue;
                        }
                        let src = &plane[ih as usize * self.width..][..self.width];
                        let offset = (kj * self.dilation[1]) as isize - self.padding[1] as isize;
                        if self.stride[1] == 1 {
                            // Contiguous run: zeros left of the input, a copy, zeros right of it.
                            let first = (-offset).clamp(0, self.width_out as isize) as usize;
                            let last = (self.width as isize - offset)
                                .clamp(first as isize, self.width_out as isize)
                                as usize;
                            out_row[..first].fill(T::zero());
                            let start = (first as isize + offset) as usize;
                            out_row[first..last].copy_from_slice(&src[start..start + last - first]);
                            out_row[last..].fill(T::zero());
                        } else {
                            for (ow, value) in out_row.iter_mut().enumerate() {
                                let iw = (ow * self.stride[1]) as isize + offset;
                                *value = if iw < 0 || iw >= self.width as isize {
                                    T::zero()
                                } else {
                                    src[iw as usize]
                                };
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Training-mode BatchNorm.

/// Output, batch mean and biased batch variance of training-mode BatchNorm over `[N, C, ...]`.
pub(crate) fn batch_norm_train(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    match x.dtype() {
        DType::F32 => batch_norm_train_typed::<f32>(&x, &gamma, &beta, epsilon),
        DType::F64 => batch_norm_train_typed::<f64>(&x, &gamma, &beta, epsilon),
        DType::F16 | DType::BF16 => {
            let mut out = through_f32(vec![x, gamma, beta], |t| {
                let (o, m, v) = batch_norm_train_typed::<f32>(&t[0], &t[1], &t[2], epsilon);
                vec![o, m, v]
            });
            let v = out.pop().unwrap();
            let m = out.pop().unwrap();
            (out.pop().unwrap(), m, v)
        }
        dtype => panic!("batch_norm_train: unsupported dtype {dtype:?}"),
    }
}

/// `(batch, channels, plane)` of an `[N, C, ...]` shape.
fn bn_dims(shape: &Shape) -> (usize, usize, usize) {
    let batch = shape[0];
    let channels = shape[1];
    let plane = shape.num_elements() / (batch * channels).max(1);
    (batch, channels, plane)
}

/// Independent partial sums in the reductions below: enough chains to hide the latency of a
/// floating-point add and for the compiler to vectorize them, where one running sum would
/// wait four cycles per element.
const LANES: usize = 16;

/// `Σ f(x[i])` over `LANES` interleaved partial sums, added in a fixed order at the end, so
/// the result depends only on the data, not on threads.
#[inline(always)]
fn lane_sum<T: KernelFloat>(x: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::zero(); LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = *a + f(v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(tail) {
        *a = *a + f(v);
    }
    acc.iter().fold(T::zero(), |s, &a| s + a)
}

/// `(Σ g[i], Σ g[i]·(x[i] − m))` over `LANES` interleaved partial sums each, as [`lane_sum`].
#[inline(always)]
fn lane_sum_grad<T: KernelFloat>(g: &[T], x: &[T], m: T) -> (T, T) {
    let mut sum_g = [T::zero(); LANES];
    let mut sum_gx = [T::zero(); LANES];
    let (g_chunks, x_chunks) = (g.chunks_exact(LANES), x.chunks_exact(LANES));
    let (g_tail, x_tail) = (g_chunks.remainder(), x_chunks.remainder());
    for (gc, xc) in g_chunks.zip(x_chunks) {
        for i in 0..LANES {
            sum_g[i] = sum_g[i] + gc[i];
            sum_gx[i] = sum_gx[i] + gc[i] * (xc[i] - m);
        }
    }
    for i in 0..g_tail.len() {
        sum_g[i] = sum_g[i] + g_tail[i];
        sum_gx[i] = sum_gx[i] + g_tail[i] * (x_tail[i] - m);
    }
    let total = |acc: [T; LANES]| acc.iter().fold(T::zero(), |s, &a| s + a);
    (total(sum_g), total(sum_gx))
}

/// Per-channel means of `f(c, x)` over `[N, C, plane]` data.
fn channel_means<T: KernelFloat>(
    x: &[T],
    (batch, channels, plane): (usize, usize, usize),
    f: impl Fn(usize, T) -> T + Sync,
) -> Vec<T> {
    let count = T::from(batch * plane).unwrap();
    (0..channels)
        .into_par_iter()
        .map(|c| {
            let sum: T = (0..batch)
                .map(|n| lane_sum(&x[(n * channels + c) * plane..][..plane], |v| f(c, v)))
                .sum();
            sum / count
        })
        .collect()
}

/// `out[n, c, i] = f(c, x[n, c, i])` over `[N, C, plane]` data, one plane per rayon task.
fn map_planes<T: KernelFloat>(
    x: &[T],
    channels: usize,
    plane: usize,
    f: impl Fn(usize, T) -> T + Sync,
) -> Vec<T> {
    let mut out = Vec::with_capacity(x.len());
    let size = plane.max(1);
    par_planes(
        &mut out.spare_capacity_mut()[..x.len()],
        channels,
        plane,
        |p, c, out| {
            let x = &x[p * size..][..out.len()];
            for (o, &v) in out.iter_mut().zip(x) {
                o.write(f(c, v));
            }
        },
    );
    // SAFETY: the planes cover all `x.len()` elements, and each was written above.
    unsafe { out.set_len(x.len()) };
    out
}

/// Calls `f(p, c, values)` for every plane `p` of `data` (`plane` elements each, channel
/// `c = p % channels`), in parallel over runs of whole planes of at least 32 Ki elements. One
/// task and one division per plane (16 elements on a 4×4 map) made BatchNorm's element passes
/// a sixth of ResNet-50's forward pass.
fn par_planes<E: Send>(
    data: &mut [E],
    channels: usize,
    plane: usize,
    f: impl Fn(usize, usize, &mut [E]) + Sync,
) {
    let plane = plane.max(1);
    let planes_per_task = (32 * 1024 / plane).max(1);
    data.par_chunks_mut(plane * planes_per_task)
        .enumerate()
        .for_each(|(task, planes)| {
            let first = task * planes_per_task;
            let mut c = first % channels;
            for (i, values) in planes.chunks_mut(plane).enumerate() {
                f(first + i, c, values);
                c += 1;
                if c == channels {
                    c = 0;
                }
            }
        });
}

fn batch_norm_train_typed<T: KernelFloat>(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let shape = x.shape();
    let dims @ (_, channels, plane) = bn_dims(&shape);
    let (x, gamma, beta) = (
        x.to_contiguous(),
        gamma.to_contiguous(),
        beta.to_contiguous(),
    );
    let (x, gamma, beta) = (x.storage::<T>(), gamma.storage::<T>(), beta.storage::<T>());

    let mean = channel_means(x, dims, |_, v| v);
    // Two passes (mean, then squared deviations), as Burn's default computes the variance.
    let variance = channel_means(x, dims, |c, v| (v - mean[c]) * (v - mean[c]));
    let eps = T::from(epsilon).unwrap();
    let scale: Vec<T> = (0..channels)
        .map(|c| gamma[c] / (variance[c] + eps).sqrt())
        .collect();

    let out = map_planes(x, channels, plane, |c, v| {
        (v - mean[c]) * scale[c] + beta[c]
    });

    (
        tensor_from(out, shape),
        tensor_from(mean, Shape::new([channels])),
        tensor_from(variance, Shape::new([channels])),
    )
}

/// Inference-mode BatchNorm with given statistics, as PyTorch's CPU kernel computes it:
/// `out = x·scale[c] + shift[c]`, `scale = γ/√(var + ε)`, `shift = β − mean·scale`.
pub(crate) fn batch_norm_inference(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
) -> FlexTensor {
    match x.dtype() {
        DType::F32 => {
            batch_norm_inference_typed::<f32>(x, &gamma, &beta, &mean, &variance, epsilon)
        }
        DType::F64 => {
            batch_norm_inference_typed::<f64>(x, &gamma, &beta, &mean, &variance, epsilon)
        }
        DType::F16 | DType::BF16 => through_f32(vec![x, gamma, beta, mean, variance], |mut t| {
            let x = t.remove(0);
            vec![batch_norm_inference_typed::<f32>(
                x, &t[0], &t[1], &t[2], &t[3], epsilon,
            )]
        })
        .remove(0),
        dtype => panic!("batch_norm: unsupported dtype {dtype:?}"),
    }
}

/// Computes in `x`'s own buffer when nothing else holds it (a convolution's output, say), which
/// saves allocating and first touching a new one.
fn batch_norm_inference_typed<T: KernelFloat>(
    mut x: FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    mean: &FlexTensor,
    variance: &FlexTensor,
    epsilon: f64,
) -> FlexTensor {
    let shape = x.shape();
    let (_, channels, plane) = bn_dims(&shape);
    let per_channel = |t: &FlexTensor| t.to_contiguous().storage::<T>().to_vec();
    let (gamma, beta, mean, variance) = (
        per_channel(gamma),
        per_channel(beta),
        per_channel(mean),
        per_channel(variance),
    );
    let eps = T::from(epsilon).unwrap();
    let scale: Vec<T> = (0..channels)
        .map(|c| gamma[c] / (variance[c] + eps).sqrt())
        .collect();
    let shift: Vec<T> = (0..channels)
        .map(|c| beta[c] - mean[c] * scale[c])
        .collect();
    let layout = x.layout();
    if x.is_unique() && layout.is_contiguous() && layout.start_offset() == 0 {
        let len = shape.num_elements();
        par_planes(
            &mut x.storage_mut::<T>()[..len],
            channels,
            plane,
            |_, c, values| {
                let (a, b) = (scale[c], shift[c]);
                for v in values {
                    *v = *v * a + b;
                }
            },
        );
        return x;
    }
    let x = x.to_contiguous();
    let f = |c: usize, v: T| v * scale[c] + shift[c];
    tensor_from(map_planes(x.storage::<T>(), channels, plane, f), shape)
}

/// Gradients of training-mode BatchNorm: `(x_grad, gamma_grad, beta_grad)`.
pub(crate) fn batch_norm_train_backward(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
    output_grad: FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    match x.dtype() {
        DType::F32 => {
            batch_norm_backward_typed::<f32>(&x, &gamma, &mean, &variance, epsilon, &output_grad)
        }
        DType::F64 => {
            batch_norm_backward_typed::<f64>(&x, &gamma, &mean, &variance, epsilon, &output_grad)
        }
        DType::F16 | DType::BF16 => {
            let mut out = through_f32(vec![x, gamma, mean, variance, output_grad], |t| {
                let (dx, dg, db) =
                    batch_norm_backward_typed::<f32>(&t[0], &t[1], &t[2], &t[3], epsilon, &t[4]);
                vec![dx, dg, db]
            });
            let db = out.pop().unwrap();
            let dg = out.pop().unwrap();
            (out.pop().unwrap(), dg, db)
        }
        dtype => panic!("batch_norm_train_backward: unsupported dtype {dtype:?}"),
    }
}

fn batch_norm_backward_typed<T: KernelFloat>(
    x: &FlexTensor,
    gamma: &FlexTensor,
    mean: &FlexTensor,
    variance: &FlexTensor,
    epsilon: f64,
    output_grad: &FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let shape = x.shape();
    let (batch, channels, plane) = bn_dims(&shape);
    let (x, dy) = (x.to_contiguous(), output_grad.to_contiguous());
    let (x, dy) = (x.storage::<T>(), dy.storage::<T>());
    let (gamma, mean, variance) = (
        gamma.to_contiguous(),
        mean.to_contiguous(),
        variance.to_contiguous(),
    );
    let (gamma, mean, variance) = (
        gamma.storage::<T>(),
        mean.storage::<T>(),
        variance.storage::<T>(),
    );
    let eps = T::from(epsilon).unwrap();
    let count = T::from(batch * plane).unwrap();
    let inv_std: Vec<T> = variance
        .iter()
        .map(|&v| T::one() / (v + eps).sqrt())
        .collect();

    // Σ dy and Σ dy·x̂ per channel.
    let sums: Vec<(T, T)> = (0..channels)
        .into_par_iter()
        .map(|c| {
            let (m, s) = (mean[c], inv_std[c]);
            let mut sum_dy = T::zero();
            let mut sum_dy_centered = T::zero();
            for n in 0..batch {
                let offset = (n * channels + c) * plane;
                let (a, b) = lane_sum_grad(&dy[offset..][..plane], &x[offset..][..plane], m);
                sum_dy = sum_dy + a;
                sum_dy_centered = sum_dy_centered + b;
            }
            // Σ dy·x̂ = Σ dy·(x − μ) / σ.
            (sum_dy, sum_dy_centered * s)
        })
        .collect();

    // dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂)).
    let mut dx = Vec::with_capacity(x.len());
    let size = plane.max(1);
    par_planes(
        &mut dx.spare_capacity_mut()[..x.len()],
        channels,
        plane,
        |p, c, dx| {
            let (x, dy) = (&x[p * size..][..dx.len()], &dy[p * size..][..dx.len()]);
            let (m, s) = (mean[c], inv_std[c]);
            let mean_dy = sums[c].0 / count;
            let mean_dy_xhat = sums[c].1 / count;
            let scale = gamma[c] * s;
            for ((out, &v), &g) in dx.iter_mut().zip(x).zip(dy) {
                out.write(scale * (g - mean_dy - (v - m) * s * mean_dy_xhat));
            }
        },
    );
    // SAFETY: the planes cover all `x.len()` elements, and each was written above.
    unsafe { dx.set_len(x.len()) };

    let gamma_grad = sums.iter().map(|s| s.1).collect();
    let beta_grad = sums.iter().map(|s| s.0).collect();
    (
        tensor_from(dx, shape),
        tensor_from(gamma_grad, Shape::new([channels])),
        tensor_from(beta_grad, Shape::new([channels])),
    )
}
