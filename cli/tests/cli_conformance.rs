//! `plughost conformance`, run as a user or a CI job runs it: the table and
//! exit 0 for good plugins, exit 1 naming the failed check for each
//! rule-breaking fixture, `--json`, and JUnit XML that a real XML parser
//! (Python's `xml.etree`) accepts.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use plughost_test_support::{plugin_lib, CONFORMANCE_FIXTURES};

fn plughost(args: &[&str]) -> Output {
    plughost_test_support::process::output(env!("CARGO_BIN_EXE_plughost"), args)
}

use plughost_test_support::process::{stderr, stdout};

fn conformance(lib: &str, extra: &[&str]) -> Output {
    plughost(&[&["conformance", lib], extra].concat())
}

#[test]
fn math_prints_a_table_of_passed_checks_and_exits_0() {
    let lib = plugin_lib("math");
    let out = conformance(lib.to_str().unwrap(), &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.starts_with("plughost conformance: math 0.1.0 (plugin-api 0.2.1)\n"),
        "{text}"
    );
    for id in [
        "load",
        "metadata",
        "examples",
        "bad-arguments",
        "panics",
        "concurrency",
        "latency",
        "init",
        "quiet",
    ] {
        assert!(
            text.contains(&format!("  PASS  {id} ")),
            "{id} did not pass:\n{text}"
        );
    }
    for id in ["services", "scenarios", "state"] {
        assert!(text.contains(&format!("  SKIP  {id} ")), "{text}");
    }
    assert!(
        text.ends_with("12 checks: 9 passed, 0 failed, 3 skipped\n"),
        "{text}"
    );
}

#[test]
fn each_rule_breaking_fixture_exits_1_and_names_its_check() {
    // Most fixtures break one rule; two break two by nature (examples that
    // depend on each other also race under concurrency; a panic that
    // poisons a lock is both a bad-argument failure and an unexpected panic).
    let expected: [(&str, &[&str]); 9] = [
        ("fixture-missing-doc", &["metadata"]),
        ("fixture-bad-args-500", &["bad-arguments"]),
        ("fixture-ignores-stop", &["services"]),
        ("fixture-prints-stdout", &["quiet"]),
        ("fixture-examples-share-state", &["examples", "concurrency"]),
        ("fixture-wrong-error-code", &["examples"]),
        ("fixture-scenario-fails", &["scenarios"]),
        ("fixture-loses-state", &["state"]),
        ("fixture-poisons-lock", &["bad-arguments", "panics"]),
    ];
    assert_eq!(expected.len(), CONFORMANCE_FIXTURES.len());
    for (fixture, checks) in expected {
        let lib = plugin_lib(fixture);
        let out = conformance(lib.to_str().unwrap(), &[]);
        let (text, err) = (stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{fixture}: {text}{err}");
        for check in checks {
            assert!(
                text.contains(&format!("  FAIL  {check} ")),
                "{fixture}: {text}"
            );
        }
        assert!(
            text.contains(&format!("{} failed, ", checks.len()))
                && text.contains(&format!("(failed: {})", checks.join(", "))),
            "{fixture}: {text}"
        );
        assert!(
            err.contains(&format!(
                "conformance failed for {fixture} 0.1.0: {} (",
                checks[0]
            )),
            "{fixture}: {err}"
        );
    }
}

#[test]
fn captured_output_is_shown_as_a_bounded_excerpt() {
    // The fixture prints on every call: thousands of lines in the
    // concurrency check alone. The replay before the table stays short.
    let lib = plugin_lib("fixture-prints-stdout");
    let out = conformance(lib.to_str().unwrap(), &[]);
    let err = stderr(&out);
    let replayed = err
        .lines()
        .filter(|l| !l.starts_with("conformance failed"))
        .count();
    assert!(replayed <= 25, "{replayed} lines before the table:\n{err}");
    assert!(
        err.contains("more bytes of captured output not shown"),
        "{err}"
    );
    assert!(err.contains("shouting hey"), "{err}");
    assert!(stdout(&out).contains("  FAIL  quiet "), "{}", stdout(&out));
}

#[test]
fn junit_output_is_valid_xml_with_a_failure_per_failed_check() {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("out.xml");
    let lib = plugin_lib("fixture-bad-args-500");
    let out = conformance(lib.to_str().unwrap(), &["--junit", xml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("JUnit report written to {}", xml.display())),
        "{}",
        stdout(&out)
    );

    // Parse it with a real XML parser and read back the structure CI systems use.
    let script = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suite = root.find("testsuite")
cases = suite.findall("testcase")
print(root.tag, suite.get("tests"), suite.get("failures"), suite.get("skipped"), len(cases))
for case in cases:
    state = "failure" if case.find("failure") is not None else "skipped" if case.find("skipped") is not None else "pass"
    print(case.get("classname"), case.get("name"), state)
print("MESSAGE", suite.find("testcase[@name='bad-arguments']/failure").get("message"))
"#;
    let parsed = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&xml)
        .output()
        .expect("python3 runs");
    assert!(
        parsed.status.success(),
        "python3 could not parse the JUnit XML: {}",
        stderr(&parsed)
    );
    let lines = stdout(&parsed);
    let mut lines = lines.lines();
    assert_eq!(lines.next(), Some("testsuites 12 1 3 12"));
    let cases: Vec<&str> = lines.by_ref().take(12).collect();
    assert_eq!(cases[0], "conformance.fixture-bad-args-500 load pass");
    assert_eq!(
        cases[5],
        "conformance.fixture-bad-args-500 bad-arguments failure"
    );
    assert_eq!(
        cases[9],
        "conformance.fixture-bad-args-500 services skipped"
    );
    assert_eq!(
        cases.iter().filter(|c| c.ends_with(" failure")).count(),
        1,
        "{cases:?}"
    );
    let message = lines.next().unwrap();
    assert!(
        message.starts_with("MESSAGE ") && message.contains("did not answer 4xx"),
        "{message}"
    );
}

