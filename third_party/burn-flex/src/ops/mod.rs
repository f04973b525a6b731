//! Backend operations implementations.

use alloc::borrow::Cow;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_std::{bf16, f16};

use crate::FlexTensor;

/// The `DType` that matches `isize` on the current platform.
#[cfg(target_pointer_width = "64")]
pub(crate) const INDEX_DTYPE: DType = DType::I64;
/// The `DType` that matches `isize` on the current platform.
#[cfg(target_pointer_width = "32")]
pub(crate) const INDEX_DTYPE: DType = DType::I32;

/// Minimum total element count for rayon fan-out on per-row or per-chunk loops.
/// Below this, task-dispatch overhead dominates the per-unit work.
#[cfg(feature = "rayon")]
pub(crate) const PARALLEL_THRESHOLD: usize = 256 * 1024;

/// kd patch: how many images one product of a convolution covers. On a map of under 128
/// positions (a 4×4 map gives 16), one image's product has only a few rows once `gemm` orients
/// it, which runs its narrowest, slowest kernel; chunks of about 256 positions run its widest.
/// 1 (one image per product) on larger maps.
#[cfg(feature = "rayon")]
pub(crate) fn images_per_product(positions: usize, batch: usize) -> usize {
    if positions == 0 || positions >= 128 {
        1
    } else {
        (256 / positions).min(batch).max(1)
    }
}

/// kd patch: the `images` NCHW images of `x` from image `first` on, laid side by side per
/// channel as `[channels, images · positions]`, so that one product covers them all.
#[cfg(feature = "rayon")]
pub(crate) fn images_side_by_side<T: Copy>(
    x: &[T],
    first: usize,
    images: usize,
    channels: usize,
    positions: usize,
) -> Vec<T> {
    let mut out = Vec::with_capacity(channels * images * positions);
    for c in 0..channels {
        for j in 0..images {
            out.extend_from_slice(&x[((first + j) * channels + c) * positions..][..positions]);
        }
    }
    out
}

/// kd patch: two scratch buffers per thread for the convolutions' per-tile temporaries (im2col
/// tiles, products), kept between tiles and calls. A rayon task used to allocate them afresh,
/// and zero them, each time it started (a 9 MiB im2col tile on ResNet-18's 4×4 maps).
/// `with_scratch` lends them to `f` with whatever contents the last user left: callers size
/// them with `resize` (which zeroes only what it adds) and write every element they read.
#[cfg_attr(not(feature = "rayon"), allow(dead_code))]
pub(crate) trait Scratch: Sized + 'static {
    /// Runs `f` with this thread's buffers, or with fresh ones when they are already lent (a
    /// task rayon runs on this thread while `f` waits for other tasks).
    fn with_scratch<R>(f: impl FnOnce(&mut Vec<Self>, &mut Vec<Self>) -> R) -> R;
}

macro_rules! impl_scratch {
    ($($T:ty),*) => {$(
        impl Scratch for $T {
            fn with_scratch<R>(f: impl FnOnce(&mut Vec<Self>, &mut Vec<Self>) -> R) -> R {
                #[cfg(feature = "std")]
                {
                    std::thread_local! {
                        static BUFFERS: core::cell::RefCell<(Vec<$T>, Vec<$T>)> =
                            const { core::cell::RefCell::new((Vec::new(), Vec::new())) };
                    }
                    BUFFERS.with(|buffers| match buffers.try_borrow_mut() {
                        Ok(mut buffers) => {
                            let (a, b) = &mut *buffers;
                            f(a, b)
                        }
                        Err(_) => f(&mut Vec::new(), &mut Vec::new()),
                    })
                }
                #[cfg(not(feature = "std"))]
                f(&mut Vec::new(), &mut Vec::new())
            }
        }
    )*};
}

impl_scratch!(f32, f64, f16);

/// Wrapper for raw mutable pointers that can be sent across rayon threads.
///
/// # Safety
///
/// The caller must ensure:
/// - The pointer remains valid for the lifetime of all uses
/// - No two threads write to the same offset
/// - No references to the underlying data exist during writes
///
/// kd patch: also built without the `rayon` feature, for `conv3d_shifted_impl`, whose tile
/// closure writes through it on either path.
pub(crate) struct SendMutPtr<T>(*mut T);

unsafe impl<T> Send for SendMutPtr<T> {}
unsafe impl<T> Sync for SendMutPtr<T> {}

#[cfg_attr(not(feature = "rayon"), allow(dead_code))]
impl<T> SendMutPtr<T> {
    pub(crate) fn new(ptr: *mut T) -> Self {
        Self(ptr)
    }

    /// Write `val` at the given element offset.
    ///
    /// # Safety
    /// Offset must be in bounds and no other thread may write to the same offset.
    pub(crate) unsafe fn write(&self, offset: usize, val: T) {
        unsafe { self.0.add(offset).write(val) }
    }

    /// Returns the raw pointer offset by `offset` elements.
    ///
    /// # Safety
    /// Offset must be in bounds.
    pub(crate) unsafe fn ptr_add(&self, offset: usize) -> *mut T {
        unsafe { self.0.add(offset) }
    }
}

/// Read a float tensor's storage as f32 values, regardless of source dtype.
/// Returns a borrowed slice for F32 (zero-copy) and an owned Vec for other
/// float dtypes (F64, F16, BF16).
///
/// Returns elements in underlying buffer order. Callers needing logical
/// iteration order must call `to_contiguous()` first.
///
/// # Panics
/// Panics if the tensor's dtype is not one of F32, F64, F16, or BF16.
pub(crate) fn float_storage_as_f32(tensor: &FlexTensor) -> Cow<'_, [f32]> {
    match tensor.dtype() {
        DType::F32 => Cow::Borrowed(tensor.storage::<f32>()),
        DType::F64 => Cow::Owned(tensor.storage::<f64>().iter().map(|&x| x as f32).collect()),
        DType::F16 => Cow::Owned(
            tensor
                .storage::<f16>()
                .iter()
                .map(|x| f32::from(*x))
                .collect(),
        ),
        DType::BF16 => Cow::Owned(
            tensor
                .storage::<bf16>()
                .iter()
                .map(|x| f32::from(*x))
                .collect(),
        ),
        other => panic!("float_storage_as_f32: unsupported dtype {:?}", other),
    }
}

pub mod activation;
pub mod attention;
pub mod binary;
mod bool;
pub mod cat;
pub mod comparison;
#[macro_use]
mod conv_common;
pub mod conv;
pub mod conv_transpose;
pub mod cumulative;
pub mod deform_conv;
pub mod expand;
#[cfg(feature = "fft")]
pub mod fft;
pub mod flip;
mod float;
pub mod gather_scatter;
pub mod grid_sample;
mod int;
pub mod interpolate;
pub mod mask;
pub mod matmul;
mod module;
pub mod pool;
mod qtensor;
pub mod reduce;
pub mod repeat_dim;
pub mod slice;
pub mod sort;
#[cfg(feature = "rayon")]
mod train_kernels;
mod transaction;
pub mod unary;
pub mod unfold;
mod winograd;
