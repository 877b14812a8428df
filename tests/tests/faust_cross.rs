//! Faust and livecheck sharing topics, both ways, with real processes: runs
//! `tests/faust/cross.sh` (a Faust service against a livecheck worker, and a livecheck service
//! against a Faust LiveCheck worker, 100 tests each, on tansu), with this package's
//! `livecheck-faust-cross` binary.
//!
//! It needs `python3` (with `venv`; the script installs faust-streaming from PyPI into
//! `target/faust-venv` once). Without `python3` the test says so loudly and passes, unless
//! `LIVECHECK_REQUIRE_FAUST_CROSS=1` (what `.ci/faust-cross` sets): then it fails.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The script bounds itself to 300 s; this is the backstop.
const DEADLINE: Duration = Duration::from_secs(360);

#[test]
fn faust_and_livecheck_pass_each_others_tests() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let has_python = Command::new(&python)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_python {
        let required = std::env::var("LIVECHECK_REQUIRE_FAUST_CROSS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{python} is missing: the Faust cross test cannot run"
        );
        eprintln!(
            "\n!!!! SKIPPED: the Faust cross-language test needs {python} (not found). !!!!\n"
        );
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("faust/cross.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .env(
            "LIVECHECK_FAUST_CROSS_BIN",
            env!("CARGO_BIN_EXE_livecheck-faust-cross"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tests/faust/cross.sh");
    // Read as it comes, so a chatty failure cannot fill a pipe and stall the script.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the script") {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let Some(status) = status else {
        // SIGTERM first: the script's trap stops what it started, by PID.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        std::thread::sleep(Duration::from_secs(10));
        let _ = child.kill();
        let _ = child.wait();
        panic!("tests/faust/cross.sh ran longer than {DEADLINE:?}");
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    println!("{out}");
    assert!(
        status.success(),
        "tests/faust/cross.sh failed:\n{out}\n{err}"
    );
    for direction in ["(a) Faust service", "(b) livecheck service"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(direction))
            .unwrap_or_else(|| panic!("no result for {direction}:\n{out}"));
        assert!(line.contains("passed=100/100"), "{line}");
    }
}
