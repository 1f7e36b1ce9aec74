//! The checks that call methods: `examples`, `bad-arguments`, `latency`,
//! `concurrency` and `panics`.
//!
//! Wrong-argument calls are derived from each method's first example (one
//! argument too many, one too few, each argument replaced by a value of
//! every other JSON type); a method without examples gets generic probes
//! (no arguments, an object, seven arguments). A probe may be *accepted*
//! (variadic and `Value`-typed methods take anything) or answered with a
//! 4xx error; a 5xx, a panic or no answer fails the check.
//!
//! Panics: a plugin cannot be made to panic from outside, so the `panics`
//! check judges every call the kit made (none may come back as a caught
//! panic) and runs the author's declared panic probes, which must come back
//! as 500 errors that say they panicked, after which the plugin must still
//! give the answers it gave before.

use std::{
    mem::discriminant,
    sync::{mpsc, Arc},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use super::{ms, plural, KnownCall, Session};
use crate::engine::{
    harness::{call_now, call_with_deadline, is_panic, Answer, Timed},
    report::{Check, CheckResult},
    schema,
};
use plughost_loader::{Outcome, PluginHandle};

/// Timed repeats per example for the latency check (the median counts).
const LATENCY_RUNS: usize = 3;
/// Most calls replayed to see that a plugin still answers after a panic.
const MAX_RECOVERY_CALLS: usize = 50;

/// One wrong-argument call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Probe {
    /// What is wrong with the arguments.
    pub(crate) what: String,
    /// The arguments.
    pub(crate) args: Vec<Value>,
}

/// Wrong-argument calls for a method whose first example takes `example`
/// (or generic ones when it has no example).
pub(crate) fn bad_argument_probes(example: Option<&[Value]>) -> Vec<Probe> {
    let Some(args) = example else {
        return vec![
            Probe {
                what: "no arguments".into(),
                args: vec![],
            },
            Probe {
                what: "an object argument".into(),
                args: vec![json!({ "conformance": "probe" })],
            },
            Probe {
                what: "seven arguments".into(),
                args: vec![Value::Null; 7],
            },
        ];
    };
    let mut probes = Vec::new();
    let mut extra = args.to_vec();
    extra.push(Value::Null);
    probes.push(Probe {
        what: "one argument too many".into(),
        args: extra,
    });
    if let Some((_, fewer)) = args.split_last() {
        probes.push(Probe {
            what: "one argument too few".into(),
            args: fewer.to_vec(),
        });
    }
    let samples = [
        ("null", Value::Null),
        ("a boolean", json!(true)),
        ("a number", json!(7)),
        ("a string", json!("conformance")),
        ("an array", json!([1])),
        ("an object", json!({ "conformance": "probe" })),
    ];
    for (i, arg) in args.iter().enumerate() {
        for (kind, sample) in &samples {
            if discriminant(arg) != discriminant(sample) {
                let mut wrong = args.to_vec();
                wrong[i] = sample.clone();
                probes.push(Probe {
                    what: format!("argument {} as {kind}", i + 1),
                    args: wrong,
                });
            }
        }
    }
    probes
}

/// What to do about a bad-argument probe that was not answered with a 4xx,
/// by what actually happened: the hint must match the cause.
pub(crate) fn bad_argument_hint(answer: &Answer) -> &'static str {
    match answer {
        Answer::Error(e) if is_panic(e) && e.message.contains("PoisonError") => {
            "a lock was poisoned by an earlier panic, so every later call panics: fix the first panic, and recover from poisoning with `lock().unwrap_or_else(PoisonError::into_inner)`"
        }
        Answer::Error(e) if is_panic(e) => {
            "the method panicked: check its arguments and return an error (`PluginError::bad_arguments`) instead of panicking"
        }
        Answer::TimedOut => {
            "the method never answered: a call must return, and should give up when `Context::is_cancelled`"
        }
        _ => "expected a 4xx error such as `PluginError::bad_arguments`",
    }
}

