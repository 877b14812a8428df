//! Obtaining the tansu binary: where a user installed it, else built once per machine into a
//! cache outside the clone, so `cargo test --workspace` needs no step run by hand.
//!
//! The cache is keyed by version: `${XDG_CACHE_HOME:-~/.cache}/livecheck/tansu-0.6.0/bin/tansu`.
//! Several test threads and test binaries may ask at once: an OS file lock
//! (`livecheck/tansu-0.6.0.lock`, [`std::fs::File::lock`]) lets one of them build while the others
//! wait, and the build goes to `tansu-0.6.0.partial` which is renamed into place only once
//! complete, so nobody ever runs a half-written binary. The lock dies with its holder (even on
//! SIGKILL), so no stale lock can block a later run.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The tansu version the harness runs and builds.
pub const TANSU_VERSION: &str = "0.6.0";

/// Environment variable naming an external broker to use instead of starting tansu.
pub const BROKERS_ENV: &str = "LIVECHECK_TEST_BROKERS";

/// Environment variable giving the path of the tansu binary.
pub const TANSU_ENV: &str = "TANSU";

/// The command that installs the tansu binary the harness needs (the harness runs it itself, with
/// `--root` in its cache, when it finds no tansu).
pub const INSTALL_COMMAND: &str =
    "cargo install tansu --version 0.6.0 --locked --no-default-features --features dynostore,libsql";

/// How long a process waits for another one's build before it gives up.
const LOCK_WAIT_LIMIT: Duration = Duration::from_secs(60 * 60);
/// How often a waiting process says it still waits.
const WAIT_NOTICE_EVERY: Duration = Duration::from_secs(60);

/// The tansu binary: `$TANSU`, else one installed by the user, else the cached build, else a new
/// build into the cache. The error says what was tried and how to install tansu by hand.
pub(super) fn locate() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(TANSU_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{TANSU_ENV}={} is not a file; unset it to let the tests find or build tansu",
                path.display()
            ))
        };
    }
    let cache = cache_dir();
    if let Some(found) = user_installed()
        .into_iter()
        .chain(cache.as_deref().map(|c| binary_in(&tansu_root(c))))
        .find(|p| p.is_file())
    {
        return Ok(found);
    }
    let Some(cache) = cache else {
        return Err(format!(
            "the tansu broker binary was not found (looked at ${TANSU_ENV}, PATH, $CARGO_HOME/bin \
             and ~/.cargo/bin) and there is no cache directory to build it in (neither \
             XDG_CACHE_HOME nor HOME is set). Install it with:\n    {INSTALL_COMMAND}\n\
             or set {TANSU_ENV} to its path, or {BROKERS_ENV} to an external broker"
        ));
    };
    let cargo = std::env::var_os("CARGO")
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| OsString::from("cargo"));
    install(&cache, Path::new(&cargo))
}

/// Where a build started now, ahead of the tests, would go — the cache directory — or `None`
/// where none is needed: `$TANSU` or an external broker is set, tansu is installed or cached, or
/// another process holds the build lock (it is building). The package's build script asks, and
/// starts [`locate`] in the background when this says so.
#[allow(dead_code)] // the build script's (tests/build.rs includes this file)
pub(super) fn build_ahead() -> Option<PathBuf> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set(TANSU_ENV) || set(BROKERS_ENV) {
        return None;
    }
    let cache = cache_dir()?;
    if user_installed()
        .into_iter()
        .chain([binary_in(&tansu_root(&cache))])
        .any(|p| p.is_file())
    {
        return None;
    }
    fs::create_dir_all(&cache).ok()?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(&cache))
        .ok()?;
    // Taken and let go at once: only a test of whether someone builds now.
    lock.try_lock().ok()?;
    Some(cache)
}

/// The build log of a build started ahead of the tests.
#[allow(dead_code)] // the build script's
pub(super) fn ahead_log(cache: &Path) -> PathBuf {
    cache.join(format!("tansu-{TANSU_VERSION}.build.log"))
}

fn lock_path(cache: &Path) -> PathBuf {
    cache.join(format!("tansu-{TANSU_VERSION}.lock"))
}

/// `tansu` on `PATH`, `$CARGO_HOME/bin/tansu`, `~/.cargo/bin/tansu`, in that order.
fn user_installed() -> Vec<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("tansu"));
    let cargo_home = std::env::var_os("CARGO_HOME").map(|h| PathBuf::from(h).join("bin/tansu"));
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/tansu"));
    on_path.chain(cargo_home).chain(home).collect()
}

/// `${XDG_CACHE_HOME:-$HOME/.cache}/livecheck` (an XDG_CACHE_HOME that is not absolute is ignored,
/// as the XDG spec says).
fn cache_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".cache"))
    })?;
    Some(base.join("livecheck"))
}

/// `CACHE/tansu-VERSION`: the `--root` of the cached install.
fn tansu_root(cache: &Path) -> PathBuf {
    cache.join(format!("tansu-{TANSU_VERSION}"))
}

fn binary_in(root: &Path) -> PathBuf {
    root.join("bin").join("tansu")
}

/// Says something on the real stderr: test harnesses capture `eprintln!`, and a first cold run
/// must not look hung.
fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "livecheck tests: {message}");
}

