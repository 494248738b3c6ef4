//! A stand-in for the kernel behind [`super::bpf`], per thread, so that
//! wrappers are tested without `bpf(2)`: the test's handler sees each
//! command with its attribute bytes, may write answers into them, and
//! returns the call's result or an errno.

use std::cell::RefCell;
use std::mem::size_of;

use super::uapi::BpfCommand;

type Handler = Box<dyn FnMut(BpfCommand, &mut [u8]) -> Result<libc::c_long, i32>>;

thread_local! {
    static HANDLER: RefCell<Option<Handler>> = const { RefCell::new(None) };
}

/// Runs `body` with `handler` answering every `bpf(2)` this thread makes
/// (other threads — other tests — still reach the kernel).
pub(crate) fn with_fake<R>(
    handler: impl FnMut(BpfCommand, &mut [u8]) -> Result<libc::c_long, i32> + 'static,
    body: impl FnOnce() -> R,
) -> R {
    struct Uninstall;
    impl Drop for Uninstall {
        fn drop(&mut self) {
            HANDLER.with(|h| h.borrow_mut().take());
        }
    }
    HANDLER.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
    let _uninstall = Uninstall;
    body()
}

/// The installed handler's answer to `cmd`, or `None` without one.
pub(super) fn answer(cmd: BpfCommand, attr: &mut [u8]) -> Option<Result<libc::c_long, i32>> {
    HANDLER.with(|h| h.borrow_mut().as_mut().map(|handler| handler(cmd, attr)))
}

/// The attribute `T` (a `uapi` struct) the wrapper passed.
pub(crate) fn read_attr<T: Copy>(attr: &[u8]) -> T {
    assert_eq!(attr.len(), size_of::<T>(), "attribute size");
    // SAFETY: `attr` holds `size_of::<T>()` initialized bytes and every
    // `uapi` struct is plain integers, valid for any bytes.
    unsafe { attr.as_ptr().cast::<T>().read_unaligned() }
}

/// Stores `value` into the attribute, as the kernel writes outputs.
pub(crate) fn write_attr<T: Copy>(attr: &mut [u8], value: T) {
    assert_eq!(attr.len(), size_of::<T>(), "attribute size");
    // SAFETY: `attr` is `size_of::<T>()` writable bytes.
    unsafe { attr.as_mut_ptr().cast::<T>().write_unaligned(value) }
}

/// The buffer a wrapper gave the kernel at user pointer `ptr`, `len` bytes,
/// for the handler to write into as the kernel would.
///
/// # Safety
///
/// `ptr` and `len` must be a pointer and length from an attribute under
/// call whose wrapper promises the kernel that many writable bytes there.
pub(crate) unsafe fn user_bytes<'a>(ptr: u64, len: u32) -> &'a mut [u8] {
    // SAFETY: the caller's contract (the wrapper's exclusive borrow is live
    // for the whole call the handler answers).
    unsafe { std::slice::from_raw_parts_mut(ptr as *mut u8, len as usize) }
}
