//! Tests of C rendering and of `first_difference` over hand-built blobs and
//! the real vmlinux BTF.

extern crate std;
use std::string::String;
use std::vec::Vec;

use super::super::tests::{blob, info};
use super::*;
use crate::btf::types_are_compat;
use crate::error::Error;

/// Builds BTF type by type with [`blob`]; each method returns the new id.
struct B {
    words: Vec<u32>,
    strs: Vec<u8>,
    next: u32,
}

impl B {
    fn new() -> B {
        B {
            words: Vec::new(),
            strs: std::vec![0],
            next: 1,
        }
    }
    fn s(&mut self, name: &[u8]) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let off = self.strs.len() as u32;
        self.strs.extend_from_slice(name);
        self.strs.push(0);
        off
    }
    fn raw(&mut self, name_off: u32, kind: Kind, flag: bool, vlen: u32, st: u32, extra: &[u32]) -> u32 {
        self.words
            .extend_from_slice(&[name_off, info(kind, vlen) | (u32::from(flag) << 31), st]);
        self.words.extend_from_slice(extra);
        self.next += 1;
        self.next - 1
    }
    fn ty(&mut self, name: &str, kind: Kind, st: u32) -> u32 {
        let off = self.s(name.as_bytes());
        self.raw(off, kind, false, 0, st, &[])
    }
    fn int(&mut self, name: &str, size: u32, bit_offset: u32) -> u32 {
        let off = self.s(name.as_bytes());
        self.raw(off, Kind::Int, false, 0, size, &[(bit_offset << 16) | (size * 8)])
    }
    fn ptr(&mut self, to: u32) -> u32 {
        self.ty("", Kind::Ptr, to)
    }
    fn array(&mut self, elem: u32, n: u32) -> u32 {
        self.raw(0, Kind::Array, false, 0, 0, &[elem, 1, n])
    }
    fn proto(&mut self, ret: u32, params: &[(&str, u32)]) -> u32 {
        let mut extra = Vec::new();
        for (name, ty) in params {
            extra.push(self.s(name.as_bytes()));
            extra.push(*ty);
        }
        self.raw(0, Kind::FuncProto, false, params.len() as u32, ret, &extra)
    }
    fn func(&mut self, name: &str, proto: u32) -> u32 {
        let off = self.s(name.as_bytes());
        self.raw(off, Kind::Func, false, 2, proto, &[])
    }
    fn var(&mut self, name: &str, ty: u32) -> u32 {
        let off = self.s(name.as_bytes());
        self.raw(off, Kind::Var, false, 0, ty, &[2])
    }
    fn build(&self) -> Vec<u8> {
        blob(&self.words, &self.strs)
    }
}

fn c(btf: &Btf<'_>, id: u32) -> String {
    let mut s = String::new();
    write_c_type(btf, id, &mut s).unwrap();
    s
}

fn decl(btf: &Btf<'_>, id: u32, name: &str) -> String {
    let mut s = String::new();
    write_c_decl(btf, id, name, &mut s).unwrap();
    s
}

fn diff_text(local: &Btf<'_>, kernel: &Btf<'_>, d: &Difference) -> String {
    let mut s = String::new();
    write_difference(local, kernel, d, &mut s).unwrap();
    s
}

/// Ids of a blob with one type of every kind and the shapes C spells oddly.
struct Sample {
    data: Vec<u8>,
    int: u32,
    char_: u32,
    ulong: u32,
    cchar: u32,
    pcchar: u32,
    cptr: u32,
    pcptr: u32,
    ppint: u32,
    pvoid: u32,
    iter: u32,
    piter: u32,
    anon: u32,
    un: u32,
    en: u32,
    en64: u32,
    fwd_s: u32,
    fwd_u: u32,
    u64_: u32,
    float: u32,
    vol: u32,
    restrict: u32,
    tag: u32,
    arr: u32,
    arr2: u32,
    parr: u32,
    arrp: u32,
    proto_vp: u32,
    fnptr: u32,
    proto_void: u32,
    proto_var: u32,
    ret_fnptr: u32,
    iter_new: u32,
    f_void: u32,
    printk: u32,
    rq: u32,
    runqueues: u32,
    datasec: u32,
    decl_tag: u32,
    bitfield: u32,
    proto_bits: u32,
    proto_cint: u32,
}

