//! Serialises tests that draw random numbers.
//!
//! Burn's random stream is process-wide, and the test harness runs tests on
//! several threads, so a test that seeds and then compares two draws could
//! see another test's draws in between. Every test in this crate holds this
//! lock while it runs.

use std::sync::{Mutex, MutexGuard};

static RNG: Mutex<()> = Mutex::new(());

/// Takes the lock; a test that panicked while holding it does not poison the rest.
pub(crate) fn lock() -> MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
