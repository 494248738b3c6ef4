//! A streaming matcher over `/proc/kallsyms` text: `ADDR TYPE NAME[\t[MODULE]]`
//! lines, fed in chunks of any size, matching a batch of wanted names in
//! one pass, without allocation.
//!
//! Rules (libbpf's): a line matches a wanted name when its name is equal, or,
//! for type `d` symbols only, when the part before a `.llvm.` suffix is
//! equal. The first match sets the address; a later match with a different
//! address is an ambiguity error; the same address again is fine. If every
//! address in the text is zero (`kptr_restrict`), a match is an error rather
//! than a silent zero.

use crate::error::{Error, Name, Result};

/// Longest line kept across chunk boundaries (`KSYM_NAME_LEN` 512 plus the
/// address, type and `[module]`).
const MAX_LINE: usize = 1024;
/// Most wanted names in one pass.
pub const MAX_NAMES: usize = 8192;
/// `MODULE_NAME_LEN`.
const MODULE_NAME_LEN: usize = 56;

/// Where a wanted name was found.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// The address.
    pub addr: u64,
    module: [u8; MODULE_NAME_LEN],
    module_len: u8,
}

impl Match {
    /// A vmlinux match at `addr` (e.g. from the kernel's own lookup).
    pub fn new(addr: u64) -> Self {
        Match {
            addr,
            module: [0; MODULE_NAME_LEN],
            module_len: 0,
        }
    }

    /// A match at `addr` in `module` (cut to `MODULE_NAME_LEN` bytes).
    pub fn in_module(addr: u64, module: &[u8]) -> Self {
        let mut m = Match::new(addr);
        let len = module.len().min(MODULE_NAME_LEN);
        m.module[..len].copy_from_slice(&module[..len]);
        m.module_len = len as u8;
        m
    }

    /// The module that provides the symbol (`None` for vmlinux).
    pub fn module(&self) -> Option<&[u8]> {
        (self.module_len > 0).then(|| &self.module[..usize::from(self.module_len)])
    }
}

impl core::fmt::Debug for Match {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Match({:#x}", self.addr)?;
        if let Some(m) = self.module() {
            write!(f, " [{}]", Name::new(m))?;
        }
        f.write_str(")")
    }
}

/// What a finished scan saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Symbol lines read.
    pub lines: u64,
    /// Every address was zero (or there were no lines).
    pub all_zero: bool,
}

/// A one-pass matcher; see the module documentation.
pub struct Matcher<'n, 'r> {
    names: &'n [&'n [u8]],
    results: &'r mut [Option<Match>],
    /// Indices of `names`, sorted by name, for binary search.
    order: heapless::Vec<u16, MAX_NAMES>,
    /// Bit `n` set: some wanted name is `n` bytes long (n < 512).
    lengths: [u64; 8],
    partial: heapless::Vec<u8, MAX_LINE>,
    lines: u64,
    line_no: u64,
    all_zero: bool,
}

