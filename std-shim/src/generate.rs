//! `ksymrelo gen`: from one BPF object, a light-skeleton loader that does
//! everything inside the kernel (libbpf's gen_loader way): loads the
//! object's BTF, creates and fills its maps, resolves every ksym, loads
//! every program — and hands the descriptors back. The object is linked
//! by [`ksymrelo_core::link`] as libbpf links it, the loader emitted by
//! [`ksymrelo_core::gen`], and the result is a [`LoaderFile`] to write
//! once and run later ([`run`]) on the target.

use std::os::fd::OwnedFd;

use ksymrelo_core::btf::Kind;
use ksymrelo_core::gen::{self, AttachTarget, Load, MapCreate, MapDef, ProgDef, Records};
use ksymrelo_core::insn::Insn;
use ksymrelo_core::link::{self, Info, Linker, Segment};
use ksymrelo_core::object::{Extern, ExternKind, Object, Site};

use crate::error::{Error, Result};
use crate::loader_file::{LoaderFile, MapEntry, ProgEntry};
use crate::skel::{self, SkelOptions, StepNames};

/// `struct bpf_core_relo`'s size.
const CORE_RELO_SIZE: u32 = 16;

/// `.BTF.ext` records for `BPF_PROG_LOAD`: none without the load's BTF,
/// or when the program has none.
fn records((bytes, rec_size): &(Vec<u8>, u32), with_btf: bool) -> Option<Records<'_>> {
    (with_btf && !bytes.is_empty()).then_some(Records {
        bytes,
        rec_size: *rec_size,
    })
}

/// One program, linked, with what its `BPF_PROG_LOAD` needs, owned.
struct Linked {
    name: String,
    section: String,
    load: link::Load<'static>,
    attach: Option<(String, Kind)>,
    insns: Vec<Insn>,
    sites: Vec<Site>,
    func_info: (Vec<u8>, u32),
    line_info: (Vec<u8>, u32),
    core_relos: (Vec<u8>, u32),
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The object's license (`SEC("license")`), as libbpf reads it.
fn license(object: &Object<'_>) -> Result<String> {
    let elf = object.elf();
    let Some(section) = elf.section_by_name(b"license")? else {
        return Ok(String::new());
    };
    let data = elf.data_of(&section)?;
    let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    Ok(text(&data[..end]))
}

/// Links every program the object loads (`SEC("?...")` ones are not
/// loaded, as libbpf's autoload).
fn link_programs(linker: &Linker<'_, '_>, funcs: &[link::Function<'_>], sites: &[Site]) -> Result<Vec<Linked>> {
    let mut out = Vec::new();
    for p in linker.programs() {
        let func = &funcs[p];
        if !func.autoload() {
            continue;
        }
        let load = linker.load(p)?;
        let attach = load.attach.map(|t| (format!("{}{}", t.prefix, text(t.name)), t.kind));
        let mut segments = vec![Segment::default(); linker.max_segments()];
        let linked = linker.plan(p, &mut segments)?;
        let mut insns = vec![Insn::default(); linked.insn_cnt()];
        linker.write_insns(&linked, &mut insns)?;
        let n = linker.sites_into(&linked, sites, None)?;
        let mut prog_sites = vec![Site::default(); n];
        let prog_sites = linker.sites(&linked, sites, &mut prog_sites)?.to_vec();
        let records = |info: Info| -> Result<(Vec<u8>, u32)> {
            let size = linker.ext_info(&linked, info, None)?;
            let mut bytes = vec![0u8; size.rec_size as usize * size.count];
            linker.ext_info(&linked, info, Some(&mut bytes))?;
            Ok((bytes, size.rec_size))
        };
        let func_info = records(Info::Func)?;
        let line_info = records(Info::Line)?;
        let n = linker.core_relos(&linked, None)?;
        let mut relos = vec![link::CoreRelo::default(); n];
        linker.core_relos(&linked, Some(&mut relos))?;
        let core_relos = relos
            .iter()
            .flat_map(|r| [r.insn_off, r.type_id, r.access_str_off, r.kind])
            .flat_map(|w| w.get().to_le_bytes())
            .collect::<Vec<u8>>();
        out.push(Linked {
            name: text(func.name),
            section: text(func.sec_name()),
            load: link::Load { attach: None, ..load },
            attach,
            insns,
            sites: prog_sites,
            func_info,
            line_info,
            core_relos: (core_relos, CORE_RELO_SIZE),
        });
    }
    Ok(out)
}

/// The machine facts map sizes depend on, as libbpf reads them when it
/// generates a loader: the page size (ring buffers) and the number of
/// possible CPUs (a perf event array without a size).
fn host() -> link::Host {
    // The kernel's list of possible CPUs, e.g. "0-3" or "0,2-5".
    let possible_cpus = std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|text| {
            text.trim().split(',').try_fold(0u32, |n, range| {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                let (lo, hi): (u32, u32) = (lo.parse().ok()?, hi.parse().ok()?);
                n.checked_add(hi.checked_sub(lo)? + 1)
            })
        })
        .unwrap_or(1);
    link::Host {
        page_size: 4096,
        possible_cpus,
    }
}

/// `BPF_MAP_CREATE` of each map, with its initial value and whether it is
/// frozen, as libbpf creates them in gen_loader mode ([`link::map_def`]).
fn map_defs<'a>(object: &Object<'a>, maps: &[link::Map<'a>], externs: &[Extern<'a>]) -> Result<Vec<MapDef<'a>>> {
    let host = host();
    maps.iter()
        .map(|m| {
            let name = String::from_utf8_lossy(m.kernel_name.as_bytes()).into_owned();
            let def = link::map_def(object, m, externs, &host)?;
            let a = def.attrs;
            if a.numa_node != 0 {
                return Err(Error::Usage(format!(
                    "map '{name}': numa_node is not supported by the loader generator"
                )));
            }
            let initial_value = match def.initial_value {
                link::InitialValue::None | link::InitialValue::Zeros => None,
                link::InitialValue::Bytes(bytes) => Some(bytes),
                link::InitialValue::Kconfig => {
                    return Err(Error::Usage(format!(
                        "map '{name}': __kconfig externs are not supported by the loader generator"
                    )))
                }
            };
            let mut attr = MapCreate::new(a.map_type, a.key_size, a.value_size, a.max_entries, &name);
            attr.map_flags = a.map_flags;
            attr.map_extra = a.map_extra;
            attr.btf_key_type_id = a.btf_key_type_id;
            attr.btf_value_type_id = a.btf_value_type_id;
            Ok(MapDef {
                attr,
                initial_value,
                freeze: def.freeze,
            })
        })
        .collect()
}

