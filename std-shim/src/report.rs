//! Rendering a [`Relocation`] for people (a table) and for programs (JSON).

use std::fmt::Write as _;

use ksymrelo_core::resolve::{Outcome, Unresolved};
#[cfg(feature = "json")]
use serde_json::{json, Value};

use crate::relocate::{ExternReport, Relocation};

/// The JSON document of `ksymrelo resolve --json`.
///
/// `{"externs": [...], "fd_array": [...], "sections": [{"name", "insns":
/// [[code, dst_reg, src_reg, off, imm], ...]}]}` — every executable section,
/// whole, one row per 8-byte slot.
#[cfg(feature = "json")]
pub fn to_json(r: &Relocation) -> Value {
    let externs: Vec<Value> = r.externs.iter().map(extern_json).collect();
    let sections: Vec<Value> = r
        .sections
        .iter()
        .map(|s| {
            let insns: Vec<Value> = s
                .insns
                .iter()
                .map(|i| json!([i.code, i.dst_reg(), i.src_reg(), i.off(), i.imm()]))
                .collect();
            json!({"name": s.name, "insns": insns})
        })
        .collect();
    json!({"externs": externs, "fd_array": r.fd_array, "sections": sections})
}

/// [`to_json`] written straight into `out` as text, without building the
/// value tree (a thousand-ksym object's sections are ~15k numbers): what the
/// command prints. The same document, byte for byte as `to_json(r).to_string()`.
pub fn write_json(r: &Relocation, out: &mut String) {
    out.push_str("{\"externs\":[");
    for (i, e) in r.externs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_extern_json(e, out);
    }
    out.push_str("],\"fd_array\":[");
    for (i, fd) in r.fd_array.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{fd}");
    }
    out.push_str("],\"sections\":[");
    for (i, s) in r.sections.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"insns\":[");
        for (j, insn) in s.insns.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "[{},{},{},{},{}]",
                insn.code,
                insn.dst_reg(),
                insn.src_reg(),
                insn.off(),
                insn.imm()
            );
        }
        out.push_str("],\"name\":");
        write_json_str(&s.name, out);
        out.push('}');
    }
    out.push_str("]}");
}

/// [`extern_json`] as text, keys in the value's (sorted) order.
fn write_extern_json(e: &ExternReport, out: &mut String) {
    let null_or = |v: Option<String>| v.unwrap_or_else(|| "null".to_owned());
    let (btf_id, btf_obj_fd, slot, addr) = match e.resolution.outcome {
        Outcome::Btf {
            btf_id,
            btf_obj_fd,
            fd_array_slot,
            ..
        } => (
            Some(btf_id.to_string()),
            Some(btf_obj_fd.to_string()),
            Some(fd_array_slot.to_string()),
            None,
        ),
        Outcome::Address { addr } => (None, None, None, Some(format!("\"{addr:#x}\""))),
        Outcome::Unresolved(_) => (None, None, None, None),
    };
    let _ = write!(
        out,
        "{{\"addr\":{},\"btf_id\":{},\"btf_obj_fd\":{},\"fd_array_slot\":{},\"kind\":\"{}\",\"module\":",
        null_or(addr),
        null_or(btf_id),
        null_or(btf_obj_fd),
        null_or(slot),
        e.kind.as_str()
    );
    match &e.module {
        Some(m) => write_json_str(m, out),
        None => out.push_str("null"),
    }
    out.push_str(",\"name\":");
    write_json_str(&e.name, out);
    let _ = write!(
        out,
        ",\"poisoned\":{},\"resolved\":{},\"sites\":{},\"weak\":{}}}",
        e.poisoned,
        e.resolution.is_resolved(),
        e.sites,
        e.weak
    );
}

