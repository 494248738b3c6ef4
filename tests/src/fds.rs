//! Counting this process's descriptors in tests that run on parallel
//! threads of one process: a test that counts takes [`exclusive`], every
//! other test that opens descriptors [`shared`].

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static FDS: RwLock<()> = RwLock::new(());

/// For a test that opens descriptors but does not count them.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    FDS.read().unwrap_or_else(|e| e.into_inner())
}

/// For a test that counts: no other test opens one meanwhile.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    FDS.write().unwrap_or_else(|e| e.into_inner())
}

/// Descriptors open in this process.
pub fn count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}
