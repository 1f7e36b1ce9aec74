//! The command line as people and scripts meet it: output into a pipe
//! that closes early, exit codes that tell failures apart, a method's help
//! text, times in human form, no library noise, and a host that says what
//! it serves when it starts.

#![allow(clippy::unwrap_used)]

use std::{
    path::Path,
    process::{Command, ExitStatus, Output, Stdio},
    time::Duration,
};

use plughost_test_support::{
    plugin_lib, process, HostProcess, PlughostRun, TempManifest, TestExchanges,
};

const BIN: &str = env!("CARGO_BIN_EXE_plughost");

/// Runs `plughost args` with its stdout a pipe whose reader is gone by the
/// time it writes (`plughost ... | head -0`).
fn into_closed_pipe(args: &[&str]) -> (ExitStatus, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let manifest = TempManifest::with_plugins(&[&plugin_lib("math")]);
    for args in [
        vec!["proto", "codes", "sip"],
        vec!["version"],
        vec!["plugins", "--manifest", manifest.path().to_str().unwrap()],
    ] {
        let (status, stderr) = into_closed_pipe(&args);
        assert_eq!(status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

#[test]
fn exit_codes_tell_failures_apart_and_a_methods_help_is_printed() {
    let ex = TestExchanges::new("exit-codes");
    let host = HostProcess::start(
        BIN,
        &format!(
            "[host]\nname = \"exit-codes\"\n{}\n[roles]\nmanager = false\nservices = false\n\n[[plugins]]\npath = {:?}\n\n[[plugins]]\npath = {:?}\n",
            ex.rabbitmq_toml(),
            plugin_lib("math").display().to_string(),
            plugin_lib("echo").display().to_string()
        ),
    );
    host.wait_serving();

    let ok = host.plughost(&["call", "fibo", "10"]);
    assert_eq!(code(&ok), Some(0), "{ok:?}");

    let not_found = host.plughost(&["call", "nosuch"]);
    assert_eq!(code(&not_found), Some(3), "{not_found:?}");

    // The method's own error: its code, message and help, without --json.
    let remote = host.plughost(&["call", "fibo", "94"]);
    assert_eq!(code(&remote), Some(4), "{remote:?}");
    let err = process::stderr(&remote);
    assert!(err.contains("fibo(94) overflows u64 [400]"), "{err}");
    assert!(err.contains("help: n must be at most 93"), "{err}");

    let timeout = host.plughost(&["call", "sleep_ms", "5000", "--timeout", "1"]);
    assert_eq!(code(&timeout), Some(5), "{timeout:?}");
    assert!(process::stderr(&timeout).contains("[504]"));

    let json = host.plughost(&["call", "--json", "fibo", "94"]);
    assert_eq!(code(&json), Some(4), "{json:?}");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["error"]["help"], "n must be at most 93", "{v}");

    // No broker, and no host on this local socket either.
    let nowhere = tempfile::tempdir().unwrap();
    let no_socket = nowhere.path().join("none.sock");
    let unavailable = process::output(
        BIN,
        &[
            "call",
            "fibo",
            "1",
            "--amqp",
            "amqp://guest:guest@127.0.0.1:1/%2f",
            "--local-socket",
            no_socket.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&unavailable), Some(6), "{unavailable:?}");

    let help = process::stdout(&process::output(BIN, &["call", "--help"]));
    for line in [
        "3  not found",
        "4  the method returned an error",
        "5  timed out",
        "6  unavailable",
    ] {
        assert!(help.contains(line), "call --help lacks {line:?}:\n{help}");
    }
}

#[test]
fn a_returned_request_is_an_error_message_not_a_library_dump() {
    // Exchanges no name service listens on: the broker returns the find
    // (mandatory, unroutable), which lapin logs at WARN with a raw dump.
    let ex = TestExchanges::new("returned");
    ex.declare();
    let out = process::output(
        BIN,
        &[
            "call",
            "fibo",
            "1",
            "--rpc-exchange",
            &ex.rpc,
            "--ns-exchange",
            &ex.ns,
            "--timeout",
            "5",
        ],
    );
    assert_eq!(code(&out), Some(6), "{out:?}");
    let err = process::stderr(&out);
    assert!(err.contains("no name service is running"), "{err}");
    assert!(!err.contains("BasicReturnMessage"), "{err}");
    assert!(!err.contains("lapin"), "{err}");
}

#[test]
fn status_shows_load_times_in_human_form() {
    let ex = TestExchanges::new("human-times");
    let host = HostProcess::start(
        BIN,
        &format!(
            "[host]\nname = \"human-times\"\n{}\n[roles]\nmanager = false\nservices = false\n\n[[plugins]]\npath = {:?}\n",
            ex.rabbitmq_toml(),
            plugin_lib("math").display().to_string()
        ),
    );
    host.wait_serving();
    let table = process::stdout(&host.plughost(&["status"]));
    let math = table.lines().find(|l| l.starts_with("math ")).unwrap();
    // "2026-12-06 05:20:12Z (1.5s ago)", not seconds since 1970.
    assert!(math.contains("Z (") && math.contains(" ago)"), "{table}");
    let year = math.split_whitespace().nth(5).unwrap();
    assert!(year.len() == 10 && year.starts_with("20"), "{table}");
}

#[test]
fn run_says_what_it_serves_and_shows_plugin_records_by_default() {
    let ex = TestExchanges::new("summary");
    let manifest = TempManifest::new(&format!(
        "[host]\nname = \"summary\"\n{}\n[roles]\nmanager = false\nservices = false\n\n[[plugins]]\npath = {:?}\n\n[[plugins]]\npath = {:?}\n",
        ex.rabbitmq_toml(),
        plugin_lib("math").display().to_string(),
        plugin_lib("echo").display().to_string()
    ));
    // The default log level, as an operator starts it: no RUST_LOG.
    let mut host = PlughostRun::start(BIN, manifest.path(), &[("RUST_LOG", Path::new(""))]);
    host.wait_for_log(0, &["admin socket"], Duration::from_secs(60));
    let log = host.log_text();
    for part in [
        "host summary serving 2 plugin(s); roles: name service, RPC, admin",
        "plugin math ",
        "method fibo -> route com.goffersoft.math.algo.fibo",
        "plugin echo ",
        "method upper -> route plughost.echo.upper",
        "tracked service ticker",
        "broker amqp://guest:***@127.0.0.1:5672/%2f",
    ] {
        assert!(log.contains(part), "no {part:?} in:\n{log}");
    }
    // A record echo logs while it is created carries its name, not its file's.
    let record = log
        .lines()
        .find(|l| l.contains("ticker set to every 1000 ms"))
        .unwrap_or_else(|| panic!("echo's init record is not shown:\n{log}"));
    assert!(record.contains("plughost::plugin"), "{record}");
    assert!(record.contains("plugin=\"echo\""), "{record}");
}
