//! The expansions name everything by absolute path: a module that shadows the prelude, the
//! primitive types and even `core`, `std` and `livecheck` still compiles.
#![allow(dead_code, non_camel_case_types)]

mod shadowed {
    struct Result;
    struct Option;
    struct Some;
    struct None;
    struct Ok;
    struct Err;
    struct Box;
    struct Vec;
    struct String;
    struct Into;
    struct Send;
    struct Future;
    struct Debug;
    struct Clone;
    struct Copy;
    struct str;
    struct usize;
    struct u32;
    struct f64;
    struct bool;
    mod core {}
    mod std {}
    mod livecheck {}
    mod inventory {}
    mod serde {}

    /// A case returning `()`, in a module where little means what it usually does.
    #[::livecheck::case(probability = 1, frequency = 5, fake_request = fake)]
    pub async fn shadowed_case(count: u64, label: ::std::string::String) {
        assert!(count < u64::MAX, "{}", label);
        assert_eq!(count, count);
        assert_ne!(count, count + 1, "{}", label);
        let _ = (count, label);
    }

    #[derive(::core::default::Default)]
    pub struct Hooks;

    impl ::livecheck::CaseHooks for Hooks {}

    #[::livecheck::case(hooks = Hooks, max_runtime = "1m")]
    pub async fn hooked_case() -> ::livecheck::Result {
        ::livecheck::skip!("{}", 1)
    }

    async fn fake(_request: ::livecheck::FakeRequest) {}

    ::livecheck::signal! {
        pub(crate) SHADOWED: u64 for shadowed_case;
    }

    pub async fn trigger() {
        let _ = shadowed_case
            .trigger("t", 1, ::std::string::String::new())
            .await;
        let _ = shadowed_case
            .maybe_trigger("t", 1, ::std::string::String::new())
            .await;
        let _ = shadowed_case
            .maybe_trigger_scope(::livecheck::AutoId, 1, ::std::string::String::new(), |_| async {})
            .await;
    }
}

fn main() {
    use livecheck::Case;
    assert!(shadowed::shadowed_case::NAME.ends_with("::shadowed::shadowed_case"));
    assert_eq!(shadowed::SHADOWED.name(), "shadowed");
}
