//! livecheck's assertion macros: `assert!`, `assert_eq!`, `assert_ne!` and their `debug_`
//! forms, which behave as std's but panic with an [`AssertionFailed`](crate::AssertionFailed)
//! payload, so a failed assertion is reported FAIL and any other panic ERROR, by kind, never by
//! the text of the message.
//!
//! `#[livecheck::case]` rewrites the std macros in a case's body to these; call them by path
//! (`livecheck::assert_eq!`) in helpers the body calls.
//!
//! They are defined in a module of their own: a `macro_rules!` is in scope, by its bare name,
//! in the rest of the module that defines it, and the runtime's own code keeps std's.

/// Asserts that a boolean expression is `true`, as [`std::assert!`] does; a failure is a FAIL
/// report, not an ERROR.
///
/// ```should_panic
/// livecheck::assert!(1 + 1 == 3, "arithmetic broke: {}", 1 + 1);
/// ```
#[macro_export]
macro_rules! assert {
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
/// livecheck::assert_eq!(1 + 1, 3);
/// ```
#[macro_export]
macro_rules! assert_eq {
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
/// livecheck::assert_ne!(2, 2, "must differ");
/// ```
#[macro_export]
macro_rules! assert_ne {
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

/// [`assert!`](crate::assert!) in builds with debug assertions, nothing otherwise, as
/// [`std::debug_assert!`].
#[macro_export]
macro_rules! debug_assert {
    ($($arg:tt)*) => {
        if ::core::cfg!(debug_assertions) {
            $crate::assert!($($arg)*);
        }
    };
}

/// [`assert_eq!`](crate::assert_eq!) in builds with debug assertions, nothing otherwise, as
/// [`std::debug_assert_eq!`].
#[macro_export]
macro_rules! debug_assert_eq {
    ($($arg:tt)*) => {
        if ::core::cfg!(debug_assertions) {
            $crate::assert_eq!($($arg)*);
        }
    };
}

/// [`assert_ne!`](crate::assert_ne!) in builds with debug assertions, nothing otherwise, as
/// [`std::debug_assert_ne!`].
#[macro_export]
macro_rules! debug_assert_ne {
    ($($arg:tt)*) => {
        if ::core::cfg!(debug_assertions) {
            $crate::assert_ne!($($arg)*);
        }
    };
}
