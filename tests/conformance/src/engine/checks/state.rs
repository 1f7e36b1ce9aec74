//! The checks for stateful plugins: `scenarios` (ordered calls on one
//! fresh instance, each with the result or error it must give) and `state`
//! (the hand-over an upgrade performs: a scenario is interrupted after each
//! of its steps, the instance's state is exported and imported into a
//! fresh instance, and the rest of the scenario must pass there).

use std::sync::Arc;

use plughost_loader::{Example, Outcome, PluginHandle, ScenarioDescriptor};

use super::{plural, Session};
use crate::engine::{
    harness::{excerpt, Answer},
    report::{Check, CheckResult},
};

impl Session<'_> {
    /// Runs `steps` (numbered from `first`) of `scenario` on `plugin`, in
    /// order; the first step that does not give its outcome ends it.
    fn run_steps(
        &mut self,
        plugin: &Arc<PluginHandle>,
        scenario: &str,
        steps: &[(String, Example)],
        first: usize,
    ) -> Result<(), String> {
        for (i, (method, example)) in steps.iter().enumerate() {
            let n = first + i + 1;
            let label = format!("scenario `{scenario}` step {n} `{method}`");
            let args_json = example.args.to_string();
            let timed = self.call(plugin, &label, method, &args_json);
            let (fits, wanted) = match &example.expected {
                Outcome::Result(expected) => (
                    timed.answer == Answer::Value(expected.clone()),
                    excerpt(&expected.to_string(), 120),
                ),
                Outcome::Error(code) => (
                    matches!(&timed.answer, Answer::Error(e) if e.code == *code),
                    format!("an error with code {code}"),
                ),
            };
            if !fits {
                return Err(format!(
                    "{label} {args_json}: {}, expected {wanted}",
                    timed.answer.describe()
                ));
            }
        }
        Ok(())
    }

    /// `scenarios`: each scenario passes on a fresh instance of its own.
    pub(super) fn check_scenarios(&mut self) -> CheckResult {
        let Some(d) = self.descriptor.clone() else {
            return CheckResult::skip(Check::Scenarios, "the plugin did not load");
        };
        if d.scenarios.is_empty() {
            return CheckResult::skip(
                Check::Scenarios,
                "no scenario declared (`Plugin::scenario`)",
            );
        }
        let mut failures = Vec::new();
        let mut steps = 0;
        for scenario in &d.scenarios {
            steps += scenario.steps.len();
            let Some(plugin) = self.fresh(&format!(
                "a fresh instance for scenario `{}`",
                scenario.name
            )) else {
                failures.push(format!(
                    "scenario `{}`: no fresh instance could be created",
                    scenario.name
                ));
                continue;
            };
            if let Err(e) = self.run_steps(&plugin, &scenario.name, &scenario.steps, 0) {
                failures.push(e);
            }
        }
        let n = d.scenarios.len();
        if failures.is_empty() {
            CheckResult::pass(
                Check::Scenarios,
                format!(
                    "{n} scenario{} ({steps} steps) gave their outcomes in order",
                    plural(n)
                ),
            )
        } else {
            CheckResult::fail(
                Check::Scenarios,
                format!(
                    "{} of {n} scenarios did not give their outcomes",
                    failures.len()
                ),
            )
            .with_details(failures)
        }
    }

    /// `state`: for a plugin that keeps state, every scenario still passes
    /// when its instance is replaced after any of its steps, as an upgrade
    /// replaces it.
    pub(super) fn check_state(&mut self) -> CheckResult {
        let Some(d) = self.descriptor.clone() else {
            return CheckResult::skip(Check::State, "the plugin did not load");
        };
        if !d.keeps_state {
            return CheckResult::skip(
                Check::State,
                "the plugin keeps no state across upgrades (no `Plugin::state_json`)",
            );
        }
        let mut failures = Vec::new();
        let mut handovers = 0;
        if d.scenarios.is_empty() {
            // Without scenarios the kit can only see that the round trip works.
            match self.hand_over_fresh() {
                Ok(_) => handovers += 1,
                Err(e) => failures.push(e),
            }
        }
        for scenario in &d.scenarios {
            for split in 1..scenario.steps.len() {
                handovers += 1;
                if let Err(e) = self.interrupted(scenario, split) {
                    failures.push(e);
                    break; // one finding per scenario is enough
                }
            }
        }
        if failures.is_empty() {
            CheckResult::pass(
                Check::State,
                format!(
                    "{handovers} hand-over{}: exported, imported into a fresh instance, and the scenarios went on passing there",
                    plural(handovers)
                ),
            )
        } else {
            CheckResult::fail(
                Check::State,
                format!(
                    "state did not survive a hand-over: {}",
                    excerpt(&failures[0], 300)
                ),
            )
            .with_details(failures)
        }
    }

    /// Runs `scenario` up to `split` on one instance, hands its state to a
    /// fresh one, and runs the rest there.
    fn interrupted(&mut self, scenario: &ScenarioDescriptor, split: usize) -> Result<(), String> {
        let name = &scenario.name;
        let old = self
            .fresh(&format!("a fresh instance for scenario `{name}`"))
            .ok_or_else(|| format!("scenario `{name}`: no fresh instance could be created"))?;
        self.run_steps(&old, name, &scenario.steps[..split], 0)
            .map_err(|e| format!("before the hand-over: {e}"))?;
        let new = self.hand_over(&old, &format!("scenario `{name}` after step {split}"))?;
        self.run_steps(&new, name, &scenario.steps[split..], split)
            .map_err(|e| format!("after a hand-over following step {split}: {e} (the importing instance did not take over the state the steps before built)"))
    }

    /// The round trip between two fresh instances.
    fn hand_over_fresh(&mut self) -> Result<Arc<PluginHandle>, String> {
        let old = self
            .fresh("a fresh instance for the state round trip")
            .ok_or("no fresh instance could be created")?;
        self.hand_over(&old, "the state round trip")
    }

    /// Exports `old`'s state and imports it into a fresh instance.
    fn hand_over(
        &mut self,
        old: &Arc<PluginHandle>,
        what: &str,
    ) -> Result<Arc<PluginHandle>, String> {
        let exported = self
            .quiet
            .watch(&format!("state export ({what})"), || old.export_state());
        let snapshot = match exported {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => {
                return Err(format!(
                    "{what}: the plugin says it keeps state but exported none"
                ))
            }
            Err(e) => {
                return Err(format!(
                    "{what}: export failed with {} {}",
                    e.code,
                    excerpt(&e.message, 200)
                ))
            }
        };
        let new = self
            .fresh(&format!("a fresh instance importing state ({what})"))
            .ok_or_else(|| format!("{what}: no fresh instance could be created"))?;
        self.quiet
            .watch(&format!("state import ({what})"), || {
                new.import_state(snapshot.clone())
            })
            .map_err(|e| {
                format!(
                    "{what}: a fresh instance refused the state it exported itself: {} {}",
                    e.code,
                    excerpt(&e.message, 200)
                )
            })?;
        Ok(new)
    }
}
