//! One conformance run: a [`Session`] loads the plugin, runs the checks in
//! an order where later ones can use what earlier ones learned (the
//! examples' sequential answers are the baseline for the concurrency check
//! and for "still answers after a panic"), and assembles the [`Report`].
//!
//! - this file: the session, `load`, `metadata`, `init` and `quiet`;
//! - [`calls`]: `examples`, `bad-arguments`, `latency`, `concurrency`, `panics`;
//! - [`services`]: the `services` check;
//! - [`state`]: `scenarios` and `state` (stateful plugins).
//!
//! Each check after `init` runs on a fresh instance (and each example on
//! one of its own), so no check sees what an earlier one stored: examples
//! cannot depend on each other, and the bad-argument probes never write
//! into the instance the examples use.
//!
//! Every piece of plugin code the kit runs goes through
//! [`Quiet::watch`](super::capture) so that the quiet check sees it.

mod calls;
mod services;
mod state;

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use serde_json::{json, Value};

use super::{
    capture::Quiet,
    harness::{excerpt, host_api, is_panic, Answer, LogSink},
    report::{Check, CheckResult, PluginSummary, Report},
    Options,
};
use plughost_loader::{
    check_api_compatible, host_api_version, load_with_host, LoadError, PluginDescriptor,
    PluginHandle, PluginSpec,
};

/// A call whose answer the kit knows from a sequential run.
#[derive(Debug, Clone)]
struct KnownCall {
    /// For findings: "`fibo` example 1".
    label: String,
    method: String,
    args_json: String,
    answer: Answer,
}

/// The state of one conformance run.
pub(crate) struct Session<'a> {
    file: PathBuf,
    options: &'a Options,
    sink: Arc<LogSink>,
    quiet: Quiet,
    /// The instance the current check uses (a fresh one per check).
    plugin: Option<Arc<PluginHandle>>,
    /// The configuration of the instances under test.
    instance_config: Value,
    descriptor: Option<PluginDescriptor>,
    /// Why the checks after `load`/`metadata` cannot run.
    cannot_run: Option<String>,
    /// Calls made to plugin methods so far.
    calls: usize,
    /// Calls (outside panic probes) that came back as a caught panic.
    unexpected_panics: Vec<String>,
    panic_keys: HashSet<String>,
    /// Example calls and their sequential answers.
    examples: Vec<KnownCall>,
    /// Bad-argument probes and their answers.
    probes: Vec<KnownCall>,
}

type Step<'a> = fn(&mut Session<'a>) -> CheckResult;

impl<'a> Session<'a> {
    pub(crate) fn new(file: &Path, options: &'a Options) -> Self {
        Self {
            file: file.to_path_buf(),
            options,
            sink: Arc::default(),
            quiet: Quiet::new(options.capture_output),
            plugin: None,
            instance_config: json!({}),
            descriptor: None,
            cannot_run: None,
            calls: 0,
            unexpected_panics: Vec::new(),
            panic_keys: HashSet::new(),
            examples: Vec::new(),
            probes: Vec::new(),
        }
    }

