//! A stateful plugin (`plugins/kvstore`) under the real binary: its calls
//! see their deadline and cancellation, its keys survive a hot upgrade made
//! under load, a refused import keeps the old version serving, and its
//! tracked compactor is supervised.

#![allow(clippy::unwrap_used)]

use std::{
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant},
};

use serde_json::Value;

use plughost_test_support::{
    free_port, plughost_bin, plugin_lib, variant_lib, HostProcess, PlughostRun, TempManifest,
    TestExchanges, Variant,
};

/// A manifest serving kvstore from `lib` with `config` (TOML lines of its
/// `[plugins.config]`), and `extra` appended (more plugins).
fn manifest(ex: &TestExchanges, roles: &str, lib: &Path, config: &str, extra: &str) -> String {
    format!(
        "[host]\nname = \"kv-host\"\nwatch = false\n\n{}\n{roles}\n[[plugins]]\npath = {:?}\n[plugins.config]\n{config}\n{extra}",
        ex.rabbitmq_toml(),
        lib.display().to_string(),
    )
}

/// Roles for the RPC tests: no service manager, no tracked services.
const RPC_ONLY: &str = "[roles]\nmanager = false\nservices = false\n";

/// `plughost call --json METHOD ARGS...` against the host; the parsed reply.
fn call(host: &HostProcess, timeout_s: f64, method: &str, args: &[&str]) -> Value {
    let mut argv = vec!["call", "--json", "--timeout"];
    let timeout = timeout_s.to_string();
    argv.push(&timeout);
    argv.push(method);
    argv.extend_from_slice(args);
    let out = host.plughost(&argv);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "plughost call {method}: not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn reload(host: &HostProcess) -> Output {
    host.plughost(&["reload"])
}

