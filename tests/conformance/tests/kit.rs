//! The kit's own tests: the workspace's plugins pass, and each
//! rule-breaking fixture fails the check it breaks and only that one, so
//! the kit is shown to be able to fail. Real libraries, the real loader.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use plughost_conformance::{Check, Conformance, Outcome, Report};
use plughost_test_support::{plugin_lib, variant_lib, Variant};
use serde_json::json;

fn failed(report: &Report) -> Vec<Check> {
    report.failed().map(|c| c.check).collect()
}

fn outcome(report: &Report, check: Check) -> Outcome {
    report.get(check).unwrap().outcome
}

fn finding(report: &Report, check: Check) -> String {
    let c = report.get(check).unwrap();
    format!("{}\n{}", c.summary, c.details.join("\n"))
}

#[test]
fn math_passes_every_check_it_can_and_skips_services_scenarios_and_state() {
    let report = Conformance::new(plugin_lib("math")).assert();
    assert_eq!(report.checks.len(), Check::ALL.len());
    for c in &report.checks {
        let expected = if [Check::Services, Check::Scenarios, Check::State].contains(&c.check) {
            Outcome::Skip
        } else {
            Outcome::Pass
        };
        assert_eq!(c.outcome, expected, "{report}");
    }
    assert_eq!(
        report.get(Check::Services).unwrap().summary,
        "the plugin declares no tracked services"
    );
    let concurrency = finding(&report, Check::Concurrency);
    assert!(
        concurrency.starts_with("8 threads x 1000 calls over 2 examples"),
        "{concurrency}"
    );
    assert_eq!(report.plugin.as_ref().unwrap().name, "math");
}

#[test]
fn echo_passes_everything_including_its_ticker_service() {
    let report = plughost_conformance::assert_conformant(plugin_lib("echo"));
    // Stateless: no scenarios, no state to hand over.
    assert_eq!(
        report.count(Outcome::Pass),
        Check::ALL.len() - 2,
        "{report}"
    );
    assert_eq!(outcome(&report, Check::Scenarios), Outcome::Skip);
    assert_eq!(outcome(&report, Check::State), Outcome::Skip);
    let services = finding(&report, Check::Services);
    assert!(services.contains("`ticker` returned"), "{services}");
    // The sample config ({"tick_ms": 500}) and the empty config both start it.
    assert_eq!(
        report.get(Check::Init).unwrap().summary,
        "sample config: works; empty config: works"
    );
    // The variadic `echo` accepts wrong counts and types: accepted, not failed.
    assert!(
        finding(&report, Check::BadArguments).contains("accepted"),
        "{report}"
    );
    // The ticker logs through the host when it stops: counted, not printed.
    assert!(report.log_records >= 1, "{report}");
}

#[test]
fn faulty_passes_and_its_panic_is_contained_when_provoked() {
    // Without a probe the kit cannot make it panic; it still conforms.
    let plain = Conformance::new(plugin_lib("faulty")).assert();
    assert!(
        finding(&plain, Check::Panics).contains("containment not exercised"),
        "{plain}"
    );

    let report = Conformance::new(plugin_lib("faulty"))
        .panic_probe("panic", vec![json!("on purpose")])
        .assert();
    let panics = finding(&report, Check::Panics);
    assert!(
        panics
            .starts_with("1 panic probe(s) came back as 500 errors and the plugin kept answering"),
        "{panics}"
    );
    assert!(
        panics.contains("500 method panic panicked: on purpose (at plugins/faulty/src/lib.rs"),
        "{panics}"
    );
}

#[test]
fn a_panic_probe_that_does_not_panic_fails_the_panics_check() {
    let report = Conformance::new(plugin_lib("math"))
        .panic_probe("fibo", vec![json!(10)])
        .run();
    assert_eq!(failed(&report), [Check::Panics], "{report}");
    assert!(
        finding(&report, Check::Panics)
            .contains("panic probe `fibo` [10] did not panic: returned 55"),
        "{report}"
    );
    let report = Conformance::new(plugin_lib("math"))
        .panic_probe("nosuch", vec![])
        .run();
    assert!(
        finding(&report, Check::Panics)
            .contains("names `nosuch`, which the plugin does not declare"),
        "{report}"
    );
}

#[test]
fn a_method_without_doc_fails_metadata_only() {
    let report = Conformance::new(plugin_lib("fixture-missing-doc")).run();
    assert_eq!(failed(&report), [Check::Metadata], "{report}");
    assert_eq!(
        report.get(Check::Metadata).unwrap().summary,
        "method `twice` has no doc line (add `.doc(\"...\")` to its `Method`)"
    );
}