    /// Runs every check and returns the report.
    pub(crate) fn run(mut self) -> Report {
        let mut results = Vec::with_capacity(Check::ALL.len());
        let started = Instant::now();
        let (load, metadata) = self.load_and_describe();
        results.push(CheckResult {
            duration: started.elapsed(),
            ..load
        });
        results.push(metadata);
        self.forward_logs();

        // Order of execution: examples first (their answers are the
        // baseline), panics after every other call (it judges them all).
        let steps: [(Check, Step<'a>); 9] = [
            (Check::Init, Session::check_init),
            (Check::Examples, Session::check_examples),
            (Check::Scenarios, Session::check_scenarios),
            (Check::State, Session::check_state),
            (Check::BadArguments, Session::check_bad_arguments),
            (Check::Latency, Session::check_latency),
            (Check::Concurrency, Session::check_concurrency),
            (Check::Services, Session::check_services),
            (Check::Panics, Session::check_panics),
        ];
        for (check, step) in steps {
            let started = Instant::now();
            let result = match &self.cannot_run {
                Some(reason) => CheckResult::skip(check, reason.clone()),
                None => {
                    if check != Check::Init {
                        self.renew(check.id());
                    }
                    step(&mut self)
                }
            };
            results.push(CheckResult {
                duration: started.elapsed(),
                ..result
            });
            self.forward_logs();
        }
        results.push(self.check_quiet());
        for r in &results {
            tracing::debug!(check = r.check.id(), outcome = ?r.outcome, summary = %r.summary, "conformance check");
        }
        results.sort_by_key(|r| Check::ALL.iter().position(|c| *c == r.check));

        Report {
            file: self.file,
            plugin: self.descriptor.map(|d| PluginSummary {
                name: d.name,
                version: d.version,
                api_version: d.api_version,
            }),
            log_records: self.sink.total(),
            checks: results,
        }
    }

    /// The `load` and `metadata` checks; on success, picks the instance the
    /// other checks use.
    fn load_and_describe(&mut self) -> (CheckResult, CheckResult) {
        let config = self.options.config.clone().unwrap_or_else(|| json!({}));
        match self.load_instance(&config, "loading the plugin") {
            Ok(first) => {
                let d = first.descriptor().clone();
                let load = CheckResult::pass(
                    Check::Load,
                    format!("plugin-api {} (host {})", d.api_version, host_api_version()),
                );
                let metadata = metadata_check(&d);
                let instance = match (&self.options.config, &d.sample_config) {
                    (None, Some(sample)) => {
                        match self.load_instance(sample, "init with the sample config") {
                            Ok(instance) => {
                                self.instance_config = sample.clone();
                                instance
                            }
                            Err(_) => first,
                        }
                    }
                    _ => {
                        self.instance_config = config;
                        first
                    }
                };
                self.plugin = Some(Arc::new(instance));
                self.descriptor = Some(d);
                (load, metadata)
            }
            Err(LoadError::Metadata { reason, .. }) => {
                self.cannot_run = Some("the host refuses this plugin's metadata".into());
                (
                    CheckResult::pass(
                        Check::Load,
                        "loaded and initialised; the host refuses its description (see metadata)",
                    ),
                    CheckResult::fail(Check::Metadata, reason),
                )
            }
            Err(err) => {
                self.cannot_run = Some("the plugin did not load".into());
                let mut details = Vec::new();
                if matches!(err, LoadError::Init { .. }) && self.options.config.is_none() {
                    details.push(
                        "if the plugin needs configuration to start, pass one (`plughost conformance --config FILE`, or `Conformance::config`)"
                            .to_owned(),
                    );
                }
                (
                    CheckResult::fail(Check::Load, err.to_string()).with_details(details),
                    CheckResult::skip(Check::Metadata, "the plugin did not load"),
                )
            }
        }
    }

    /// Creates an instance with `config`, watching its output.
    fn load_instance(&mut self, config: &Value, activity: &str) -> Result<PluginHandle, LoadError> {
        let spec = PluginSpec {
            path: self.file.clone(),
            sha256: None,
            config: config.clone(),
            allow_insecure_files: false,
        };
        let sink = Arc::clone(&self.sink);
        self.quiet
            .watch(activity, || load_with_host(&spec, host_api(&sink)))
    }

    /// A new instance with the configuration under test, or `None` when it
    /// does not load (it loaded before; the checks then use the last one).
    fn fresh(&mut self, activity: &str) -> Option<Arc<PluginHandle>> {
        let config = self.instance_config.clone();
        self.load_instance(&config, activity).ok().map(Arc::new)
    }

    /// Gives the next check a fresh instance.
    fn renew(&mut self, check: &str) {
        if let Some(fresh) = self.fresh(&format!("a fresh instance for `{check}`")) {
            self.plugin = Some(fresh);
        }
    }

    /// `init`: the sample config and an empty config each either work or
    /// fail with a clear (non-empty, non-panic) error.
    fn check_init(&mut self) -> CheckResult {
        let sample = self
            .descriptor
            .as_ref()
            .and_then(|d| d.sample_config.clone());
        let mut seen = Vec::new();
        let mut failures = Vec::new();
        match sample {
            Some(sample) => self.try_init(&sample, "sample config", &mut seen, &mut failures),
            None => seen.push("no sample config declared (`Plugin::sample_config`)".to_owned()),
        }
        self.try_init(&json!({}), "empty config", &mut seen, &mut failures);
        if failures.is_empty() {
            CheckResult::pass(Check::Init, seen.join("; "))
        } else {
            CheckResult::fail(Check::Init, failures.join("; ")).with_details(seen)
        }
    }

    fn try_init(
        &mut self,
        config: &Value,
        what: &str,
        seen: &mut Vec<String>,
        failures: &mut Vec<String>,
    ) {
        match self.load_instance(config, &format!("init with the {what}")) {
            Ok(_) => seen.push(format!("{what}: works")),
            Err(LoadError::Init { error, .. }) if is_panic(&error) => failures.push(format!(
                "{what}: initialisation panicked: {}",
                excerpt(&error.message, 200)
            )),
            Err(LoadError::Init { error, .. }) if error.message.trim().is_empty() => {
                failures.push(format!(
                    "{what}: fails with an empty error message (code {})",
                    error.code
                ))
            }
            Err(LoadError::Init { error, .. }) => seen.push(format!(
                "{what}: fails with a clear error: {}",
                excerpt(&error.to_string(), 200)
            )),
            Err(other) => failures.push(format!("{what}: {other}")),
        }
    }

    /// `quiet`: nothing written to fd 1 or 2 by plugin code, confirmed by a
    /// repeat (see the capture module).
    fn check_quiet(&self) -> CheckResult {
        if let Some(reason) = self.quiet.unavailable() {
            return CheckResult::skip(Check::Quiet, reason.to_owned());
        }
        let details: Vec<String> = self
            .quiet
            .sightings()
            .iter()
            .map(|s| s.describe())
            .collect();
        let printed = self
            .quiet
            .sightings()
            .iter()
            .filter(|s| s.confirmed)
            .count();
        if printed > 0 {
            return CheckResult::fail(
                Check::Quiet,
                format!(
                    "plugin code printed during {printed} activit{}; log through the host instead (`plughost_plugin_api::log`, `ServiceContext::log`)",
                    if printed == 1 { "y" } else { "ies" }
                ),
            )
            .with_details(details);
        }
        if self.plugin.is_none() {
            return CheckResult::skip(Check::Quiet, "the plugin did not load")
                .with_details(details);
        }
        let (windows, records) = (self.quiet.windows(), self.sink.total());
        CheckResult::pass(
            Check::Quiet,
            format!(
                "nothing printed in {windows} capture window{}; {records} log record{} went through the host",
                plural(windows),
                plural(records)
            ),
        )
        .with_details(details)
    }

    /// The instance under test (set whenever the call checks run).
    fn plugin(&self) -> Option<Arc<PluginHandle>> {
        self.plugin.clone()
    }

    fn forward_logs(&self) {
        let label = self
            .descriptor
            .as_ref()
            .map(|d| d.name.as_str())
            .unwrap_or("plugin");
        self.sink.forward(label);
    }
}

/// `metadata`: what the kit insists on beyond the host's loader. What the
/// loader refuses (names, versions, routes, duplicates, examples that are
/// not JSON) it refuses with its own reason, which this check reports as
/// it is (see `check_load`): those rules live in the loader only.
fn metadata_check(d: &PluginDescriptor) -> CheckResult {
    let mut problems = Vec::new();
    if !check_api_compatible(&d.api_version) {
        problems.push(format!(
            "reports plugin-api {} but the host speaks {}",
            d.api_version,
            host_api_version()
        ));
    }
    let mut examples = 0;
    for m in &d.methods {
        if m.doc.trim().is_empty() {
            problems.push(format!(
                "method `{}` has no doc line (add `.doc(\"...\")` to its `Method`)",
                m.name
            ));
        }
        examples += m.examples.len();
    }
    for s in &d.services {
        if s.doc.trim().is_empty() {
            problems.push(format!(
                "tracked service `{}` has no doc line (add `.doc(\"...\")` to its `Service`)",
                s.name
            ));
        }
    }
    match problems.len() {
        0 => CheckResult::pass(
            Check::Metadata,
            format!(
                "{} {}: {} method{}, {} service{}, {} example{}",
                d.name,
                d.version,
                d.methods.len(),
                plural(d.methods.len()),
                d.services.len(),
                plural(d.services.len()),
                examples,
                plural(examples)
            ),
        ),
        1 => CheckResult::fail(Check::Metadata, problems.remove(0)),
        n => CheckResult::fail(
            Check::Metadata,
            format!("{n} problems: {}", problems.join("; ")),
        )
        .with_details(problems),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A duration in milliseconds for findings: whole above 10 ms, else with
/// enough decimals to tell fast calls apart.
fn ms(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.3} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Outcome;
    use plughost_loader::{Example, MethodDescriptor, ServiceDescriptor};

    fn descriptor() -> PluginDescriptor {
        PluginDescriptor {
            name: "p".into(),
            version: "1.0.0".into(),
            api_version: host_api_version().into(),
            doc: String::new(),
            methods: vec![MethodDescriptor {
                name: "m".into(),
                route: "plughost.p.m".into(),
                doc: "does m".into(),
                params: Vec::new(),
                variadic: true,
                result_schema: json!(true),
                takes_context: false,
                examples: vec![Example {
                    args: json!([1]),
                    expected: plughost_loader::Outcome::Result(json!(2)),
                }],
                latency_budget_ms: 0,
                non_blocking: false,
            }],
            services: vec![ServiceDescriptor {
                name: "s".into(),
                doc: "runs".into(),
            }],
            sample_config: None,
            scenarios: Vec::new(),
            keeps_state: false,
        }
    }

    #[test]
    fn complete_metadata_passes() {
        let r = metadata_check(&descriptor());
        assert_eq!(r.outcome, Outcome::Pass, "{r:?}");
        assert_eq!(r.summary, "p 1.0.0: 1 method, 1 service, 1 example");
    }

    #[test]
    fn each_gap_in_metadata_is_named() {
        let mut d = descriptor();
        d.methods[0].doc = "  ".into();
        let r = metadata_check(&d);
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(
            r.summary,
            "method `m` has no doc line (add `.doc(\"...\")` to its `Method`)"
        );

        let mut d = descriptor();
        d.services[0].doc.clear();
        d.api_version = "9.0.0".into();
        let r = metadata_check(&d);
        assert_eq!(r.outcome, Outcome::Fail);
        let all = r.details.join("\n");
        for needle in ["service `s` has no doc line", "reports plugin-api 9.0.0"] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
        assert!(r.summary.starts_with("2 problems: "), "{}", r.summary);
    }
}
