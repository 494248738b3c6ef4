//! (placeholder: being written)
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug)]
pub struct Match { pub addr: u64 }
