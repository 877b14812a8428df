//! livecheck's assertion macros: [`assert!`], [`assert_eq!`], [`assert_ne!`] and their
//! `debug_` forms, which behave as std's but panic with an
//! [`AssertionFailed`](crate::AssertionFailed) payload, so a failed assertion is reported FAIL
//! and any other panic ERROR, by kind, never by the text of the message.
//!
//! `#[livecheck::case]` rewrites the std macros in a case's body to these; call them by path
//! (`livecheck::assertions::assert_eq!`) in helpers the body calls, or import them
//! (`use livecheck::assertions::assert_eq;`) where a helper wants them by their bare name.
//!
//! They live here, not at the crate's root, so that `use livecheck::*` never replaces std's
//! `assert!`. (A `#[macro_export]` macro is defined at the root: each is defined there under a
//! hidden name, `__livecheck_assert` and so on, and re-exported here under std's.)

/// Asserts that a boolean expression is `true`, as [`std::assert!`] does; a failure is a FAIL
/// report, not an ERROR.
///
/// ```should_panic
/// livecheck::assertions::assert!(1 + 1 == 3, "arithmetic broke: {}", 1 + 1);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __livecheck_assert {
    ($cond:expr $(,)?) => {
        if !$cond {
            $crate::__private::assertion_failed(::std::string::String::from(::core::concat!(
                "assertion failed: ",
                ::core::stringify!($cond)
            )))
        }
    };
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            $crate::__private::assertion_failed(::std::format!($($arg)+))
        }
    };
}

/// Asserts that two expressions are equal (`PartialEq`), as [`std::assert_eq!`] does, with the
/// same message; a failure is a FAIL report, not an ERROR.
///
/// ```should_panic
/// livecheck::assertions::assert_eq!(1 + 1, 3);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __livecheck_assert_eq {
    ($left:expr, $right:expr $(,)?) => {
        match (&$left, &$right) {
            (left_val, right_val) => {
                if !(*left_val == *right_val) {
                    $crate::__private::assert_cmp_failed(
                        "==",
                        &*left_val,
                        &*right_val,
                        ::core::option::Option::None,
                    )
                }
            }
        }
    };
    ($left:expr, $right:expr, $($arg:tt)+) => {
        match (&$left, &$right) {
            (left_val, right_val) => {
                if !(*left_val == *right_val) {
                    $crate::__private::assert_cmp_failed(
                        "==",
                        &*left_val,
                        &*right_val,
                        ::core::option::Option::Some(::core::format_args!($($arg)+)),
                    )
                }
            }
        }
    };
}

/// Asserts that two expressions are not equal (`PartialEq`), as [`std::assert_ne!`] does, with
/// the same message; a failure is a FAIL report, not an ERROR.
///
/// ```should_panic
/// livecheck::assertions::assert_ne!(2, 2, "must differ");
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __livecheck_assert_ne {
    ($left:expr, $right:expr $(,)?) => {
        match (&$left, &$right) {
            (left_val, right_val) => {
                if *left_val == *right_val {
                    $crate::__private::assert_cmp_failed(
                        "!=",
                        &*left_val,
                        &*right_val,
                        ::core::option::Option::None,
                    )
                }
            }
        }
    };
    ($left:expr, $right:expr, $($arg:tt)+) => {
        match (&$left, &$right) {
            (left_val, right_val) => {
                if *left_val == *right_val {
                    $crate::__private::assert_cmp_failed(
                        "!=",
                        &*left_val,
                        &*right_val,
                        ::core::option::Option::Some(::core::format_args!($($arg)+)),
                    )
                }
            }
        }
    };
}

/// [`assert!`] in builds with debug assertions, nothing otherwise, as
/// [`std::debug_assert!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __livecheck_debug_assert {
    ($($arg:tt)*) => {
        if ::core::cfg!(debug_assertions) {
            $crate::__livecheck_assert!($($arg)*);
        }
    };
}

/// [`assert_eq!`] in builds with debug assertions, nothing otherwise, as
/// [`std::debug_assert_eq!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __livecheck_debug_assert_eq {
    ($($arg:tt)*) => {
        if ::core::cfg!(debug_assertions) {
            $crate::__livecheck_assert_eq!($($arg)*);
        }
    };
}

/// [`assert_ne!`] in builds with debug assertions, nothing otherwise, as
/// [`std::debug_assert_ne!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __livecheck_debug_assert_ne {
    ($($arg:tt)*) => {
        if ::core::cfg!(debug_assertions) {
            $crate::__livecheck_assert_ne!($($arg)*);
        }
    };
}

#[doc(inline)]
pub use crate::__livecheck_assert as assert;
#[doc(inline)]
pub use crate::__livecheck_assert_eq as assert_eq;
#[doc(inline)]
pub use crate::__livecheck_assert_ne as assert_ne;
#[doc(inline)]
pub use crate::__livecheck_debug_assert as debug_assert;
#[doc(inline)]
pub use crate::__livecheck_debug_assert_eq as debug_assert_eq;
#[doc(inline)]
pub use crate::__livecheck_debug_assert_ne as debug_assert_ne;
