//! `plughost stats` against a deployment of two real hosts: both answer
//! the stats request on the name-service exchange, with their per-method
//! counters, in a table and as JSON.

#![allow(clippy::unwrap_used)]

use plughost_test_support::{
    plugin_lib,
    process::{stderr, stdout},
    HostProcess, TestExchanges,
};
use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_plughost")
}

fn host(ex: &TestExchanges, name: &str, plugins: &[&str]) -> HostProcess {
    let mut text = format!(
        "[host]\nname = {name:?}\n\n{}\n[roles]\nmanager = false\nservices = false\n\n[local]\nenabled = false\n\n",
        ex.rabbitmq_toml()
    );
    for p in plugins {
        text.push_str(&format!(
            "[[plugins]]\npath = {:?}\n\n",
            plugin_lib(p).display().to_string()
        ));
    }
    HostProcess::start(bin(), &text)
}

fn plughost(ex: &TestExchanges, args: &[&str]) -> std::process::Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--rpc-exchange", &ex.rpc, "--ns-exchange", &ex.ns]);
    plughost_test_support::process::output(bin(), &all)
}

#[test]
fn stats_show_every_host_and_its_methods() {
    let ex = TestExchanges::new("stats");
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (one, two) = (format!("stats-a-{suffix}"), format!("stats-b-{suffix}"));
    let a = host(&ex, &one, &["math"]);
    let b = host(&ex, &two, &["echo"]);
    a.wait_serving();
    b.wait_serving();

    for args in [
        &["call", "fibo", "10"][..],
        &["call", "fibo", "11"],
        &["call", "upper", "abc"],
    ] {
        let out = plughost(&ex, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let out = plughost(&ex, &["call", "fibo", "x"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));

    let out = plughost(&ex, &["stats", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let hosts: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let host_of = |name: &str| {
        hosts
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == name)
            .unwrap_or_else(|| panic!("{name} answered: {hosts:#}"))
            .clone()
    };
    let fibo = host_of(&one)["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "fibo")
        .cloned()
        .unwrap();
    assert_eq!(fibo["plugin"], "math");
    assert_eq!(fibo["requests"], 3, "{fibo}");
    assert_eq!(fibo["errors"], 1, "{fibo}");
    assert!(
        fibo["last_error"].as_str().unwrap().starts_with("400: "),
        "{fibo}"
    );
    assert!(fibo["avg_ms"].as_f64().unwrap() > 0.0, "{fibo}");
    assert!(fibo["p99_ms"].as_f64().unwrap() > 0.0, "{fibo}");
    let upper = &host_of(&two)["methods"][0];
    assert_eq!(
        (&upper["plugin"], &upper["method"], &upper["requests"]),
        (&Value::from("echo"), &Value::from("upper"), &Value::from(1)),
        "{upper}"
    );

    let out = plughost(&ex, &["stats"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.starts_with("HOST"), "{table}");
    let row = |host: &str, method: &str| {
        table
            .lines()
            .find(|l| l.starts_with(host) && l.contains(method))
            .unwrap_or_else(|| panic!("a row for {host} {method}:\n{table}"))
            .to_owned()
    };
    assert!(row(&one, "math.fibo").contains("400: "), "{table}");
    row(&two, "echo.upper");
}

#[test]
fn top_refreshes_until_interrupted() {
    use std::io::Read;
    let ex = TestExchanges::new("top");
    let name = format!("top-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let h = host(&ex, &name, &["math"]);
    h.wait_serving();
    let mut child = std::process::Command::new(bin())
        .args(["top", "--rpc-exchange", &ex.rpc, "--ns-exchange", &ex.ns])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Read until two screens came (each starts by clearing the screen).
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while String::from_utf8_lossy(&seen).matches("\x1b[2J").count() < 2 {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let screens = reader.join().unwrap();
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(screens.matches("\x1b[2J").count(), 2, "{screens}");
    assert!(
        screens.contains(&name),
        "each screen lists the host:\n{screens}"
    );
    assert!(status.success(), "ctrl-c ends top quietly: {status:?}");
}
