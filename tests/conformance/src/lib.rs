//! # plughost-conformance
//!
//! The plughost plugin conformance kit, for a plugin author's own
//! `cargo test`: one call loads the plugin's built library through the
//! host's real loader, runs every check, and fails the test with a readable
//! report when a check fails.
//!
//! ```no_run
//! // tests/conformance.rs of a plugin crate (what `plughost new` generates)
//! #[test]
//! fn the_plugin_passes_the_conformance_kit() {
//!     let library = plughost_conformance::built_plugin(env!("CARGO_PKG_NAME"));
//!     plughost_conformance::assert_conformant(&library);
//! }
//! ```
//!
//! With options, through the [`Conformance`] builder:
//!
//! ```no_run
//! use std::time::Duration;
//! use plughost_conformance::{Check, Conformance, Outcome};
//! use serde_json::json;
//!
//! let report = Conformance::new(plughost_conformance::built_plugin("my-plugin"))
//!     .config(json!({ "url": "redis://127.0.0.1" }))   // what the manifest would pass
//!     .latency_budget(Duration::from_millis(200))      // for methods that declare none
//!     .panic_probe("explode", vec![json!("on purpose")])
//!     .assert();                                        // panics with the table on failure
//! assert_eq!(report.get(Check::Services).map(|c| c.outcome), Some(Outcome::Pass));
//! ```
//!
//! The checks (see [`Check`]): `load`, `metadata`, `examples`,
//! `bad-arguments`, `panics`, `concurrency`, `latency`, `services`, `init`,
//! `quiet`. Each passes, fails, or is skipped with a reason (a plugin
//! without tracked services skips `services`); only failures fail.
//!
//! ## What this crate is made of
//!
//! The engine ([`engine`]: checks, report, renderers) and the test API
//! (the assertion, the builder, and [`built_plugin`] to find the library
//! `cargo test` just built) live here together; `plughost conformance` in
//! the CLI is a second face of the same engine. The crate depends on the
//! loader (`plughost-loader`) and the ABI (`plughost-plugin-api`) only: a
//! plugin's `cargo test` compiles no broker, ZeroMQ or CLI code.
//!
//! ## What to know when using it from tests
//!
//! - The `quiet` check watches the whole process's stdout and stderr (file
//!   descriptors 1 and 2) while plugin code runs, and blames the plugin only
//!   when a repeat of the same call prints again. Keep the conformance test
//!   in a test file of its own (as generated) so other tests' output cannot
//!   coincide with it.
//! - The kit calls every method with wrong arguments derived from its
//!   examples. Do not point it at a configuration that reaches production
//!   systems.
//! - A plugin that aborts the process (a `panic = "abort"` build, an
//!   allocation failure) ends the test binary; `cargo test` reports that
//!   as a failure, without the kit's table.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

pub mod engine;

pub use engine::{
    read_config_file, render, Check, CheckResult, ConformanceError, Options, Outcome, PanicProbe,
    PluginSummary, Report, DEFAULT_LATENCY_BUDGET,
};
use serde_json::Value;

/// A conformance run being set up: the plugin file and the [`Options`].
#[derive(Debug, Clone)]
pub struct Conformance {
    file: PathBuf,
    options: Options,
}

impl Conformance {
    /// A run of every check, with default options, on the library at `file`.
    pub fn new(file: impl Into<PathBuf>) -> Self {
        Self {
            file: file.into(),
            options: Options::default(),
        }
    }

    /// The configuration of the instance whose methods and services are
    /// checked (as JSON; a manifest's `[plugins.config]` table). Without
    /// one, the plugin's sample config is used, else `{}`.
    pub fn config(mut self, config: Value) -> Self {
        self.options.config = Some(config);
        self
    }

    /// Reads the configuration from a TOML file (or JSON when it ends in
    /// `.json`).
    pub fn config_file(mut self, path: impl AsRef<Path>) -> Result<Self, ConformanceError> {
        self.options.config = Some(read_config_file(path.as_ref())?);
        Ok(self)
    }

