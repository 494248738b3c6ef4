//! Section name → program type: the facts of libbpf's `section_defs`
//! table, matched by libbpf's rules (`sec_def_matches`), and what a
//! program of each kind needs at `BPF_PROG_LOAD` in gen_loader mode
//! (where libbpf assumes every kernel feature).

use crate::bpf::{attach_type, flags, prog_type};
use crate::btf::Kind;

/// `expected_attach_type` may be dropped on kernels without it
/// (`SEC_EXP_ATTACH_OPT`; gen_loader assumes a kernel that has it).
pub const EXP_ATTACH_OPT: u32 = 1;
/// Legacy: attachable with `BPF_PROG_ATTACH` (`SEC_ATTACHABLE`).
pub const ATTACHABLE: u32 = 2;
/// `SEC_ATTACHABLE_OPT`.
pub const ATTACHABLE_OPT: u32 = ATTACHABLE | EXP_ATTACH_OPT;
/// The attach target is a BTF id (`SEC_ATTACH_BTF`).
pub const ATTACH_BTF: u32 = 4;
/// Sleepable (`SEC_SLEEPABLE`): `BPF_F_SLEEPABLE` at load.
pub const SLEEPABLE: u32 = 8;
/// XDP with fragments (`SEC_XDP_FRAGS`): `BPF_F_XDP_HAS_FRAGS` at load.
pub const XDP_FRAGS: u32 = 16;
/// USDT (`SEC_USDT`): loaded as `BPF_TRACE_UPROBE_MULTI` where the kernel
/// has uprobe_multi links, which gen_loader assumes.
pub const USDT: u32 = 32;

/// One row of libbpf's `section_defs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecDef {
    /// The pattern: `name` (exact), `name+` (exact, or `name/...`),
    /// `name/` (`name/...` only).
    pub sec: &'static str,
    /// `prog_type` of `BPF_PROG_LOAD`.
    pub prog_type: u32,
    /// `expected_attach_type` as the table gives it.
    pub expected_attach_type: u32,
    /// libbpf's `SEC_*` flags (the constants of this module).
    pub flags: u32,
}

/// What the kernel must look up for a program attached by BTF id: the
/// type `prefix` + `name` of `kind` (libbpf's `btf_get_kernel_prefix_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttachTarget<'a> {
    /// `btf_trace_`, `bpf_lsm_`, `bpf_iter_` or empty.
    pub prefix: &'static str,
    /// The part of the section name after the first `/`.
    pub name: &'a [u8],
    /// `Typedef` for `tp_btf`, `Func` otherwise.
    pub kind: Kind,
}

/// Why a program's section cannot be loaded the gen_loader way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachProblem {
    /// `SEC("fentry")` and the like without `/target`.
    NoTarget,
    /// `freplace` needs a target program's fd, which a generated loader
    /// does not have.
    NeedsProgram,
    /// struct_ops programs need struct_ops maps (not handled).
    StructOps,
    /// `fentry.multi`, `fsession.multi` and the like (not handled).
    TracingMulti,
}

const fn def(sec: &'static str, prog_type: u32, expected_attach_type: u32, flags: u32) -> SecDef {
    SecDef {
        sec,
        prog_type,
        expected_attach_type,
        flags,
    }
}