fn sample() -> Sample {
    let mut b = B::new();
    let int = b.int("int", 4, 0);
    let char_ = b.int("char", 1, 0);
    let ulong = b.int("unsigned long", 8, 0);
    let cchar = b.ty("", Kind::Const, char_);
    let pcchar = b.ptr(cchar);
    let pchar = b.ptr(char_);
    let cptr = b.ty("", Kind::Const, pchar);
    let pcptr = b.ptr(cptr);
    let pint = b.ptr(int);
    let ppint = b.ptr(pint);
    let pvoid = b.ptr(0);
    let iter_name = b.s(b"bpf_iter_num");
    let iter = b.raw(iter_name, Kind::Struct, false, 0, 8, &[]);
    let piter = b.ptr(iter);
    let anon = b.raw(0, Kind::Struct, false, 1, 4, &[0, int, 0]);
    let u_name = b.s(b"u");
    let un = b.raw(u_name, Kind::Union, false, 0, 4, &[]);
    let e_name = b.s(b"e");
    let en = b.raw(e_name, Kind::Enum, false, 1, 4, &[e_name, 7]);
    let e64_name = b.s(b"e64");
    let en64 = b.raw(e64_name, Kind::Enum64, false, 0, 8, &[]);
    let fwd_s = b.ty("fs", Kind::Fwd, 0);
    let fu_name = b.s(b"fu");
    let fwd_u = b.raw(fu_name, Kind::Fwd, true, 0, 0, &[]);
    let ull = b.int("unsigned long long", 8, 0);
    let u64_ = b.ty("u64", Kind::Typedef, ull);
    let float = b.ty("double", Kind::Float, 8);
    let vol = b.ty("", Kind::Volatile, int);
    let rpi = b.ty("", Kind::Restrict, pint);
    let restrict = b.ptr(rpi);
    let task_name = b.s(b"task_struct");
    let task = b.raw(task_name, Kind::Struct, false, 0, 8, &[]);
    let tagged = b.ty("rcu", Kind::TypeTag, task);
    let tag = b.ptr(tagged);
    let arr = b.array(int, 4);
    let arr3 = b.array(int, 3);
    let arr2 = b.array(arr3, 2);
    let parr = b.ptr(arr);
    let arrp = b.array(pint, 4);
    let proto_vp = b.proto(int, &[("", pvoid), ("", int)]);
    let fnptr = b.ptr(proto_vp);
    let proto_void = b.proto(0, &[]);
    let proto_var = b.proto(int, &[("fmt", pcchar), ("", 0)]);
    let pvoid_fn = b.ptr(proto_void);
    let takes_int = b.proto(pvoid_fn, &[("", int)]);
    let ret_fnptr = b.ptr(takes_int);
    let iter_proto = b.proto(int, &[("it", piter), ("start", int), ("end", int)]);
    let iter_new = b.func("bpf_iter_num_new", iter_proto);
    let f_void = b.func("f", proto_void);
    let printk = b.func("printk", proto_var);
    let rq_name = b.s(b"rq");
    let rq = b.raw(rq_name, Kind::Struct, false, 0, 64, &[]);
    let runqueues = b.var("runqueues", rq);
    let ds_name = b.s(b".ksyms");
    let datasec = b.raw(ds_name, Kind::Datasec, false, 1, 0, &[runqueues, 0, 64]);
    let dt_name = b.s(b"bpf_kfunc");
    let decl_tag = b.raw(dt_name, Kind::DeclTag, false, 0, iter_new, &[u32::MAX]);
    let bitfield = b.int("int", 4, 3);
    let proto_bits = b.proto(int, &[("", bitfield), ("", int)]);
    let cint = b.ty("", Kind::Const, int);
    let proto_cint = b.proto(int, &[("", pvoid), ("", cint)]);
    Sample {
        data: b.build(),
        int,
        char_,
        ulong,
        cchar,
        pcchar,
        cptr,
        pcptr,
        ppint,
        pvoid,
        iter,
        piter,
        anon,
        un,
        en,
        en64,
        fwd_s,
        fwd_u,
        u64_,
        float,
        vol,
        restrict,
        tag,
        arr,
        arr2,
        parr,
        arrp,
        proto_vp,
        fnptr,
        proto_void,
        proto_var,
        ret_fnptr,
        iter_new,
        f_void,
        printk,
        rq,
        runqueues,
        datasec,
        decl_tag,
        bitfield,
        proto_bits,
        proto_cint,
    }
}

