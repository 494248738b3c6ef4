//! Writes the fixtures generated from a kernel's kallsyms
//! (`many_100.bpf.{c,o}`, `many_1000.bpf.{c,o}`; the rule is in
//! `tests/src/generated.rs`) into a directory, for the benches and for the
//! VM guests (which have no clang).
//!
//! Usage: gen_fixtures [--kallsyms FILE] OUT_DIR
//!   --kallsyms FILE  another kernel's saved kallsyms (default: /proc/kallsyms,
//!                    the running kernel's; read it as root)
//! Without OUT_DIR it prints the running kernel's cached directory
//! (target/kernel-fixtures/<hash>), making it first if needed.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kallsyms, out) = match args.as_slice() {
        [] => match ksymrelo_tests::generated::dir() {
            Ok(dir) => {
                println!("{}", dir.display());
                return;
            }
            Err(e) => fail(&e),
        },
        [flag, file, out] if flag == "--kallsyms" => (file.as_str(), out.as_str()),
        [out] if !out.starts_with('-') => ("/proc/kallsyms", out.as_str()),
        _ => {
            eprintln!("usage: gen_fixtures [--kallsyms FILE] [OUT_DIR]");
            std::process::exit(2);
        }
    };
    let text = std::fs::read_to_string(kallsyms).unwrap_or_else(|e| fail(&format!("{kallsyms}: {e}")));
    match ksymrelo_tests::generated::generate(&text, std::path::Path::new(out)) {
        Ok(sets) => {
            for (n, names) in ksymrelo_tests::generated::SIZES.iter().zip(&sets) {
                println!("{out}/many_{n}.bpf.o: {} typeless ksyms from {kallsyms}", names.len());
            }
        }
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("gen_fixtures: {message}");
    std::process::exit(1);
}