#[test]
fn answering_bad_arguments_with_500_fails_bad_arguments_only() {
    let report = Conformance::new(plugin_lib("fixture-bad-args-500")).run();
    assert_eq!(failed(&report), [Check::BadArguments], "{report}");
    let found = finding(&report, Check::BadArguments);
    assert!(
        found.contains("`half` with one argument too many [8,null]: failed with 500 half: takes exactly one argument"),
        "{found}"
    );
    assert!(found.contains("expected a 4xx error"), "{found}");
}

#[test]
fn a_service_that_ignores_stop_fails_services_only_and_does_not_hang_the_kit() {
    let started = std::time::Instant::now();
    let report = Conformance::new(plugin_lib("fixture-ignores-stop")).run();
    assert_eq!(failed(&report), [Check::Services], "{report}");
    assert_eq!(
        report.get(Check::Services).unwrap().summary,
        "`stubborn` did not return within 1000 ms of being told to stop; it never checked the stop signal (its thread was left running)"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn printing_to_stdout_fails_quiet_only() {
    // Few concurrent calls: each one prints, and what is caught is replayed on stderr.
    let report = Conformance::new(plugin_lib("fixture-prints-stdout"))
        .concurrency(2, 5)
        .run();
    assert_eq!(failed(&report), [Check::Quiet], "{report}");
    let found = finding(&report, Check::Quiet);
    assert!(
        found.contains(
            "`shout` example 1: wrote stdout \"shouting hey\\n\" and again when repeated"
        ),
        "{found}"
    );
    assert!(found.contains("log through the host instead"), "{found}");
}

#[test]
fn each_fixture_passes_when_its_rule_is_not_checked() {
    // Turning the quiet check off makes the printing fixture conform: the
    // kit's verdict comes from that check alone.
    let report = Conformance::new(plugin_lib("fixture-prints-stdout"))
        .capture_output(false)
        .concurrency(1, 1)
        .run();
    assert!(report.passed(), "{report}");
    assert_eq!(outcome(&report, Check::Quiet), Outcome::Skip);
}

#[test]
fn a_method_declared_non_blocking_is_held_to_the_hosts_inline_budget() {
    // faulty's `nap` declares itself non-blocking; this build gives it an
    // example that naps 20 ms: well within the kit's default budget, over
    // the 5 ms a host allows a non-blocking call.
    let variant = Variant {
        env: vec![("FAULTY_NAP_EXAMPLE_MS".into(), "20".into())],
        ..Variant::default()
    };
    let report = Conformance::new(variant_lib("faulty", &variant)).run();
    assert_eq!(failed(&report), [Check::Latency], "{report}");
    let finding = finding(&report, Check::Latency);
    assert!(
        finding.contains("`nap` example 1 took") && finding.contains("5"),
        "{report}"
    );
}

#[test]
fn a_tight_latency_budget_fails_latency_only() {
    let report = Conformance::new(plugin_lib("math"))
        .latency_budget(Duration::from_nanos(1))
        .run();
    assert_eq!(failed(&report), [Check::Latency], "{report}");
    assert!(
        finding(&report, Check::Latency).contains("`fibo` example 1 took"),
        "{report}"
    );
}

#[test]
fn a_library_that_is_not_a_plugin_fails_load_and_skips_the_rest() {
    let report = Conformance::new(plugin_lib("not-a-plugin")).run();
    assert_eq!(failed(&report), [Check::Load], "{report}");
    assert!(
        finding(&report, Check::Load).contains("not a plughost plugin"),
        "{report}"
    );
    assert_eq!(
        report.count(Outcome::Skip),
        Check::ALL.len() - 1,
        "{report}"
    );
    assert!(report.plugin.is_none());
}

#[test]
fn the_assertion_fails_the_test_with_the_readable_table() {
    let lib = plugin_lib("fixture-missing-doc");
    let panic =
        std::panic::catch_unwind(|| plughost_conformance::assert_conformant(&lib)).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.starts_with("the plugin does not pass the conformance kit:"),
        "{message}"
    );
    assert!(message.contains("  FAIL  metadata"), "{message}");
    assert!(message.contains("(failed: metadata)"), "{message}");
}

#[test]
fn config_comes_from_a_toml_or_json_file_and_bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("echo.toml");
    std::fs::write(&toml, "tick_ms = 20\n").unwrap();
    if cfg!(feature = "toml") {
        let report = Conformance::new(plugin_lib("echo"))
            .config_file(&toml)
            .unwrap()
            .concurrency(2, 10)
            .assert();
        assert_eq!(outcome(&report, Check::Services), Outcome::Pass);
    } else {
        // Without the feature (a plugin author's build) TOML is refused
        // with what to do, never misread.
        let err = Conformance::new(plugin_lib("echo"))
            .config_file(&toml)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`toml` feature"), "{err}");
    }
    let json_file = dir.path().join("echo.json");
    std::fs::write(&json_file, r#"{ "tick_ms": 20 }"#).unwrap();
    let report = Conformance::new(plugin_lib("echo"))
        .config_file(&json_file)
        .unwrap()
        .concurrency(2, 10)
        .assert();
    assert_eq!(outcome(&report, Check::Services), Outcome::Pass);

    // A config the plugin refuses: init fails with its message, load says what to do.
    let report = Conformance::new(plugin_lib("echo"))
        .config(json!({ "tick_ms": "often" }))
        .run();
    assert_eq!(failed(&report), [Check::Load], "{report}");
    assert!(
        finding(&report, Check::Load).contains("config key `tick_ms`"),
        "{report}"
    );

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{ not json").unwrap();
    let err = Conformance::new(plugin_lib("echo"))
        .config_file(&broken)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("config file {}: not valid JSON", broken.display())),
        "{err}"
    );
}

