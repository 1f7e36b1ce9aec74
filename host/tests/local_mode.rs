//! Local mode: `plughost run` on a machine with no broker serves its
//! plugins on a Unix socket through the same dispatch path, and the CLI
//! finds it there. The broker URL points at a closed port; no broker is
//! involved in the no-broker tests at all.

#![allow(clippy::unwrap_used)]

use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use plughost_test_support::{
    free_port, plughost_bin, plugin_lib, process, HostProcess, TempManifest, TestExchanges,
};

/// A manifest for a host with no broker: a closed broker port, its own
/// local socket, its own tracker ports.
fn no_broker_manifest(dir: &std::path::Path, plugins: &[&str]) -> String {
    let mut text = format!(
        "[host]\nname = \"local-test\"\n\n[rabbitmq]\nurl = \"amqp://guest:guest@127.0.0.1:{}/%2f\"\n\n\
         [local]\nsocket = {:?}\n\n[zeromq]\ndiscovery = \"tcp://127.0.0.1:{}\"\nmanagement = \"tcp://127.0.0.1:{}\"\n",
        free_port(),
        dir.join("local.sock").display().to_string(),
        free_port(),
        free_port()
    );
    for plugin in plugins {
        text.push_str(&format!(
            "\n[[plugins]]\npath = {:?}\n",
            plugin_lib(plugin).display().to_string()
        ));
    }
    text
}

fn plughost(host: &HostProcess, args: &[&str]) -> Output {
    host.plughost(args)
}