/// Builds tansu into `cache` with `cargo install ... --root`, unless it is there or another
/// process builds it meanwhile; returns the binary.
pub(super) fn install(cache: &Path, cargo: &Path) -> Result<PathBuf, String> {
    let root = tansu_root(cache);
    let binary = binary_in(&root);
    if binary.is_file() {
        return Ok(binary);
    }
    fs::create_dir_all(cache).map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    let lock_path = lock_path(cache);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    wait_for_lock(&lock, &lock_path, &root)?;
    // Whoever held the lock may have built it.
    if binary.is_file() {
        return Ok(binary);
    }
    let staging = cache.join(format!("tansu-{TANSU_VERSION}.partial"));
    remove_if_present(&staging)?;
    say(&format!(
        "the tansu {TANSU_VERSION} broker the integration tests need was not found; building it \
         once for this machine into {} (10 to 30 minutes on 2 cores; cargo's progress follows). \
         To use another copy set {TANSU_ENV}; to use a running broker set {BROKERS_ENV}.",
        root.display()
    ));
    let started = Instant::now();
    let status = Command::new(cargo)
        .args(["install", "tansu", "--version", TANSU_VERSION, "--locked"])
        .args(["--no-default-features", "--features", "dynostore,libsql"])
        .arg("--root")
        .arg(&staging)
        // Not in a clone (whose config could apply), and with cargo's own temp target dir, which
        // it deletes after a successful install (a shared one would be locked by the outer build).
        .current_dir(cache)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .stdin(Stdio::null())
        .status();
    let built = binary_in(&staging);
    let failure = match status {
        Ok(status) if status.success() && built.is_file() => None,
        Ok(status) if status.success() => Some(format!("it left no {}", built.display())),
        Ok(status) => Some(format!("it exited with {status}")),
        Err(e) => Some(format!("{} could not run: {e}", cargo.display())),
    };
    if let Some(why) = failure {
        let _ = fs::remove_dir_all(&staging);
        return Err(format!(
            "building tansu failed: {why}. Build it by hand with\n    {INSTALL_COMMAND} --root {}\n\
             or set {TANSU_ENV} to a tansu binary, or {BROKERS_ENV} to an external broker",
            root.display()
        ));
    }
    // A leftover without a binary (e.g. removed by hand) must not block the rename.
    remove_if_present(&root)?;
    fs::rename(&staging, &root).map_err(|e| {
        format!(
            "cannot move {} to {}: {e}",
            staging.display(),
            root.display()
        )
    })?;
    say(&format!(
        "tansu {TANSU_VERSION} built in {:.0?}: {}",
        started.elapsed(),
        binary.display()
    ));
    Ok(binary)
}

/// Takes the lock, saying once (and then every minute) that another process holds it.
fn wait_for_lock(lock: &File, lock_path: &Path, root: &Path) -> Result<(), String> {
    let started = Instant::now();
    let mut next_notice = Duration::ZERO;
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", lock_path.display()))
            }
        }
        let waited = started.elapsed();
        if waited >= LOCK_WAIT_LIMIT {
            return Err(format!(
                "another process has been building tansu into {} for {waited:.0?} (it holds {}); \
                 giving up",
                root.display(),
                lock_path.display()
            ));
        }
        if waited >= next_notice {
            if next_notice.is_zero() {
                say(&format!(
                    "another process is building tansu into {}; waiting for it",
                    root.display()
                ));
            } else {
                say(&format!(
                    "still waiting for the tansu build into {} ({} min so far)",
                    root.display(),
                    waited.as_secs() / 60
                ));
            }
            next_notice += WAIT_NOTICE_EVERY;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn remove_if_present(dir: &Path) -> Result<(), String> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", dir.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A stand-in for cargo that counts its runs in `calls` beside it, waits a little (so that
    /// concurrent callers overlap), then "installs" a tansu into `--root` or exits with `exit`.
    fn fake_cargo(dir: &Path, exit: u8) -> PathBuf {
        let script = dir.join("fake-cargo");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\n\
                 echo \"$*\" >> \"$(dirname \"$0\")/calls\"\n\
                 sleep 1\n\
                 [ {exit} -eq 0 ] || exit {exit}\n\
                 while [ $# -gt 0 ]; do [ \"$1\" = --root ] && root=\"$2\"; shift; done\n\
                 mkdir -p \"$root/bin\" && printf '#!/bin/sh\\n' > \"$root/bin/tansu\"\n"
            ),
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    fn calls(dir: &Path) -> Vec<String> {
        fs::read_to_string(dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn builds_once_when_several_ask_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let cargo = fake_cargo(dir.path(), 0);
        let cache = dir.path().join("cache/livecheck");
        let found: Vec<_> = std::thread::scope(|s| {
            let askers: Vec<_> = (0..4)
                .map(|_| s.spawn(|| install(&cache, &cargo)))
                .collect();
            askers.into_iter().map(|a| a.join().unwrap()).collect()
        });
        let expected = cache.join("tansu-0.6.0/bin/tansu");
        for path in found {
            assert_eq!(path.unwrap(), expected);
        }
        let runs = calls(dir.path());
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert!(
            runs[0].starts_with(
                "install tansu --version 0.6.0 --locked --no-default-features --features \
                 dynostore,libsql --root "
            ),
            "{}",
            runs[0]
        );
        assert!(expected.is_file());
        assert!(!cache.join("tansu-0.6.0.partial").exists());
        // Cached: no second build.
        assert_eq!(install(&cache, &cargo).unwrap(), expected);
        assert_eq!(calls(dir.path()).len(), 1);
    }

    #[test]
    fn a_failed_build_leaves_nothing_and_says_how_to_build_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        let cargo = fake_cargo(dir.path(), 3);
        let cache = dir.path().join("livecheck");
        let error = install(&cache, &cargo).unwrap_err();
        assert!(error.contains(INSTALL_COMMAND), "{error}");
        assert!(error.contains("exit status: 3"), "{error}");
        assert!(!cache.join("tansu-0.6.0.partial").exists());
        assert!(!cache.join("tansu-0.6.0").exists());
        // The next run tries again.
        let _ = install(&cache, &cargo);
        assert_eq!(calls(dir.path()).len(), 2);
    }
}
