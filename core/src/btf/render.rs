//! BTF types as C text, and where a local type stops being compatible with a
//! kernel type: the words an error message needs when an extern does not
//! match the kernel's declaration.
//!
//! Everything writes into a caller's [`fmt::Write`] and nothing allocates; a
//! [`FixedText`] (or a `heapless::String`) is enough for an error message.
//! The BTF may be hostile: names that are missing, out of range or not UTF-8
//! are written visibly (`(anon)`, `(bad name)`, `\xff`), ids that do not
//! exist as `(bad type [id])`, and cycles and deep nesting are cut with
//! `...` after [`MAX_RENDER_DEPTH`] levels. Rendering never fails except when
//! the writer does.

use core::fmt::{self, Write};

use super::compat::{kinds_match, MAX_DEPTH, MAX_STEPS};
use super::{Btf, Kind, Type};
use crate::error::Result;

/// Levels of pointers, arrays, modifiers and nested prototypes written before
/// the rest of a type is replaced by `...`.
pub const MAX_RENDER_DEPTH: u32 = 16;

/// Types rendered by one call. Depth alone does not bound the work: a
/// prototype of 65535 parameters that each point back to it would take
/// 65535^16 steps.
const MAX_NODES: u32 = 512;

/// Bytes of one name written before it is cut with `...` (the kernel's
/// `KSYM_NAME_LEN`); a hostile string section may hold megabyte names.
const MAX_NAME: usize = 512;

/// Writes the C spelling of type `id`: `int`, `const char *`,
/// `struct bpf_iter_num *`, `u64` (typedefs by name), `int[4]`,
/// `int (*)(void *, int)`, `void` for id 0.
///
/// A VAR or FUNC is written as what it declares, under its own name:
/// `struct rq runqueues`, `int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end)`.
///
/// ```
/// # let data = [0x9fu8, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28, 0, 0, 0, 6, 0, 0, 0,
/// #     1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0,
/// #     0, b'c', b'h', b'a', b'r', 0];
/// use ksymrelo_core::btf::{write_c_type, Btf, FixedText};
/// // [1] INT 'char' size 1, [2] PTR -> 1
/// let btf = Btf::parse(&data).unwrap();
/// let mut text = FixedText::<64>::new();
/// write_c_type(&btf, 2, &mut text).unwrap();
/// assert_eq!(text.as_str(), "char *");
/// ```
pub fn write_c_type(btf: &Btf<'_>, id: u32, out: &mut impl Write) -> fmt::Result {
    let mut r = Render::new(btf, out);
    match btf.type_by_id(id) {
        Ok(ty) if matches!(ty.kind(), Kind::Var | Kind::Func) => r.decl(ty.type_id(), Name::Btf(ty.name_off())),
        _ => r.decl(id, Name::None),
    }
}

/// Writes a C declaration of `name` with type `id`: `struct rq runqueues`,
/// `int a[4]`, `int (*cb)(void *, int)`, and for a FUNC_PROTO the whole
/// prototype with the parameter names BTF gives:
/// `int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end)`,
/// `void f(void)`, `int printk(const char *fmt, ...)`.
///
/// If `id` is a VAR or FUNC, its type is declared (under `name`, not the BTF
/// one). `name` is written as given; an empty one gives [`write_c_type`]'s
/// abstract form.
pub fn write_c_decl(btf: &Btf<'_>, id: u32, name: &str, out: &mut impl Write) -> fmt::Result {
    let id = match btf.type_by_id(id) {
        Ok(ty) if matches!(ty.kind(), Kind::Var | Kind::Func) => ty.type_id(),
        _ => id,
    };
    let name = if name.is_empty() { Name::None } else { Name::Str(name) };
    Render::new(btf, out).decl(id, name)
}

/// The declarator name of a top-level declaration.
#[derive(Clone, Copy)]
enum Name<'n> {
    None,
    Str(&'n str),
    /// A BTF string offset.
    Btf(u32),
}