#[test]
fn json_output_carries_every_check() {
    let lib = plugin_lib("echo");
    let out = conformance(lib.to_str().unwrap(), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["passed"], true);
    assert_eq!(v["plugin"]["name"], "echo");
    assert_eq!(v["counts"]["passed"], 10);
    assert_eq!(v["counts"]["skipped"], 2, "no scenarios, no state");
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 12);
    assert_eq!(checks[9]["check"], "services");
    assert_eq!(checks[9]["outcome"], "pass");
}

#[test]
fn flags_for_config_panic_probes_and_latency_budget() {
    let faulty = plugin_lib("faulty");
    let out = conformance(
        faulty.to_str().unwrap(),
        &["--panic-probe", "panic", r#"["boom"]"#],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 panic probe(s) came back as 500 errors"),
        "{}",
        stdout(&out)
    );

    let echo = plugin_lib("echo");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("echo.toml");
    std::fs::write(&config, "tick_ms = 10\n").unwrap();
    let out = conformance(
        echo.to_str().unwrap(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--latency-budget-ms",
            "5000",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    std::fs::write(&config, "tick_ms = [").unwrap();
    let out = conformance(
        echo.to_str().unwrap(),
        &["--config", config.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("config file {}: not valid TOML", config.display())),
        "{}",
        stderr(&out)
    );

    let out = conformance(echo.to_str().unwrap(), &["--json", "--junit", "x.xml"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--json and --junit are exclusive"
    );
}

#[test]
fn conformance_and_new_explain_themselves() {
    let top = stdout(&plughost(&["--help"]));
    assert!(top.contains("conformance") && top.contains("new"), "{top}");
    let help = stdout(&plughost(&["conformance", "--help"]));
    for flag in [
        "--config <FILE>",
        "--json",
        "--junit <FILE>",
        "--panic-probe <METHOD> <ARGS_JSON>",
    ] {
        assert!(
            help.contains(flag),
            "conformance --help lacks {flag}: {help}"
        );
    }
    let help = stdout(&plughost(&["new", "--help"]));
    assert!(
        help.contains("--path <DIR>") && help.contains("--api-version"),
        "{help}"
    );
}