fn kvstore_state(status: &Value) -> Vec<(String, String)> {
    status["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "kvstore")
        .map(|p| {
            (
                p["state"].as_str().unwrap_or("").to_owned(),
                p["sha256"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_method_waiting_on_cancellation_returns_at_its_callers_deadline_and_is_logged_as_cancelled() {
    let ex = TestExchanges::new("kvcancel");
    let host = HostProcess::start(
        plughost_bin(),
        &manifest(&ex, RPC_ONLY, &plugin_lib("kvstore"), "", ""),
    );
    host.wait_serving();
    let started = Instant::now();
    // The caller gives the whole call one second; kv_watch would wait for
    // ever for a key nobody writes.
    let reply = call(&host, 1.0, "kv_watch", &["nobody-writes-this"]);
    assert_eq!(reply["error"]["code"], 504, "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the call ended at its deadline, not at the method's 30 s timeout"
    );
    host.wait_status(Duration::from_secs(10), "finished the call", |s| {
        s["plugins"][0]["in_flight"] == 0
    });
    let records = host.log_records();
    let cancelled = records
        .iter()
        .find(|r| {
            r["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("call cancelled"))
        })
        .unwrap_or_else(|| panic!("no `call cancelled` record:\n{}", host.log_text()));
    assert_eq!(cancelled["fields"]["method"], "kv_watch");
    assert_eq!(cancelled["fields"]["reason"], "deadline passed");
    let late = cancelled["fields"]["after_deadline_ms"].as_u64().unwrap();
    assert!(
        late < 100,
        "the method returned {late} ms after its deadline: {cancelled}"
    );
}

#[test]
fn shutdown_cancels_a_call_that_waits_on_cancellation_so_the_host_stops_in_its_grace() {
    let ex = TestExchanges::new("kvshutdown");
    let text = manifest(&ex, RPC_ONLY, &plugin_lib("kvstore"), "", "").replace(
        "watch = false\n",
        "watch = false\nshutdown_grace_ms = 5000\n",
    );
    let m = TempManifest::new(&text);
    let mut host = PlughostRun::start(plughost_bin(), m.path(), &[]);
    let status = |m: &TempManifest| -> Option<Value> {
        let out = Command::new(plughost_bin())
            .args(["status", "--json", "--manifest"])
            .arg(m.path())
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).ok()
    };
    let wait = |what: &str, done: &dyn Fn(&Value) -> bool| {
        let started = Instant::now();
        while !status(&m).is_some_and(|s| done(&s)) {
            assert!(started.elapsed() < Duration::from_secs(60), "never {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait("served", &|s| s["broker"] == "serving");
    // A caller with a minute to spare: only shutdown can end the call early.
    let caller = Command::new(plughost_bin())
        .args([
            "call",
            "--timeout",
            "60",
            "kv_watch",
            "nobody-writes-this",
            "--manifest",
        ])
        .arg(m.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _caller = plughost_test_support::KillOnDrop(caller);
    wait("ran the call", &|s| s["plugins"][0]["in_flight"] == 1);
    let term = Command::new("kill")
        .args(["-TERM", &host.pid().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = host.wait_exit(Duration::from_secs(30));
    let log = host.log_text();
    assert!(
        exit.success(),
        "the host gave up on the call: {exit:?}\n{log}"
    );
    assert!(
        log.contains("call cancelled") && log.contains("cancelled by the host"),
        "{log}"
    );
}

#[test]
fn keys_survive_a_hot_upgrade_under_load_and_a_refused_import_keeps_the_old_version() {
    let ex = TestExchanges::new("kvupgrade");
    // Copies, so the test can point the manifest at another build.
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1").join("libplugin_kvstore.so");
    let v2 = dir.path().join("v2").join("libplugin_kvstore.so");
    for (to, from) in [
        (&v1, plugin_lib("kvstore")),
        (
            &v2,
            variant_lib(
                "kvstore",
                &Variant {
                    env: vec![("KVSTORE_BUILD_TAG".into(), "v2".into())],
                    ..Variant::default()
                },
            ),
        ),
    ] {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
    let host = HostProcess::start(plughost_bin(), &manifest(&ex, RPC_ONLY, &v1, "", ""));
    host.wait_serving();
    assert_eq!(
        call(&host, 10.0, "kv_fill", &["before/", "10000"])["result"],
        10_000
    );
    assert_eq!(call(&host, 10.0, "kv_build", &[])["result"], "default");

    // Write (and read back) distinct keys at concurrency 16 while the new
    // build is hot-loaded.
    let bench = Command::new(plughost_bin())
        .args(["bench", "call", "kv_put", "during/{n}", "{n}"])
        .args([
            "--read-back",
            "kv_get",
            "--concurrency",
            "16",
            "--duration",
            "8",
            "--json",
        ])
        .arg("--manifest")
        .arg(host.manifest())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    host.rewrite_manifest(&manifest(&ex, RPC_ONLY, &v2, "", ""));
    let out = reload(&host);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        host.log_text()
    );
    let out = bench.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let calls = report["calls"].as_u64().unwrap();
    assert!(calls > 0, "{report}");
    assert_eq!(
        report["errors"],
        serde_json::json!({}),
        "bench saw errors: {report}\n{}",
        host.log_text()
    );

    assert_eq!(
        call(&host, 10.0, "kv_build", &[])["result"],
        "v2",
        "the new build serves"
    );
    let missing = |prefix: &str, to: u64| {
        call(&host, 10.0, "kv_missing", &[prefix, "0", &to.to_string()])["result"].clone()
    };
    assert_eq!(
        missing("before/", 10_000),
        serde_json::json!([]),
        "keys written before the upgrade"
    );
    assert_eq!(
        missing("during/", calls),
        serde_json::json!([]),
        "keys written during the upgrade"
    );
    // A new configuration whose instance refuses the state: the reload is
    // refused and the v2 instance goes on serving with every key.
    let before = kvstore_state(&host.status().unwrap());
    assert_eq!(before.len(), 2, "v2 serving, v1 retired: {before:?}");
    assert_eq!(before[0].0, "serving");
    assert_eq!(before[1].0, "retired");
    host.rewrite_manifest(&manifest(&ex, RPC_ONLY, &v2, "refuse_import = true", ""));
    let out = reload(&host);
    assert!(!out.status.success(), "the reload must be refused");
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("refused the state"), "{said}");
    let after = kvstore_state(&host.status().unwrap());
    assert_eq!(after, before, "the old instance serves as it did");
    assert_eq!(call(&host, 10.0, "kv_build", &[])["result"], "v2");
    assert_eq!(
        call(&host, 10.0, "kv_get", &["before/9999"])["result"],
        "9999"
    );
    assert_eq!(missing("during/", calls), serde_json::json!([]));
}

/// A manifest with the service manager and the tracked services on, and
/// kvstore's compactor panicking on its first `panics` runs.
fn supervised(ex: &TestExchanges, disc: u16, mgmt: u16, panics: u32, extra: &str) -> String {
    let roles = format!(
        "[zeromq]\ndiscovery = \"tcp://127.0.0.1:{disc}\"\nmanagement = \"tcp://127.0.0.1:{mgmt}\"\n\
         beacon_interval_ms = 100\nheartbeat_interval_ms = 100\n[roles]\nname_service = false\nrpc = false\n"
    );
    manifest(
        ex,
        &roles,
        &plugin_lib("kvstore"),
        &format!("compactor_panics = {panics}\ncompact_ms = 50\n"),
        extra,
    )
}

fn compactor(status: &Value) -> Value {
    status["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["service"] == "compactor").cloned())
        .unwrap_or(Value::Null)
}

#[test]
fn a_service_that_panics_twice_is_restarted_twice_then_keeps_running() {
    let ex = TestExchanges::new("kvsvc");
    let (disc, mgmt) = (free_port(), free_port());
    let host = HostProcess::start(plughost_bin(), &supervised(&ex, disc, mgmt, 2, ""));
    // Backoff 1 s, then 2 s: running again after about 3 s.
    let status = host.wait_status(
        Duration::from_secs(30),
        "restarted the compactor twice",
        |s| {
            let c = compactor(s);
            c["restarts"] == 2 && c["state"] == "running"
        },
    );
    let first = compactor(&status);
    assert!(
        first["last_error"].as_str().unwrap().contains("panic"),
        "{first}"
    );
    // It keeps running: no third restart.
    std::thread::sleep(Duration::from_secs(3));
    let later = compactor(&host.status().unwrap());
    assert_eq!(later["restarts"], 2, "{later}");
    assert_eq!(later["state"], "running", "{later}");
    let restarts = host
        .log_records()
        .into_iter()
        .filter(|r| {
            r["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("restarting it"))
        })
        .map(|r| r["fields"]["delay_ms"].as_u64().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(restarts, [1000, 2000], "{}", host.log_text());
    let text = String::from_utf8_lossy(&host.plughost(&["status"]).stdout).to_string();
    assert!(text.contains("kvstore.compactor"), "{text}");
}

#[test]
fn a_service_stopped_on_purpose_stays_stopped_across_an_unrelated_reload() {
    let ex = TestExchanges::new("kvstop");
    let (disc, mgmt) = (free_port(), free_port());
    let host = HostProcess::start(plughost_bin(), &supervised(&ex, disc, mgmt, 0, ""));
    host.wait_status(Duration::from_secs(30), "started the compactor", |s| {
        compactor(s)["state"] == "running"
    });
    let list = host.plughost(&["services", "list", "--json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let uuid = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("kvstore.compactor"))
        })
        .unwrap_or_else(|| panic!("{list}"))["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = host.plughost(&["services", "stop", &uuid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    host.wait_status(Duration::from_secs(10), "stopped the compactor", |s| {
        compactor(s)["state"] == "stopped"
    });
    // An unrelated change: another plugin joins.
    let math = format!(
        "[[plugins]]\npath = {:?}\n",
        plugin_lib("math").display().to_string()
    );
    host.rewrite_manifest(&supervised(&ex, disc, mgmt, 0, &math));
    let out = reload(&host);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_secs(3));
    let c = compactor(&host.status().unwrap());
    assert_eq!(c["state"], "stopped", "{c}");
    assert_eq!(c["restarts"], 0, "{c}");
}
