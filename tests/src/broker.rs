//! A Kafka-compatible broker for integration tests: [tansu](https://tansu.io) 0.6.0, run as a child
//! process on a free `127.0.0.1` port.
//!
//! ```no_run
//! use livecheck_tests::broker::Broker;
//!
//! let broker = Broker::start();
//! let topic = Broker::unique("orders");
//! broker.create_topic(&topic, 4);
//! // ... point a client at broker.bootstrap() ...
//! ```
//!
//! # The tansu binary
//!
//! Found through the `TANSU` environment variable (a path), else `tansu` on `PATH`, else
//! `$CARGO_HOME/bin/tansu` or `~/.cargo/bin/tansu`, else in the harness's cache outside the clone,
//! `${XDG_CACHE_HOME:-~/.cache}/livecheck/tansu-0.6.0/bin/tansu`. When none exists the harness
//! builds it there itself, once per machine, with [`INSTALL_COMMAND`] `--root <cache>` (10 to 30
//! minutes on 2 cores; cargo's progress is shown on stderr). The package's build script
//! (`tests/build.rs`) starts that build ahead, in the background and at a lower priority, as
//! soon as this package is first compiled (cargo says so in a warning naming its log,
//! `tansu-0.6.0.build.log` in the cache), so the broker builds while the workspace compiles. Test threads and test processes that
//! need it at the same time wait for that one build: a file lock next to the cache
//! (`tansu-0.6.0.lock`) lets one process build, and the build goes to a staging directory that
//! is renamed into place only when complete. The lock is the operating system's (released when
//! its holder exits, even when killed), so a crashed build leaves no stale lock behind.
//!
//! # An external broker
//!
//! When `LIVECHECK_TEST_BROKERS` is set (a bootstrap list such as `host:9092`), [`Broker::start`]
//! and [`Broker::start_persistent`] start nothing and return a handle on that broker:
//! [`Broker::stop`] and [`Broker::restart`] do nothing, and topics are still created through
//! `tansu topic create`, so tests must use unique names ([`Broker::unique`]).
//!
//! # Quirks of tansu 0.6.0 handled here
//!
//! - It listens only where told (no metrics or admin port is opened unless asked for).
//! - `tansu topic create` against a closed port retries internally for about 27 s before it
//!   fails, so the harness waits for the port to accept first and bounds every CLI call.
//! - It reads a `.env` file from its current directory and its parents (dotenv), and the
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` and `SCHEMA_REGISTRY` environment variables: every tansu process
//!   runs in the harness's own temp dir, with those two variables removed.
//! - There is no topic auto-creation: create topics with [`Broker::create_topic`].

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

mod install;

pub use install::{BROKERS_ENV, INSTALL_COMMAND, TANSU_ENV, TANSU_VERSION};

/// How long [`Broker::start`] and [`Broker::restart`] wait for the port to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Broker::stop`] waits after SIGTERM before it kills the broker.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one `tansu topic ...` command may run.
const CLI_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times a `tansu topic ...` command is tried.
const CLI_ATTEMPTS: u32 = 4;
/// How many fresh ports [`Broker::start`] tries when the broker exits at once (port taken).
const PORT_ATTEMPTS: u32 = 3;
/// Lines of the broker log shown when something fails.
const LOG_TAIL_LINES: usize = 40;

/// Where a broker keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    /// `memory://tansu/`: lost when the broker stops.
    Memory,
    /// `sqlite://tansu.db` in the temp dir: survives [`Broker::stop`] and [`Broker::restart`].
    Sqlite,
}

impl Storage {
    fn url(self) -> &'static str {
        match self {
            Storage::Memory => "memory://tansu/",
            Storage::Sqlite => "sqlite://tansu.db",
        }
    }
}

/// Where the broker comes from.
#[derive(Debug)]
enum Mode {
    /// A tansu child process owned by this handle.
    Local {
        tansu: PathBuf,
        storage: Storage,
        port: u16,
        child: Option<Child>,
    },
    /// The broker named by [`BROKERS_ENV`]; never started or stopped here.
    External { bootstrap: String },
}

/// Why [`Broker::try_create_topic`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicError {
    /// The broker answered that a topic with this name already exists.
    AlreadyExists,
    /// Anything else: the broker did not answer, or answered with another error.
    Failed(String),
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::AlreadyExists => f.write_str("topic already exists"),
            TopicError::Failed(why) => write!(f, "topic command failed: {why}"),
        }
    }
}