#[test]
fn renders_every_kind() {
    let s = sample();
    let btf = Btf::parse(&s.data).unwrap();
    let cases: &[(u32, &str)] = &[
        (0, "void"),
        (s.int, "int"),
        (s.char_, "char"),
        (s.ulong, "unsigned long"),
        (s.iter, "struct bpf_iter_num"),
        (s.anon, "struct (anon)"),
        (s.un, "union u"),
        (s.en, "enum e"),
        (s.en64, "enum e64"),
        (s.fwd_s, "struct fs"),
        (s.fwd_u, "union fu"),
        (s.u64_, "u64"),
        (s.float, "double"),
        (s.rq, "struct rq"),
        (s.runqueues, "struct rq runqueues"),
        (s.datasec, "(DATASEC .ksyms)"),
        (s.decl_tag, "(DECL_TAG bpf_kfunc)"),
        (s.bitfield, "int"),
    ];
    for (id, want) in cases {
        assert_eq!(c(&btf, *id), *want, "type [{id}]");
    }
}

#[test]
fn renders_pointers_and_qualifiers_where_c_puts_them() {
    let s = sample();
    let btf = Btf::parse(&s.data).unwrap();
    let cases: &[(u32, &str)] = &[
        (s.cchar, "const char"),
        (s.pcchar, "const char *"),
        (s.cptr, "char *const"),
        (s.pcptr, "char *const *"),
        (s.ppint, "int **"),
        (s.pvoid, "void *"),
        (s.piter, "struct bpf_iter_num *"),
        (s.vol, "volatile int"),
        (s.restrict, "int *restrict *"),
        (s.tag, "struct task_struct __attribute__((btf_type_tag(\"rcu\"))) *"),
    ];
    for (id, want) in cases {
        assert_eq!(c(&btf, *id), *want, "type [{id}]");
    }
    assert_eq!(decl(&btf, s.pcchar, "name"), "const char *name");
    assert_eq!(decl(&btf, s.cptr, "p"), "char *const p");
    assert_eq!(decl(&btf, s.ppint, "pp"), "int **pp");
}

#[test]
fn renders_arrays_and_function_pointers() {
    let s = sample();
    let btf = Btf::parse(&s.data).unwrap();
    let cases: &[(u32, &str)] = &[
        (s.arr, "int[4]"),
        (s.arr2, "int[2][3]"),
        (s.parr, "int (*)[4]"),
        (s.arrp, "int *[4]"),
        (s.proto_vp, "int(void *, int)"),
        (s.fnptr, "int (*)(void *, int)"),
        (s.proto_void, "void(void)"),
        (s.proto_var, "int(const char *, ...)"),
        (s.ret_fnptr, "void (*(*)(int))(void)"),
    ];
    for (id, want) in cases {
        assert_eq!(c(&btf, *id), *want, "type [{id}]");
    }
    assert_eq!(decl(&btf, s.arr, "a"), "int a[4]");
    assert_eq!(decl(&btf, s.parr, "pa"), "int (*pa)[4]");
    assert_eq!(decl(&btf, s.fnptr, "cb"), "int (*cb)(void *, int)");
    assert_eq!(decl(&btf, s.ret_fnptr, "g"), "void (*(*g)(int))(void)");
}

#[test]
fn renders_declarations_with_btf_parameter_names() {
    let s = sample();
    let btf = Btf::parse(&s.data).unwrap();
    let iter = "int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end)";
    assert_eq!(c(&btf, s.iter_new), iter);
    // The FUNC, or its prototype, under a caller's name.
    assert_eq!(decl(&btf, s.iter_new, "bpf_iter_num_new"), iter);
    let proto = btf.type_by_id(s.iter_new).unwrap().type_id();
    assert_eq!(decl(&btf, proto, "bpf_iter_num_new"), iter);
    assert_eq!(
        decl(&btf, proto, "my_iter"),
        iter.replace("bpf_iter_num_new", "my_iter")
    );
    // Without a name the prototype is abstract, parameter names and all.
    assert_eq!(decl(&btf, proto, ""), "int(struct bpf_iter_num *, int, int)");
    assert_eq!(c(&btf, s.f_void), "void f(void)");
    assert_eq!(c(&btf, s.printk), "int printk(const char *fmt, ...)");
    assert_eq!(decl(&btf, s.runqueues, "runqueues"), "struct rq runqueues");
    assert_eq!(decl(&btf, s.rq, "rq0"), "struct rq rq0");
    assert_eq!(decl(&btf, s.u64_, "x"), "u64 x");
}