#[test]
fn a_missing_library_is_reported_by_path() {
    let err = plughost_conformance::find_built_plugin("no-such-plugin")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("no libno_such_plugin.so in "), "{err}");
    let report = Conformance::new("/nonexistent/libnope.so").run();
    assert_eq!(failed(&report), [Check::Load]);
    assert!(
        finding(&report, Check::Load).contains("/nonexistent/libnope.so: file not found"),
        "{report}"
    );
}

#[test]
fn the_stateful_kvstore_passes_its_scenarios_and_the_state_round_trip() {
    let report = plughost_conformance::assert_conformant(plugin_lib("kvstore"));
    assert_eq!(report.count(Outcome::Pass), Check::ALL.len(), "{report}");
    assert_eq!(
        report.get(Check::Scenarios).unwrap().summary,
        "2 scenarios (11 steps) gave their outcomes in order"
    );
    assert!(
        report
            .get(Check::State)
            .unwrap()
            .summary
            .starts_with("9 hand-overs: exported, imported into a fresh instance"),
        "{report}"
    );
    // `kv_get`'s example expects 404, and gets it.
    assert_eq!(outcome(&report, Check::Examples), Outcome::Pass);
}

#[test]
fn examples_that_depend_on_each_other_fail_because_each_runs_on_a_fresh_instance() {
    let report = Conformance::new(plugin_lib("fixture-examples-share-state")).run();
    assert_eq!(
        failed(&report),
        [Check::Examples, Check::Concurrency],
        "{report}"
    );
    let found = finding(&report, Check::Examples);
    assert!(
        found.contains("`get` example 1 [\"a\"]: failed with 404 no key `a`, expected \"1\""),
        "{found}"
    );
}

#[test]
fn an_example_expecting_another_error_code_fails_examples_only() {
    let report = Conformance::new(plugin_lib("fixture-wrong-error-code")).run();
    assert_eq!(failed(&report), [Check::Examples], "{report}");
    let found = finding(&report, Check::Examples);
    assert!(
        found.contains("`find` example 1 [\"x\"]: failed with 400 find: no key `x`, expected an error with code 404"),
        "{found}"
    );
}

#[test]
fn a_scenario_whose_steps_do_not_give_their_outcomes_fails_scenarios_only() {
    let report = Conformance::new(plugin_lib("fixture-scenario-fails")).run();
    assert_eq!(failed(&report), [Check::Scenarios], "{report}");
    let found = finding(&report, Check::Scenarios);
    assert!(
        found.contains("scenario `last in, first out` step 3 `pop` []: returned 1, expected 2"),
        "{found}"
    );
}

#[test]
fn a_plugin_that_drops_imported_state_fails_state_only() {
    let report = Conformance::new(plugin_lib("fixture-loses-state")).run();
    assert_eq!(failed(&report), [Check::State], "{report}");
    let found = finding(&report, Check::State);
    assert!(
        found.contains("after a hand-over following step 1: scenario `put then get` step 2 `get` [\"a\"]: failed with 404"),
        "{found}"
    );
    assert_eq!(outcome(&report, Check::Scenarios), Outcome::Pass);
}

#[test]
fn hints_name_the_cause_a_panic_and_then_a_poisoned_lock() {
    let report = Conformance::new(plugin_lib("fixture-poisons-lock")).run();
    assert_eq!(
        failed(&report),
        [Check::BadArguments, Check::Panics],
        "{report}"
    );
    let found = finding(&report, Check::BadArguments);
    assert!(
        found.contains("the method panicked: check its arguments"),
        "{found}"
    );
    assert!(
        found.contains("a lock was poisoned by an earlier panic"),
        "{found}"
    );
    for line in found.lines().filter(|l| l.contains("panicked: ")) {
        assert!(
            !line.contains("expected a 4xx error such as"),
            "a panic got the bad_arguments hint: {line}"
        );
    }
}
