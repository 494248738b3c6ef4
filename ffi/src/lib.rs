//! C ABI of ksymrelo (being written).
