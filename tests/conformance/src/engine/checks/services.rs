//! The `services` check: each tracked service runs on a thread of its own
//! with the kit's service host; after [`Options::service_run`] the kit sets
//! the stop flag (waking any `wait_stop`) and waits
//! [`Options::stop_grace`] for `run` to return.
//!
//! A service that does not return in time is reported and its thread is
//! left running, detached: the kit never joins a thread that may never end
//! (a plugin's thread cannot be killed, only abandoned).
//!
//! [`Options::service_run`]: crate::engine::Options::service_run
//! [`Options::stop_grace`]: crate::engine::Options::stop_grace

use std::{
    sync::{mpsc, Arc},
    time::{Duration, Instant},
};

use super::{ms, Session};
use crate::engine::{
    harness::{excerpt, service_host, LogSink, StopSignal},
    report::{Check, CheckResult},
};
use plughost_loader::PluginHandle;

impl Session<'_> {
    /// `services`: every tracked service starts and stops when told.
    pub(super) fn check_services(&mut self) -> CheckResult {
        let (Some(plugin), Some(d)) = (self.plugin(), self.descriptor.clone()) else {
            return CheckResult::skip(Check::Services, "the plugin did not load");
        };
        if d.services.is_empty() {
            return CheckResult::skip(Check::Services, "the plugin declares no tracked services");
        }
        let (run_for, grace) = (self.options.service_run, self.options.stop_grace);
        let sink = Arc::clone(&self.sink);
        let mut stopped = Vec::new();
        let mut failures = Vec::new();
        for s in &d.services {
            let activity = format!("service `{}`", s.name);
            match self.quiet.watch(&activity, || {
                run_once(&plugin, &s.name, &sink, run_for, grace)
            }) {
                Ok(done) => stopped.push(done),
                Err(problem) => failures.push(problem),
            }
        }
        if failures.is_empty() {
            CheckResult::pass(
                Check::Services,
                format!(
                    "{} service(s) ran and returned within {} of stop",
                    stopped.len(),
                    ms(grace)
                ),
            )
            .with_details(stopped)
        } else {
            let summary = failures.join("; ");
            failures.extend(stopped);
            // One finding is the summary already.
            let details = if failures.len() > 1 {
                failures
            } else {
                Vec::new()
            };
            CheckResult::fail(Check::Services, summary).with_details(details)
        }
    }
}

/// Runs one service for `run_for`, tells it to stop and waits `grace`.
/// `Ok` describes a clean stop; `Err` says what went wrong.
fn run_once(
    plugin: &Arc<PluginHandle>,
    name: &str,
    sink: &Arc<LogSink>,
    run_for: Duration,
    grace: Duration,
) -> Result<String, String> {
    let signal = Arc::new(StopSignal::default());
    let host = service_host(&signal, sink);
    let (tx, rx) = mpsc::channel();
    let (service_plugin, service) = (Arc::clone(plugin), name.to_owned());
    std::thread::Builder::new()
        .name(format!("conformance-service-{name}"))
        .spawn(move || {
            let _ = tx.send(service_plugin.run_service(&service, host));
        })
        .map_err(|e| format!("`{name}`: the kit could not start a thread: {e}"))?;

    match rx.recv_timeout(run_for) {
        Ok(Ok(())) => {
            return Err(format!(
                "`{name}` returned before it was told to stop (a tracked service runs until `wait_stop`/`should_stop` says stop)"
            ))
        }
        Ok(Err(e)) => return Err(format!("`{name}` failed to start: {} {}", e.code, excerpt(&e.message, 200))),
        Err(mpsc::RecvTimeoutError::Disconnected) => return Err(format!("`{name}`: its thread ended without an answer")),
        Err(mpsc::RecvTimeoutError::Timeout) => {}
    }

    let stop_sent = Instant::now();
    signal.request_stop();
    match rx.recv_timeout(grace) {
        Ok(Ok(())) => Ok(format!(
            "`{name}` returned {} after being told to stop",
            ms(stop_sent.elapsed())
        )),
        Ok(Err(e)) => Err(format!(
            "`{name}` returned an error when told to stop: {} {}",
            e.code,
            excerpt(&e.message, 200)
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(format!("`{name}`: its thread ended without an answer"))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let never_polled = if signal.was_polled() {
                ""
            } else {
                "; it never checked the stop signal"
            };
            Err(format!(
                "`{name}` did not return within {} of being told to stop{never_polled} (its thread was left running)",
                ms(grace)
            ))
        }
    }
}