/// How to generate a loader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Seal the loader to its blob ([`crate::skel::Seal`]): it then runs
    /// only on Linux 6.18 or later, and only with the blob it was made
    /// with. Needed for signing.
    pub sealed: bool,
}

/// Generates the loader of `object` (its file name `path` gives libbpf's
/// object name, which prefixes the global-data maps' names).
pub fn generate(object_bytes: &[u8], path: &str, opts: &GenerateOptions) -> Result<LoaderFile> {
    let object = Object::parse(object_bytes)?;
    let btf = object.btf()?;
    let mut externs = vec![Extern::default(); object.extern_count()];
    let n = object.externs(&btf, &mut externs)?.len();
    externs.truncate(n);
    let mut sites = vec![Site::default(); object.max_site_count()?];
    let n = object.sites(&externs, &mut sites)?.len();
    sites.truncate(n);
    let mut funcs = vec![link::Function::default(); link::function_count(&object)?];
    let funcs = link::functions(&object, &mut funcs)?;
    let has_kconfig = externs.iter().any(|e| e.kind == ExternKind::Kconfig);
    let mut maps = vec![link::Map::default(); link::map_count(&object, has_kconfig)?];
    let maps = link::maps(&object, link::object_name(path.as_bytes()), has_kconfig, &mut maps)?;
    let linker = Linker::new(&object, funcs, maps)?;
    let programs = link_programs(&linker, funcs, &sites)?;
    let license = license(&object)?;
    let map_defs = map_defs(&object, maps, &externs)?;
    // The object's BTF as libbpf prepares it for BPF_BTF_LOAD.
    let load_btf = match object.btf_data() {
        Some(_) => {
            let mut out = vec![0u8; link::load_btf_size(&object)?];
            let n = link::write_load_btf(&object, &externs, &mut out)?;
            out.truncate(n);
            Some(out)
        }
        None => None,
    };
    let with_btf = load_btf.is_some();
    let prog_defs: Vec<ProgDef<'_>> = programs
        .iter()
        .map(|p| ProgDef {
            name: &p.name,
            prog_type: p.load.prog_type,
            expected_attach_type: p.load.expected_attach_type,
            prog_flags: p.load.prog_flags,
            license: &license,
            insns: &p.insns,
            func_info: records(&p.func_info, with_btf),
            line_info: records(&p.line_info, with_btf),
            core_relos: records(&p.core_relos, with_btf),
            attach: p.attach.as_ref().map(|(name, kind)| AttachTarget { name, kind: *kind }),
            externs: &externs,
            sites: &p.sites,
        })
        .collect();
    let load = Load {
        btf: load_btf.as_deref(),
        maps: &map_defs,
        progs: &prog_defs,
    };
    let planned = match opts.sealed {
        false => gen::plan_load(&load)?,
        true => gen::plan_sealed_load(&load)?,
    };
    let mut loader = vec![Insn::default(); planned.loader_len as usize];
    let mut blob = vec![0u8; planned.end as usize];
    let layout = match opts.sealed {
        false => gen::emit_load(&load, &mut loader, &mut blob)?,
        true => gen::emit_sealed_load(&load, &mut loader, &mut blob, skel::sha256)?,
    };
    let seal = opts.sealed.then(|| skel::Seal::of(&loader));
    let progs = programs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let insns = gen::program_insns(&load, &blob, i)?;
            let off = insns.as_ptr() as usize - blob.as_ptr() as usize;
            Ok(ProgEntry {
                name: p.name.clone(),
                section: p.section.clone(),
                prog_type: p.load.prog_type,
                blob_insns_off: off as u32,
                insn_cnt: insns.len() as u32,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(LoaderFile {
        loader,
        blob,
        ctx_size: layout.ctx_size,
        maps: map_defs
            .iter()
            .map(|m| MapEntry {
                name: crate::sys::c_string(&m.attr.name),
                map_type: m.attr.map_type,
            })
            .collect(),
        progs,
        object: object_bytes.to_vec(),
        seal,
    })
}

/// The names of the object's externs, in libbpf's extern order (the
/// loader's extern indexes).
pub fn extern_names(object: &[u8]) -> Result<Vec<String>> {
    let object = Object::parse(object)?;
    let btf = object.btf()?;
    let mut externs = vec![Extern::default(); object.extern_count()];
    let externs = object.externs(&btf, &mut externs)?;
    Ok(externs.iter().map(|e| e.name.to_owned()).collect())
}

/// What running a loader file created: every map and program, by name,
/// and each program's instructions as the kernel received them.
#[derive(Debug)]
pub struct Ran {
    /// `(name, fd)` of each map, in map index order.
    pub maps: Vec<(String, OwnedFd)>,
    /// `(name, fd, instructions)` of each program, in load order.
    pub progs: Vec<(String, OwnedFd, Vec<Insn>)>,
}

/// Runs a loader file: every map and program created inside the kernel;
/// errors name the map, program or extern that failed.
pub fn run(file: &LoaderFile, opts: &SkelOptions) -> Result<Ran> {
    let names = StepNames {
        maps: file.maps.iter().map(|m| m.name.clone()).collect(),
        progs: file.progs.iter().map(|p| p.name.clone()).collect(),
        externs: extern_names(&file.object)?,
        attach: vec![None; file.progs.len()],
    };
    let loaded = skel::run(
        &file.loader,
        &file.blob,
        file.ctx_size,
        file.seal.as_ref(),
        &names,
        opts,
    )?;
    let insns = |p: &ProgEntry| -> Result<Vec<Insn>> {
        let start = p.blob_insns_off as usize;
        let bytes = loaded
            .blob
            .get(start..start + p.insn_cnt as usize * 8)
            .ok_or_else(|| Error::LoaderFile {
                problem: format!("program '{}': instructions outside the blob", p.name),
            })?;
        Ok(ksymrelo_core::insn::insns(bytes)?.to_vec())
    };
    let progs = file
        .progs
        .iter()
        .zip(loaded.progs)
        .map(|(p, fd)| Ok((p.name.clone(), fd, insns(p)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Ran {
        maps: file.maps.iter().map(|m| m.name.clone()).zip(loaded.maps).collect(),
        progs,
    })
}

/// The runner's type pre-flight: the object resolved in user space against
/// `kernel` (libbpf's way, [`crate::relocate()`]) before its loader runs,
/// since the loader cannot compare BTF types.
#[derive(Debug)]
pub struct Preflight {
    /// The user-space resolution, when it succeeded: every extern's
    /// outcome, as `ksymrelo resolve` reports it.
    pub relocation: Option<crate::Relocation>,
    /// Why types were not checked, or what user space found that the
    /// loader will decide for itself (a strong extern it lacks, a name
    /// kallsyms lists twice).
    pub note: Option<String>,
}

/// Checks the extern types of `object` against `kernel`'s BTF: an
/// incompatible typed variable or kfunc prototype is an error, told with
/// both types as C ([`crate::Error::Incompatible`]); a kernel whose BTF
/// cannot be read is said so in [`Preflight::note`], not an error.
pub fn preflight(object: &[u8], kernel: &crate::Kernel) -> Result<Preflight> {
    use crate::error::Reason;
    match crate::relocate_with(object, kernel, crate::Mode::Auto) {
        Ok(r) => Ok(Preflight {
            relocation: Some(r),
            note: None,
        }),
        Err(e) if e.reason() == Reason::Incompatible => Err(e),
        Err(e) => {
            let note = match e.reason() {
                Reason::KernelFacts | Reason::AddressesHidden => format!("extern types not checked: {e}"),
                _ => format!("user-space resolution: {e} (the loader decides)"),
            };
            Ok(Preflight {
                relocation: None,
                note: Some(note),
            })
        }
    }
}