#[test]
fn bad_names_and_ids_are_visible() {
    let mut b = B::new();
    let bad_utf8 = b.s(b"n\xffx");
    let ctl = b.s(b"a\nb");
    let i1 = b.raw(bad_utf8, Kind::Int, false, 0, 4, &[32]);
    let i2 = b.raw(ctl, Kind::Struct, false, 0, 4, &[]);
    let i3 = b.raw(10_000, Kind::Typedef, false, 0, 1, &[]);
    let i4 = b.ptr(999);
    let i5 = b.int("", 4, 0);
    let long = std::vec![b'x'; 600];
    let long_off = b.s(&long);
    let i6 = b.raw(long_off, Kind::Typedef, false, 0, 1, &[]);
    let proto = b.proto(0, &[("", i1), ("p\x01", i1), ("", 999)]);
    let f = b.func("f", proto);
    let data = b.build();
    let btf = Btf::parse(&data).unwrap();
    assert_eq!(c(&btf, i1), "n\\xffx");
    assert_eq!(c(&btf, i2), "struct a\\u{a}b");
    assert_eq!(c(&btf, i3), "(bad name)");
    assert_eq!(c(&btf, i4), "(bad type [999]) *");
    assert_eq!(c(&btf, i5), "(anon)");
    assert_eq!(c(&btf, 12_345), "(bad type [12345])");
    let long = c(&btf, i6);
    assert_eq!(long.len(), MAX_NAME + 3);
    assert!(long.ends_with("xxx..."));
    assert_eq!(c(&btf, f), "void f(n\\xffx, n\\xffx p\\u{1}, (bad type [999]))");
}

#[test]
fn depth_is_bounded_and_cycles_end() {
    let mut b = B::new();
    let int = b.int("int", 4, 0);
    let mut p = int;
    for _ in 0..20 {
        p = b.ptr(p);
    }
    let chain = p;
    // [self] PTR -> self, CONST -> self, typedef loop, proto(ptr -> proto)
    let selfptr = b.next;
    b.ptr(selfptr);
    let selfconst = b.next;
    b.ty("", Kind::Const, selfconst);
    let td1 = b.next;
    b.ty("a", Kind::Typedef, td1 + 1);
    b.ty("b", Kind::Typedef, td1);
    let proto = b.next;
    b.proto(proto + 1, &[("", proto + 1)]);
    b.ptr(proto);
    let data = b.build();
    let btf = Btf::parse(&data).unwrap();
    let stars = "*".repeat(MAX_RENDER_DEPTH as usize);
    assert_eq!(c(&btf, chain), std::format!("... {stars}"));
    assert_eq!(c(&btf, selfptr), std::format!("... {stars}"));
    let consts = "const ".repeat(MAX_RENDER_DEPTH as usize);
    assert_eq!(c(&btf, selfconst), std::format!("{consts}..."));
    assert_eq!(c(&btf, td1), "a");
    let r = c(&btf, proto);
    assert!(r.contains("..."), "{r}");
    assert!(r.len() < 4096, "{r}");
    // Comparing them ends too: in an error or a difference.
    assert_eq!(
        first_difference(&btf, td1, &btf, td1).unwrap_err(),
        Error::BtfTypeLoop { id: td1 }
    );
    let d = first_difference(&btf, selfptr, &btf, selfptr).unwrap().unwrap();
    assert_eq!(d.why, Why::TooDeep);
    assert_eq!(d.at, Place::Top);
    let d = first_difference(&btf, proto, &btf, proto).unwrap().unwrap();
    assert_eq!(d.why, Why::TooDeep);
    assert_eq!(d.at, Place::Param(0));
}

