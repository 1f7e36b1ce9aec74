//! The plugin conformance kit: checks that a plugin library behaves before
//! an operator loads it, and says where it does not.
//!
//! [`run`] loads a plugin file through the host's real loader and runs every
//! [`Check`] against it, returning a [`Report`] (pass, fail or skip with a
//! reason, per check). [`render`] turns a report into a table, JSON or JUnit
//! XML. The checks, in report order:
//!
//! | check | passes when |
//! |---|---|
//! | `load` | the file loads with a compatible plugin-api and an instance is created |
//! | `metadata` | name, semver version, plugin-api version; every method has a name, a valid route and a doc line; every service a name and a doc line; names unique |
//! | `examples` | every declared example call fits the method's signature (arguments and expected result against their JSON Schemas) and returns its expected result |
//! | `bad-arguments` | calls with a wrong argument count or wrong argument types (derived from the examples) answer 4xx or are accepted, never 5xx, a panic or silence |
//! | `panics` | no call panicked unexpectedly; each declared panic probe comes back as a contained 500 and the plugin keeps answering |
//! | `concurrency` | 8 threads x 1000 example calls give the sequential results |
//! | `latency` | each example answers within the method's budget (its `latency_budget_ms`, else [`Options::default_latency_budget`]) |
//! | `services` | each tracked service runs until told to stop, then returns within [`Options::stop_grace`] |
//! | `init` | initialisation with the sample config and with an empty config works or fails with a clear error |
//! | `quiet` | plugin code writes nothing to stdout or stderr |
//!
//! Two faces use it: the crate's test API (the one-call assertion for a
//! plugin's `cargo test`) and `plughost conformance` in the CLI.
//!
//! How the kit plays the host: see [`harness`](self) (log records collected
//! rather than written, a service host with a stop flag and condition
//! variable, calls on their own threads with deadlines, so no plugin can hang
//! the kit) and the capture module (fds 1 and 2 watched during plugin
//! code). A method that aborts the process (a `panic = "abort"` build, an
//! allocation failure) ends the run with it; that is a failure the kit
//! cannot report, but the process exit makes it visible all the same.

mod capture;
mod checks;
mod harness;
pub mod render;
mod report;
mod schema;

use std::{path::Path, sync::Mutex, time::Duration};

use serde_json::Value;

pub use report::{Check, CheckResult, Outcome, PluginSummary, Report};

/// The latency budget of a method that declares none.
pub const DEFAULT_LATENCY_BUDGET: Duration = Duration::from_millis(1000);

/// How a conformance run is set up. `Options::default()` is what
/// `plughost conformance` uses without flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The configuration for the instance whose methods and services are
    /// checked; `None` uses the plugin's sample config (else `{}`).
    pub config: Option<Value>,
    /// Budget for methods that declare no `latency_budget_ms`.
    pub default_latency_budget: Duration,
    /// Threads of the concurrency check.
    pub threads: usize,
    /// Calls per thread of the concurrency check.
    pub calls_per_thread: usize,
    /// How long a tracked service runs before it is told to stop.
    pub service_run: Duration,
    /// How soon after being told to stop a service must return.
    pub stop_grace: Duration,
    /// How long one call may take before the kit gives up on it (the call's
    /// thread is then left running).
    pub call_timeout: Duration,
    /// Calls that make a method panic on purpose, to show containment.
    pub panic_probes: Vec<PanicProbe>,
    /// Watch fds 1 and 2 for the quiet check.
    pub capture_output: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config: None,
            default_latency_budget: DEFAULT_LATENCY_BUDGET,
            threads: 8,
            calls_per_thread: 1000,
            service_run: Duration::from_millis(200),
            stop_grace: Duration::from_secs(1),
            call_timeout: Duration::from_secs(10),
            panic_probes: Vec::new(),
            capture_output: true,
        }
    }
}

/// A call that is meant to panic: the panics check asserts it comes back as
/// a 500 error saying the method panicked, and that the plugin still answers
/// afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct PanicProbe {
    /// The method to call.
    pub method: String,
    /// Its arguments.
    pub args: Vec<Value>,
}

/// A problem with the kit's own input (not a finding about the plugin:
/// those are in the [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    /// The configuration file could not be read or parsed.
    #[error("config file {path}: {reason}")]
    ConfigFile {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Reads a plugin configuration: JSON when the file ends in `.json`, else
/// TOML (the same table as the plugin's `[plugins.config]` in a manifest;
/// TOML needs the `toml` feature, which `plughost conformance` has).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let file = dir.path().join("echo.json");
/// std::fs::write(&file, r#"{ "tick_ms": 250 }"#)?;
/// let config = plughost_conformance::read_config_file(&file)?;
/// assert_eq!(config, serde_json::json!({ "tick_ms": 250 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_config_file(path: &Path) -> Result<Value, ConformanceError> {
    let bad = |reason: String| ConformanceError::ConfigFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")));
    }
    toml_to_json(&text).map_err(bad)
}

#[cfg(feature = "toml")]
fn toml_to_json(text: &str) -> Result<Value, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| format!("not valid TOML: {e}"))?;
    serde_json::to_value(table).map_err(|e| format!("cannot convert to JSON: {e}"))
}

#[cfg(not(feature = "toml"))]
fn toml_to_json(_text: &str) -> Result<Value, String> {
    Err("reading TOML needs plughost-conformance's `toml` feature; \
         enable it or give the config as a .json file"
        .into())
}

/// Runs every check against the plugin library at `file`.
///
/// Never fails: a plugin that does not load gives a report whose `load`
/// check failed and whose other checks were skipped.
///
/// ```no_run
/// use plughost_conformance::{engine::run, Options};
///
/// let report = run("target/release/libplugin_math.so".as_ref(), &Options::default());
/// println!("{report}");
/// assert!(report.passed());
/// ```
pub fn run(file: &Path, options: &Options) -> Report {
    // Runs in one process take turns: the quiet check watches fds that
    // belong to the whole process, and a run with capture turned off (or one
    // between its windows) must not print into another run's window. The
    // concurrency check runs inside one run, so little is lost.
    static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    checks::Session::new(file, options).run()
}