/// One rendering: C puts part of a type before the declared name and part
/// after it (`int (*name)[4]`), so each type is walked twice, by
/// [`Render::prefix`] and [`Render::suffix`], which make the same decisions.
struct Render<'b, 'w, W: Write + ?Sized> {
    btf: &'b Btf<'b>,
    out: &'w mut W,
    /// The last thing written was a word: another word or a `*` needs a space
    /// before it, a `[`, `(` of a parameter list or `)` does not.
    space: bool,
    /// Types rendered so far.
    nodes: u32,
    /// The node budget ran out and `...` was written: write nothing more.
    done: bool,
}

impl<'b, 'w, W: Write + ?Sized> Render<'b, 'w, W> {
    fn new(btf: &'b Btf<'b>, out: &'w mut W) -> Self {
        Render {
            btf,
            out,
            space: false,
            nodes: 0,
            done: false,
        }
    }

    fn decl(&mut self, id: u32, name: Name<'_>) -> fmt::Result {
        self.prefix(id, 0)?;
        let named = match name {
            Name::None => false,
            Name::Str(s) => {
                self.word(s)?;
                true
            }
            Name::Btf(off) => {
                self.name(off)?;
                true
            }
        };
        self.suffix(id, 0, named)
    }

    /// An identifier or keyword.
    fn word(&mut self, s: &str) -> fmt::Result {
        if self.done {
            return Ok(());
        }
        if self.space {
            self.out.write_char(' ')?;
        }
        self.out.write_str(s)?;
        self.space = true;
        Ok(())
    }

    /// `*` or the `(` around a pointer declarator: spaced from a word before
    /// it, never from what follows.
    fn star(&mut self, s: &str) -> fmt::Result {
        self.word(s)?;
        self.space = false;
        Ok(())
    }

    /// Punctuation written tight against what precedes it.
    fn tight(&mut self, s: &str) -> fmt::Result {
        if self.done {
            return Ok(());
        }
        self.out.write_str(s)?;
        self.space = false;
        Ok(())
    }

    /// Counts one more type against the budget; at the limit writes `...`
    /// once and stops all output.
    fn enter(&mut self) -> core::result::Result<bool, fmt::Error> {
        if self.done {
            return Ok(false);
        }
        if self.nodes >= MAX_NODES {
            self.word("...")?;
            self.done = true;
            return Ok(false);
        }
        self.nodes += 1;
        Ok(true)
    }

    /// The name at a BTF string offset, as one word.
    fn name(&mut self, off: u32) -> fmt::Result {
        match self.btf.name_by_offset(off) {
            Err(_) => self.word("(bad name)"),
            Ok([]) => self.word("(anon)"),
            Ok(bytes) => self.name_bytes(bytes),
        }
    }

    /// Writes name bytes as they are when they are printable UTF-8, with
    /// `\xNN` for any other byte, cut after [`MAX_NAME`] bytes.
    fn name_bytes(&mut self, bytes: &[u8]) -> fmt::Result {
        if self.done {
            return Ok(());
        }
        if self.space {
            self.out.write_char(' ')?;
        }
        let shown = bytes.get(..MAX_NAME).unwrap_or(bytes);
        for chunk in shown.utf8_chunks() {
            let valid = chunk.valid();
            if valid.chars().any(char::is_control) {
                for c in valid.chars() {
                    if c.is_control() {
                        write!(self.out, "\\u{{{:x}}}", u32::from(c))?;
                    } else {
                        self.out.write_char(c)?;
                    }
                }
            } else {
                self.out.write_str(valid)?;
            }
            for b in chunk.invalid() {
                write!(self.out, "\\x{b:02x}")?;
            }
        }
        if shown.len() < bytes.len() {
            self.out.write_str("...")?;
        }
        self.space = true;
        Ok(())
    }

    fn bad_id(&mut self, id: u32) -> fmt::Result {
        if self.done {
            return Ok(());
        }
        if self.space {
            self.out.write_char(' ')?;
        }
        write!(self.out, "(bad type [{id}])")?;
        self.space = true;
        Ok(())
    }

