//! Differential test of `ksymrelo_core::link` against libbpf: for every
//! fixture libbpf loads, each program ksymrelo links must equal, at every
//! instruction, what libbpf 1.7 and 1.1 hand to BPF_PROG_LOAD (captured by
//! tests/harness/libbpf_dump.c), except:
//! - map references: libbpf (normal mode) writes map fds (`src_reg` 1/2),
//!   the linker gen_loader's map indexes (`src_reg` 5/6): the map identity
//!   is compared instead (one fd for one index, across all programs of
//!   the object), and the value offset (`insn[1].imm`) exactly;
//! - ksym sites (the linker's re-based sites), which are patched later.
//!
//! Programs libbpf does not load (`SEC("?...")`) are not compared.

use std::collections::HashMap;
use std::path::Path;

use ksymrelo_core::bpf::{op, pseudo};
use ksymrelo_core::insn::Insn;
use ksymrelo_core::link::{self, Function, Linker, Map, Segment};
use ksymrelo_core::object::{Extern, Object, Site, SiteKind};
use ksymrelo_tests::libbpf::{self, Oracle};
use ksymrelo_tests::{fixture, fixture_bytes, kernel_usable};

/// Every program libbpf loaded of `obj` (refused ones faked): name ->
/// instructions.
fn libbpf_programs(harness: &Path, obj: &str) -> Result<HashMap<String, Vec<Insn>>, String> {
    Ok(libbpf::programs(harness, obj, true)?
        .into_iter()
        .map(|p| (p.name, p.insns))
        .collect())
}

/// Every linked program of `obj`: (name, autoload, instructions, sites).
fn link_object(obj: &str) -> Vec<(String, bool, Vec<Insn>, Vec<Site>)> {
    let data = fixture_bytes(obj);
    let object = Object::parse(&data).unwrap();
    let btf = object.btf().ok();
    let mut externs = vec![Extern::default(); object.extern_count()];
    let externs: &[Extern] = match &btf {
        Some(btf) => object.externs(btf, &mut externs).unwrap(),
        None => &[],
    };
    let mut sites = vec![Site::default(); object.max_site_count().unwrap()];
    let sites = object.sites(externs, &mut sites).unwrap();
    let has_kconfig = externs.iter().any(|e| !e.kind.is_ksym());
    let mut funcs = vec![Function::default(); link::function_count(&object).unwrap()];
    let funcs = link::functions(&object, &mut funcs).unwrap();
    let mut maps = vec![Map::default(); link::map_count(&object, has_kconfig).unwrap()];
    let maps = link::maps(&object, link::object_name(obj.as_bytes()), has_kconfig, &mut maps).unwrap();
    let linker = Linker::new(&object, funcs, maps).unwrap();
    let mut out = vec![];
    for p in linker.programs() {
        let f = funcs[p];
        linker.load(p).unwrap_or_else(|e| panic!("{obj}: {e}"));
        let mut segs = vec![Segment::default(); linker.max_segments()];
        let linked = linker.plan(p, &mut segs).unwrap();
        let mut insns = vec![Insn::default(); linked.insn_cnt()];
        linker.write_insns(&linked, &mut insns).unwrap();
        let mut linked_sites = vec![Site::default(); linker.sites_into(&linked, sites, None).unwrap()];
        linker.sites(&linked, sites, &mut linked_sites).unwrap();
        out.push((
            String::from_utf8(f.name.to_vec()).unwrap(),
            f.autoload(),
            insns,
            linked_sites,
        ));
    }
    out
}

/// Compares one object; returns the number of programs compared.
fn compare(obj: &str, version: &str, harness: &Path) -> Result<usize, String> {
    let theirs = libbpf_programs(harness, obj)?;
    let ours = link_object(obj);
    // ours map index <-> libbpf fd, both ways.
    let (mut fd_of, mut idx_of) = (HashMap::new(), HashMap::new());
    let mut compared = 0;
    for (name, autoload, mine, sites) in &ours {
        let what = format!("{obj} program {name} vs libbpf {version}");
        let Some(t) = theirs.get(name) else {
            assert!(!autoload, "{what}: libbpf loaded no such program");
            continue;
        };
        assert!(autoload, "{what}: libbpf loaded a program that is not autoloaded");
        assert_eq!(mine.len(), t.len(), "{what}: length");
        let mut skip_next = false;
        for i in 0..mine.len() {
            if std::mem::take(&mut skip_next) {
                continue;
            }
            if let Some(s) = sites.iter().find(|s| s.insn_idx.get() == i) {
                assert_eq!(mine[i].code, t[i].code, "{what}: site #{i}");
                skip_next = s.kind == SiteKind::Ld64;
                continue;
            }
            let (m, th) = (mine[i], t[i]);
            if m.code == op::LD_IMM64 && matches!(m.src_reg(), pseudo::MAP_IDX | pseudo::MAP_IDX_VALUE) {
                let expected = if m.src_reg() == pseudo::MAP_IDX {
                    pseudo::MAP_FD
                } else {
                    pseudo::MAP_VALUE
                };
                assert_eq!(th.src_reg(), expected, "{what}: #{i} {m:?} vs {th:?}");
                assert_eq!((m.dst_reg(), m.off()), (th.dst_reg(), th.off()), "{what}: #{i}");
                let fd = *fd_of.entry(m.imm()).or_insert(th.imm());
                let idx = *idx_of.entry(th.imm()).or_insert(m.imm());
                assert_eq!((fd, idx), (th.imm(), m.imm()), "{what}: #{i}: map identity");
                assert_eq!(mine[i + 1], t[i + 1], "{what}: #{} (map value offset)", i + 1);
                skip_next = true;
                continue;
            }
            assert_eq!(m, th, "{what}: #{i}");
        }
        compared += 1;
    }
    Ok(compared)
}

