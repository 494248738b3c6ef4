//! Names close to one that was not found: the suggestions of a "not found"
//! error. One pass over a BTF's own types, a bounded edit distance, no
//! allocation.

use super::{Btf, Kind};
use crate::error::Result;

/// Longest name compared (longer ones are skipped): no kernel symbol is
/// longer than `KSYM_NAME_LEN` (512), most are far shorter.
const MAX_LEN: usize = 128;

/// A name close to the one looked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Near<'a> {
    /// The name.
    pub name: &'a [u8],
    /// Its type id.
    pub id: u32,
    /// Its kind.
    pub kind: Kind,
    /// Edit distance (insertions, deletions, substitutions) to the name.
    pub distance: u8,
}

/// The most edits a suggestion may need: a quarter of the name, at least 1,
/// at most 3.
pub fn max_distance(name: &[u8]) -> u8 {
    (name.len() / 4).clamp(1, 3) as u8
}

/// Fills `out` with the names of `kinds` in `btf`'s own types closest to
/// `name` (nearest first, then by name), at most [`max_distance`] edits
/// away, and returns how many it found. The name itself is not suggested.
pub fn nearest<'a>(btf: &Btf<'a>, name: &[u8], kinds: &[Kind], out: &mut [Option<Near<'a>>]) -> Result<usize> {
    for o in out.iter_mut() {
        *o = None;
    }
    if out.is_empty() || name.is_empty() || name.len() > MAX_LEN {
        return Ok(0);
    }
    let limit = max_distance(name);
    let mut found = 0usize;
    for ty in btf.own_types() {
        let ty = ty?;
        if !kinds.contains(&ty.kind()) {
            continue;
        }
        let candidate = btf.name(&ty)?;
        if candidate == name || candidate.is_empty() || candidate.len().abs_diff(name.len()) > usize::from(limit) {
            continue;
        }
        let Some(distance) = distance_within(name, candidate, limit) else {
            continue;
        };
        let near = Near {
            name: candidate,
            id: ty.id(),
            kind: ty.kind(),
            distance,
        };
        // Insert in order, dropping the farthest when full.
        let at = out[..found]
            .iter()
            .position(|o| o.is_some_and(|o| (near.distance, near.name) < (o.distance, o.name)))
            .unwrap_or(found);
        if at >= out.len() {
            continue;
        }
        let end = found.min(out.len() - 1);
        out.copy_within(at..end, at + 1);
        out[at] = Some(near);
        found = (found + 1).min(out.len());
    }
    Ok(found)
}

/// Levenshtein distance of `a` and `b` if it is at most `limit`.
fn distance_within(a: &[u8], b: &[u8], limit: u8) -> Option<u8> {
    if b.len() > MAX_LEN {
        return None;
    }
    let mut prev = [0u8; MAX_LEN + 1];
    let mut cur = [0u8; MAX_LEN + 1];
    for (j, p) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *p = j as u8;
    }
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = (i + 1) as u8;
        let mut row_min = cur[0];
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + u8::from(ca != cb);
            let v = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
            cur[j + 1] = v;
            row_min = row_min.min(v);
        }
        if row_min > limit {
            return None;
        }
        core::mem::swap(&mut prev, &mut cur);
    }
    let d = prev[b.len()];
    (d <= limit).then_some(d)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn distances_are_levenshtein_and_bounded() {
        assert_eq!(distance_within(b"bpf_iter_num_new", b"bpf_iter_num_new", 2), Some(0));
        assert_eq!(distance_within(b"bpf_iter_num_nwe", b"bpf_iter_num_new", 2), Some(2));
        assert_eq!(distance_within(b"vfs_reed", b"vfs_read", 1), Some(1));
        assert_eq!(distance_within(b"vfs_rd", b"vfs_read", 1), None);
        assert_eq!(distance_within(b"", b"ab", 2), Some(2));
    }

    #[test]
    fn nearest_names_come_in_order_from_real_btf() {
        let Ok(data) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            ksymrelo_test_skip::skip("no /sys/kernel/btf/vmlinux");
            return;
        };
        let btf = Btf::parse(&data).unwrap();
        let mut out = [None; 3];
        let n = nearest(&btf, b"bpf_iter_num_nxt", &[Kind::Func], &mut out).unwrap();
        assert!(n >= 1);
        assert_eq!(out[0].unwrap().name, b"bpf_iter_num_next");
        assert_eq!(out[0].unwrap().distance, 1);
        for w in out[..n].windows(2) {
            assert!(w[0].unwrap().distance <= w[1].unwrap().distance);
        }
        let n = nearest(&btf, b"zzzzzzzzzzzzzzzzzzzzzzzzzz", &[Kind::Func], &mut out).unwrap();
        assert_eq!(n, 0);
    }
}