/// libbpf's `section_defs`, in its order (the first match wins).
pub static SECTION_DEFS: &[SecDef] = &[
    def("socket", prog_type::SOCKET_FILTER, 0, 0),
    def(
        "sk_reuseport/migrate",
        prog_type::SK_REUSEPORT,
        attach_type::SK_REUSEPORT_SELECT_OR_MIGRATE,
        ATTACHABLE,
    ),
    def(
        "sk_reuseport",
        prog_type::SK_REUSEPORT,
        attach_type::SK_REUSEPORT_SELECT,
        ATTACHABLE,
    ),
    def("kprobe+", prog_type::KPROBE, 0, 0),
    def("uprobe+", prog_type::KPROBE, 0, 0),
    def("uprobe.s+", prog_type::KPROBE, 0, SLEEPABLE),
    def("kretprobe+", prog_type::KPROBE, 0, 0),
    def("uretprobe+", prog_type::KPROBE, 0, 0),
    def("uretprobe.s+", prog_type::KPROBE, 0, SLEEPABLE),
    def("kprobe.multi+", prog_type::KPROBE, attach_type::TRACE_KPROBE_MULTI, 0),
    def(
        "kretprobe.multi+",
        prog_type::KPROBE,
        attach_type::TRACE_KPROBE_MULTI,
        0,
    ),
    def(
        "kprobe.session+",
        prog_type::KPROBE,
        attach_type::TRACE_KPROBE_SESSION,
        0,
    ),
    def("uprobe.multi+", prog_type::KPROBE, attach_type::TRACE_UPROBE_MULTI, 0),
    def(
        "uretprobe.multi+",
        prog_type::KPROBE,
        attach_type::TRACE_UPROBE_MULTI,
        0,
    ),
    def(
        "uprobe.session+",
        prog_type::KPROBE,
        attach_type::TRACE_UPROBE_SESSION,
        0,
    ),
    def(
        "uprobe.multi.s+",
        prog_type::KPROBE,
        attach_type::TRACE_UPROBE_MULTI,
        SLEEPABLE,
    ),
    def(
        "uretprobe.multi.s+",
        prog_type::KPROBE,
        attach_type::TRACE_UPROBE_MULTI,
        SLEEPABLE,
    ),
    def(
        "uprobe.session.s+",
        prog_type::KPROBE,
        attach_type::TRACE_UPROBE_SESSION,
        SLEEPABLE,
    ),
    def("ksyscall+", prog_type::KPROBE, 0, 0),
    def("kretsyscall+", prog_type::KPROBE, 0, 0),
    def("usdt+", prog_type::KPROBE, 0, USDT),
    def("usdt.s+", prog_type::KPROBE, 0, USDT | SLEEPABLE),
    def("tc/ingress", prog_type::SCHED_CLS, attach_type::TCX_INGRESS, 0),
    def("tc/egress", prog_type::SCHED_CLS, attach_type::TCX_EGRESS, 0),
    def("tcx/ingress", prog_type::SCHED_CLS, attach_type::TCX_INGRESS, 0),
    def("tcx/egress", prog_type::SCHED_CLS, attach_type::TCX_EGRESS, 0),
    def("tc", prog_type::SCHED_CLS, 0, 0),
    def("classifier", prog_type::SCHED_CLS, 0, 0),
    def("action", prog_type::SCHED_ACT, 0, 0),
    def("netkit/primary", prog_type::SCHED_CLS, attach_type::NETKIT_PRIMARY, 0),
    def("netkit/peer", prog_type::SCHED_CLS, attach_type::NETKIT_PEER, 0),
    def("tracepoint+", prog_type::TRACEPOINT, 0, 0),
    def("tp+", prog_type::TRACEPOINT, 0, 0),
    def("tracepoint.s+", prog_type::TRACEPOINT, 0, SLEEPABLE),
    def("tp.s+", prog_type::TRACEPOINT, 0, SLEEPABLE),
    def("raw_tracepoint+", prog_type::RAW_TRACEPOINT, 0, 0),
    def("raw_tp+", prog_type::RAW_TRACEPOINT, 0, 0),
    def("raw_tracepoint.s+", prog_type::RAW_TRACEPOINT, 0, SLEEPABLE),
    def("raw_tp.s+", prog_type::RAW_TRACEPOINT, 0, SLEEPABLE),
    def("raw_tracepoint.w+", prog_type::RAW_TRACEPOINT_WRITABLE, 0, 0),
    def("raw_tp.w+", prog_type::RAW_TRACEPOINT_WRITABLE, 0, 0),
    def("tp_btf+", prog_type::TRACING, attach_type::TRACE_RAW_TP, ATTACH_BTF),
    def(
        "tp_btf.s+",
        prog_type::TRACING,
        attach_type::TRACE_RAW_TP,
        ATTACH_BTF | SLEEPABLE,
    ),
    def("fentry+", prog_type::TRACING, attach_type::TRACE_FENTRY, ATTACH_BTF),
    def("fmod_ret+", prog_type::TRACING, attach_type::MODIFY_RETURN, ATTACH_BTF),
    def("fexit+", prog_type::TRACING, attach_type::TRACE_FEXIT, ATTACH_BTF),
    def(
        "fentry.s+",
        prog_type::TRACING,
        attach_type::TRACE_FENTRY,
        ATTACH_BTF | SLEEPABLE,
    ),
    def(
        "fmod_ret.s+",
        prog_type::TRACING,
        attach_type::MODIFY_RETURN,
        ATTACH_BTF | SLEEPABLE,
    ),
    def(
        "fexit.s+",
        prog_type::TRACING,
        attach_type::TRACE_FEXIT,
        ATTACH_BTF | SLEEPABLE,
    ),
    def("fsession+", prog_type::TRACING, attach_type::TRACE_FSESSION, ATTACH_BTF),
    def(
        "fsession.s+",
        prog_type::TRACING,
        attach_type::TRACE_FSESSION,
        ATTACH_BTF | SLEEPABLE,
    ),
    def(
        "fsession.multi+",
        prog_type::TRACING,
        attach_type::TRACE_FSESSION_MULTI,
        0,
    ),
    def(
        "fsession.multi.s+",
        prog_type::TRACING,
        attach_type::TRACE_FSESSION_MULTI,
        SLEEPABLE,
    ),
    def("fentry.multi+", prog_type::TRACING, attach_type::TRACE_FENTRY_MULTI, 0),
    def("fexit.multi+", prog_type::TRACING, attach_type::TRACE_FEXIT_MULTI, 0),
    def(
        "fentry.multi.s+",
        prog_type::TRACING,
        attach_type::TRACE_FENTRY_MULTI,
        SLEEPABLE,
    ),
    def(
        "fexit.multi.s+",
        prog_type::TRACING,
        attach_type::TRACE_FEXIT_MULTI,
        SLEEPABLE,
    ),
    def("freplace+", prog_type::EXT, 0, ATTACH_BTF),
    def("lsm+", prog_type::LSM, attach_type::LSM_MAC, ATTACH_BTF),
    def("lsm.s+", prog_type::LSM, attach_type::LSM_MAC, ATTACH_BTF | SLEEPABLE),
    def("lsm_cgroup+", prog_type::LSM, attach_type::LSM_CGROUP, ATTACH_BTF),
    def("iter+", prog_type::TRACING, attach_type::TRACE_ITER, ATTACH_BTF),
    def(
        "iter.s+",
        prog_type::TRACING,
        attach_type::TRACE_ITER,
        ATTACH_BTF | SLEEPABLE,
    ),
    def("syscall", prog_type::SYSCALL, 0, SLEEPABLE),
    def("xdp.frags/devmap", prog_type::XDP, attach_type::XDP_DEVMAP, XDP_FRAGS),
    def("xdp/devmap", prog_type::XDP, attach_type::XDP_DEVMAP, ATTACHABLE),
    def("xdp.frags/cpumap", prog_type::XDP, attach_type::XDP_CPUMAP, XDP_FRAGS),
    def("xdp/cpumap", prog_type::XDP, attach_type::XDP_CPUMAP, ATTACHABLE),
    def("xdp.frags", prog_type::XDP, attach_type::XDP, XDP_FRAGS),
    def("xdp", prog_type::XDP, attach_type::XDP, ATTACHABLE_OPT),
    def("perf_event", prog_type::PERF_EVENT, 0, 0),
    def("lwt_in", prog_type::LWT_IN, 0, 0),
    def("lwt_out", prog_type::LWT_OUT, 0, 0),
    def("lwt_xmit", prog_type::LWT_XMIT, 0, 0),
    def("lwt_seg6local", prog_type::LWT_SEG6LOCAL, 0, 0),
    def(
        "sockops",
        prog_type::SOCK_OPS,
        attach_type::CGROUP_SOCK_OPS,
        ATTACHABLE_OPT,
    ),
    def(
        "sk_skb/stream_parser",
        prog_type::SK_SKB,
        attach_type::SK_SKB_STREAM_PARSER,
        ATTACHABLE_OPT,
    ),
    def(
        "sk_skb/stream_verdict",
        prog_type::SK_SKB,
        attach_type::SK_SKB_STREAM_VERDICT,
        ATTACHABLE_OPT,
    ),
    def(
        "sk_skb/verdict",
        prog_type::SK_SKB,
        attach_type::SK_SKB_VERDICT,
        ATTACHABLE_OPT,
    ),
    def("sk_skb", prog_type::SK_SKB, 0, 0),
    def("sk_msg", prog_type::SK_MSG, attach_type::SK_MSG_VERDICT, ATTACHABLE_OPT),
    def(
        "lirc_mode2",
        prog_type::LIRC_MODE2,
        attach_type::LIRC_MODE2,
        ATTACHABLE_OPT,
    ),
    def(
        "flow_dissector",
        prog_type::FLOW_DISSECTOR,
        attach_type::FLOW_DISSECTOR,
        ATTACHABLE_OPT,
    ),
    def(
        "cgroup_skb/ingress",
        prog_type::CGROUP_SKB,
        attach_type::CGROUP_INET_INGRESS,
        ATTACHABLE_OPT,
    ),
    def(
        "cgroup_skb/egress",
        prog_type::CGROUP_SKB,
        attach_type::CGROUP_INET_EGRESS,
        ATTACHABLE_OPT,
    ),
    def("cgroup/skb", prog_type::CGROUP_SKB, 0, 0),
    def(
        "cgroup/sock_create",
        prog_type::CGROUP_SOCK,
        attach_type::CGROUP_INET_SOCK_CREATE,
        ATTACHABLE,
    ),
    def(
        "cgroup/sock_release",
        prog_type::CGROUP_SOCK,
        attach_type::CGROUP_INET_SOCK_RELEASE,
        ATTACHABLE,
    ),
    def(
        "cgroup/sock",
        prog_type::CGROUP_SOCK,
        attach_type::CGROUP_INET_SOCK_CREATE,
        ATTACHABLE_OPT,
    ),
    def(
        "cgroup/post_bind4",
        prog_type::CGROUP_SOCK,
        attach_type::CGROUP_INET4_POST_BIND,
        ATTACHABLE,
    ),
    def(
        "cgroup/post_bind6",
        prog_type::CGROUP_SOCK,
        attach_type::CGROUP_INET6_POST_BIND,
        ATTACHABLE,
    ),
    def(
        "cgroup/bind4",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_INET4_BIND,
        ATTACHABLE,
    ),
    def(
        "cgroup/bind6",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_INET6_BIND,
        ATTACHABLE,
    ),
    def(
        "cgroup/connect4",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_INET4_CONNECT,
        ATTACHABLE,
    ),
    def(
        "cgroup/connect6",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_INET6_CONNECT,
        ATTACHABLE,
    ),
    def(
        "cgroup/connect_unix",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_UNIX_CONNECT,
        ATTACHABLE,
    ),
    def(
        "cgroup/sendmsg4",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_UDP4_SENDMSG,
        ATTACHABLE,
    ),
    def(
        "cgroup/sendmsg6",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_UDP6_SENDMSG,
        ATTACHABLE,
    ),
    def(
        "cgroup/sendmsg_unix",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_UNIX_SENDMSG,
        ATTACHABLE,
    ),
    def(
        "cgroup/recvmsg4",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_UDP4_RECVMSG,
        ATTACHABLE,
    ),
    def(
        "cgroup/recvmsg6",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_UDP6_RECVMSG,
        ATTACHABLE,
    ),
    def(
        "cgroup/recvmsg_unix",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_UNIX_RECVMSG,
        ATTACHABLE,
    ),
    def(
        "cgroup/getpeername4",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_INET4_GETPEERNAME,
        ATTACHABLE,
    ),
    def(
        "cgroup/getpeername6",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_INET6_GETPEERNAME,
        ATTACHABLE,
    ),
    def(
        "cgroup/getpeername_unix",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_UNIX_GETPEERNAME,
        ATTACHABLE,
    ),
    def(
        "cgroup/getsockname4",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_INET4_GETSOCKNAME,
        ATTACHABLE,
    ),
    def(
        "cgroup/getsockname6",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_INET6_GETSOCKNAME,
        ATTACHABLE,
    ),
    def(
        "cgroup/getsockname_unix",
        prog_type::CGROUP_SOCK_ADDR,
        attach_type::CGROUP_UNIX_GETSOCKNAME,
        ATTACHABLE,
    ),
    def(
        "cgroup/sysctl",
        prog_type::CGROUP_SYSCTL,
        attach_type::CGROUP_SYSCTL,
        ATTACHABLE,
    ),
    def(
        "cgroup/getsockopt",
        prog_type::CGROUP_SOCKOPT,
        attach_type::CGROUP_GETSOCKOPT,
        ATTACHABLE,
    ),
    def(
        "cgroup/setsockopt",
        prog_type::CGROUP_SOCKOPT,
        attach_type::CGROUP_SETSOCKOPT,
        ATTACHABLE,
    ),
    def(
        "cgroup/dev",
        prog_type::CGROUP_DEVICE,
        attach_type::CGROUP_DEVICE,
        ATTACHABLE_OPT,
    ),
    def("struct_ops+", prog_type::STRUCT_OPS, 0, 0),
    def("struct_ops.s+", prog_type::STRUCT_OPS, 0, SLEEPABLE),
    def("sk_lookup", prog_type::SK_LOOKUP, attach_type::SK_LOOKUP, ATTACHABLE),
    def("netfilter", prog_type::NETFILTER, attach_type::NETFILTER, 0),
];

