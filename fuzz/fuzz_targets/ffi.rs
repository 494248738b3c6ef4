//! The C entry points with arbitrary lengths and contents: never a crash;
//! on failure the caller's buffers are unchanged.
#![no_main]

use std::ffi::{c_int, c_void, CString};

use arbitrary::Arbitrary;
use ksymrelo::export::*;
use ksymrelo::ksymrelo_kernel;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct SiteIn {
    insn_idx: u32,
    weak: bool,
    name: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    object: Vec<u8>,
    object_len_cut: u16,
    btf: Vec<u8>,
    insns: Vec<u64>,
    sites: Vec<SiteIn>,
    fd_cap: u8,
}

thread_local! {
    /// vmlinux BTF only (no kallsyms): objects with typeless ksyms fail fast.
    static KERNEL: *mut ksymrelo_kernel = {
        let mut k = std::ptr::null_mut();
        // SAFETY: valid C string and out pointer.
        let rc = unsafe { ksymrelo_kernel_open_files(c"/sys/kernel/btf/vmlinux".as_ptr(), std::ptr::null(), &mut k) };
        assert_eq!(rc, 0);
        k
    };
}

fuzz_target!(|input: Input| {
    let k = KERNEL.with(|k| *k);
    let mut fds = vec![-7 as c_int; 8];
    let mut fd_len = 12345usize;

    // A whole object, possibly with a length shorter than the buffer.
    let mut object = input.object.clone();
    let len = if object.is_empty() {
        0
    } else {
        input.object_len_cut as usize % (object.len() + 1)
    };
    // SAFETY: every pointer is valid for the length passed.
    let rc = unsafe {
        ksymrelo_relocate_object(
            k,
            object.as_mut_ptr().cast::<c_void>(),
            len,
            fds.as_mut_ptr(),
            input.fd_cap as usize % 9,
            &mut fd_len,
        )
    };
    if rc != 0 {
        assert_eq!(object, input.object, "object changed on failure");
        assert_eq!(fd_len, 12345);
        assert!(fds.iter().all(|&f| f == -7));
    }

    // Instructions + BTF + sites.
    let mut insns = input.insns.clone();
    let names: Vec<CString> = input
        .sites
        .iter()
        .map(|s| CString::new(s.name.iter().map(|&b| b.max(1)).collect::<Vec<u8>>()).unwrap())
        .collect();
    let sites: Vec<ksymrelo_site> = input
        .sites
        .iter()
        .zip(&names)
        .map(|(s, n)| ksymrelo_site {
            insn_idx: s.insn_idx % 64,
            flags: if s.weak { KSYMRELO_SITE_WEAK } else { 0 },
            name: n.as_ptr(),
        })
        .collect();
    fd_len = 12345;
    // SAFETY: every pointer is valid for the count passed; u64 storage is
    // 8-aligned, as struct bpf_insn needs.
    let rc = unsafe {
        ksymrelo_relocate_insns(
            k,
            input.btf.as_ptr().cast::<c_void>(),
            input.btf.len(),
            insns.as_mut_ptr().cast::<bpf_insn>(),
            insns.len(),
            sites.as_ptr(),
            sites.len(),
            fds.as_mut_ptr(),
            8,
            &mut fd_len,
        )
    };
    if rc != 0 {
        assert_eq!(insns, input.insns, "instructions changed on failure");
        assert_eq!(fd_len, 12345);
        // SAFETY: always a valid C string.
        assert!(!unsafe { std::ffi::CStr::from_ptr(ksymrelo_last_error()) }
            .to_bytes()
            .is_empty());
    }
});