#[test]
fn node_budget_bounds_wide_self_referencing_prototypes() {
    // A prototype of 1000 parameters, each a pointer to itself: depth alone
    // would allow 1000^16 types.
    let mut b = B::new();
    let proto = b.next;
    let params: Vec<(&str, u32)> = (0..1000).map(|_| ("", proto + 1)).collect();
    b.proto(proto + 1, &params);
    b.ptr(proto);
    let data = b.build();
    let btf = Btf::parse(&data).unwrap();
    let r = c(&btf, proto + 1);
    assert!(r.ends_with("..."), "{r}");
    assert!(r.len() < 64 * 1024);
}

#[test]
fn full_writers_fail_or_truncate_without_panic() {
    let s = sample();
    let btf = Btf::parse(&s.data).unwrap();
    let full = "int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end)";
    // heapless::String refuses the write that does not fit.
    let mut h = heapless::String::<8>::new();
    assert!(write_c_type(&btf, s.iter_new, &mut h).is_err());
    assert!(full.starts_with(h.as_str()));
    // FixedText keeps what fits and marks the cut.
    for n in 0..full.len() {
        macro_rules! check {
            ($($n:literal)*) => {$(
                if n == $n {
                    let mut t = FixedText::<$n>::new();
                    assert!(write_c_type(&btf, s.iter_new, &mut t).is_err());
                    assert!(t.is_truncated());
                    assert!(t.as_str().len() <= $n);
                    let kept = t.as_str().trim_end_matches('.');
                    assert!(full.starts_with(kept), "{n}: {}", t.as_str());
                    if $n >= 3 {
                        assert!(t.as_str().ends_with("..."));
                    }
                }
            )*};
        }
        check!(0 1 2 3 4 5 8 13 20 32 64);
    }
    let mut t = FixedText::<65>::new();
    assert_eq!(full.len(), 65);
    write_c_type(&btf, s.iter_new, &mut t).unwrap();
    assert!(!t.is_truncated());
    assert_eq!(std::format!("{t}"), full);
    // Cuts fall on character boundaries.
    let mut t = FixedText::<4>::new();
    assert!(t.write_str("aé").is_ok());
    assert!(t.write_str("é").is_err());
    assert_eq!(t.as_str(), "a...");
    let mut t = FixedText::<5>::new();
    assert!(t.write_str("aééé").is_err());
    assert_eq!(t.as_str(), "a...");
    assert!(t.write_str("x").is_err());
}

#[test]
fn differences_name_the_place_and_the_rule() {
    let mut b = B::new();
    let int = b.int("int", 4, 0);
    let iter_name = b.s(b"bpf_iter_num");
    let iter = b.raw(iter_name, Kind::Struct, false, 0, 8, &[]);
    let piter = b.ptr(iter);
    let pint = b.ptr(int);
    let bits = b.int("int", 4, 3);
    let k = b.proto(int, &[("it", piter), ("start", int), ("end", int)]);
    let l_param = b.proto(int, &[("it", piter), ("start", piter), ("end", int)]);
    let l_inner = b.proto(int, &[("it", pint), ("start", int), ("end", int)]);
    let l_count = b.proto(int, &[("it", piter)]);
    let l_ret = b.proto(pint, &[("it", piter), ("start", int), ("end", int)]);
    let l_bits = b.proto(int, &[("it", piter), ("start", bits), ("end", int)]);
    let fl = b.ty("float", Kind::Float, 4);
    let data = b.build();
    let btf = Btf::parse(&data).unwrap();
    assert_eq!(first_difference(&btf, k, &btf, k).unwrap(), None);

    let d = first_difference(&btf, l_param, &btf, k).unwrap().unwrap();
    assert_eq!(
        d,
        Difference {
            at: Place::Param(1),
            local: piter,
            kernel: int,
            local_inner: piter,
            kernel_inner: int,
            why: Why::Kind {
                local: Kind::Ptr,
                kernel: Kind::Int
            },
        }
    );
    assert_eq!(
        diff_text(&btf, &btf, &d),
        "parameter 2: local 'struct bpf_iter_num *' vs kernel 'int' (kinds PTR vs INT)"
    );

    let d = first_difference(&btf, l_inner, &btf, k).unwrap().unwrap();
    assert_eq!((d.at, d.local_inner, d.kernel_inner), (Place::Param(0), int, iter));
    assert_eq!(
        diff_text(&btf, &btf, &d),
        "parameter 1: local 'int *' vs kernel 'struct bpf_iter_num *' \
         (at 'int' vs 'struct bpf_iter_num': kinds INT vs STRUCT)"
    );

    let d = first_difference(&btf, l_count, &btf, k).unwrap().unwrap();
    assert_eq!(d.why, Why::ParamCount { local: 1, kernel: 3 });
    assert_eq!(
        diff_text(&btf, &btf, &d),
        "local 'int(struct bpf_iter_num *)' vs kernel 'int(struct bpf_iter_num *, int, int)' (1 vs 3 parameters)"
    );

    let d = first_difference(&btf, l_ret, &btf, k).unwrap().unwrap();
    assert_eq!((d.at, d.local, d.kernel), (Place::ReturnType, pint, int));
    assert_eq!(
        diff_text(&btf, &btf, &d),
        "return type: local 'int *' vs kernel 'int' (kinds PTR vs INT)"
    );

    let d = first_difference(&btf, l_bits, &btf, k).unwrap().unwrap();
    assert_eq!(d.why, Why::IntBitOffset { local: 3, kernel: 0 });
    assert_eq!(
        diff_text(&btf, &btf, &d),
        "parameter 2: local 'int' vs kernel 'int' (integer bit offsets 3 vs 0)"
    );

    let d = first_difference(&btf, fl, &btf, fl).unwrap().unwrap();
    assert_eq!(d.why, Why::Unsupported { kind: Kind::Float });
    assert_eq!(
        diff_text(&btf, &btf, &d),
        "local 'float' vs kernel 'float' (FLOAT types are never compatible)"
    );
    assert!(first_difference(&btf, 999, &btf, k).is_err());
}