    /// The kind of `id` once modifiers are passed (bounded: they may loop).
    fn under_modifiers(&self, mut id: u32) -> Option<Kind> {
        for _ in 0..MAX_RENDER_DEPTH {
            let ty = self.btf.type_by_id(id).ok()?;
            if !ty.kind().is_modifier() {
                return Some(ty.kind());
            }
            id = ty.type_id();
        }
        None
    }

    /// A pointer to an array or function needs `(*...)`.
    fn needs_parens(&self, pointee: u32) -> bool {
        matches!(self.under_modifiers(pointee), Some(Kind::Array | Kind::FuncProto))
    }

    /// A qualifier of a pointer goes after its `*` (`char *const`), any
    /// other before the type (`const char`); a type tag always after
    /// (`struct task_struct __attribute__((btf_type_tag("rcu"))) *`), where
    /// the kernel's `__rcu` goes.
    fn goes_after(&self, modifier: &Type<'_>) -> bool {
        modifier.kind() == Kind::TypeTag || self.under_modifiers(modifier.type_id()) == Some(Kind::Ptr)
    }

    fn qualifier(&mut self, ty: &Type<'_>) -> fmt::Result {
        match ty.kind() {
            Kind::Const => self.word("const"),
            Kind::Volatile => self.word("volatile"),
            Kind::Restrict => self.word("restrict"),
            _ => {
                self.word("__attribute__((btf_type_tag(\"")?;
                self.space = false;
                match self.btf.name_by_offset(ty.name_off()) {
                    Ok(bytes) => self.name_bytes(bytes)?,
                    Err(_) => self.word("(bad name)")?,
                }
                self.tight("\")))")?;
                self.space = true;
                Ok(())
            }
        }
    }

    /// Everything left of the declared name.
    fn prefix(&mut self, id: u32, depth: u32) -> fmt::Result {
        // The `...` of the depth bound counts too, or a wide prototype at
        // the last level would write it 65535 times for free.
        if !self.enter()? {
            return Ok(());
        }
        if depth >= MAX_RENDER_DEPTH {
            return self.word("...");
        }
        let Ok(ty) = self.btf.type_by_id(id) else {
            return self.bad_id(id);
        };
        let inner = ty.type_id();
        match ty.kind() {
            Kind::Unknown => self.word("void"),
            Kind::Int | Kind::Float | Kind::Typedef => self.name(ty.name_off()),
            Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::Fwd => {
                let tag = match ty.kind() {
                    Kind::Union => "union",
                    Kind::Enum | Kind::Enum64 => "enum",
                    Kind::Fwd if ty.kind_flag() => "union",
                    _ => "struct",
                };
                self.word(tag)?;
                self.name(ty.name_off())
            }
            Kind::Ptr => {
                self.prefix(inner, depth + 1)?;
                if self.needs_parens(inner) {
                    self.star("(")?;
                }
                self.star("*")
            }
            Kind::Array => match ty.array() {
                Some(a) => self.prefix(a.elem_type.get(), depth + 1),
                None => self.bad_id(id),
            },
            Kind::FuncProto => self.prefix(inner, depth + 1),
            Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag => {
                if self.goes_after(&ty) {
                    self.prefix(inner, depth + 1)?;
                    self.qualifier(&ty)
                } else {
                    self.qualifier(&ty)?;
                    self.prefix(inner, depth + 1)
                }
            }
            // Not types a declaration refers to; shown for what they are.
            Kind::Func | Kind::Var | Kind::Datasec | Kind::DeclTag => {
                self.star("(")?;
                self.word(ty.kind().as_str())?;
                self.name(ty.name_off())?;
                self.tight(")")?;
                self.space = true;
                Ok(())
            }
        }
    }

