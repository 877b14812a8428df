//! Compile-time behaviour of `#[livecheck::case]` and `livecheck::signal!`: what must compile
//! (`pass/`) and the errors, with their spans, of what must not (`fail/`).
//!
//! Refresh the `.stderr` snapshots with `TRYBUILD=overwrite cargo test -p livecheck-ui`
//! and read the diff: each error must point at the offending token.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("pass/*.rs");
    t.compile_fail("fail/*.rs");
}