/// A JSON string literal, escaped as serde_json escapes it.
fn write_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(feature = "json")]
fn extern_json(e: &ExternReport) -> Value {
    let (btf_id, btf_obj_fd, slot, addr) = match e.resolution.outcome {
        Outcome::Btf {
            btf_id,
            btf_obj_fd,
            fd_array_slot,
            ..
        } => (json!(btf_id.0), json!(btf_obj_fd), json!(fd_array_slot), Value::Null),
        Outcome::Address { addr } => (Value::Null, Value::Null, Value::Null, json!(format!("{addr:#x}"))),
        Outcome::Unresolved(_) => (Value::Null, Value::Null, Value::Null, Value::Null),
    };
    json!({
        "name": e.name,
        "kind": e.kind.as_str(),
        "weak": e.weak,
        "resolved": e.resolution.is_resolved(),
        "btf_id": btf_id,
        "btf_obj_fd": btf_obj_fd,
        "fd_array_slot": slot,
        "addr": addr,
        "module": e.module,
        "sites": e.sites,
        "poisoned": e.poisoned,
    })
}

/// The JSON document of a failed `ksymrelo resolve --json`: `{"error":
/// {"extern", "kind", "reason", "message", "candidates"}, "externs": [...]}`
/// — the object's externs as far as it could be read, none resolved.
#[cfg(feature = "json")]
pub fn error_json(err: &crate::Error, externs: &[ExternReport]) -> Value {
    let name = err.extern_name();
    let kind = name
        .as_deref()
        .and_then(|n| externs.iter().find(|e| e.name == n))
        .map(|e| e.kind.as_str());
    json!({
        "error": {
            "extern": name,
            "kind": kind,
            "reason": err.reason().as_str(),
            "message": err.to_string(),
            "candidates": err.candidates(),
        },
        "externs": externs.iter().map(extern_json).collect::<Vec<_>>(),
    })
}

/// A table, one row per extern: name, kind, weak, outcome.
pub fn to_table(r: &Relocation) -> String {
    let rows: Vec<[String; 4]> = r
        .externs
        .iter()
        .map(|e| {
            let outcome = match e.resolution.outcome {
                Outcome::Btf {
                    btf_id,
                    btf_obj_fd,
                    fd_array_slot,
                    ..
                } => {
                    let obj = match &e.module {
                        Some(m) => format!("{m} (btf fd {btf_obj_fd})"),
                        None => "vmlinux".to_owned(),
                    };
                    let slot = if e.kind == ksymrelo_core::object::ExternKind::Kfunc && fd_array_slot != 0 {
                        format!(", fd_array[{fd_array_slot}]")
                    } else {
                        String::new()
                    };
                    format!("btf id {btf_id} in {obj}{slot}")
                }
                Outcome::Address { addr } => match &e.module {
                    Some(m) => format!("address {addr:#x} [{m}]"),
                    None => format!("address {addr:#x}"),
                },
                Outcome::Unresolved(Unresolved::NotFound) if e.poisoned => {
                    "not found: calls poisoned (weak)".to_owned()
                }
                Outcome::Unresolved(Unresolved::NotFound) => "not found: 0 (weak)".to_owned(),
                Outcome::Unresolved(Unresolved::Incompatible) if e.poisoned => {
                    "incompatible prototype: calls poisoned (weak)".to_owned()
                }
                Outcome::Unresolved(Unresolved::Incompatible) => "incompatible prototype: 0 (weak)".to_owned(),
                Outcome::Unresolved(Unresolved::Kconfig) => "kconfig: left to the loader".to_owned(),
            };
            [
                e.name.clone(),
                e.kind.as_str().to_owned(),
                if e.weak { "weak" } else { "strong" }.to_owned(),
                format!("{outcome} ({} site{})", e.sites, if e.sites == 1 { "" } else { "s" }),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no ksym externs: nothing to resolve\n".to_owned();
    }
    let header = ["EXTERN", "KIND", "BINDING", "OUTCOME"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 4]| {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    };
    line(header);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3]]);
    }
    if !r.fd_array.is_empty() {
        let _ = writeln!(out, "fd_array: {:?}", r.fd_array);
    }
    out
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use super::*;
    use ksymrelo_core::bpf::op;
    use ksymrelo_core::insn::Insn;

    #[test]
    fn written_json_is_the_value_tree() {
        use ksymrelo_core::object::ExternKind;
        use ksymrelo_core::resolve::Resolution;
        let report = |name: &str, module: Option<&str>, outcome| crate::ExternReport {
            name: name.into(),
            kind: ExternKind::Kfunc,
            weak: true,
            resolution: Resolution {
                kind: ExternKind::Kfunc,
                weak: true,
                index: ksymrelo_core::index::ExternIdx(0),
                outcome,
            },
            module: module.map(str::to_owned),
            sites: 2,
            poisoned: false,
        };
        let r = Relocation {
            externs: vec![
                report(
                    "a\"b\\c\n\u{1}",
                    Some("m\tod"),
                    Outcome::Address {
                        addr: 0xffff_ffff_8100_0000,
                    },
                ),
                report(
                    "k",
                    None,
                    Outcome::Btf {
                        btf_id: ksymrelo_core::index::BtfId(5),
                        btf_obj_fd: -2,
                        module: Some(0),
                        fd_array_slot: 1,
                    },
                ),
                report(
                    "u",
                    None,
                    Outcome::Unresolved(ksymrelo_core::resolve::Unresolved::NotFound),
                ),
            ],
            fd_array: vec![0, 7],
            sections: vec![crate::RelocatedSection {
                index: ksymrelo_core::index::SectionIndex(3),
                name: "sys\"call".into(),
                insns: vec![Insn::new(op::LD_IMM64, 1, 3, -2, -5), Insn::new(op::CALL, 0, 2, 1, 77)],
            }],
            ..Default::default()
        };
        let mut text = String::new();
        write_json(&r, &mut text);
        assert_eq!(text, to_json(&r).to_string());
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), to_json(&r));
    }
}