    /// Everything right of the declared name. `named`: this is the top of a
    /// named declaration, whose parameters get their BTF names.
    fn suffix(&mut self, id: u32, depth: u32, named: bool) -> fmt::Result {
        if depth >= MAX_RENDER_DEPTH || self.done {
            return Ok(());
        }
        let Ok(ty) = self.btf.type_by_id(id) else {
            return Ok(());
        };
        let inner = ty.type_id();
        match ty.kind() {
            Kind::Ptr => {
                if self.needs_parens(inner) {
                    self.tight(")")?;
                }
                self.suffix(inner, depth + 1, false)
            }
            Kind::Array => match ty.array() {
                Some(a) => {
                    if !self.done {
                        write!(self.out, "[{}]", a.nelems.get())?;
                        self.space = false;
                    }
                    self.suffix(a.elem_type.get(), depth + 1, false)
                }
                None => Ok(()),
            },
            Kind::FuncProto => {
                self.params(&ty, depth, named)?;
                self.suffix(inner, depth + 1, false)
            }
            Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag => self.suffix(inner, depth + 1, false),
            _ => Ok(()),
        }
    }

    /// `(void)`, `(int, char *)`, `(const char *fmt, ...)`.
    fn params(&mut self, proto: &Type<'_>, depth: u32, named: bool) -> fmt::Result {
        self.tight("(")?;
        let params = proto.params();
        if params.is_empty() {
            self.word("void")?;
        }
        for (i, p) in params.iter().enumerate() {
            if self.done {
                break;
            }
            if i > 0 {
                self.tight(", ")?;
            }
            let id = p.type_id.get();
            // Only a last parameter of type void means `...`.
            if id == 0 && i + 1 == params.len() {
                self.word("...")?;
                continue;
            }
            self.prefix(id, depth + 1)?;
            if named {
                match self.btf.name_by_offset(p.name_off.get()) {
                    Ok([]) => {}
                    Ok(bytes) => self.name_bytes(bytes)?,
                    Err(_) => self.word("(bad name)")?,
                }
            }
            self.suffix(id, depth + 1, false)?;
        }
        self.tight(")")
    }
}

/// A fixed-capacity [`fmt::Write`] for rendered types: keeps what fits and,
/// at the first write that does not, cuts the text to end in `...`, records
/// the cut and fails that write (and every later one) so rendering stops.
///
/// A plain `heapless::String<N>` works too; it fails the same way but keeps
/// no marker.
#[derive(Clone, Debug, Default)]
pub struct FixedText<const N: usize> {
    text: heapless::String<N>,
    truncated: bool,
}

impl<const N: usize> FixedText<N> {
    /// An empty text.
    pub const fn new() -> Self {
        FixedText {
            text: heapless::String::new(),
            truncated: false,
        }
    }

    /// The text written so far (ending in `...` if it was cut).
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }

    /// Whether some text did not fit.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character
/// boundary.
fn char_prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

impl<const N: usize> Write for FixedText<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.truncated {
            return Err(fmt::Error);
        }
        if self.text.push_str(s).is_ok() {
            return Ok(());
        }
        self.truncated = true;
        let room = N - self.text.len();
        // Each push is of a prefix that fits, so none can fail.
        let _ = self.text.push_str(char_prefix(s, room));
        let keep = char_prefix(self.text.as_str(), N.saturating_sub(3)).len();
        self.text.truncate(keep);
        let _ = self.text.push_str(char_prefix("...", N - keep));
        Err(fmt::Error)
    }
}

impl<const N: usize> fmt::Display for FixedText<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the first difference between two types was found, in the terms of
/// the outermost comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Place {
    /// The types compared, or what they point to or hold, before any
    /// function prototype is entered.
    Top,
    /// The return type of the first function prototype reached (the
    /// kfunc's own, when the types are a FUNC's prototypes).
    ReturnType,
    /// A parameter of that prototype, **0-based**.
    Param(u16),
}

/// Why two types are not compatible (each rule of [`super::types_are_compat`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Why {
    /// The kinds differ (any two enums count as one kind). Modifiers and
    /// typedefs are skipped except at the very first step, as in libbpf.
    Kind {
        /// Local kind.
        local: Kind,
        /// Kernel kind.
        kernel: Kind,
    },
    /// Function prototypes with different numbers of parameters.
    ParamCount {
        /// Local parameter count.
        local: u16,
        /// Kernel parameter count.
        kernel: u16,
    },
    /// An INT with a non-zero bit offset on either side.
    IntBitOffset {
        /// Local bit offset.
        local: u8,
        /// Kernel bit offset.
        kernel: u8,
    },
    /// Same kind, but one the rules never accept (FUNC, VAR, FLOAT, ...).
    Unsupported {
        /// The kind.
        kind: Kind,
    },
    /// Nested too deeply to decide; `types_are_compat` returns
    /// `Error::CompatDepth` here.
    TooDeep,
}

