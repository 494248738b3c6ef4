//! Resolution modes: which source of kernel facts answers which extern
//! (see [`crate::relocate`](mod@crate::relocate) for the sources).

/// How ksyms are resolved. Every mode gives the same instructions for the
/// same object on the same kernel wherever they agree on the outcome; only
/// `Kernel` can disagree (it checks less).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Everything in user space, exactly as libbpf: kernel BTF (mapped) and
    /// `/proc/kallsyms`, with type-compatibility checks and kallsyms
    /// ambiguity detection.
    User,
    /// Everything looked up by the kernel with the in-kernel resolver
    /// (`bpf_btf_find_by_name_kind`, `bpf_kallsyms_lookup_name`): no file is
    /// read. As libbpf's gen_loader, it checks no types (a kfunc or
    /// variable whose local type differs from the kernel's resolves anyway)
    /// and takes the kernel's answer for a name kallsyms lists with two
    /// addresses (no ambiguity error), and it does not see `d` symbols
    /// through their `.llvm.` suffix.
    Kernel,
    /// The default: libbpf's result, fast. BTF ksyms in user space (the
    /// mapped vmlinux BTF, compatibility checks); typeless ksyms (and the
    /// ambiguity check of typed ones) from the per-boot kallsyms record,
    /// which holds libbpf's answer for every kallsyms name (ambiguous ones
    /// fail as in libbpf). The record is built from `/proc/kallsyms` on
    /// first need and then kept; where it cannot be had (addresses hidden),
    /// kallsyms is read as in `User`.
    #[default]
    Auto,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "user" => Ok(Mode::User),
            "kernel" => Ok(Mode::Kernel),
            "auto" => Ok(Mode::Auto),
            other => Err(format!("unknown mode '{other}' (user, kernel or auto)")),
        }
    }
}