#[test]
fn linked_programs_equal_libbpfs() {
    if !kernel_usable("linked_programs_equal_libbpfs") {
        return;
    }
    let mut fixtures: Vec<String> = std::fs::read_dir(fixture(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".bpf.o"))
        .collect();
    fixtures.sort();
    for oracle in Oracle::ALL {
        let Some(harness) = oracle.harness() else { continue };
        let version = oracle.version();
        let mut total = 0;
        for obj in &fixtures {
            match compare(obj, version, &harness) {
                Ok(n) => total += n,
                // Objects libbpf refuses on this kernel (a missing ksym or
                // module) are not compared; these two must load anywhere.
                Err(e) => {
                    assert!(
                        !matches!(obj.as_str(), "link.bpf.o" | "multi_section.bpf.o"),
                        "libbpf {version} failed on {obj}: {e}"
                    );
                    eprintln!("libbpf {version} refused {obj}; not compared: {}", e.trim());
                }
            }
        }
        assert!(total >= 5, "only {total} programs compared with libbpf {version}");
    }
}

/// The fixture's own shape, so that the differential test above covers
/// what it is meant to: the call chain appended depth first, the callback,
/// maps in libbpf's order.
#[test]
fn link_fixture_shape() {
    let data = fixture_bytes("link.bpf.o");
    let object = Object::parse(&data).unwrap();
    let mut maps = vec![Map::default(); link::map_count(&object, false).unwrap()];
    let maps = link::maps(&object, b"link", false, &mut maps).unwrap();
    let names: Vec<&[u8]> = maps.iter().map(|m| m.kernel_name.as_bytes()).collect();
    assert_eq!(names, [&b"counts"[..], b"link.data", b"link.rodata", b"link.bss"]);
    let ours = link_object("link.bpf.o");
    let syscall = ours.iter().find(|p| p.0 == "link_syscall").unwrap();
    assert!(syscall
        .2
        .iter()
        .any(|i| i.code == op::LD_IMM64 && i.src_reg() == pseudo::FUNC));
    assert!(syscall.3.len() >= 5, "ksym sites of the appended sum_iter and chain_c");
    assert!(ours.iter().any(|p| p.0 == "link_tc_noload" && !p.1));
}

/// func_info of a linked program: one record per function, at each
/// function's place (the kernel requires exactly that); line_info starts
/// each function too, in order.
#[test]
fn func_and_line_info_follow_the_segments() {
    use ksymrelo_core::link::Info;
    let data = fixture_bytes("link.bpf.o");
    let object = Object::parse(&data).unwrap();
    let mut funcs = vec![Function::default(); link::function_count(&object).unwrap()];
    let funcs = link::functions(&object, &mut funcs).unwrap();
    let mut maps = vec![Map::default(); link::map_count(&object, false).unwrap()];
    let maps = link::maps(&object, b"link", false, &mut maps).unwrap();
    let linker = Linker::new(&object, funcs, maps).unwrap();
    for p in linker.programs() {
        let mut segs = vec![Segment::default(); linker.max_segments()];
        let linked = linker.plan(p, &mut segs).unwrap();
        let info = linker.ext_info(&linked, Info::Func, None).unwrap();
        assert_eq!((info.rec_size, info.count), (8, linked.segments().len()));
        let mut bytes = vec![0u8; info.count * 8];
        linker.ext_info(&linked, Info::Func, Some(&mut bytes)).unwrap();
        let offs: Vec<u32> = bytes
            .chunks(8)
            .map(|r| u32::from_le_bytes(r[..4].try_into().unwrap()))
            .collect();
        let starts: Vec<u32> = linked.segments().iter().map(|s| s.insn_off).collect();
        assert_eq!(offs, starts);
        let lines = linker.ext_info(&linked, Info::Line, None).unwrap();
        let mut bytes = vec![0u8; lines.count * lines.rec_size as usize];
        linker.ext_info(&linked, Info::Line, Some(&mut bytes)).unwrap();
        let offs: Vec<u32> = bytes
            .chunks(lines.rec_size as usize)
            .map(|r| u32::from_le_bytes(r[..4].try_into().unwrap()))
            .collect();
        assert!(offs.windows(2).all(|w| w[0] <= w[1]), "{offs:?}");
        for s in &starts {
            assert!(offs.contains(s), "line_info at {s}: {offs:?}");
        }
        assert_eq!(linker.core_relos(&linked, None).unwrap(), 0);
    }
}