impl Session<'_> {
    /// Calls a method in a capture window with the call deadline, noting
    /// an unexpected panic.
    pub(super) fn call(
        &mut self,
        plugin: &Arc<PluginHandle>,
        activity: &str,
        method: &str,
        args_json: &str,
    ) -> Timed {
        let deadline = self.options.call_timeout;
        let timed = self.quiet.watch(activity, || {
            call_with_deadline(plugin, method, args_json, deadline)
        });
        self.calls += 1;
        if timed.answer.is_panic() {
            self.note_panic(activity, method, args_json, &timed.answer);
        }
        timed
    }

    /// Remembers a panic once per method and arguments.
    fn note_panic(&mut self, activity: &str, method: &str, args_json: &str, answer: &Answer) {
        if self.panic_keys.insert(format!("{method}\u{0}{args_json}")) {
            self.unexpected_panics
                .push(format!("{activity} {args_json}: {}", answer.describe()));
        }
    }

    /// `examples`: every declared example returns its expected result.
    pub(super) fn check_examples(&mut self) -> CheckResult {
        let (Some(plugin), Some(d)) = (self.plugin(), self.descriptor.clone()) else {
            return CheckResult::skip(Check::Examples, "the plugin did not load");
        };
        let mut failures = Vec::new();
        let mut without = Vec::new();
        for m in &d.methods {
            if m.examples.is_empty() {
                without.push(format!("`{}`", m.name));
            }
            for (i, example) in m.examples.iter().enumerate() {
                if !(example.args.is_array() || example.args.is_object()) {
                    continue; // reported by `metadata`
                }
                let label = format!("`{}` example {}", m.name, i + 1);
                let args_json = example.args.to_string();
                if let Some(misfit) = misfit(m, &example.args, &example.expected) {
                    failures.push(format!(
                        "{label} {args_json}: {misfit} (the method's published signature and its example disagree)"
                    ));
                }
                // Each example on an instance of its own: examples must not
                // depend on each other (scenarios are for sequences).
                let instance = self
                    .fresh(&format!("a fresh instance for {label}"))
                    .unwrap_or_else(|| Arc::clone(&plugin));
                let timed = self.call(&instance, &label, &m.name, &args_json);
                let (fits, wanted) = match &example.expected {
                    Outcome::Result(expected) => (
                        timed.answer == Answer::Value(expected.clone()),
                        expected.to_string(),
                    ),
                    Outcome::Error(code) => (
                        matches!(&timed.answer, Answer::Error(e) if e.code == *code),
                        format!("an error with code {code}"),
                    ),
                };
                if !fits {
                    failures.push(format!(
                        "{label} {args_json}: {}, expected {wanted}",
                        timed.answer.describe()
                    ));
                }
                self.examples.push(KnownCall {
                    label,
                    method: m.name.clone(),
                    args_json,
                    answer: timed.answer,
                });
            }
        }
        let without = match without.len() {
            0 => Vec::new(),
            _ => vec![format!(
                "without examples (not checked here): {}",
                without.join(", ")
            )],
        };
        let n = self.examples.len();
        if n == 0 {
            return CheckResult::skip(
                Check::Examples,
                "no method declares an example (`Method::example`)",
            );
        }
        if failures.is_empty() {
            CheckResult::pass(
                Check::Examples,
                format!("{n} example{} returned the expected result", plural(n)),
            )
            .with_details(without)
        } else {
            let summary = format!(
                "{} of {n} examples did not return the expected result",
                failures.len()
            );
            failures.extend(without);
            CheckResult::fail(Check::Examples, summary).with_details(failures)
        }
    }

    /// `bad-arguments`: wrong counts and types give 4xx (or are accepted).
    pub(super) fn check_bad_arguments(&mut self) -> CheckResult {
        let (Some(plugin), Some(d)) = (self.plugin(), self.descriptor.clone()) else {
            return CheckResult::skip(Check::BadArguments, "the plugin did not load");
        };
        if d.methods.is_empty() {
            return CheckResult::skip(Check::BadArguments, "the plugin declares no methods");
        }
        let (mut rejected, mut accepted, mut failures) = (0usize, Vec::new(), Vec::new());
        for m in &d.methods {
            let example = m.examples.iter().find_map(|e| e.args.as_array().cloned());
            let mut calls: Vec<(String, String)> = bad_argument_probes(example.as_deref())
                .into_iter()
                .map(|p| (p.what, Value::Array(p.args).to_string()))
                .collect();
            calls.push((
                "arguments that are neither a JSON array nor an object".into(),
                "\"not arguments\"".into(),
            ));
            calls.push(("arguments that are not valid JSON".into(), "[1,".into()));
            for (what, args_json) in calls {
                let label = format!("`{}` with {what}", m.name);
                let timed = self.call(&plugin, &label, &m.name, &args_json);
                match &timed.answer {
                    Answer::Value(_) => accepted.push(format!("{label} {args_json}")),
                    Answer::Error(e) if (400..500).contains(&e.code) => rejected += 1,
                    other => failures.push(format!(
                        "{label} {args_json}: {} ({})",
                        other.describe(),
                        bad_argument_hint(other)
                    )),
                }
                if timed.answer != Answer::TimedOut {
                    self.probes.push(KnownCall {
                        label,
                        method: m.name.clone(),
                        args_json,
                        answer: timed.answer,
                    });
                }
            }
        }
        let total = rejected + accepted.len() + failures.len();
        let accepted_note = match accepted.len() {
            0 => Vec::new(),
            n => {
                let shown = accepted
                    .iter()
                    .take(4)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                let more = if n > 4 {
                    format!(" and {} more", n - 4)
                } else {
                    String::new()
                };
                vec![format!(
                    "accepted {n} (fine for variadic or lenient methods): {shown}{more}"
                )]
            }
        };
        if failures.is_empty() {
            CheckResult::pass(
                Check::BadArguments,
                format!(
                    "{total} probes: {rejected} answered 4xx, {} accepted, none 5xx",
                    accepted.len()
                ),
            )
            .with_details(accepted_note)
        } else {
            let summary = format!(
                "{} of {total} wrong-argument calls did not answer 4xx",
                failures.len()
            );
            failures.extend(accepted_note);
            CheckResult::fail(Check::BadArguments, summary).with_details(failures)
        }
    }

    /// `latency`: the median of a few timed runs of each example is within
    /// the method's budget (for a method declared non-blocking, at most
    /// [`plughost_plugin_api::NON_BLOCKING_BUDGET`], the host's inline
    /// budget).
    pub(super) fn check_latency(&mut self) -> CheckResult {
        let (Some(plugin), Some(d)) = (self.plugin(), self.descriptor.clone()) else {
            return CheckResult::skip(Check::Latency, "the plugin did not load");
        };
        if self.examples.is_empty() {
            return CheckResult::skip(Check::Latency, "no examples to time");
        }
        let mut failures = Vec::new();
        let mut slowest: Option<(Duration, Duration, String)> = None;
        for call in self.examples.clone() {
            let method = d.methods.iter().find(|m| m.name == call.method);
            let budget = method
                .map(|m| m.latency_budget_ms)
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
                .unwrap_or(self.options.default_latency_budget);
            let budget = if method.is_some_and(|m| m.non_blocking) {
                budget.min(plughost_plugin_api::NON_BLOCKING_BUDGET)
            } else {
                budget
            };
            let mut times: Vec<Duration> = (0..LATENCY_RUNS)
                .map(|_| {
                    self.call(
                        &plugin,
                        &format!("{} (timed)", call.label),
                        &call.method,
                        &call.args_json,
                    )
                    .elapsed
                })
                .collect();
            times.sort();
            let median = times[times.len() / 2];
            if median > budget {
                failures.push(format!(
                    "{} took {} (median of {LATENCY_RUNS}), over its {} budget",
                    call.label,
                    ms(median),
                    ms(budget)
                ));
            }
            let ratio = median.as_secs_f64() / budget.as_secs_f64().max(f64::EPSILON);
            let worse = slowest.as_ref().is_none_or(|(m, b, _)| {
                ratio > m.as_secs_f64() / b.as_secs_f64().max(f64::EPSILON)
            });
            if worse {
                slowest = Some((median, budget, call.label.clone()));
            }
        }
        let slowest = slowest
            .map(|(m, b, label)| format!("closest to its budget: {label} {} of {}", ms(m), ms(b)))
            .unwrap_or_default();
        if failures.is_empty() {
            CheckResult::pass(
                Check::Latency,
                format!("{} examples within budget; {slowest}", self.examples.len()),
            )
        } else {
            CheckResult::fail(
                Check::Latency,
                format!("{} example(s) over budget", failures.len()),
            )
            .with_details(failures)
        }
    }

    /// `concurrency`: many threads calling the examples at once get the
    /// answers the sequential run got.
    pub(super) fn check_concurrency(&mut self) -> CheckResult {
        let Some(plugin) = self.plugin() else {
            return CheckResult::skip(Check::Concurrency, "the plugin did not load");
        };
        let calls: Arc<Vec<KnownCall>> = Arc::new(
            self.examples
                .iter()
                .filter(|c| c.answer != Answer::TimedOut)
                .cloned()
                .collect(),
        );
        if calls.is_empty() {
            return CheckResult::skip(Check::Concurrency, "no examples to call concurrently");
        }
        let (threads, per_thread) = (
            self.options.threads.max(1),
            self.options.calls_per_thread.max(1),
        );
        let deadline = self.options.call_timeout.saturating_mul(6);
        let activity = format!("{threads} threads x {per_thread} calls");
        let batch = self.quiet.watch(&activity, || {
            run_batch(&plugin, &calls, threads, per_thread, deadline)
        });
        self.calls += batch.calls;
        for (label, call, answer) in &batch.panics {
            self.note_panic(label, &call.method, &call.args_json, answer);
        }
        let mut problems = batch.mismatches.clone();
        if batch.unfinished > 0 {
            problems.push(format!(
                "{} thread(s) did not finish within {}",
                batch.unfinished,
                ms(deadline)
            ));
        }
        if batch.mismatch_count == 0 && batch.unfinished == 0 {
            CheckResult::pass(
                Check::Concurrency,
                format!(
                    "{activity} over {} example{}: all matched the sequential answers in {}",
                    calls.len(),
                    plural(calls.len()),
                    ms(batch.elapsed)
                ),
            )
        } else {
            CheckResult::fail(
                Check::Concurrency,
                format!(
                    "{} of {} concurrent calls differed from the sequential answers",
                    batch.mismatch_count, batch.calls
                ),
            )
            .with_details(problems)
        }
    }

    /// `panics`: no unexpected panic; declared panic probes contained, and
    /// the plugin still answers as before afterwards.
    pub(super) fn check_panics(&mut self) -> CheckResult {
        let (Some(plugin), Some(d)) = (self.plugin(), self.descriptor.clone()) else {
            return CheckResult::skip(Check::Panics, "the plugin did not load");
        };
        let mut failures: Vec<String> = self
            .unexpected_panics
            .iter()
            .map(|p| {
                format!("{p} (contained as a 500, but a method should answer with a typed error)")
            })
            .collect();
        let mut contained = Vec::new();
        for probe in self.options.panic_probes.clone() {
            let args_json = Value::Array(probe.args.clone()).to_string();
            if !d.methods.iter().any(|m| m.name == probe.method) {
                failures.push(format!(
                    "panic probe names `{}`, which the plugin does not declare",
                    probe.method
                ));
                continue;
            }
            let label = format!("panic probe `{}`", probe.method);
            let deadline = self.options.call_timeout;
            let timed = self.quiet.watch(&label, || {
                call_with_deadline(&plugin, &probe.method, &args_json, deadline)
            });
            self.calls += 1;
            match &timed.answer {
                Answer::Error(e) if is_panic(e) => {
                    contained.push(format!("{label} {args_json}: {} {}", e.code, e.message))
                }
                other => failures.push(format!(
                    "{label} {args_json} did not panic: {}",
                    other.describe()
                )),
            }
        }
        if !contained.is_empty() {
            failures.extend(self.replay_known_calls(&plugin));
        }
        let calls = self.calls;
        if !failures.is_empty() {
            let summary = match self.unexpected_panics.len() {
                0 => format!("{} problem(s) with panic containment", failures.len()),
                n => format!("{n} call(s) panicked"),
            };
            failures.extend(contained);
            return CheckResult::fail(Check::Panics, summary).with_details(failures);
        }
        if contained.is_empty() {
            CheckResult::pass(
                Check::Panics,
                format!("no call panicked ({calls} calls); containment not exercised (no panic probe declared)"),
            )
        } else {
            CheckResult::pass(
                Check::Panics,
                format!(
                    "{} panic probe(s) came back as 500 errors and the plugin kept answering; no other call panicked ({calls} calls)",
                    contained.len()
                ),
            )
            .with_details(contained)
        }
    }

    /// Repeats calls whose answers are known (examples, else the
    /// wrong-argument probes) and lists those whose answer changed.
    fn replay_known_calls(&mut self, plugin: &Arc<PluginHandle>) -> Vec<String> {
        let known = if self.examples.is_empty() {
            self.probes.clone()
        } else {
            self.examples.clone()
        };
        let mut changed = Vec::new();
        for call in known.into_iter().take(MAX_RECOVERY_CALLS) {
            let activity = format!("after the panic probes: {}", call.label);
            let timed = self.call(plugin, &activity, &call.method, &call.args_json);
            if timed.answer != call.answer {
                changed.push(format!(
                    "after a panic, {} {} {} (before: {})",
                    call.label,
                    call.args_json,
                    timed.answer.describe(),
                    call.answer.describe()
                ));
            }
        }
        changed
    }
}

