//! `plughost run`, `find` and `call` as an operator uses them: the real
//! binary serving a manifest, and the real binary calling it.

#![allow(clippy::unwrap_used)]

use std::{
    process::Output,
    time::{Duration, Instant},
};

use plughost_test_support::{plugin_lib, process, KillOnDrop, TempManifest, TestExchanges};

fn plughost(args: &[&str]) -> Output {
    process::output(env!("CARGO_BIN_EXE_plughost"), args)
}

#[test]
fn run_then_find_and_call_from_the_cli() {
    let ex = TestExchanges::new("cli");
    let m = TempManifest::new(&format!(
        "[host]\nname = \"cli-rpc\"\n{}\n[roles]\nmanager = false\nservices = false\nadmin = false\n\n[[plugins]]\npath = {:?}\n",
        ex.rabbitmq_toml(),
        plugin_lib("math").display().to_string()
    ));
    let manifest = m.path().to_str().unwrap();
    let _host = KillOnDrop::spawn(
        env!("CARGO_BIN_EXE_plughost"),
        &["run", "--manifest", manifest],
    );

    // The host needs a moment to connect; find until it answers.
    wait_until_serving(manifest);
    let route =
        String::from_utf8(plughost(&["find", "fibo", "--manifest", manifest]).stdout).unwrap();
    assert_eq!(route.trim(), "com.goffersoft.math.algo.fibo");

    let out = plughost(&["call", "fibo", "10", "--manifest", manifest]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "55");

    let out = plughost(&["call", "--json", "fibo", "abc", "--manifest", manifest]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], 400, "{v}");

    let out = plughost(&["call", "nosuch", "--manifest", manifest]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("not found") && err.contains("[404]"), "{err}");
}

#[test]
fn call_without_a_broker_says_so() {
    // No host on this local socket either: the caller is told about the broker.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    let out = plughost(&[
        "call",
        "fibo",
        "1",
        "--amqp",
        "amqp://guest:guest@127.0.0.1:1/%2f",
        "--local-socket",
        socket.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("no broker at") && err.contains("guest:***@127.0.0.1:1"),
        "{err}"
    );
    assert!(
        err.contains("rabbitmq-server"),
        "the error says what to do: {err}"
    );
}

/// Finds `fibo` until the host of `manifest` answers (30 s at most).
fn wait_until_serving(manifest: &str) {
    let started = Instant::now();
    while !plughost(&["find", "fibo", "--manifest", manifest, "--timeout", "2"])
        .status
        .success()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "host never answered"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn with_watching_off_sighup_applies_the_manifest() {
    let ex = TestExchanges::new("sighup");
    let head = format!(
        "[host]\nname = \"cli-sighup\"\nwatch = false\n{}\n[roles]\nmanager = false\nservices = false\nadmin = false\n\n",
        ex.rabbitmq_toml()
    );
    let math = format!(
        "[[plugins]]\npath = {:?}\n",
        plugin_lib("math").display().to_string()
    );
    let echo = format!(
        "[[plugins]]\npath = {:?}\n",
        plugin_lib("echo").display().to_string()
    );
    let m = TempManifest::new(&format!("{head}{math}"));
    let manifest = m.path().to_str().unwrap().to_owned();
    let host = KillOnDrop::spawn(
        env!("CARGO_BIN_EXE_plughost"),
        &["run", "--manifest", &manifest],
    );
    wait_until_serving(&manifest);
    // With `watch = false` an edit alone changes nothing (well past the
    // watcher's 300 ms debounce)...
    m.rewrite(&format!("{head}{math}{echo}"));
    std::thread::sleep(Duration::from_secs(1));
    let call_upper = || {
        plughost(&[
            "call",
            "upper",
            "hup",
            "--manifest",
            &manifest,
            "--timeout",
            "2",
        ])
    };
    let out = call_upper();
    assert!(!out.status.success(), "applied without a signal: {out:?}");
    // ...until SIGHUP.
    let pid = host.0.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    loop {
        let out = call_upper();
        if out.status.success() {
            assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "\"HUP\"");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "SIGHUP reload never applied: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
