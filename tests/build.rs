//! Starts the integration tests' broker build ahead of the tests.
//!
//! On a machine without tansu the broker harness builds it once, into a cache outside the clone
//! (`src/broker/install.rs`): about 10 minutes on 2 cores. Left to the first test that needs a
//! broker, that build only starts once the whole workspace is compiled. Started here, when this
//! package is first compiled, it runs beside the rest of the build (at a lower priority), and the
//! tests that need it wait for it on the harness's lock as before. Nothing starts where tansu is
//! found, `TANSU` or `LIVECHECK_TEST_BROKERS` is set, or a build already runs.

#[allow(dead_code, unreachable_pub)]
#[path = "src/broker/install.rs"]
mod install;

use std::ffi::OsString;
use std::fs::File;
use std::process::{Command, Stdio};

/// Set in the environment of the background builder: this same program, run again to build.
const BUILDER_ENV: &str = "LIVECHECK_TESTS_BUILD_TANSU";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/broker/install.rs");
    for name in [
        "TANSU",
        "LIVECHECK_TEST_BROKERS",
        "XDG_CACHE_HOME",
        "HOME",
        "PATH",
    ] {
        println!("cargo:rerun-if-env-changed={name}");
    }
    if std::env::var_os(BUILDER_ENV).is_some() {
        match install::locate() {
            Ok(path) => println!("tansu ready: {}", path.display()),
            Err(why) => {
                eprintln!("{why}");
                std::process::exit(1);
            }
        }
        return;
    }
    let Some(cache) = install::build_ahead() else {
        return;
    };
    let log = install::ahead_log(&cache);
    let (Ok(out), Ok(exe)) = (File::create(&log), std::env::current_exe()) else {
        return;
    };
    let Ok(err) = out.try_clone() else { return };
    let spawn = |program: &OsString, args: &[OsString]| {
        Command::new(program)
            .args(args)
            .env_clear()
            .envs(builder_env())
            .env(BUILDER_ENV, "1")
            // Not in the package (a clone's cargo config must not apply to the install).
            .current_dir(&cache)
            .stdin(Stdio::null())
            // Not cargo's pipes: cargo waits for them to close before it goes on.
            .stdout(out.try_clone().ok().map_or_else(Stdio::null, Stdio::from))
            .stderr(err.try_clone().ok().map_or_else(Stdio::null, Stdio::from))
            .spawn()
    };
    let exe = exe.into_os_string();
    // At a lower priority than the compilation around it, where `nice` exists.
    let started = spawn(&"nice".into(), &["-n".into(), "10".into(), exe.clone()])
        .or_else(|_| spawn(&exe, &[]));
    if started.is_ok() {
        println!(
            "cargo:warning=building the tansu broker the integration tests need, once for this \
             machine, in the background (log: {}); tests that need it wait for it",
            log.display()
        );
    }
}

/// The environment the builder keeps: where cargo, rustup and the cache are, and how to reach
/// the registry — none of the variables cargo sets for a build script (its jobserver, target,
/// profile and flags belong to this build, not to the install).
fn builder_env() -> Vec<(OsString, OsString)> {
    const KEEP: [&str; 11] = [
        "PATH",
        "HOME",
        "USER",
        "LANG",
        "TMPDIR",
        "XDG_CACHE_HOME",
        "CARGO",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "SSL_CERT_FILE",
    ];
    const KEEP_PREFIXES: [&str; 4] = [
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRIES_",
        "CARGO_REGISTRY_",
    ];
    std::env::vars_os()
        .filter(|(key, _)| {
            key.to_str().is_some_and(|key| {
                KEEP.contains(&key)
                    || KEEP_PREFIXES.iter().any(|p| key.starts_with(p))
                    || key.to_ascii_lowercase().ends_with("_proxy")
            })
        })
        .collect()
}