/// Calls `fibo 10` until the host answers it (it needs a moment to load).
fn wait_answering(host: &HostProcess) {
    let started = Instant::now();
    loop {
        let out = plughost(host, &["call", "fibo", "10"]);
        if out.status.success() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the host never answered over its local socket: {out:?}\nlog:\n{}",
            host.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A host with no broker, and the folder its local socket is in.
struct LocalHost {
    host: HostProcess,
    dir: tempfile::TempDir,
}

fn no_broker_host(plugins: &[&str]) -> LocalHost {
    let dir = tempfile::tempdir().unwrap();
    let host = HostProcess::start(plughost_bin(), &no_broker_manifest(dir.path(), plugins));
    wait_answering(&host);
    LocalHost { host, dir }
}

#[test]
fn without_a_broker_the_cli_calls_the_host_on_its_local_socket() {
    let LocalHost { host, dir: _dir } = no_broker_host(&["math", "echo"]);

    let out = plughost(&host, &["call", "fibo", "10"]);
    assert_eq!(process::stdout(&out).trim(), "55", "{out:?}");
    assert!(
        process::stderr(&out).contains("answered by the local host on"),
        "the CLI says which transport answered: {out:?}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&plughost(&host, &["call", "--json", "fibo", "10"]).stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({ "result": 55, "transport": "local" })
    );

    let missing = plughost(&host, &["call", "nosuch"]);
    assert_eq!(missing.status.code(), Some(3), "{missing:?}");
    assert!(process::stderr(&missing).contains("[404]"), "{missing:?}");

    let route = plughost(&host, &["find", "fibo"]);
    assert_eq!(
        process::stdout(&route).trim(),
        "com.goffersoft.math.algo.fibo",
        "{route:?}"
    );

    // A stuck method is answered 504 at the caller's deadline, as over the broker.
    let started = Instant::now();
    let stuck = plughost(&host, &["call", "sleep_ms", "20000", "--timeout", "1"]);
    let took = started.elapsed();
    assert_eq!(stuck.status.code(), Some(5), "{stuck:?}");
    assert!(process::stderr(&stuck).contains("[504]"), "{stuck:?}");
    // Generous: the CLI starts, connects and waits out a 1 s deadline.
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // The tracker needs no broker: the host lists itself.
    let services = plughost(&host, &["services", "list", "--json"]);
    assert!(services.status.success(), "{services:?}");
    assert!(
        process::stdout(&services).contains("plughost local-test"),
        "{services:?}"
    );

    // The host said, once and plainly, what local mode is (a few seconds
    // after start, when no broker has answered).
    let started = Instant::now();
    while !host.log_text().contains("serving in local mode")
        && started.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = host.log_text();
    assert_eq!(log.matches("serving in local mode").count(), 1, "{log}");
    assert!(log.contains("no redelivery if this host dies"), "{log}");
}

#[test]
fn a_hot_reload_under_local_load_fails_no_call() {
    let LocalHost { host, dir } = no_broker_host(&["math"]);
    let dir = dir.path();
    let bench = Command::new(plughost_bin())
        .args([
            "bench",
            "call",
            "fibo",
            "15",
            "--local",
            "--concurrency",
            "8",
            "--duration",
            "6",
            "--json",
            "--manifest",
        ])
        .arg(host.manifest())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // Add a plugin, then take it away again, while the load runs.
    host.rewrite_manifest(&no_broker_manifest(dir, &["math", "echo"]));
    host.wait_status(Duration::from_secs(30), "added echo", |s| {
        s["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "echo")
    });
    host.rewrite_manifest(&no_broker_manifest(dir, &["math"]));
    host.wait_status(Duration::from_secs(30), "removed echo", |s| {
        !s["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "echo" && p["state"] == "serving")
    });
    let out = bench.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["calls"].as_u64().unwrap() > 100, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert!(
        process::stderr(&out).contains("calling through the local socket"),
        "{out:?}"
    );
}

#[test]
fn with_a_broker_callers_use_it_unless_told_local() {
    let ex = TestExchanges::new("local-beside");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("local.sock");
    let host = HostProcess::start(
        plughost_bin(),
        &format!(
            "[host]\nname = \"local-beside\"\n{}\n[local]\nsocket = {:?}\n\n[roles]\nmanager = false\nservices = false\n\n[[plugins]]\npath = {:?}\n",
            ex.rabbitmq_toml(),
            socket.display().to_string(),
            plugin_lib("math").display().to_string()
        ),
    );
    host.wait_serving();
    let call = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["call", "--json", "fibo", "10"];
        args.extend_from_slice(extra);
        let out = plughost(&host, &args);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(
        call(&[]),
        serde_json::json!({ "result": 55, "transport": "broker" })
    );
    assert_eq!(
        call(&["--local"]),
        serde_json::json!({ "result": 55, "transport": "local" })
    );
    // The host with a broker does not claim local mode.
    assert!(
        !host.log_text().contains("serving in local mode"),
        "{}",
        host.log_text()
    );
}

#[test]
fn with_neither_a_broker_nor_a_local_host_the_caller_is_told_both() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = TempManifest::new(&format!(
        "[rabbitmq]\nurl = \"amqp://guest:guest@127.0.0.1:{}/%2f\"\n[local]\nsocket = {:?}\n",
        free_port(),
        dir.path().join("none.sock").display().to_string()
    ));
    let out = process::output(
        plughost_bin(),
        &[
            "call",
            "fibo",
            "1",
            "--manifest",
            manifest.path().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    let err = process::stderr(&out);
    assert!(
        err.contains("no broker at") && err.contains("--local"),
        "{err}"
    );

    let out = process::output(
        plughost_bin(),
        &[
            "call",
            "fibo",
            "1",
            "--local",
            "--manifest",
            manifest.path().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    assert!(
        process::stderr(&out).contains("no local host on"),
        "{out:?}"
    );
}

/// Writes one frame (length prefix, then `body`).
fn send_frame(stream: &mut std::os::unix::net::UnixStream, body: &[u8]) {
    use std::io::Write;
    let len = u32::try_from(body.len()).unwrap();
    stream.write_all(&len.to_be_bytes()).unwrap();
    stream.write_all(body).unwrap();
}

/// Reads one frame's body.
fn read_frame(stream: &mut std::os::unix::net::UnixStream) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix)?;
    let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut body)?;
    Ok(body)
}

#[test]
fn bad_frames_and_vanishing_callers_on_the_local_socket_cost_only_themselves() {
    use std::{io::Read, os::unix::net::UnixStream};
    let LocalHost { host, dir } = no_broker_host(&["math"]);
    let socket = dir.path().join("local.sock");
    let connect = || {
        let stream = UnixStream::connect(&socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    };

    // Not a request, but it names a correlation id: answered 400, and the
    // connection goes on serving.
    let mut stream = connect();
    send_frame(
        &mut stream,
        br#"{"correlation_id":"bad","call":{"args":[1]}}"#,
    );
    let reply: serde_json::Value =
        serde_json::from_slice(&read_frame(&mut stream).unwrap()).unwrap();
    assert_eq!(reply["correlation_id"], "bad", "{reply}");
    assert_eq!(reply["called"]["error"]["code"], 400, "{reply}");
    send_frame(&mut stream, b"\xff\xfe not json at all");
    send_frame(
        &mut stream,
        br#"{"correlation_id":"ok","call":{"method":"fibo","args":[10]}}"#,
    );
    let reply: serde_json::Value =
        serde_json::from_slice(&read_frame(&mut stream).unwrap()).unwrap();
    assert_eq!(reply["correlation_id"], "ok", "{reply}");
    assert_eq!(reply["called"]["result"], 55, "{reply}");

    // A frame announcing 4 GiB: the host ends that connection without
    // reading (or allocating) it.
    let mut huge = connect();
    use std::io::Write;
    huge.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        huge.read_to_end(&mut rest).unwrap(),
        0,
        "the connection is closed"
    );

    // Callers that vanish: half a frame, and a call left unanswered when
    // the caller goes (its reply has nowhere to go).
    let mut half = connect();
    half.write_all(&[0, 0, 1, 0, b'{']).unwrap();
    drop(half);
    let mut gone = connect();
    send_frame(
        &mut gone,
        br#"{"correlation_id":"1","call":{"method":"fibo","args":[20]}}"#,
    );
    drop(gone);

    // The host serves on, and counted the refusals.
    let out = plughost(&host, &["call", "fibo", "10"]);
    assert_eq!(process::stdout(&out).trim(), "55", "{out:?}");
    let status = host.wait_status(Duration::from_secs(10), "counted the bad frames", |s| {
        s["faults"]["malformed_local_request"] == 2 && s["faults"]["request_too_large"] == 1
    });
    assert!(host.log_text().contains("local socket"), "{status}");
}