impl std::error::Error for TopicError {}

/// A running broker for a test: a tansu child process on `127.0.0.1`, or the external broker named
/// by `LIVECHECK_TEST_BROKERS`.
///
/// Dropping the handle stops the broker (and deletes its temp dir with storage and log).
#[derive(Debug)]
pub struct Broker {
    mode: Mode,
    /// Working directory of every tansu process: the sqlite file and `broker.log` live here.
    dir: TempDir,
}

impl Broker {
    /// Starts tansu on a free `127.0.0.1` port with in-memory storage, or returns a handle on
    /// `LIVECHECK_TEST_BROKERS` when that environment variable is set (then [`Broker::stop`] and
    /// [`Broker::restart`] are no-ops, and topics are still created, with unique names).
    ///
    /// # Panics
    ///
    /// When the tansu binary cannot be found or the broker does not accept connections within
    /// 10 s; the message carries the tail of the broker's log.
    pub fn start() -> Broker {
        Broker::launch(Storage::Memory)
    }

    /// Like [`Broker::start`], with sqlite storage in a temp dir owned by the handle: topics,
    /// messages and committed offsets survive [`Broker::stop`] and [`Broker::restart`].
    ///
    /// # Panics
    ///
    /// As [`Broker::start`].
    pub fn start_persistent() -> Broker {
        Broker::launch(Storage::Sqlite)
    }

