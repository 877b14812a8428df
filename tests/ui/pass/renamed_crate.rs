//! `crate = path` for a renamed dependency: every generated path starts with it.

extern crate livecheck as my_renamed_livecheck;

#[my_renamed_livecheck::case(crate = ::my_renamed_livecheck, name = "renamed")]
async fn renamed_case() -> my_renamed_livecheck::Result {
    Ok(())
}

#[my_renamed_livecheck::case(crate = "::my_renamed_livecheck")]
async fn renamed_by_string() {}

// `signal!` passes its `$crate` on: no option needed. (tests/renamed checks this with a real
// Cargo rename, where `::livecheck` does not resolve at all.)
my_renamed_livecheck::signal! {
    RENAMED_SIGNAL: u8 for renamed_case;
}

fn main() {
    use my_renamed_livecheck::Case;
    assert_eq!(renamed_case.descriptor().name, "renamed");
    assert!(renamed_by_string::NAME.ends_with("renamed_by_string"));
    assert_eq!(RENAMED_SIGNAL.case_name(), "renamed");
}
