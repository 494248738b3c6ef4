//! Typed indices: numbers that mean one thing each, so that an instruction
//! index cannot be passed where an extern index is wanted.

use core::fmt;

macro_rules! index {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);

        impl $name {
            /// The index, to index a slice with.
            pub const fn get(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl From<$name> for u32 {
            fn from(i: $name) -> u32 {
                i.0
            }
        }
    };
}

index!(
    /// An ELF section header index.
    SectionIndex
);
index!(
    /// An instruction's index (8-byte slot) within its section or program.
    InsnIdx
);
index!(
    /// libbpf's index of an extern: its place in the extern table (kconfig
    /// first, then ksyms, by name), and the number a poisoned call adds.
    ExternIdx
);
index!(
    /// A BTF type id.
    BtfId
);

impl SectionIndex {
    /// `SHN_UNDEF`: no section (the sites of a program given as
    /// instructions, not read from an ELF section).
    pub const UNDEF: SectionIndex = SectionIndex(0);
}
