//! Unit tests of the linker over hand-made objects: the edge cases
//! (recursion, a call outside `.text`, bad offsets, unknown sections).
//! The differential test against libbpf is tests/tests/link.rs.

extern crate std;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::bpf::op;

/// A relocatable BPF ELF: sections of instructions or data, symbols and
/// relocations, built in memory.
#[derive(Default)]
struct ElfBuilder {
    /// (name, type, flags, contents or NOBITS size)
    sections: Vec<(&'static str, u32, u64, Vec<u8>)>,
    /// (name, info, shndx, value, size)
    symbols: Vec<(&'static str, u8, u16, u64, u64)>,
    /// (target section index, offset, symbol index)
    rels: Vec<(u16, u64, u32)>,
}

/// (name offset, type, flags, contents, link, info, entry size)
type RawSection = (u32, u32, u64, Vec<u8>, u32, u32, u64);

const CODE: (u32, u64) = (1, 6); // SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR
const FUNC_GLOBAL: u8 = 0x12;
const FUNC_LOCAL: u8 = 0x02;
const SECTION_LOCAL: u8 = 0x03;

impl ElfBuilder {
    /// Adds a section; returns its index.
    fn section(&mut self, name: &'static str, kind: (u32, u64), data: Vec<u8>) -> u16 {
        self.sections.push((name, kind.0, kind.1, data));
        self.sections.len() as u16
    }

    fn code(&mut self, name: &'static str, insns: &[Insn]) -> u16 {
        self.section(name, CODE, insn::as_bytes(insns).to_vec())
    }

    /// Adds a symbol; returns its index.
    fn symbol(&mut self, name: &'static str, info: u8, shndx: u16, value: u64, size: u64) -> u32 {
        self.symbols.push((name, info, shndx, value, size));
        self.symbols.len() as u32
    }

    fn func(&mut self, name: &'static str, shndx: u16, insn: u64, cnt: u64) -> u32 {
        self.symbol(name, FUNC_GLOBAL, shndx, insn * 8, cnt * 8)
    }

    fn rel(&mut self, target: u16, insn: u64, sym: u32) {
        self.rels.push((target, insn * 8, sym));
    }

    fn build(&self) -> Vec<u8> {
        let mut shstr = vec![0u8];
        let mut strtab = vec![0u8];
        let name = |t: &mut Vec<u8>, s: &str| {
            let off = t.len() as u32;
            t.extend_from_slice(s.as_bytes());
            t.push(0);
            off
        };
        // Section list: null, user sections, .rel* per target, .symtab, .strtab, .shstrtab.
        let mut secs: Vec<RawSection> = vec![(0, 0, 0, vec![], 0, 0, 0)];
        for (n, t, f, d) in &self.sections {
            let off = name(&mut shstr, n);
            secs.push((off, *t, *f, d.clone(), 0, 0, 0));
        }
        let user = self.sections.len() as u32;
        let mut targets: Vec<u16> = self.rels.iter().map(|r| r.0).collect();
        targets.dedup();
        let symtab_idx = user + 1 + targets.len() as u32;
        for &t in &targets {
            let mut data = Vec::new();
            for r in self.rels.iter().filter(|r| r.0 == t) {
                data.extend_from_slice(&r.1.to_le_bytes());
                data.extend_from_slice(&((u64::from(r.2) << 32) | 1).to_le_bytes());
            }
            let off = name(&mut shstr, ".rel");
            secs.push((off, 9, 0, data, symtab_idx, u32::from(t), 16));
        }
        let mut symdata = vec![0u8; 24];
        for (n, info, shndx, value, size) in &self.symbols {
            let off = if n.is_empty() { 0 } else { name(&mut strtab, n) };
            symdata.extend_from_slice(&off.to_le_bytes());
            symdata.push(*info);
            symdata.push(0);
            symdata.extend_from_slice(&shndx.to_le_bytes());
            symdata.extend_from_slice(&value.to_le_bytes());
            symdata.extend_from_slice(&size.to_le_bytes());
        }
        let off = name(&mut shstr, ".symtab");
        secs.push((off, 2, 0, symdata, symtab_idx + 1, 0, 24));
        let off = name(&mut shstr, ".strtab");
        secs.push((off, 3, 0, strtab, 0, 0, 0));
        let off = name(&mut shstr, ".shstrtab");
        let shstrndx = secs.len() as u16;
        secs.push((off, 3, 0, shstr, 0, 0, 0));

        let mut out = vec![0u8; 64];
        let mut offsets = vec![];
        for s in &secs {
            offsets.push(out.len() as u64);
            if s.1 != 8 {
                out.extend_from_slice(&s.3);
            }
        }
        let shoff = out.len() as u64;
        for (s, off) in secs.iter().zip(offsets) {
            out.extend_from_slice(&s.0.to_le_bytes());
            out.extend_from_slice(&s.1.to_le_bytes());
            out.extend_from_slice(&s.2.to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes());
            out.extend_from_slice(&off.to_le_bytes());
            out.extend_from_slice(&(s.3.len() as u64).to_le_bytes());
            out.extend_from_slice(&s.4.to_le_bytes());
            out.extend_from_slice(&s.5.to_le_bytes());
            out.extend_from_slice(&8u64.to_le_bytes());
            out.extend_from_slice(&s.6.to_le_bytes());
        }
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        out[6] = 1;
        out[16..18].copy_from_slice(&1u16.to_le_bytes());
        out[18..20].copy_from_slice(&247u16.to_le_bytes());
        out[40..48].copy_from_slice(&shoff.to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes());
        out[58..60].copy_from_slice(&64u16.to_le_bytes());
        out[60..62].copy_from_slice(&(secs.len() as u16).to_le_bytes());
        out[62..64].copy_from_slice(&shstrndx.to_le_bytes());
        out
    }
}

fn call(imm: i32) -> Insn {
    Insn::new(op::CALL, 0, pseudo::CALL, 0, imm)
}
fn exit() -> Insn {
    Insn::new(op::EXIT, 0, 0, 0, 0)
}
fn mov(imm: i32) -> Insn {
    Insn::new(op::MOV64_IMM, 0, 0, 0, imm)
}
fn ld64(src: u8, imm: i32) -> [Insn; 2] {
    [Insn::new(op::LD_IMM64, 1, src, 0, imm), Insn::new(0, 0, 0, 0, 0)]
}

/// Links every program of `elf`: (program name, instructions).
fn link_all(elf: &[u8]) -> Result<Vec<(Vec<u8>, Vec<Insn>)>> {
    let object = Object::parse(elf)?;
    let mut funcs = vec![Function::default(); function_count(&object)?];
    let funcs = functions(&object, &mut funcs)?;
    let mut maps_buf = vec![Map::default(); map_count(&object, false)?];
    let maps = maps(&object, b"t", false, &mut maps_buf)?;
    let linker = Linker::new(&object, funcs, maps)?;
    let mut out = vec![];
    for p in linker.programs() {
        linker.load(p)?;
        let mut segs = vec![Segment::default(); linker.max_segments()];
        let linked = linker.plan(p, &mut segs)?;
        let mut insns = vec![Insn::default(); linked.insn_cnt()];
        linker.write_insns(&linked, &mut insns)?;
        out.push((funcs[p].name.to_vec(), insns));
    }
    Ok(out)
}

fn problem(e: Error) -> LinkProblem {
    match e {
        Error::Link { problem, .. } => problem,
        other => panic!("not a link error: {other}"),
    }
}

/// `.text`: f (calls g, static, no relocation), g (calls f back: recursion),
/// h (unused). Program calls f through a function-symbol relocation.
#[test]
fn recursion_and_depth_first_order() {
    let mut b = ElfBuilder::default();
    // f: [0] call g (+1 -> 2), [1] exit; g: [2] call f (-3 -> 0), [3] exit; h: [4] exit
    let text = b.code(".text", &[call(1), exit(), call(-3), exit(), exit()]);
    let prog = b.code("syscall", &[mov(0), call(-1), exit()]);
    let f = b.func("f", text, 0, 2);
    b.func("g", text, 2, 2);
    b.func("h", text, 4, 1);
    b.func("prog", prog, 0, 3);
    b.rel(prog, 1, f);
    let linked = link_all(&b.build()).unwrap();
    assert_eq!(linked.len(), 1);
    let insns = &linked[0].1;
    // prog (3) + f (2) + g (2); h is not called.
    assert_eq!(insns.len(), 7);
    assert_eq!(insns[1].imm(), 3 - 1 - 1, "prog calls f at 3");
    assert_eq!(insns[3].imm(), 5 - 3 - 1, "f calls g at 5");
    assert_eq!(insns[5].imm(), 3 - 5 - 1, "g calls f back at 3");
}

/// A function address (BPF_PSEUDO_FUNC) through a section symbol, and a
/// call through a section symbol (a static function), as clang emits them.
#[test]
fn callbacks_and_static_calls_through_section_symbols() {
    let mut b = ElfBuilder::default();
    let text = b.code(".text", &[exit(), mov(1), exit()]);
    let [l0, l1] = ld64(0, 8); // address of text insn 1
    let prog = b.code("xdp", &[l0, l1, call(0), exit()]);
    b.symbol("cb0", FUNC_LOCAL, text, 0, 8);
    b.symbol("cb1", FUNC_LOCAL, text, 8, 16);
    b.func("prog", prog, 0, 4);
    let sec = b.symbol("", SECTION_LOCAL, text, 0, 0);
    b.rel(prog, 0, sec);
    b.rel(prog, 2, sec); // call .text + imm 0 + 1 -> insn 1? imm 0: (0/8)+0+1 = 1
    let linked = link_all(&b.build()).unwrap();
    let insns = &linked[0].1;
    assert_eq!(insns.len(), 4 + 2);
    assert_eq!(insns[0].src_reg(), pseudo::FUNC);
    assert_eq!(insns[0].imm(), 4 - 1, "address of cb1, appended at 4 (from insn 0)");
    assert_eq!(insns[2].imm(), 4 - 2 - 1, "call cb1");
}

#[test]
fn a_call_outside_text_is_an_error() {
    let mut b = ElfBuilder::default();
    let other = b.code("tc", &[exit()]);
    let prog = b.code("syscall", &[call(-1), exit()]);
    let target = b.func("other", other, 0, 1);
    b.func("prog", prog, 0, 2);
    b.rel(prog, 0, target);
    assert_eq!(problem(link_all(&b.build()).unwrap_err()), LinkProblem::CallOutsideText);
}

#[test]
fn a_call_without_relocation_into_nothing_is_an_error() {
    let mut b = ElfBuilder::default();
    let prog = b.code("syscall", &[call(5), exit()]);
    b.func("prog", prog, 0, 2);
    let e = link_all(&b.build()).unwrap_err();
    assert_eq!(problem(e), LinkProblem::NoSubprog);
    assert!(std::format!("{e}").contains("prog 'prog'"), "{e}");
}

#[test]
fn bad_offsets_are_errors() {
    // A relocation past the section, and one not aligned.
    for off in [16u64, 3] {
        let mut b = ElfBuilder::default();
        let text = b.code(".text", &[exit()]);
        let prog = b.code("syscall", &[call(-1), exit()]);
        let f = b.func("f", text, 0, 1);
        b.func("prog", prog, 0, 2);
        b.rels.push((prog, off, f));
        assert_eq!(problem(link_all(&b.build()).unwrap_err()), LinkProblem::ReloOffset);
    }
    // A function past its section, and one of odd size.
    let mut b = ElfBuilder::default();
    let prog = b.code("syscall", &[exit()]);
    b.func("prog", prog, 0, 2);
    assert_eq!(problem(link_all(&b.build()).unwrap_err()), LinkProblem::CrossesSection);
    let mut b = ElfBuilder::default();
    let prog = b.code("syscall", &[exit(), exit()]);
    b.symbol("prog", FUNC_GLOBAL, prog, 0, 12);
    assert_eq!(
        problem(link_all(&b.build()).unwrap_err()),
        LinkProblem::CorruptedProgram
    );
    // A static program.
    let mut b = ElfBuilder::default();
    let prog = b.code("syscall", &[exit()]);
    b.symbol("prog", FUNC_LOCAL, prog, 0, 8);
    assert_eq!(problem(link_all(&b.build()).unwrap_err()), LinkProblem::StaticProgram);
}

#[test]
fn an_unknown_section_names_program_and_section() {
    let mut b = ElfBuilder::default();
    let prog = b.code("kprobex/foo", &[exit()]);
    b.func("prog", prog, 0, 1);
    let e = link_all(&b.build()).unwrap_err();
    assert_eq!(
        std::format!("{e}"),
        "prog 'prog': unrecognized ELF section name 'kprobex/foo'"
    );
}

#[test]
fn global_data_and_maps_in_gen_loader_form() {
    let mut b = ElfBuilder::default();
    let data = b.section(".data", (1, 3), vec![0; 16]);
    let bss = b.section(".bss", (8, 3), vec![0; 8]);
    let _empty = b.section(".rodata", (1, 2), vec![]);
    let [a0, a1] = ld64(0, 0);
    let [s0, s1] = ld64(0, 4);
    let prog = b.code("syscall", &[a0, a1, s0, s1, exit()]);
    b.func("prog", prog, 0, 5);
    let var = b.symbol("var", 0x11, data, 8, 8);
    let sec = b.symbol("", SECTION_LOCAL, bss, 0, 0);
    b.rel(prog, 0, var);
    b.rel(prog, 2, sec);
    let elf = b.build();
    let object = Object::parse(&elf).unwrap();
    let mut maps_buf = vec![Map::default(); map_count(&object, false).unwrap()];
    let m = maps(&object, b"obj", false, &mut maps_buf).unwrap();
    assert_eq!(m.len(), 2, "the empty .rodata makes no map");
    assert_eq!(m[0].kernel_name.as_bytes(), b"obj.data");
    assert_eq!(
        (m[1].kind, m[1].kernel_name.as_bytes()),
        (MapKind::Bss, &b"obj.bss"[..])
    );
    let insns = &link_all(&elf).unwrap()[0].1;
    assert_eq!((insns[0].src_reg(), insns[0].imm(), insns[1].imm()), (6, 0, 8));
    assert_eq!((insns[2].src_reg(), insns[2].imm(), insns[3].imm()), (6, 1, 4));
}

#[test]
fn a_relocation_against_an_empty_data_section_is_an_error() {
    let mut b = ElfBuilder::default();
    let bss = b.section(".bss", (8, 3), vec![]);
    let [a0, a1] = ld64(0, 0);
    let prog = b.code("syscall", &[a0, a1, exit()]);
    b.func("prog", prog, 0, 3);
    let sec = b.symbol("", SECTION_LOCAL, bss, 0, 0);
    b.rel(prog, 0, sec);
    assert_eq!(problem(link_all(&b.build()).unwrap_err()), LinkProblem::DataMapNotFound);
}

#[test]
fn too_few_segments_is_an_error_not_a_panic() {
    let mut b = ElfBuilder::default();
    let text = b.code(".text", &[exit()]);
    let prog = b.code("syscall", &[call(-1), exit()]);
    let f = b.func("f", text, 0, 1);
    b.func("prog", prog, 0, 2);
    b.rel(prog, 0, f);
    let elf = b.build();
    let object = Object::parse(&elf).unwrap();
    let mut funcs = vec![Function::default(); 2];
    let funcs = functions(&object, &mut funcs).unwrap();
    let linker = Linker::new(&object, funcs, &[]).unwrap();
    let p = linker.programs().next().unwrap();
    let mut segs = [Segment::default(); 1];
    assert!(matches!(linker.plan(p, &mut segs), Err(Error::CapacityExceeded { .. })));
    let mut segs = [Segment::default(); 2];
    let linked = linker.plan(p, &mut segs).unwrap();
    let mut short = [Insn::default(); 2];
    assert!(linker.write_insns(&linked, &mut short).is_err());
}

/// Every byte of a small object changed: never a panic (natively only:
/// thousands of links take minutes under miri).
#[test]
#[cfg_attr(miri, ignore)]
fn garbage_never_panics() {
    let mut b = ElfBuilder::default();
    let text = b.code(".text", &[call(0), exit()]);
    let prog = b.code("syscall", &[call(-1), exit()]);
    let f = b.func("f", text, 0, 2);
    b.func("prog", prog, 0, 2);
    b.rel(prog, 0, f);
    let elf = b.build();
    for i in 0..elf.len() {
        for v in [0u8, 0xff, 0x80] {
            let mut e = elf.clone();
            e[i] = v;
            let _ = link_all(&e);
        }
    }
}