/// The JSON document of `ksymrelo run --json` (and `gen --run --json`):
/// `{"maps": [{"name", "type", "fd"}], "programs": [{"name", "section",
/// "type", "fd", "insns": [[code, dst_reg, src_reg, off, imm], ...]}],
/// "externs": [...]}` — the instructions as the kernel received them, the
/// externs as the runner's pre-flight resolved them in user space (empty
/// when it could not).
#[cfg(feature = "json")]
pub fn ran_json(
    ran: &crate::generate::Ran,
    file: &crate::loader_file::LoaderFile,
    preflight: Option<&Relocation>,
) -> Value {
    use std::os::fd::AsRawFd;
    let maps: Vec<Value> = ran
        .maps
        .iter()
        .zip(&file.maps)
        .map(|((name, fd), m)| json!({"name": name, "type": m.map_type, "fd": fd.as_raw_fd()}))
        .collect();
    let programs: Vec<Value> = ran
        .progs
        .iter()
        .zip(&file.progs)
        .map(|((name, fd, insns), p)| {
            let insns: Vec<Value> = insns
                .iter()
                .map(|i| json!([i.code, i.dst_reg(), i.src_reg(), i.off(), i.imm()]))
                .collect();
            json!({"name": name, "section": p.section, "type": p.prog_type, "fd": fd.as_raw_fd(), "insns": insns})
        })
        .collect();
    let externs: Vec<Value> = preflight
        .map(|r| r.externs.iter().map(extern_json).collect())
        .unwrap_or_default();
    json!({"maps": maps, "programs": programs, "externs": externs})
}

/// What `ksymrelo run` prints: one line per map and per program created.
pub fn ran_table(ran: &crate::generate::Ran, file: &crate::loader_file::LoaderFile) -> String {
    use std::os::fd::AsRawFd;
    let mut out = String::new();
    for ((name, fd), m) in ran.maps.iter().zip(&file.maps) {
        let _ = writeln!(out, "map      {name:<16} type {:<3} fd {}", m.map_type, fd.as_raw_fd());
    }
    for ((name, fd, insns), p) in ran.progs.iter().zip(&file.progs) {
        let _ = writeln!(
            out,
            "program  {name:<16} {:<20} type {:<3} fd {} ({} instructions)",
            p.section,
            p.prog_type,
            fd.as_raw_fd(),
            insns.len()
        );
    }
    out
}
