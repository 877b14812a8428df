//! Compile-time behaviour of `#[livecheck::case]` and `livecheck::signal!`: what must compile
//! (`ui/pass`) and the errors, with their spans, of what must not (`ui/fail`).
//!
//! Refresh the `.stderr` snapshots with `TRYBUILD=overwrite cargo test -p livecheck-tests --test ui`
//! and read the diff: each error must point at the offending token.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
