//! The command processor against real hosts: `plughost services list/stop`,
//! `plughost cmd-proc`, and a host killed with SIGKILL leaving the manager
//! of another host within the TTL.

#![allow(clippy::unwrap_used)]

use std::{
    io::Write,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use plughost_test_support::{free_port, plugin_lib, process, KillOnDrop, TempManifest};

fn plughost(args: &[&str]) -> Output {
    process::output(env!("CARGO_BIN_EXE_plughost"), args)
}

fn run(manifest: &TempManifest) -> KillOnDrop {
    KillOnDrop::spawn(
        env!("CARGO_BIN_EXE_plughost"),
        &["run", "--manifest", manifest.path().to_str().unwrap()],
    )
}

fn list(management: &str) -> Vec<serde_json::Value> {
    let out = plughost(&["services", "list", "--json", "--manifest", management]);
    if !out.status.success() {
        return Vec::new();
    }
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap_or_default()
}

fn wait_for(
    management: &str,
    what: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let started = Instant::now();
    loop {
        let services = list(management);
        if done(&services) {
            return services;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: {services:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn named<'a>(services: &'a [serde_json::Value], part: &str) -> Option<&'a serde_json::Value> {
    services
        .iter()
        .find(|s| s["name"].as_str().unwrap().contains(part))
}

#[test]
fn list_stop_cmd_proc_and_a_killed_host_expires() {
    let (disc, mgmt) = (free_port(), free_port());
    let zeromq = format!(
        "[zeromq]\ndiscovery = \"tcp://127.0.0.1:{disc}\"\nmanagement = \"tcp://127.0.0.1:{mgmt}\"\nbeacon_interval_ms = 200\nheartbeat_interval_ms = 200\nttl_ms = 1000\n"
    );
    let roles = "name_service = false\nrpc = false\nadmin = false\n";
    let manager = TempManifest::new(&format!(
        "[host]\nname = \"mgr-host\"\n{zeromq}[roles]\n{roles}"
    ));
    let worker = TempManifest::new(&format!(
        "[host]\nname = \"worker-host\"\n{zeromq}[roles]\nmanager = false\n{roles}\n[[plugins]]\npath = {:?}\n",
        plugin_lib("echo").display().to_string()
    ));
    // The CLI finds both endpoints (and the manager, by its beacon) through the manifest.
    let management = manager.path().to_str().unwrap().to_owned();
    let _manager = run(&manager);
    let mut worker_host = run(&worker);

    let services = wait_for(&management, "both hosts and the ticker register", |s| {
        named(s, "plughost mgr-host").is_some()
            && named(s, "plughost worker-host").is_some()
            && named(s, "echo.ticker").is_some()
    });
    let ticker = named(&services, "echo.ticker").unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_owned();

    // The table form shows name, uuid, last message type and age.
    let out = plughost(&["services", "list", "--manifest", &management]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("echo.ticker on worker-host") && table.contains(&ticker),
        "{table}"
    );

    // cmd-proc: l lists (the old text), e exits 0.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plughost"))
        .args(["cmd-proc", "--manifest", &management])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cmd.stdin.take().unwrap().write_all(b"l\ne\n").unwrap();
    let out = cmd.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            ": service_id = {ticker} :time_since_lastUpdate = "
        )),
        "{text}"
    );

    // Stop the ticker: it says BYE and is gone.
    let out = plughost(&["services", "stop", &ticker, "--manifest", &management]);
    assert!(out.status.success(), "{out:?}");
    wait_for(&management, "the stopped ticker leaves", |s| {
        named(s, "echo.ticker").is_none()
    });

    // Kill the worker host without a chance to say BYE: it expires.
    worker_host.0.kill().unwrap();
    worker_host.0.wait().unwrap();
    let killed = Instant::now();
    wait_for(&management, "the killed host expires", |s| {
        named(s, "worker-host").is_none()
    });
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "expired after {:?} (TTL 1 s)",
        killed.elapsed()
    );
    // A stop for an unknown uuid is an error.
    let out = plughost(&["services", "stop", &ticker, "--manifest", &management]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{out:?}"
    );
}

#[test]
fn services_list_without_a_manager_says_so() {
    let port = free_port();
    let out = plughost(&[
        "services",
        "list",
        "--discovery",
        &format!("tcp://127.0.0.1:{port}"),
        "--management",
        &format!("tcp://127.0.0.1:{}", free_port()),
        "--timeout",
        "1",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("no beacon"),
        "{err}"
    );
}