/// What the concurrent calls found.
#[derive(Debug, Default)]
struct Batch {
    calls: usize,
    mismatch_count: usize,
    /// The first few mismatches, described.
    mismatches: Vec<String>,
    /// Calls that panicked where the sequential call did not.
    panics: Vec<(String, KnownCall, Answer)>,
    unfinished: usize,
    elapsed: Duration,
}

/// Runs `threads` threads of `per_thread` calls each, cycling through
/// `calls` from a different start per thread, comparing every answer with
/// the sequential one. Threads still running at `deadline` are left behind.
fn run_batch(
    plugin: &Arc<PluginHandle>,
    calls: &Arc<Vec<KnownCall>>,
    threads: usize,
    per_thread: usize,
    deadline: Duration,
) -> Batch {
    const KEEP: usize = 3;
    let started = Instant::now();
    let (tx, rx) = mpsc::channel::<Batch>();
    let mut spawned = 0;
    for t in 0..threads {
        let (tx, plugin, calls) = (tx.clone(), Arc::clone(plugin), Arc::clone(calls));
        let thread = std::thread::Builder::new()
            .name(format!("conformance-concurrent-{t}"))
            .spawn(move || {
                let mut mine = Batch::default();
                for k in 0..per_thread {
                    let call = &calls[(t + k) % calls.len()];
                    let answer = call_now(&plugin, &call.method, &call.args_json).answer;
                    mine.calls += 1;
                    if answer != call.answer {
                        mine.mismatch_count += 1;
                        if mine.mismatches.len() < KEEP {
                            mine.mismatches.push(format!(
                                "thread {t}, call {k}: {} {} {}, sequentially it {}",
                                call.label,
                                call.args_json,
                                answer.describe(),
                                call.answer.describe()
                            ));
                        }
                        if answer.is_panic() && mine.panics.len() < KEEP {
                            mine.panics.push((
                                format!("{} (concurrently)", call.label),
                                call.clone(),
                                answer,
                            ));
                        }
                    }
                }
                let _ = tx.send(mine);
            });
        if thread.is_ok() {
            spawned += 1;
        }
    }
    drop(tx);
    let mut total = Batch {
        unfinished: threads - spawned,
        ..Batch::default()
    };
    for _ in 0..spawned {
        let left = deadline.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok(part) => {
                total.calls += part.calls;
                total.mismatch_count += part.mismatch_count;
                total.mismatches.extend(
                    part.mismatches
                        .into_iter()
                        .take(KEEP.saturating_sub(total.mismatches.len())),
                );
                total.panics.extend(part.panics);
            }
            Err(_) => total.unfinished += 1,
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// How an example that must succeed does not fit its method's signature:
/// an argument outside its parameter's schema, or an expected result
/// outside the result's schema (`None` when it fits). Examples that expect
/// an error may pass wrong arguments on purpose and are not held to it.
fn misfit(
    m: &plughost_loader::MethodDescriptor,
    args: &Value,
    expected: &Outcome,
) -> Option<String> {
    let Outcome::Result(result) = expected else {
        return None;
    };
    if !m.variadic {
        let given: Vec<(&plughost_loader::ParamDescriptor, &Value)> = match args {
            Value::Array(values) => m.params.iter().zip(values).collect(),
            Value::Object(named) => m
                .params
                .iter()
                .filter_map(|p| named.get(&p.name).map(|v| (p, v)))
                .collect(),
            _ => Vec::new(),
        };
        for (param, value) in given {
            if let Err(why) = schema::fits(value, &param.schema) {
                return Some(format!(
                    "argument `{}` does not fit its schema: {why}",
                    param.name
                ));
            }
        }
    }
    schema::fits(result, &m.result_schema)
        .err()
        .map(|why| format!("the expected result does not fit the result schema: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_are_held_to_the_published_signature() {
        let fibo = plughost_loader::MethodDescriptor {
            name: "fibo".into(),
            route: "math.fibo".into(),
            doc: "F(n)".into(),
            params: vec![plughost_loader::ParamDescriptor {
                name: "n".into(),
                schema: json!({"type": "integer", "format": "uint32", "minimum": 0}),
                optional: false,
            }],
            variadic: false,
            result_schema: json!({"type": "integer", "format": "uint64", "minimum": 0}),
            takes_context: false,
            examples: Vec::new(),
            latency_budget_ms: 0,
            non_blocking: false,
        };
        let ok = Outcome::Result(json!(55));
        assert_eq!(misfit(&fibo, &json!([10]), &ok), None);
        assert_eq!(misfit(&fibo, &json!({"n": 10}), &ok), None);
        let arg = misfit(&fibo, &json!(["10"]), &ok).unwrap();
        assert!(
            arg.contains("argument `n`") && arg.contains("not of type integer"),
            "{arg}"
        );
        let named = misfit(&fibo, &json!({"n": -1}), &ok).unwrap();
        assert!(named.contains("out of range"), "{named}");
        let result = misfit(&fibo, &json!([10]), &Outcome::Result(json!("55"))).unwrap();
        assert!(result.contains("expected result"), "{result}");
        // An example that expects an error may pass wrong arguments.
        assert_eq!(misfit(&fibo, &json!(["x"]), &Outcome::Error(400)), None);
    }

    #[test]
    fn probes_from_an_example_change_count_and_each_type() {
        let probes = bad_argument_probes(Some(&[json!(10), json!("x")]));
        let whats: Vec<&str> = probes.iter().map(|p| p.what.as_str()).collect();
        assert_eq!(whats[0], "one argument too many");
        assert_eq!(probes[0].args, vec![json!(10), json!("x"), Value::Null]);
        assert_eq!(whats[1], "one argument too few");
        assert_eq!(probes[1].args, vec![json!(10)]);
        // Five other JSON types for each of the two arguments.
        assert_eq!(probes.len(), 2 + 5 + 5);
        assert!(!whats.contains(&"argument 1 as a number"), "{whats:?}");
        assert!(!whats.contains(&"argument 2 as a string"), "{whats:?}");
        let obj = probes
            .iter()
            .find(|p| p.what == "argument 2 as an object")
            .unwrap();
        assert_eq!(obj.args, vec![json!(10), json!({ "conformance": "probe" })]);
    }

    #[test]
    fn zero_argument_examples_only_grow() {
        let probes = bad_argument_probes(Some(&[]));
        assert_eq!(
            probes,
            vec![Probe {
                what: "one argument too many".into(),
                args: vec![Value::Null]
            }]
        );
    }

    #[test]
    fn methods_without_examples_get_generic_probes() {
        let probes = bad_argument_probes(None);
        assert_eq!(probes.len(), 3);
        assert_eq!(probes[2].args.len(), 7);
    }
}
