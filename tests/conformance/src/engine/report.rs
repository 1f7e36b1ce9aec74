//! What a conformance run found: one [`CheckResult`] per [`Check`], in the
//! order the checks are documented, gathered in a [`Report`].
//!
//! The report is plain data (serialisable as the `--json` output) so that
//! every renderer (table, JSON, JUnit XML) and the library's assertion read
//! the same facts; nothing here runs plugin code.

use std::{fmt, path::PathBuf, time::Duration};

use serde::Serialize;

/// The checks of the kit, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The library loads through the host's loader with a compatible ABI.
    Load,
    /// Name, semver version, plugin-api version; every method named, routed,
    /// documented; names unique.
    Metadata,
    /// Every declared example call returns its expected result (or error).
    Examples,
    /// Each declared scenario's steps give their outcomes, in order, on one
    /// fresh instance.
    Scenarios,
    /// A plugin that keeps state hands it over: exported midway through
    /// each scenario and imported into a fresh instance, the scenario
    /// still passes.
    State,
    /// Wrong argument counts and types give 4xx errors, never 5xx.
    BadArguments,
    /// No call panicked unexpectedly; declared panic probes are contained.
    Panics,
    /// Calls from many threads at once give the sequential results.
    Concurrency,
    /// Examples answer within the method's latency budget.
    Latency,
    /// Tracked services start and return within the grace period after stop.
    Services,
    /// Initialisation with the sample and the empty configuration works or
    /// fails with a clear error.
    Init,
    /// Plugin code writes nothing to stdout or stderr.
    Quiet,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: [Check; 12] = [
        Check::Load,
        Check::Metadata,
        Check::Examples,
        Check::Scenarios,
        Check::State,
        Check::BadArguments,
        Check::Panics,
        Check::Concurrency,
        Check::Latency,
        Check::Services,
        Check::Init,
        Check::Quiet,
    ];

    /// Short stable identifier, used in the table, JSON and JUnit output.
    pub fn id(self) -> &'static str {
        match self {
            Check::Load => "load",
            Check::Metadata => "metadata",
            Check::Examples => "examples",
            Check::Scenarios => "scenarios",
            Check::State => "state",
            Check::BadArguments => "bad-arguments",
            Check::Panics => "panics",
            Check::Concurrency => "concurrency",
            Check::Latency => "latency",
            Check::Services => "services",
            Check::Init => "init",
            Check::Quiet => "quiet",
        }
    }

    /// What the check asserts, in a few words.
    pub fn title(self) -> &'static str {
        match self {
            Check::Load => "loads with a compatible ABI",
            Check::Metadata => "metadata is complete",
            Check::Examples => "examples return their expected results",
            Check::Scenarios => "scenarios give their outcomes in order",
            Check::State => "state survives a hand-over",
            Check::BadArguments => "bad arguments give 4xx errors",
            Check::Panics => "panics are contained",
            Check::Concurrency => "concurrent calls match sequential ones",
            Check::Latency => "examples answer within the latency budget",
            Check::Services => "tracked services start and stop when told",
            Check::Init => "init with sample and empty config",
            Check::Quiet => "prints nothing (logs through the host)",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The plugin does what the check asks.
    Pass,
    /// It does not; the details say where.
    Fail,
    /// The check could not apply (the summary says why); not a failure.
    Skip,
}

impl Outcome {
    /// `PASS`, `FAIL` or `SKIP`, as the table prints it.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// Which check.
    pub check: Check,
    /// Pass, fail or skip.
    pub outcome: Outcome,
    /// One line: what was seen, or why it was skipped.
    pub summary: String,
    /// One line per finding (each failure, each notable observation).
    pub details: Vec<String>,
    /// Time the check took.
    #[serde(rename = "duration_ms", serialize_with = "as_millis")]
    pub duration: Duration,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

impl CheckResult {
    /// A passing result.
    pub fn pass(check: Check, summary: impl Into<String>) -> Self {
        Self::new(check, Outcome::Pass, summary)
    }

    /// A failing result.
    pub fn fail(check: Check, summary: impl Into<String>) -> Self {
        Self::new(check, Outcome::Fail, summary)
    }

    /// A skipped result; `reason` says why the check did not apply.
    pub fn skip(check: Check, reason: impl Into<String>) -> Self {
        Self::new(check, Outcome::Skip, reason)
    }

    fn new(check: Check, outcome: Outcome, summary: impl Into<String>) -> Self {
        Self {
            check,
            outcome,
            summary: summary.into(),
            details: Vec::new(),
            duration: Duration::ZERO,
        }
    }

    /// Adds finding lines.
    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }
}

/// The plugin as it described itself (when it loaded).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginSummary {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// The plugin-api version it was built against.
    pub api_version: String,
}

/// Everything one conformance run found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The plugin file that was checked.
    pub file: PathBuf,
    /// Who the plugin says it is, when it loaded.
    pub plugin: Option<PluginSummary>,
    /// Log records the plugin sent through the host during the run.
    pub log_records: usize,
    /// One result per check, in [`Check::ALL`] order.
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// True when no check failed (skips are allowed).
    pub fn passed(&self) -> bool {
        self.failed().next().is_none()
    }

    /// The failed checks.
    pub fn failed(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.outcome == Outcome::Fail)
    }

    /// The result of one check.
    pub fn get(&self, check: Check) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.check == check)
    }

    /// How many checks had this outcome.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.checks.iter().filter(|c| c.outcome == outcome).count()
    }

    /// The plugin's `name version`, or the file name when it did not load.
    pub fn plugin_label(&self) -> String {
        match &self.plugin {
            Some(p) => format!("{} {}", p.name, p.version),
            None => self
                .file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| self.file.display().to_string()),
        }
    }

    /// Total time of all checks.
    pub fn duration(&self) -> Duration {
        self.checks.iter().map(|c| c.duration).sum()
    }
}

impl fmt::Display for Report {
    /// The readable table (what `plughost conformance` prints).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::render::table(self))
    }
}