/// The first place where a local type stops being compatible with a kernel
/// type, see [`first_difference`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Difference {
    /// Where, in the outermost comparison.
    pub at: Place,
    /// The local type at `at`: the type compared, or the parameter or return
    /// type as BTF writes it (modifiers and typedefs included).
    pub local: u32,
    /// The kernel type at `at`.
    pub kernel: u32,
    /// The local type where the rule failed: `local` itself, what it names
    /// through modifiers and typedefs, or a type reached from it through
    /// pointers, arrays and nested prototypes.
    pub local_inner: u32,
    /// The kernel type where the rule failed.
    pub kernel_inner: u32,
    /// The rule that failed.
    pub why: Why,
}

/// Where the first difference between local type `local_id` and kernel type
/// `kernel_id` is, with the rules and walk order of
/// [`super::types_are_compat`]: `Ok(None)` exactly when that returns
/// `Ok(true)`, `Ok(Some(_))` with [`Why::TooDeep`] when it returns
/// `Error::CompatDepth`, the same error when it fails otherwise, and a
/// difference of another [`Why`] when it returns `Ok(false)`.
pub fn first_difference(
    local: &Btf<'_>,
    local_id: u32,
    kernel: &Btf<'_>,
    kernel_id: u32,
) -> Result<Option<Difference>> {
    let at = At {
        place: Place::Top,
        local: local_id,
        kernel: kernel_id,
    };
    Walk {
        local,
        kernel,
        steps: core::cell::Cell::new(MAX_STEPS),
    }
    .walk(local_id, kernel_id, 0, at)
}

/// The place a walk is at and the types there.
#[derive(Clone, Copy)]
struct At {
    place: Place,
    local: u32,
    kernel: u32,
}

impl At {
    fn differ(self, local_inner: u32, kernel_inner: u32, why: Why) -> Option<Difference> {
        Some(Difference {
            at: self.place,
            local: self.local,
            kernel: self.kernel,
            local_inner,
            kernel_inner,
            why,
        })
    }

    /// Entering a prototype's parameter or return type names the place,
    /// unless an outer prototype already did.
    fn enter(self, place: Place, local: u32, kernel: u32) -> At {
        match self.place {
            Place::Top => At { place, local, kernel },
            _ => self,
        }
    }
}

struct Walk<'l, 'k> {
    local: &'l Btf<'l>,
    kernel: &'k Btf<'k>,
    /// Steps left, counted as `compat::compat` counts them.
    steps: core::cell::Cell<u32>,
}

