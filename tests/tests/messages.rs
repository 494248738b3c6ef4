//! Every message a user sees when an object does not load: each error
//! fixture in each mode against the running kernel, compared with golden
//! text in tests/golden/messages.txt (addresses and BTF ids, which differ
//! between kernels and boots, are normalized to `0x…` and `[…]`).
//! Regenerate with KSYMRELO_BLESS=1.

use ksymrelo_std::{relocate_with, Kernel, Mode};
use ksymrelo_tests::{fixture_bytes, kernel_usable, live_kernel_files};

const FIXTURES: [&str; 7] = [
    "err_ambiguous.bpf.o",
    "err_strong_missing.bpf.o",
    "err_var_type.bpf.o",
    "err_kfunc_proto.bpf.o",
    "err_kfunc_fwd.bpf.o",
    "err_kfunc_typo.bpf.o",
    "err_var_is_func.bpf.o",
];

/// `0x` + hex digits → `0x…`; `[` + digits + `]` → `[…]`.
fn normalize(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"0x") && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) {
            i += 2;
            while b.get(i).is_some_and(u8::is_ascii_hexdigit) {
                i += 1;
            }
            out.push_str("0x…");
            continue;
        }
        if b[i] == b'[' {
            let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits > 0 && b.get(i + 1 + digits) == Some(&b']') {
                out.push_str("[…]");
                i += digits + 2;
                continue;
            }
        }
        let ch = text[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[test]
fn every_error_message_reads_as_its_golden_text() {
    if !kernel_usable("every_error_message_reads_as_its_golden_text")
        || !live_kernel_files("every_error_message_reads_as_its_golden_text")
    {
        return;
    }
    let kernel = Kernel::live();
    let mut text = String::new();
    for fixture in FIXTURES {
        text.push_str(&format!("{fixture}\n"));
        for (name, mode) in [("auto", Mode::Auto), ("user", Mode::User), ("kernel", Mode::Kernel)] {
            let outcome = match relocate_with(&fixture_bytes(fixture), &kernel, mode) {
                Ok(_) => "resolves".to_owned(),
                Err(e) => format!("{} ({})", normalize(&e.to_string()), e.reason().as_str()),
            };
            text.push_str(&format!("  {name}: {outcome}\n"));
        }
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/messages.txt");
    if std::env::var("KSYMRELO_BLESS").as_deref() == Ok("1") {
        std::fs::write(path, &text).unwrap();
    }
    let golden = std::fs::read_to_string(path).expect("golden file (KSYMRELO_BLESS=1 to create)");
    assert_eq!(text, golden, "messages changed (KSYMRELO_BLESS=1 to accept)");
}

#[test]
fn normalization_keeps_words_and_hides_numbers() {
    assert_eq!(
        normalize("'init_once': 0xffffffff816e47e0 or 0xffff; [8] struct rq [x] [12a]"),
        "'init_once': 0x… or 0x…; […] struct rq [x] [12a]"
    );
}