/// `sec_def_matches`: `x/` is a prefix; `x+` is `x` or `x/...`; anything
/// else must be equal.
fn matches(pattern: &str, name: &[u8]) -> bool {
    let p = pattern.as_bytes();
    match p.last() {
        Some(b'/') => name.starts_with(p),
        Some(b'+') => {
            let base = &p[..p.len() - 1];
            name.starts_with(base) && matches!(name.get(base.len()), None | Some(b'/'))
        }
        _ => name == p,
    }
}

/// The first row of [`SECTION_DEFS`] that `sec_name` (without a leading
/// `?`) matches, as libbpf's `find_sec_def`; `None` for a name libbpf
/// does not recognize.
///
/// ```
/// use ksymrelo_core::link::sec_def;
/// let d = sec_def::find(b"fentry.s/do_unlinkat").unwrap();
/// assert_eq!(d.sec, "fentry.s+");
/// assert!(sec_def::find(b"kprobex").is_none());
/// ```
pub fn find(sec_name: &[u8]) -> Option<&'static SecDef> {
    SECTION_DEFS.iter().find(|d| matches(d.sec, sec_name))
}

impl SecDef {
    /// `prog_flags` of `BPF_PROG_LOAD` (libbpf's `libbpf_prepare_prog_load`).
    pub fn prog_flags(&self) -> u32 {
        let mut f = 0;
        if self.flags & SLEEPABLE != 0 {
            f |= flags::SLEEPABLE;
        }
        if self.prog_type == prog_type::XDP && self.flags & XDP_FRAGS != 0 {
            f |= flags::XDP_HAS_FRAGS;
        }
        f
    }