/// `first_difference` says what `types_are_compat` says, for one pair.
fn assert_agree(local: &Btf<'_>, l: u32, kernel: &Btf<'_>, k: u32) {
    let compat = types_are_compat(local, l, kernel, k);
    let diff = first_difference(local, l, kernel, k);
    match (&compat, &diff) {
        (Ok(true), Ok(None)) => {}
        (Ok(false), Ok(Some(d))) if d.why != Why::TooDeep => {}
        (Err(Error::CompatDepth { .. }), Ok(Some(d))) if d.why == Why::TooDeep => {}
        (Err(a), Err(b)) if a == b => {}
        _ => panic!("[{l}] vs [{k}]: compat {compat:?}, difference {diff:?}"),
    }
}

#[test]
fn first_difference_agrees_with_types_are_compat_on_every_pair() {
    let s = sample();
    // Indexed, so that lookups by id do not walk the blob: thousands of
    // pairs, each a few lookups.
    let mut index = std::vec![0u32; Btf::max_type_count(&s.data)];
    let btf = Btf::parse_indexed(&s.data, None, &mut index).unwrap();
    let end = btf.end_id().unwrap();
    // Miri is ~1000x slower: a seventh of the local ids there.
    let stride = if cfg!(miri) { 7 } else { 1 };
    for l in (0..=end).step_by(stride) {
        for k in 0..=end {
            assert_agree(&btf, l, &btf, k);
        }
    }
    // Prototypes that differ in one place each, and both blobs against
    // each other.
    let c = compat_blob();
    let mut index2 = std::vec![0u32; Btf::max_type_count(&c)];
    let other = Btf::parse_indexed(&c, None, &mut index2).unwrap();
    let end2 = other.end_id().unwrap();
    for l in (0..end2).step_by(stride) {
        for k in 0..end {
            assert_agree(&other, l, &btf, k);
            assert_agree(&btf, k, &other, l);
        }
    }
    // Modifiers of parameters are looked through; bit offsets are not.
    assert_eq!(first_difference(&btf, s.proto_cint, &btf, s.proto_vp).unwrap(), None);
    let d = first_difference(&btf, s.proto_vp, &btf, s.proto_bits).unwrap().unwrap();
    assert_eq!(
        (d.at, d.why),
        (
            Place::Param(0),
            Why::Kind {
                local: Kind::Ptr,
                kernel: Kind::Int
            }
        )
    );
}