impl Walk<'_, '_> {
    /// Step for step the walk of `compat::compat`, stopping where it would
    /// return `false` or fail with `CompatDepth`.
    fn walk(&self, mut l_id: u32, mut k_id: u32, nesting: u32, mut at: At) -> Result<Option<Difference>> {
        if nesting > MAX_DEPTH {
            return Ok(at.differ(l_id, k_id, Why::TooDeep));
        }
        let first_l = self.local.type_by_id(l_id)?;
        let first_k = self.kernel.type_by_id(k_id)?;
        if !kinds_match(first_l.kind(), first_k.kind()) {
            let why = Why::Kind {
                local: first_l.kind(),
                kernel: first_k.kind(),
            };
            return Ok(at.differ(l_id, k_id, why));
        }
        for _ in 0..MAX_DEPTH {
            let Some(left) = self.steps.get().checked_sub(1) else {
                return Ok(at.differ(l_id, k_id, Why::TooDeep));
            };
            self.steps.set(left);
            let l = self.local.skip_mods_and_typedefs(l_id)?;
            let k = self.kernel.skip_mods_and_typedefs(k_id)?;
            let differ = move |why| Ok(at.differ(l.id(), k.id(), why));
            if !kinds_match(l.kind(), k.kind()) {
                return differ(Why::Kind {
                    local: l.kind(),
                    kernel: k.kind(),
                });
            }
            match l.kind() {
                Kind::Unknown | Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::Fwd => return Ok(None),
                Kind::Int if l.int_offset() == 0 && k.int_offset() == 0 => return Ok(None),
                Kind::Int => {
                    return differ(Why::IntBitOffset {
                        local: l.int_offset(),
                        kernel: k.int_offset(),
                    })
                }
                Kind::Ptr => {
                    l_id = l.type_id();
                    k_id = k.type_id();
                }
                Kind::Array => {
                    let (Some(la), Some(ka)) = (l.array(), k.array()) else {
                        return differ(Why::Unsupported { kind: Kind::Array });
                    };
                    l_id = la.elem_type.get();
                    k_id = ka.elem_type.get();
                }
                Kind::FuncProto => {
                    let (lp, kp) = (l.params(), k.params());
                    if lp.len() != kp.len() {
                        return differ(Why::ParamCount {
                            local: l.vlen(),
                            kernel: k.vlen(),
                        });
                    }
                    for (i, (a, b)) in lp.iter().zip(kp).enumerate() {
                        let (a_id, b_id) = (a.type_id.get(), b.type_id.get());
                        let a = self.local.skip_mods_and_typedefs(a_id)?;
                        let b = self.kernel.skip_mods_and_typedefs(b_id)?;
                        // vlen is 16 bits, so is the index.
                        let here = at.enter(Place::Param(i as u16), a_id, b_id);
                        if let Some(d) = self.walk(a.id(), b.id(), nesting + 1, here)? {
                            return Ok(Some(d));
                        }
                    }
                    l_id = l.type_id();
                    k_id = k.type_id();
                    at = at.enter(Place::ReturnType, l_id, k_id);
                }
                kind => return differ(Why::Unsupported { kind }),
            }
        }
        Ok(at.differ(l_id, k_id, Why::TooDeep))
    }
}

/// Writes a [`Difference`] with both sides as C, e.g.
/// `parameter 1: local 'int' vs kernel 'struct bpf_iter_num *' (kinds INT vs PTR)`
/// or, when the rule failed inside them,
/// `return type: local 'int *' vs kernel 'struct task_struct *' (at 'int' vs 'struct task_struct': kinds INT vs STRUCT)`.
/// Parameters are counted from 1 here, as compilers do.
pub fn write_difference(local: &Btf<'_>, kernel: &Btf<'_>, d: &Difference, out: &mut impl Write) -> fmt::Result {
    match d.at {
        Place::Top => {}
        Place::ReturnType => out.write_str("return type: ")?,
        Place::Param(i) => write!(out, "parameter {}: ", u32::from(i) + 1)?,
    }
    out.write_str("local '")?;
    write_c_type(local, d.local, out)?;
    out.write_str("' vs kernel '")?;
    write_c_type(kernel, d.kernel, out)?;
    out.write_str("' (")?;
    if (d.local_inner, d.kernel_inner) != (d.local, d.kernel) {
        out.write_str("at '")?;
        write_c_type(local, d.local_inner, out)?;
        out.write_str("' vs '")?;
        write_c_type(kernel, d.kernel_inner, out)?;
        out.write_str("': ")?;
    }
    match d.why {
        Why::Kind { local, kernel } => write!(out, "kinds {} vs {}", local.as_str(), kernel.as_str())?,
        Why::ParamCount { local, kernel } => write!(out, "{local} vs {kernel} parameters")?,
        Why::IntBitOffset { local, kernel } => write!(out, "integer bit offsets {local} vs {kernel}")?,
        Why::Unsupported { kind } => write!(out, "{} types are never compatible", kind.as_str())?,
        Why::TooDeep => out.write_str("nested too deeply to compare")?,
    }
    out.write_str(")")
}

#[cfg(test)]
mod tests;