    /// The latency budget of methods that declare none (default
    /// [`DEFAULT_LATENCY_BUDGET`]).
    pub fn latency_budget(mut self, budget: Duration) -> Self {
        self.options.default_latency_budget = budget;
        self
    }

    /// Threads and calls per thread of the concurrency check (default 8 x 1000).
    pub fn concurrency(mut self, threads: usize, calls_per_thread: usize) -> Self {
        self.options.threads = threads;
        self.options.calls_per_thread = calls_per_thread;
        self
    }

    /// A call that makes `method` panic on purpose: the `panics` check then
    /// asserts the panic comes back as a 500 error and the plugin keeps
    /// answering as before.
    pub fn panic_probe(mut self, method: impl Into<String>, args: Vec<Value>) -> Self {
        self.options.panic_probes.push(PanicProbe {
            method: method.into(),
            args,
        });
        self
    }

    /// Turns the stdout/stderr watch (the `quiet` check) on or off.
    pub fn capture_output(mut self, on: bool) -> Self {
        self.options.capture_output = on;
        self
    }

    /// Any other option.
    pub fn options_mut(&mut self) -> &mut Options {
        &mut self.options
    }

    /// Runs the checks and returns the report, pass or fail.
    pub fn run(&self) -> Report {
        engine::run(&self.file, &self.options)
    }

    /// Runs the checks and returns the report when no check failed.
    ///
    /// # Panics
    ///
    /// When a check failed, with the report's table as the message: this
    /// is the assertion a plugin's test makes.
    #[track_caller]
    pub fn assert(&self) -> Report {
        let report = self.run();
        if !report.passed() {
            panic!("the plugin does not pass the conformance kit:\n\n{report}");
        }
        report
    }
}

/// Runs every check on the library at `file` with default options.
///
/// # Panics
///
/// When a check failed, with the report's table as the message.
#[track_caller]
pub fn assert_conformant(file: impl AsRef<Path>) -> Report {
    Conformance::new(file.as_ref()).assert()
}

/// The plugin library `cargo` could not be found.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// The test's own executable path is unknown.
    #[error("cannot tell where the test executable is: {0}")]
    NoExecutable(String),
    /// No library of that name beside the test executable.
    #[error("no {file} in {searched}: is `{package}` a cdylib (crate-type = [\"cdylib\", \"rlib\"]) and did `cargo test` build it?")]
    NotBuilt {
        /// The package name asked for.
        package: String,
        /// The library file name looked for.
        file: String,
        /// The folders searched.
        searched: String,
    },
}

/// The platform's file name of the cdylib of `package` (`my-plugin` ->
/// `libmy_plugin.so` on Linux).
pub fn library_file_name(package: &str) -> String {
    let lib = package.replace('-', "_");
    format!(
        "{}{lib}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Finds the cdylib of `package` that `cargo test` built next to the
/// running test executable (`target/<profile>/` or its `deps/`), so a
/// plugin's integration test checks exactly the code under test.
pub fn find_built_plugin(package: &str) -> Result<PathBuf, LocateError> {
    let exe = std::env::current_exe().map_err(|e| LocateError::NoExecutable(e.to_string()))?;
    let file = library_file_name(package);
    let deps = exe
        .parent()
        .ok_or_else(|| LocateError::NoExecutable(exe.display().to_string()))?;
    let folders: Vec<&Path> = [deps.parent(), Some(deps)].into_iter().flatten().collect();
    folders
        .iter()
        .map(|dir| dir.join(&file))
        .find(|path| path.is_file())
        .ok_or_else(|| LocateError::NotBuilt {
            package: package.to_owned(),
            file,
            searched: folders
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" and "),
        })
}

/// Like [`find_built_plugin`], for tests.
///
/// # Panics
///
/// When the library is not there, saying where it looked.
#[track_caller]
pub fn built_plugin(package: &str) -> PathBuf {
    match find_built_plugin(package) {
        Ok(path) => path,
        Err(e) => panic!("{e}"),
    }
}
