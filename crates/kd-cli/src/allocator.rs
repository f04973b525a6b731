//! The C allocator's settings for a training process.
//!
//! Every tensor operation on the CPU backends allocates its output, and a training step frees
//! and allocates the same sizes again and again. glibc's defaults start by handing blocks of
//! 128 KiB and more straight to `mmap` and giving the top of the heap back to the kernel once
//! 128 KiB of it is free, and raise both thresholds as the program frees mapped blocks, so
//! whether a step faults its buffers in again, page by page, depends on the history of
//! allocations (two builds of the same code measured 31k and 801k faults). A page that a
//! kernel reads before it writes (an accumulation into a zeroed buffer) faults twice, and the
//! second fault flushes the TLB of every core the process runs on. On the Fashion-MNIST
//! student's step that was a third of the time (`docs/performance.md`, change 13).
//!
//! `tune()` keeps freed memory in the process instead: blocks up to 32 MiB (glibc's largest
//! allowed threshold) come from the heap, and the heap is not trimmed. Peak memory is
//! unchanged; memory freed after the peak stays with the process until it exits, as with
//! PyTorch's caching allocators. It is the same as running with
//! `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=2147483647`.
//! A user who sets `GLIBC_TUNABLES` or `KD_KEEP_MALLOC_DEFAULTS` keeps glibc's behaviour.

/// The largest block that comes from the heap rather than its own `mmap`: glibc's maximum.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Free memory at the top of the heap kept before trimming: in effect, never trim.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = libc::c_int::MAX;

/// Applies the settings above, once, before the first tensor is allocated, unless the user
/// set `GLIBC_TUNABLES` or `KD_KEEP_MALLOC_DEFAULTS`. Elsewhere than glibc it does nothing.
pub(crate) fn tune() {
    if std::env::var_os("GLIBC_TUNABLES").is_none()
        && std::env::var_os("KD_KEEP_MALLOC_DEFAULTS").is_none()
    {
        apply();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn apply() -> bool {
    // SAFETY: `mallopt` sets one of glibc's allocator parameters under the allocator's own
    // lock, so it is sound at any time; it touches no memory of ours. glibc returns 0 for a
    // value out of range, which the test below would catch.
    let mmap = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
    // SAFETY: as above.
    let trim = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) };
    mmap == 1 && trim == 1
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_both_settings() {
        // The values must be within glibc's ranges; a rejected one returns 0.
        assert!(super::apply());
    }
}