impl<'n, 'r> Matcher<'n, 'r> {
    /// A matcher for `names`; `results[i]` receives `names[i]`'s match.
    /// Results are reset to `None`.
    pub fn new(names: &'n [&'n [u8]], results: &'r mut [Option<Match>]) -> Result<Self> {
        if results.len() < names.len() {
            return Err(Error::CapacityExceeded {
                what: "kallsyms results",
                capacity: results.len(),
            });
        }
        if names.len() > MAX_NAMES {
            return Err(Error::CapacityExceeded {
                what: "kallsyms names in one pass",
                capacity: MAX_NAMES,
            });
        }
        let mut order = heapless::Vec::new();
        let mut lengths = [0u64; 8];
        for (i, name) in names.iter().enumerate() {
            // Capacity checked above.
            let _ = order.push(i as u16);
            if name.len() < 512 {
                lengths[name.len() / 64] |= 1 << (name.len() % 64);
            }
        }
        order.sort_unstable_by(|a: &u16, b: &u16| names[usize::from(*a)].cmp(names[usize::from(*b)]));
        for r in results.iter_mut() {
            *r = None;
        }
        Ok(Matcher {
            names,
            results,
            order,
            lengths,
            partial: heapless::Vec::new(),
            lines: 0,
            line_no: 0,
            all_zero: true,
        })
    }

    /// Feeds the next chunk of text; lines may straddle chunks.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<()> {
        if !self.partial.is_empty() {
            let Some(nl) = memchr::memchr(b'\n', chunk) else {
                return self.keep_partial(chunk);
            };
            self.keep_partial(&chunk[..nl])?;
            let mut line = [0u8; MAX_LINE];
            let len = self.partial.len();
            line[..len].copy_from_slice(&self.partial);
            self.partial.clear();
            self.line(&line[..len])?;
            chunk = &chunk[nl + 1..];
        }
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            self.line(&chunk[start..nl])?;
            start = nl + 1;
        }
        self.keep_partial(&chunk[start..])
    }

    fn keep_partial(&mut self, bytes: &[u8]) -> Result<()> {
        self.partial
            .extend_from_slice(bytes)
            .map_err(|_| Error::KallsymsLine { line: self.line_no + 1 })
    }

    /// Processes a last line without newline and checks for hidden
    /// addresses; returns what was seen.
    pub fn finish(mut self) -> Result<Stats> {
        if !self.partial.is_empty() {
            let mut line = [0u8; MAX_LINE];
            let len = self.partial.len();
            line[..len].copy_from_slice(&self.partial);
            self.partial.clear();
            self.line(&line[..len])?;
        }
        let all_zero = self.all_zero;
        if self.lines > 0 && all_zero {
            if let Some(i) = self.results.iter().position(Option::is_some) {
                return Err(Error::KallsymsRestricted {
                    name: Name::new(self.names[i]),
                });
            }
        }
        Ok(Stats {
            lines: self.lines,
            all_zero,
        })
    }

    fn line(&mut self, line: &[u8]) -> Result<()> {
        self.line_no += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let l = parse_line(line).ok_or(Error::KallsymsLine { line: self.line_no })?;
        self.lines += 1;
        if l.addr != 0 {
            self.all_zero = false;
        }
        let module = l.module.unwrap_or(&[]);
        if self.candidate(l.name.len()) {
            self.matched(l.name, l.addr, module)?;
        }
        if let Some(key) = l.llvm_key() {
            if self.candidate(key.len()) {
                self.matched(key, l.addr, module)?;
            }
        }
        Ok(())
    }

    fn candidate(&self, len: usize) -> bool {
        len < 512 && self.lengths[len / 64] & (1 << (len % 64)) != 0
    }

    fn matched(&mut self, name: &[u8], addr: u64, module: &[u8]) -> Result<()> {
        let names = self.names;
        let Ok(pos) = self.order.binary_search_by(|i| names[usize::from(*i)].cmp(name)) else {
            return Ok(());
        };
        // Equal wanted names sit next to each other in `order`.
        let mut first = pos;
        while first > 0 && names[usize::from(self.order[first - 1])] == name {
            first -= 1;
        }
        for k in first..self.order.len() {
            let i = usize::from(self.order[k]);
            if names[i] != name {
                break;
            }
            match &self.results[i] {
                Some(m) if m.addr != addr => {
                    return Err(Error::KallsymsAmbiguous {
                        name: Name::new(name),
                        first: m.addr,
                        second: addr,
                    })
                }
                Some(_) => {}
                None => {
                    let mut m = Match {
                        addr,
                        module: [0; MODULE_NAME_LEN],
                        module_len: 0,
                    };
                    let len = module.len().min(MODULE_NAME_LEN);
                    m.module[..len].copy_from_slice(&module[..len]);
                    m.module_len = len as u8;
                    self.results[i] = Some(m);
                }
            }
        }
        Ok(())
    }
}

fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut v = 0u64;
    for &d in digits {
        let n = (d as char).to_digit(16)?;
        v = (v << 4) | u64::from(n);
    }
    Some(v)
}

/// One line of kallsyms text: `ADDR TYPE NAME[\t[MODULE]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'t> {
    /// The address (zero where `kptr_restrict` hides it).
    pub addr: u64,
    /// The symbol type letter.
    pub ty: u8,
    /// The symbol name.
    pub name: &'t [u8],
    /// The module, if the line names a non-empty one.
    pub module: Option<&'t [u8]>,
}

impl<'t> Line<'t> {
    /// The second name this line also matches as: a `d` symbol's name
    /// before a `.llvm.` suffix (libbpf's rule).
    pub fn llvm_key(&self) -> Option<&'t [u8]> {
        if self.ty != b'd' {
            return None;
        }
        memchr::memmem::find(self.name, b".llvm.").map(|pos| &self.name[..pos])
    }
}

