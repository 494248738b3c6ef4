//! The in-kernel resolver's table: any list of names (split at newlines)
//! gives a table or an error, never a panic; every answer read back from
//! any bytes the "kernel" left decodes or errors; the BTF name renderer and
//! the near-name search hold on the same input parsed as BTF.
#![no_main]

use ksymrelo_core::btf::{near, Btf, FixedText, Kind};
use ksymrelo_core::insn::Insn;
use ksymrelo_core::lookup::{self, Query};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (names, rest) = data.split_at(data.len() / 2);
    let queries: Vec<Query<'_>> = names
        .split(|&b| b == b'\n')
        .take(512)
        .enumerate()
        .map(|(i, n)| match i % 3 {
            0 => Query::Address(n),
            1 => Query::Btf(n, Kind::Func),
            _ => Query::Btf(n, Kind::Var),
        })
        .collect();
    if let Ok(table) = lookup::plan(&queries) {
        let mut program = [Insn::default(); lookup::PROGRAM_LEN];
        let mut value = vec![0u8; table.value_size as usize];
        lookup::emit(&queries, &mut program, &mut value).expect("a planned table fits");
        // What the kernel might leave behind.
        for (v, r) in value.iter_mut().zip(rest.iter().cycle()) {
            *v ^= *r;
        }
        for i in 0..=queries.len() {
            let _ = lookup::answer(&queries, &value, i);
        }
    }
    if let Ok(btf) = Btf::parse(rest) {
        let mut out = [None; 3];
        let _ = near::nearest(&btf, names, &[Kind::Func, Kind::Var], &mut out);
        for id in 0..btf.own_type_count().min(64) {
            let mut text = FixedText::<256>::new();
            let _ = ksymrelo_core::btf::write_c_type(&btf, id + 1, &mut text);
        }
    }
});
