//! A case, its signals and an assertion, written against livecheck depended on as `lc`.
//!
//! This crate compiling is the test: `signal!` names the runtime through `$crate`, and
//! `#[case(crate = ::lc)]` writes every path from the given root, the body's assertions
//! included. The unit tests check that what was declared is what the runtime sees.

/// Checks a number; it must be even.
#[lc::case(crate = ::lc, name = "renamed.even", probability = 1, max_runtime = "1 minute")]
pub async fn even_number(n: u32) -> lc::Result {
    let seen = NUMBER_SEEN.wait().timeout("10 secs").await?;
    assert_eq!(seen, n);
    lc::ensure!(n.is_multiple_of(2), "{n} is odd");
    Ok(())
}

lc::signal! {
    /// The number, as the service saw it.
    pub NUMBER_SEEN: u32 for even_number;
    /// The number, doubled.
    pub NUMBER_DOUBLED: u64 for self::even_number
}

#[cfg(test)]
mod tests {
    use lc::Case;

    use super::*;

    #[test]
    fn declared_under_the_renamed_crate() {
        assert_eq!(even_number::NAME, "renamed.even");
        let descriptor = even_number.descriptor();
        assert_eq!(descriptor.params, ["n"]);
        assert_eq!(descriptor.options.probability, 1.0);
        assert_eq!(
            descriptor.options.max_runtime,
            Some(std::time::Duration::from_secs(60))
        );
        assert_eq!(NUMBER_SEEN.name(), "number_seen");
        assert_eq!(NUMBER_SEEN.case_name(), "renamed.even");
        assert_eq!(NUMBER_DOUBLED.name(), "number_doubled");
        assert_eq!(NUMBER_DOUBLED.case_name(), "renamed.even");
    }
}