/// Parses one kallsyms line as the matcher reads it (whitespace-only lines
/// are the caller's to skip); `None` for a malformed one, and for one longer
/// than the matcher keeps across chunks, so that how the text is chunked
/// never changes the outcome. The one reading of the format, shared with
/// whoever must agree with the matcher (the std crate's kallsyms record).
pub fn parse_line(line: &[u8]) -> Option<Line<'_>> {
    if line.len() > MAX_LINE {
        return None;
    }
    let sp = memchr::memchr(b' ', line)?;
    let addr = parse_hex(&line[..sp])?;
    let rest = &line[sp + 1..];
    let (&ty, rest) = rest.split_first()?;
    if ty.is_ascii_whitespace() {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    // NAME, up to whitespace; then an optional `[module]`.
    let end = rest.iter().position(u8::is_ascii_whitespace).unwrap_or(rest.len());
    let name = &rest[..end];
    if name.is_empty() {
        return None;
    }
    let tail = &rest[end..];
    let t = &tail[tail.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(tail.len())..];
    let module = match (t.first(), memchr::memchr(b']', t)) {
        (Some(b'['), Some(close)) if close > 1 => Some(&t[1..close]),
        _ => None,
    };
    Some(Line { addr, ty, name, module })
}

/// Matches `names` against a whole kallsyms text at once.
///
/// ```
/// use ksymrelo_core::kallsyms::match_all;
/// let text = b"ffffffff81000000 T _stext\nffffffff81234560 T vfs_read\n";
/// let mut found = [None; 2];
/// match_all(text, &[b"vfs_read", b"nope"], &mut found).unwrap();
/// assert_eq!(found[0].unwrap().addr, 0xffffffff81234560);
/// assert!(found[1].is_none());
/// ```
pub fn match_all(text: &[u8], names: &[&[u8]], results: &mut [Option<Match>]) -> Result<Stats> {
    let mut m = Matcher::new(names, results)?;
    m.feed(text)?;
    m.finish()
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::string::String;
    use std::vec::Vec;

    fn run(text: &[u8], names: &[&[u8]]) -> Result<Vec<Option<u64>>> {
        let mut out = std::vec![None; names.len()];
        match_all(text, names, &mut out)?;
        Ok(out.iter().map(|m| m.map(|m| m.addr)).collect())
    }

    #[test]
    fn exact_names_and_modules() {
        let text = b"ffffffff81000000 T _stext\nffffffff81000010 t vfs_read\nffffffffc0001000 t modfn\t[mymod]\n";
        let mut out = [None; 3];
        match_all(text, &[b"vfs_read", b"modfn", b"vfs_rea"], &mut out).unwrap();
        assert_eq!(out[0].unwrap().addr, 0xffffffff81000010);
        assert_eq!(out[0].unwrap().module(), None);
        assert_eq!(out[1].unwrap().module(), Some(&b"mymod"[..]));
        assert!(out[2].is_none());
    }

    #[test]
    fn llvm_suffix_only_for_d_symbols() {
        let text = b"1000 d foo.llvm.12345\n2000 t bar.llvm.999\n";
        assert_eq!(run(text, &[b"foo", b"bar"]).unwrap(), [Some(0x1000), None]);
        assert_eq!(run(text, &[b"foo.llvm.12345"]).unwrap(), [Some(0x1000)]);
    }

    #[test]
    fn ambiguity_and_repeats() {
        let text = b"1000 t init_once\n1000 t init_once\n2000 t init_once\n";
        assert_eq!(
            run(text, &[b"init_once"]).unwrap_err(),
            Error::KallsymsAmbiguous {
                name: Name::new(b"init_once"),
                first: 0x1000,
                second: 0x2000
            }
        );
        assert_eq!(run(&text[..34], &[b"init_once"]).unwrap(), [Some(0x1000)]);
    }

    #[test]
    fn all_zero_addresses_are_restricted() {
        let text = b"0000000000000000 T _stext\n0000000000000000 T vfs_read\n";
        assert_eq!(
            run(text, &[b"vfs_read"]).unwrap_err(),
            Error::KallsymsRestricted {
                name: Name::new(b"vfs_read")
            }
        );
        // Nothing wanted was found: no error, but the stats say so.
        let mut out = [None];
        let stats = match_all(text, &[b"nope"], &mut out).unwrap();
        assert!(stats.all_zero);
        assert_eq!(stats.lines, 2);
    }

    #[test]
    fn bad_lines_name_their_number() {
        assert_eq!(
            run(b"1000 T a\nxyz T b\n", &[b"a"]).unwrap_err(),
            Error::KallsymsLine { line: 2 }
        );
        assert_eq!(run(b"1000 T\n", &[b"a"]).unwrap_err(), Error::KallsymsLine { line: 1 });
        assert_eq!(
            run(b"10000000000000000 T a\n", &[b"a"]).unwrap_err(),
            Error::KallsymsLine { line: 1 }
        );
        let long = [b'a'; 2000];
        let mut text = Vec::from(&b"1000 T "[..]);
        text.extend_from_slice(&long);
        let mut out = [None];
        let mut m = Matcher::new(&[b"a"], &mut out).unwrap();
        assert!(matches!(m.feed(&text), Err(Error::KallsymsLine { line: 1 })));
        // Whole, in one chunk, the same line is refused the same way (found
        // by the kallsyms fuzz target).
        text.push(b'\n');
        assert_eq!(run(&text, &[b"a"]).unwrap_err(), Error::KallsymsLine { line: 1 });
    }

    #[test]
    fn last_line_without_newline_and_blank_lines() {
        assert_eq!(
            run(b"\n1000 T a\n\n2000 T b", &[b"b", b"a"]).unwrap(),
            [Some(0x2000), Some(0x1000)]
        );
    }

    #[test]
    fn duplicate_wanted_names_both_get_the_result() {
        assert_eq!(run(b"1000 T a\n", &[b"a", b"a"]).unwrap(), [Some(0x1000), Some(0x1000)]);
    }

    fn line() -> impl Strategy<Value = String> {
        (
            0u64..0x20,
            prop::sample::select(&['T', 't', 'd', 'D', 'b'][..]),
            prop::sample::select(&["a", "b", "c", "a.llvm.1", "init", "x"][..]),
            prop::option::of(prop::sample::select(&["m1", "m2"][..])),
        )
            .prop_map(|(addr, ty, name, module)| match module {
                Some(m) => std::format!("{addr:x} {ty} {name}\t[{m}]\n"),
                None => std::format!("{addr:x} {ty} {name}\n"),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 256 }, .. ProptestConfig::default() })]
        #[test]
        fn chunking_does_not_change_the_result(
            lines in prop::collection::vec(line(), 0..40),
            garbage in prop::option::of("[ -~\n]{0,12}"),
            cuts in prop::collection::vec(1usize..40, 0..20),
        ) {
            let mut text = lines.concat();
            if let Some(g) = garbage { text.push_str(&g); }
            let text = text.as_bytes();
            let names: [&[u8]; 4] = [b"a", b"b", b"init", b"zz"];
            let mut whole = [None; 4];
            let expected = match_all(text, &names, &mut whole);
            let mut chunked = [None; 4];
            let got = (|| {
                let mut m = Matcher::new(&names, &mut chunked)?;
                let mut rest = text;
                for c in &cuts {
                    let n = (*c).min(rest.len());
                    m.feed(&rest[..n])?;
                    rest = &rest[n..];
                }
                m.feed(rest)?;
                m.finish()
            })();
            prop_assert_eq!(expected, got);
            if expected.is_ok() {
                prop_assert_eq!(whole, chunked);
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn real_kallsyms() {
        let Ok(text) = std::fs::read("/proc/kallsyms") else {
            ksymrelo_test_skip::skip("/proc/kallsyms unreadable");
            return;
        };
        let naive = |want: &str| -> Vec<u64> {
            String::from_utf8_lossy(&text)
                .lines()
                .filter_map(|l| {
                    let mut f = l.split_whitespace();
                    let addr = f.next()?;
                    f.next()?;
                    (f.next()? == want).then(|| u64::from_str_radix(addr, 16).unwrap())
                })
                .collect()
        };
        let vfs = naive("vfs_read");
        if vfs.is_empty() || vfs[0] == 0 {
            ksymrelo_test_skip::skip("kallsyms addresses hidden");
            return;
        }
        let got = run(&text, &[b"vfs_read", b"schedule"]).unwrap();
        assert_eq!(got, [Some(vfs[0]), Some(naive("schedule")[0])]);
        // A name this kernel lists at two addresses, found naively (names
        // listed more than once are a property of the build).
        let mut first: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        let text_str = String::from_utf8_lossy(&text);
        let twice = text_str.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            let addr = u64::from_str_radix(f.next()?, 16).ok()?;
            let name = f.nth(1)?;
            (*first.entry(name).or_insert(addr) != addr).then_some(name)
        });
        let Some(twice) = twice else {
            ksymrelo_test_skip::skip("this kernel's kallsyms lists no name at two addresses");
            return;
        };
        assert!(
            matches!(run(&text, &[twice.as_bytes()]), Err(Error::KallsymsAmbiguous { .. })),
            "{twice}"
        );
    }
}
