//! What `#[case]` expands to and how a binary finds its cases: the fn pointers a
//! [`CaseDescriptor`] keeps, the `inventory` registration, and [`registered_cases`]. Plumbing,
//! reached by the macros through `livecheck::__private`; no public API.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::service::case::{CaseDescriptor, FakeRequest};
use crate::service::hooks::erased::ErasedHooks;
use crate::wire::error::StartError;
use crate::wire::model::TestExecution;

/// A boxed, sendable future, as stored in [`CaseDescriptor`].
#[doc(hidden)]
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Runs one test of a case: decodes the arguments from the execution and calls the case fn.
pub(crate) type RunFn = fn(&TestExecution) -> BoxFuture<crate::Result>;

/// Sends one fake request for a case (the `fake_request = path` option).
pub(crate) type FakeRequestFn = fn(FakeRequest) -> BoxFuture<crate::Result>;

/// Reaches a case's hooks (the `hooks = Type` option).
pub(crate) type HooksFn = fn() -> &'static dyn ErasedHooks;

/// A case as `inventory` collects it.
#[doc(hidden)]
#[derive(Debug)]
pub struct CaseRegistration(pub &'static CaseDescriptor);

inventory::collect!(CaseRegistration);

/// Every case linked into this binary, sorted by name; two cases with one name are an error.
#[doc(hidden)]
pub fn registered_cases() -> Result<Vec<&'static CaseDescriptor>, StartError> {
    check_unique(inventory::iter::<CaseRegistration>.into_iter().map(|r| r.0))
}

pub(crate) fn check_unique(
    cases: impl IntoIterator<Item = &'static CaseDescriptor>,
) -> Result<Vec<&'static CaseDescriptor>, StartError> {
    let mut by_name: BTreeMap<&'static str, &'static CaseDescriptor> = BTreeMap::new();
    for case in cases {
        if let Some(first) = by_name.insert(case.name, case) {
            // Registration order is unspecified: name the two places in a stable order.
            let mut places = [
                format!("{}:{}", first.file, first.line),
                format!("{}:{}", case.file, case.line),
            ];
            places.sort();
            let [first, second] = places;
            return Err(StartError::DuplicateCase {
                name: case.name.to_owned(),
                first,
                second,
            });
        }
    }
    Ok(by_name.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::case::CaseOptions;

    fn noop(_: &TestExecution) -> BoxFuture<crate::Result> {
        Box::pin(async { Ok(()) })
    }

    static A: CaseDescriptor = CaseDescriptor {
        name: "a",
        options: CaseOptions::DEFAULT,
        params: &[],
        run: noop,
        fake_request: None,
        hooks: None,
        file: "x.rs",
        line: 1,
    };
    static A2: CaseDescriptor = CaseDescriptor { line: 9, ..A };
    static B: CaseDescriptor = CaseDescriptor { name: "b", ..A };

    #[test]
    fn sorted_and_unique() {
        let names: Vec<_> = check_unique([&B, &A])
            .unwrap()
            .iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        let err = check_unique([&A, &B, &A2]).unwrap_err().to_string();
        assert!(
            err.contains("\"a\"") && err.contains("x.rs:1") && err.contains("x.rs:9"),
            "{err}"
        );
    }
}