/// Prototypes that differ in one place each, for the agreement test.
fn compat_blob() -> Vec<u8> {
    let mut b = B::new();
    let int = b.int("int", 4, 0);
    let bits = b.int("int", 4, 3);
    let e = b.raw(0, Kind::Enum, false, 0, 4, &[]);
    let e64 = b.raw(0, Kind::Enum64, false, 0, 8, &[]);
    let td = b.ty("t", Kind::Typedef, int);
    let ctd = b.ty("", Kind::Const, td);
    let p = b.ptr(ctd);
    let pp = b.ptr(p);
    let a = b.array(p, 2);
    let pv = b.ptr(0);
    let pr1 = b.proto(int, &[("", p), ("", e)]);
    let fp = b.ptr(pr1);
    for params in [
        &[][..],
        &[("", int)][..],
        &[("", bits)][..],
        &[("", e64), ("", pp)][..],
        &[("", a), ("", fp)][..],
        &[("", pv), ("", 0)][..],
        &[("", ctd), ("", td), ("", fp)][..],
    ] {
        for ret in [0, int, pv, fp, bits] {
            b.proto(ret, params);
        }
    }
    b.build()
}

fn vmlinux() -> Option<Vec<u8>> {
    match std::fs::read("/sys/kernel/btf/vmlinux") {
        Ok(d) => Some(d),
        Err(e) => {
            ksymrelo_test_skip::skip(format_args!("/sys/kernel/btf/vmlinux unreadable: {e}"));
            None
        }
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn renders_real_kfuncs() {
    let Some(data) = vmlinux() else { return };
    let mut index = std::vec![0u32; Btf::max_type_count(&data)];
    let btf = Btf::parse_indexed(&data, None, &mut index).unwrap();
    let func = |name: &str| {
        btf.find_by_name_kind(name.as_bytes(), Kind::Func)
            .unwrap()
            .unwrap_or_else(|| panic!("{name} not in vmlinux BTF"))
    };
    let iter_new = func("bpf_iter_num_new");
    assert_eq!(
        c(&btf, iter_new),
        "int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end)"
    );
    let from_pid = func("bpf_task_from_pid");
    assert_eq!(c(&btf, from_pid), "struct task_struct *bpf_task_from_pid(s32 pid)");
    // Abstract, as a difference shows a prototype.
    let proto = btf.type_by_id(from_pid).unwrap().type_id();
    assert_eq!(c(&btf, proto), "struct task_struct *(s32)");
    let v = btf.find_by_name_kind(b"runqueues", Kind::Var).unwrap().unwrap();
    assert_eq!(c(&btf, v), "struct rq runqueues");
    // The kernel's two kfuncs differ in their first parameter.
    let iter_proto = btf.type_by_id(iter_new).unwrap().type_id();
    assert_eq!(first_difference(&btf, iter_proto, &btf, iter_proto).unwrap(), None);
    let d = first_difference(&btf, proto, &btf, iter_proto).unwrap().unwrap();
    assert_eq!(d.why, Why::ParamCount { local: 1, kernel: 3 });
    assert_eq!(
        diff_text(&btf, &btf, &d),
        "local 'struct task_struct *(s32)' vs kernel 'int(struct bpf_iter_num *, int, int)' (1 vs 3 parameters)"
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn real_vmlinux_renders_everything_and_agrees_on_kfuncs() {
    let Some(data) = vmlinux() else { return };
    let mut index = std::vec![0u32; Btf::max_type_count(&data)];
    let btf = Btf::parse_indexed(&data, None, &mut index).unwrap();
    let mut text = FixedText::<256>::new();
    let mut protos = Vec::new();
    for ty in btf.own_types() {
        let ty = ty.unwrap();
        text = FixedText::new();
        let _ = write_c_type(&btf, ty.id(), &mut text);
        assert!(!text.as_str().contains("(bad "), "[{}] {}", ty.id(), text);
        // Kfuncs are FUNCs with a bpf_kfunc decl tag; their names start
        // with bpf_ often enough to sample.
        if ty.kind() == Kind::Func && btf.name(&ty).unwrap().starts_with(b"bpf_") && protos.len() < 300 {
            protos.push(ty.type_id());
        }
    }
    assert!(!text.as_str().is_empty());
    assert!(protos.len() > 50, "{}", protos.len());
    let mut differ = 0;
    for &l in &protos {
        for &k in &protos {
            assert_agree(&btf, l, &btf, k);
            differ += usize::from(first_difference(&btf, l, &btf, k).unwrap().is_some());
        }
    }
    assert!(differ > 0);
}