    fn launch(storage: Storage) -> Broker {
        let mut dir = tempfile::Builder::new()
            .prefix("livecheck-broker-")
            .tempdir()
            .expect("create a temp dir for the test broker");
        if let Some(bootstrap) = external_brokers() {
            return Broker {
                mode: Mode::External { bootstrap },
                dir,
            };
        }
        let tansu = find_tansu();
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let mut broker = Broker {
                mode: Mode::Local {
                    tansu: tansu.clone(),
                    storage,
                    port,
                    child: None,
                },
                dir,
            };
            match broker.spawn_and_wait() {
                Ok(()) => return broker,
                // The broker exited at once: most likely someone took the port in between.
                Err(StartError::Exited(why)) => {
                    last_failure = why;
                    dir = broker.take_dir();
                }
                Err(StartError::Timeout(why)) => panic!("{why}"),
            }
        }
        panic!("tansu did not start after {PORT_ATTEMPTS} attempts on fresh ports; last: {last_failure}")
    }

    /// The bootstrap servers for clients: `127.0.0.1:PORT`, or the value of
    /// `LIVECHECK_TEST_BROKERS`.
    pub fn bootstrap(&self) -> String {
        match &self.mode {
            Mode::Local { port, .. } => format!("127.0.0.1:{port}"),
            Mode::External { bootstrap } => bootstrap.clone(),
        }
    }

    /// The directory holding the broker's log (`broker.log`) and, for
    /// [`Broker::start_persistent`], its sqlite file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Creates a topic with `partitions` partitions, retrying while the broker does not answer.
    ///
    /// # Panics
    ///
    /// When the topic already exists or the broker keeps failing; see
    /// [`Broker::try_create_topic`] for a version that returns the error.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        if let Err(e) = self.try_create_topic(name, partitions) {
            panic!(
                "creating topic {name:?} ({partitions} partitions) on {}: {e}{}",
                self.bootstrap(),
                self.log_tail_section()
            );
        }
    }

    /// Creates a topic with `partitions` partitions (`tansu topic create`), retrying a few times
    /// while the broker does not answer.
    ///
    /// # Errors
    ///
    /// [`TopicError::AlreadyExists`] when the broker says so, [`TopicError::Failed`] when every
    /// attempt failed otherwise.
    pub fn try_create_topic(&self, name: &str, partitions: u32) -> Result<(), TopicError> {
        let partitions = partitions.to_string();
        let args = ["topic", "create", name, "--partitions", &partitions];
        let mut ambiguous = false;
        let mut last = String::new();
        for attempt in 0..CLI_ATTEMPTS {
            if attempt > 0 {
                sleep(Duration::from_millis(250 * u64::from(attempt)));
            }
            match self.run_cli(&args) {
                Ok(_) => return Ok(()),
                Err(CliError::Failed(output)) if output.contains("already exists") => {
                    // A timed-out earlier attempt may have created the topic after all.
                    return if ambiguous {
                        Ok(())
                    } else {
                        Err(TopicError::AlreadyExists)
                    };
                }
                Err(CliError::TimedOut(output)) => {
                    ambiguous = true;
                    last = output;
                }
                Err(CliError::Failed(output)) | Err(CliError::Unreachable(output)) => last = output,
            }
        }
        Err(TopicError::Failed(format!(
            "{CLI_ATTEMPTS} attempts failed; last: {last}"
        )))
    }

    /// The names of the broker's topics (`tansu topic list`).
    ///
    /// # Panics
    ///
    /// When the broker keeps failing to answer or the answer cannot be read.
    pub fn topics(&self) -> Vec<String> {
        let mut last = String::new();
        for attempt in 0..CLI_ATTEMPTS {
            if attempt > 0 {
                sleep(Duration::from_millis(250 * u64::from(attempt)));
            }
            match self.run_cli(&["topic", "list"]) {
                Ok(stdout) => return parse_topic_list(&stdout),
                Err(CliError::Failed(e) | CliError::TimedOut(e) | CliError::Unreachable(e)) => {
                    last = e
                }
            }
        }
        panic!(
            "listing topics on {}: {CLI_ATTEMPTS} attempts failed; last: {last}{}",
            self.bootstrap(),
            self.log_tail_section()
        )
    }

    /// Stops the broker: SIGTERM, then SIGKILL if it has not exited after 5 s. Does nothing when
    /// it is already stopped or external. Never panics.
    pub fn stop(&mut self) {
        let Mode::Local { child, .. } = &mut self.mode else {
            return;
        };
        let Some(mut child) = child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if matches!(term, Ok(status) if status.success())
            && wait_timeout(&mut child, STOP_TIMEOUT).is_some()
        {
            return;
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the broker again on the same port with the same storage (which keeps its data only
    /// for [`Broker::start_persistent`]), stopping it first if it runs, and waits until the port
    /// accepts connections. Does nothing for an external broker.
    ///
    /// # Panics
    ///
    /// When the broker does not accept connections within 10 s, for instance because another
    /// process took the port meanwhile.
    pub fn restart(&mut self) {
        if matches!(self.mode, Mode::External { .. }) {
            return;
        }
        self.stop();
        if let Err(StartError::Exited(why) | StartError::Timeout(why)) = self.spawn_and_wait() {
            panic!("restarting tansu: {why}");
        }
    }

    /// Whether this handle runs its own broker (false when `LIVECHECK_TEST_BROKERS` is set).
    pub fn is_local(&self) -> bool {
        matches!(self.mode, Mode::Local { .. })
    }

    /// A name unique across tests, processes and runs, for topics and group ids:
    /// `PREFIX-PID-COUNTER-MILLIS` (millis since the epoch, hex). Only use characters valid in a
    /// topic name (`[a-zA-Z0-9._-]`) in `prefix`.
    pub fn unique(prefix: &str) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        format!("{prefix}-{}-{n}-{millis:x}", std::process::id())
    }

    /// Spawns tansu (local mode only) and waits until its port accepts connections.
    fn spawn_and_wait(&mut self) -> Result<(), StartError> {
        let log_path = self.log_path();
        let Mode::Local {
            tansu,
            storage,
            port,
            child,
        } = &mut self.mode
        else {
            return Ok(());
        };
        let port = *port;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open the broker log");
        let log_err = log.try_clone().expect("clone the broker log handle");
        let url = format!("tcp://127.0.0.1:{port}");
        let spawned = tansu_command(tansu, self.dir.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", storage.url()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn();
        let spawned = match spawned {
            Ok(c) => child.insert(c),
            Err(e) => panic!("cannot run {}: {e}", tansu.display()),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = spawned.try_wait() {
                *child = None;
                return Err(StartError::Exited(format!(
                    "tansu exited with {status} before accepting connections on {addr}{}",
                    log_tail_section(&log_path)
                )));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = spawned.kill();
                let _ = spawned.wait();
                *child = None;
                return Err(StartError::Timeout(format!(
                    "tansu did not accept connections on {addr} within {START_TIMEOUT:?}{}",
                    log_tail_section(&log_path)
                )));
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Runs `tansu ARGS --broker tcp://HOST:PORT` with a time limit, once the broker's port
    /// accepts connections; returns its stdout.
    fn run_cli(&self, args: &[&str]) -> Result<String, CliError> {
        let (tansu, host_port) = match &self.mode {
            Mode::Local { tansu, port, .. } => (tansu.clone(), format!("127.0.0.1:{port}")),
            Mode::External { bootstrap } => (
                find_tansu(),
                bootstrap
                    .split(',')
                    .map(str::trim)
                    .find(|s| !s.is_empty())
                    .unwrap_or_default()
                    .to_owned(),
            ),
        };
        // `tansu topic ...` against a closed port retries for ~27 s: check the port first.
        wait_for_port(&host_port, Duration::from_secs(5)).map_err(CliError::Unreachable)?;
        let mut stdout = tempfile::tempfile_in(self.dir.path()).expect("create a temp file");
        let mut stderr = tempfile::tempfile_in(self.dir.path()).expect("create a temp file");
        let mut child = tansu_command(&tansu, self.dir.path())
            .args(args)
            .args(["--broker", &format!("tcp://{host_port}")])
            .stdin(Stdio::null())
            .stdout(stdout.try_clone().expect("clone a file handle"))
            .stderr(stderr.try_clone().expect("clone a file handle"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", tansu.display()));
        let status = wait_timeout(&mut child, CLI_TIMEOUT);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let out = read_all(&mut stdout);
        let err = read_all(&mut stderr);
        let command = format!("`tansu {} --broker tcp://{host_port}`", args.join(" "));
        match status {
            Some(s) if s.success() => Ok(out),
            Some(s) => Err(CliError::Failed(format!(
                "{command} exited with {s}: {}",
                strip_ansi(&format!("{err}{out}")).trim()
            ))),
            None => Err(CliError::TimedOut(format!(
                "{command} did not finish within {CLI_TIMEOUT:?}: {}",
                strip_ansi(&format!("{err}{out}")).trim()
            ))),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("broker.log")
    }

    /// "\n--- tail of LOG ---\n..." for a local broker, "" for an external one.
    fn log_tail_section(&self) -> String {
        if self.is_local() {
            log_tail_section(&self.log_path())
        } else {
            String::new()
        }
    }

    /// Moves the temp dir out of a handle whose broker is not running.
    fn take_dir(mut self) -> TempDir {
        self.stop();
        let placeholder = TempDir::new().expect("create a temp dir");
        std::mem::replace(&mut self.dir, placeholder)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Debug)]
enum StartError {
    /// The process exited before its port accepted connections.
    Exited(String),
    /// The port did not accept connections in time (the process was stopped).
    Timeout(String),
}

#[derive(Debug)]
enum CliError {
    /// The command exited with an error; the text has its output.
    Failed(String),
    /// The command did not finish in time and was killed.
    TimedOut(String),
    /// The broker's port did not accept connections; the command was not run.
    Unreachable(String),
}

/// `LIVECHECK_TEST_BROKERS`, when set and not blank.
fn external_brokers() -> Option<String> {
    std::env::var(BROKERS_ENV)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The tansu binary: `$TANSU`, else `tansu` on `PATH`, else `$CARGO_HOME/bin/tansu`, else
/// `~/.cargo/bin/tansu`, else the harness's cached build, else a new build into that cache (once
/// per machine; see the [module docs](self#the-tansu-binary)). Looked up once per process.
///
/// # Panics
///
/// When `$TANSU` names no file, or tansu is nowhere and cannot be built; the message says how to
/// install it by hand.
pub fn find_tansu() -> PathBuf {
    static TANSU: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match TANSU.get_or_init(install::locate) {
        Ok(path) => path.clone(),
        Err(why) => panic!("{why}"),
    }
}

/// A `tansu` command run in `dir` (it reads `.env` files from its cwd and parents), without the
/// environment variables that would make it talk to other servers.
fn tansu_command(tansu: &Path, dir: &Path) -> Command {
    let mut command = Command::new(tansu);
    command
        .current_dir(dir)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("SCHEMA_REGISTRY");
    command
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("local address of a listener")
        .port()
}

/// Polls until `host_port` accepts a TCP connection.
fn wait_for_port(host_port: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no address");
    loop {
        match host_port.to_socket_addrs() {
            Ok(addrs) => {
                for addr in addrs {
                    match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                        Ok(_) => return Ok(()),
                        Err(e) => last = format!("{addr}: {e}"),
                    }
                }
            }
            Err(e) => last = format!("{host_port}: {e}"),
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "broker {host_port} did not accept connections within {timeout:?} ({last})"
            ));
        }
        sleep(Duration::from_millis(50));
    }
}

/// Waits up to `timeout` for `child` to exit.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

fn read_all(file: &mut File) -> String {
    let mut bytes = Vec::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// "\n--- last lines of LOG ---\n...", or a note that the log cannot be read.
fn log_tail_section(path: &Path) -> String {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return format!("\n(cannot read {}: {e})", path.display()),
    };
    let text = strip_ansi(&text);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
    format!("\n--- last lines of {} ---\n{tail}", path.display())
}

/// Removes the colour escapes (`ESC [ ... m`) tansu writes even when not on a terminal.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The topic names in the JSON array `tansu topic list` prints.
fn parse_topic_list(stdout: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("cannot read `tansu topic list` output ({e}): {stdout}"));
    let mut names: Vec<String> = value
        .as_array()
        .unwrap_or_else(|| panic!("`tansu topic list` did not print an array: {stdout}"))
        .iter()
        .filter_map(|topic| topic.get("name")?.as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port_of(broker: &Broker) -> u16 {
        broker
            .bootstrap()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the bootstrap address")
    }

    fn accepts(port: u16) -> bool {
        TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(500),
        )
        .is_ok()
    }

    #[test]
    fn unique_names_differ_and_are_valid_topic_names() {
        let a = Broker::unique("t");
        let b = Broker::unique("t");
        assert_ne!(a, b);
        assert!(a.starts_with("t-"));
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
    }

    #[test]
    fn strips_colour_escapes() {
        assert_eq!(
            strip_ansi("\u{1b}[31mERROR\u{1b}[0m already exists"),
            "ERROR already exists"
        );
    }

    #[test]
    fn start_create_topic_stop() {
        let mut broker = Broker::start();
        let topic = Broker::unique("harness");
        broker.create_topic(&topic, 3);
        assert!(broker.topics().contains(&topic));
        assert_eq!(
            broker.try_create_topic(&topic, 3),
            Err(TopicError::AlreadyExists)
        );
        if !broker.is_local() {
            return;
        }
        let port = port_of(&broker);
        assert!(broker.bootstrap().starts_with("127.0.0.1:"));
        assert!(accepts(port));
        let stopping = Instant::now();
        broker.stop();
        assert!(stopping.elapsed() < STOP_TIMEOUT, "SIGTERM was not enough");
        assert!(!accepts(port), "port {port} still open after stop");
        broker.stop(); // idempotent
    }

    #[test]
    fn memory_storage_forgets_on_restart() {
        let mut broker = Broker::start();
        if !broker.is_local() {
            return;
        }
        let topic = Broker::unique("volatile");
        broker.create_topic(&topic, 1);
        let bootstrap = broker.bootstrap();
        broker.restart();
        assert_eq!(broker.bootstrap(), bootstrap);
        assert!(!broker.topics().contains(&topic));
    }

    #[test]
    fn persistent_restart_keeps_topics() {
        let mut broker = Broker::start_persistent();
        if !broker.is_local() {
            return;
        }
        let topic = Broker::unique("durable");
        broker.create_topic(&topic, 2);
        let port = port_of(&broker);
        broker.stop();
        assert!(!accepts(port));
        broker.restart();
        assert_eq!(port_of(&broker), port);
        assert!(accepts(port));
        assert!(broker.topics().contains(&topic));
        assert_eq!(
            broker.try_create_topic(&topic, 2),
            Err(TopicError::AlreadyExists)
        );
    }

    #[test]
    fn drop_stops_the_broker() {
        let broker = Broker::start();
        if !broker.is_local() {
            return;
        }
        let port = port_of(&broker);
        let dir = broker.dir().to_owned();
        drop(broker);
        assert!(!accepts(port));
        assert!(!dir.exists(), "temp dir not removed");
    }
}
