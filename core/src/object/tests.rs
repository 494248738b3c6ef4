//! Unit tests of the object view; fixture-based tests live in `tests/`.

use super::*;

#[test]
fn essential_names_follow_libbpf() {
    assert_eq!(essential_name("bpf_iter_num_next___v2"), "bpf_iter_num_next");
    assert_eq!(essential_name("a___b"), "a");
    assert_eq!(essential_name("foo"), "foo");
    assert_eq!(essential_name("foo___"), "foo___", "empty flavor");
    assert_eq!(
        essential_name("foo____x"),
        "foo____x",
        "no X___Y split: X may not end in _ nor Y start with _"
    );
    assert_eq!(essential_name("_____x"), "_____x", "X may not end in _");
    assert_eq!(essential_name("a___b___c"), "a___b", "last separator wins");
    assert_eq!(essential_name("x___"), "x___");
    assert_eq!(essential_name(""), "");
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert!(Object::parse(b"").is_err());
    assert!(Object::parse(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]).is_err());
}