    /// `expected_attach_type` of `BPF_PROG_LOAD` in gen_loader mode (USDT
    /// programs become uprobe_multi ones).
    pub fn load_attach_type(&self) -> u32 {
        if self.flags & USDT != 0 {
            attach_type::TRACE_UPROBE_MULTI
        } else {
            self.expected_attach_type
        }
    }

    /// What the kernel must find for `sec_name` (this row's section,
    /// without a leading `?`): `Ok(None)` when the program attaches
    /// otherwise; an error for what a generated loader cannot do.
    pub fn attach_target<'a>(&self, sec_name: &'a [u8]) -> Result<Option<AttachTarget<'a>>, AttachProblem> {
        if self.prog_type == prog_type::STRUCT_OPS {
            return Err(AttachProblem::StructOps);
        }
        if matches!(
            self.expected_attach_type,
            attach_type::TRACE_FENTRY_MULTI | attach_type::TRACE_FEXIT_MULTI | attach_type::TRACE_FSESSION_MULTI
        ) && self.prog_type == prog_type::TRACING
        {
            return Err(AttachProblem::TracingMulti);
        }
        if self.flags & ATTACH_BTF == 0 {
            return Ok(None);
        }
        let slash = sec_name
            .iter()
            .position(|&b| b == b'/')
            .ok_or(AttachProblem::NoTarget)?;
        if self.prog_type == prog_type::EXT {
            return Err(AttachProblem::NeedsProgram);
        }
        let (prefix, kind) = match self.expected_attach_type {
            attach_type::TRACE_RAW_TP => ("btf_trace_", Kind::Typedef),
            attach_type::LSM_MAC | attach_type::LSM_CGROUP => ("bpf_lsm_", Kind::Func),
            attach_type::TRACE_ITER => ("bpf_iter_", Kind::Func),
            _ => ("", Kind::Func),
        };
        Ok(Some(AttachTarget {
            prefix,
            name: &sec_name[slash + 1..],
            kind,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(name: &str) -> (&'static str, u32, u32) {
        let d = find(name.as_bytes()).unwrap_or_else(|| panic!("{name}"));
        (d.sec, d.prog_type, d.expected_attach_type)
    }

    #[test]
    fn libbpf_matching_rules() {
        assert_eq!(of("kprobe/do_sys_open").0, "kprobe+");
        assert_eq!(of("kprobe").0, "kprobe+");
        assert!(find(b"kprobe_foo").is_none(), "x+ needs '/' after x");
        assert_eq!(of("kprobe.multi/x").0, "kprobe.multi+");
        assert_eq!(of("xdp").1, prog_type::XDP);
        assert_eq!(of("xdp.frags").0, "xdp.frags");
        assert!(find(b"xdp/foo").is_none(), "exact names take nothing after them");
        assert_eq!(of("tc").0, "tc");
        assert_eq!(of("tc/ingress").2, attach_type::TCX_INGRESS);
        assert!(find(b"tc/other").is_none());
        assert_eq!(of("cgroup_skb/egress").2, attach_type::CGROUP_INET_EGRESS);
        assert_eq!(of("cgroup/sock").2, attach_type::CGROUP_INET_SOCK_CREATE);
        assert_eq!(of("sk_reuseport/migrate").0, "sk_reuseport/migrate");
        assert_eq!(of("syscall").1, prog_type::SYSCALL);
        assert_eq!(of("tp/syscalls/sys_enter_openat").1, prog_type::TRACEPOINT);
        assert_eq!(of("raw_tp/sys_enter").1, prog_type::RAW_TRACEPOINT);
        assert!(find(b"").is_none());
        assert!(find(b"unknown").is_none());
    }

    #[test]
    fn attach_targets() {
        fn t(name: &'static str) -> Result<Option<AttachTarget<'static>>, AttachProblem> {
            find(name.as_bytes()).unwrap().attach_target(name.as_bytes())
        }
        let ok = |name: &'static str| t(name).unwrap().unwrap();
        let f = ok("fentry/do_unlinkat");
        assert_eq!((f.prefix, f.name, f.kind), ("", &b"do_unlinkat"[..], Kind::Func));
        assert_eq!(ok("fexit.s/x").name, b"x");
        assert_eq!(ok("lsm.s/file_open").prefix, "bpf_lsm_");
        let tp = ok("tp_btf/sched_switch");
        assert_eq!((tp.prefix, tp.kind), ("btf_trace_", Kind::Typedef));
        assert_eq!(ok("iter/task").prefix, "bpf_iter_");
        assert_eq!(t("fentry"), Err(AttachProblem::NoTarget));
        assert_eq!(t("freplace/f"), Err(AttachProblem::NeedsProgram));
        assert_eq!(t("struct_ops/x"), Err(AttachProblem::StructOps));
        assert_eq!(t("fentry.multi/x"), Err(AttachProblem::TracingMulti));
        assert_eq!(t("kprobe/x"), Ok(None));
    }

    #[test]
    fn load_attributes() {
        let d = find(b"fentry.s/x").unwrap();
        assert_eq!(d.prog_flags(), flags::SLEEPABLE);
        assert_eq!(find(b"xdp.frags").unwrap().prog_flags(), flags::XDP_HAS_FRAGS);
        assert_eq!(find(b"xdp").unwrap().prog_flags(), 0);
        assert_eq!(find(b"syscall").unwrap().prog_flags(), flags::SLEEPABLE);
        assert_eq!(
            find(b"usdt/x").unwrap().load_attach_type(),
            attach_type::TRACE_UPROBE_MULTI
        );
    }
}
