//! Faults a host must contain, tried against the real `plughost run`:
//! a stuck plugin costs only its own threads, a request's timeout runs
//! from its delivery, and shutdown is bounded however badly a plugin or an
//! admin client behaves.

#![allow(clippy::unwrap_used)]

use std::{
    os::unix::{fs::PermissionsExt, net::UnixStream},
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use plughost::{
    admin::{self, AdminRequest},
    manifest::Manifest,
    status::HostStatus,
};
use plughost_client::{Client, ClientOptions, Exchanges, RpcError};
use plughost_test_support::{
    free_port, plughost_bin, plugin_lib, process, KillOnDrop, TempManifest, TestExchanges, AMQP_URL,
};
use serde_json::json;

fn rabbitmq(ex: &TestExchanges, prefetch: u16) -> String {
    format!(
        "[rabbitmq]\nurl = {AMQP_URL:?}\nrpc_exchange = {:?}\nns_exchange = {:?}\nprefetch = {prefetch}\n",
        ex.rpc, ex.ns
    )
}

fn no_tracker() -> &'static str {
    "[roles]\nmanager = false\nservices = false\n"
}

async fn client(ex: &TestExchanges) -> Arc<Client> {
    let mut options = ClientOptions::new(AMQP_URL);
    options.exchanges = Exchanges {
        rpc: ex.rpc.clone(),
        ns: ex.ns.clone(),
    };
    Arc::new(Client::connect(options).await.unwrap())
}

async fn status(manifest: &Path) -> Option<HostStatus> {
    let socket = admin::socket_path(&Manifest::load(manifest).unwrap());
    admin::request(&socket, AdminRequest::Status)
        .await
        .ok()
        .and_then(|r| r.status)
}

/// Waits (up to 60 s: the host starts and connects on a busy test machine)
/// until `check` holds for the host's status.
async fn wait_status(manifest: &Path, what: &str, check: impl Fn(&HostStatus) -> bool) {
    let started = Instant::now();
    loop {
        if status(manifest).await.is_some_and(|s| check(&s)) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn in_flight(status: &HostStatus, plugin: &str) -> usize {
    status
        .plugins
        .iter()
        .filter(|p| p.name == plugin)
        .map(|p| p.in_flight)
        .sum()
}

fn calls_of(status: &HostStatus, plugin: &str, method: &str) -> u64 {
    status
        .plugins
        .iter()
        .filter(|p| p.name == plugin)
        .flat_map(|p| p.calls.iter())
        .filter(|(m, _)| m == method)
        .map(|(_, n)| *n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_plugin_with_its_calls_in_flight_does_not_slow_another_plugins_calls() {
    // The reproduction: a method allowed 300 calls at once, all of
    // them stuck. With one shared blocking pool of 256 threads, `fibo` of
    // another plugin found no thread and timed out.
    let ex = TestExchanges::new("bulkhead");
    let m = TempManifest::new(&format!(
        "[host]\nname = \"bulkhead\"\n{}\n{}\n\
         [[plugins]]\npath = {:?}\n[plugins.methods.fibo]\ntimeout_ms = 2000\n\n\
         [[plugins]]\npath = {:?}\n[plugins.methods.sleep_ms]\nconcurrency = 300\ntimeout_ms = 60000\n",
        rabbitmq(&ex, 400),
        no_tracker(),
        plugin_lib("math").display().to_string(),
        plugin_lib("echo").display().to_string(),
    ));
    let _host = KillOnDrop::spawn(
        plughost_bin(),
        &["run", "--manifest", m.path().to_str().unwrap()],
    );
    wait_status(m.path(), "serving", |s| s.broker == "serving").await;
    let client = client(&ex).await;

    let stuck: Vec<_> = (0..300)
        .map(|_| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                let _ = client
                    .call_with_timeout("sleep_ms", &[json!(30_000)], Duration::from_secs(60))
                    .await;
            })
        })
        .collect();
    wait_status(m.path(), "300 stuck calls inside echo", |s| {
        in_flight(s, "echo") == 300
    })
    .await;

    let fibos: Vec<_> = (0..50)
        .map(|_| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                client
                    .call_with_timeout("fibo", &[json!(20)], Duration::from_secs(2))
                    .await
            })
        })
        .collect();
    for fibo in fibos {
        assert_eq!(fibo.await.unwrap().unwrap(), json!(6765));
    }
    for call in stuck {
        call.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_waiting_for_a_thread_times_out_from_its_delivery_and_never_runs() {
    // echo gets one thread: a stuck `sleep_ms` holds it, so `upper` waits
    // for a thread. Its 1 s timeout counts from its delivery: it is
    // answered 504 at about 1 s, and `upper` never runs afterwards.
    let ex = TestExchanges::new("delivery");
    let m = TempManifest::new(&format!(
        "[host]\nname = \"delivery\"\n{}\n{}\n\
         [[plugins]]\npath = {:?}\nthreads = 1\n\
         [plugins.methods.sleep_ms]\ntimeout_ms = 60000\n\
         [plugins.methods.upper]\ntimeout_ms = 1000\n",
        rabbitmq(&ex, 16),
        no_tracker(),
        plugin_lib("echo").display().to_string(),
    ));
    let _host = KillOnDrop::spawn(
        plughost_bin(),
        &["run", "--manifest", m.path().to_str().unwrap()],
    );
    wait_status(m.path(), "serving", |s| s.broker == "serving").await;
    let client = client(&ex).await;
    let stuck = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            let _ = client
                .call_with_timeout("sleep_ms", &[json!(3_000)], Duration::from_secs(60))
                .await;
        })
    };
    wait_status(m.path(), "the stuck call inside echo", |s| {
        in_flight(s, "echo") == 1
    })
    .await;

    let asked = Instant::now();
    let err = client
        .call_with_timeout("upper", &[json!("late")], Duration::from_secs(30))
        .await
        .unwrap_err();
    let waited = asked.elapsed();
    assert!(
        matches!(err, RpcError::Remote { code: 504, .. }),
        "504 from the host: {err}"
    );
    // The method's timeout is 1 s; the margin covers broker round trips on
    // a busy test machine, not another timeout.
    assert!(waited < Duration::from_secs(3), "answered after {waited:?}");
    // The thread frees up when `sleep_ms` returns; a call queued after
    // `upper` is answered only after `upper`'s turn has come and gone.
    stuck.await.unwrap();
    assert!(client.call_json("version", &[]).await.is_ok());
    let s = status(m.path()).await.unwrap();
    assert_eq!(calls_of(&s, "echo", "upper"), 0, "upper never ran");
}

#[test]
fn a_concurrency_the_plugin_threads_cannot_honour_is_refused_at_load() {
    let m = TempManifest::new(&format!(
        "[[plugins]]\npath = {:?}\nthreads = 8\n[plugins.methods.sleep_ms]\nconcurrency = 300\n",
        plugin_lib("echo").display().to_string(),
    ));
    let out = process::output(
        plughost_bin(),
        &["plugins", "--manifest", m.path().to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = process::stderr(&out);
    assert!(
        err.contains("sleep_ms") && err.contains("concurrency 300") && err.contains("8 threads"),
        "{err}"
    );

    let m = TempManifest::new(&format!(
        "[host]\nmax_plugin_threads = 100\n[[plugins]]\npath = {:?}\n[plugins.methods.sleep_ms]\nconcurrency = 300\n",
        plugin_lib("echo").display().to_string(),
    ));
    let out = process::output(
        plughost_bin(),
        &["plugins", "--manifest", m.path().to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = process::stderr(&out);
    // sleep_ms's 300 plus the default 16 for each of echo's four other methods.
    assert!(
        err.contains("need 364 threads") && err.contains("max_plugin_threads = 100"),
        "{err}"
    );
}

/// A host with the stop-ignoring fixture service, its own tracker ports,
/// and a 2 s shutdown grace.
fn stubborn_host(ex: &TestExchanges) -> TempManifest {
    TempManifest::new(&format!(
        "[host]\nname = \"stubborn\"\nshutdown_grace_ms = 2000\n{}\n\
         [zeromq]\ndiscovery = \"tcp://127.0.0.1:{}\"\nmanagement = \"tcp://127.0.0.1:{}\"\n\
         beacon_interval_ms = 100\nheartbeat_interval_ms = 100\n\n\
         [[plugins]]\npath = {:?}\n",
        rabbitmq(ex, 16),
        free_port(),
        free_port(),
        plugin_lib("fixture-ignores-stop").display().to_string(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_stop_ignoring_service_and_a_silent_admin_client_exits_within_the_grace() {
    let ex = TestExchanges::new("grace");
    let m = stubborn_host(&ex);
    let mut host = KillOnDrop(
        Command::new(plughost_bin())
            .args(["run", "--manifest", m.path().to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_status(m.path(), "serving", |s| s.broker == "serving").await;

    // A client that connects to the admin socket and says nothing...
    let socket = admin::socket_path(&Manifest::load(m.path()).unwrap());
    let _silent = UnixStream::connect(&socket).unwrap();
    // ...holds up nobody else.
    let out = tokio::task::spawn_blocking({
        let manifest = m.path().to_path_buf();
        move || {
            process::output(
                plughost_bin(),
                &["status", "--manifest", manifest.to_str().unwrap()],
            )
        }
    });
    let out = tokio::time::timeout(Duration::from_secs(10), out)
        .await
        .expect("plughost status answers while a silent client is connected")
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let asked = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &host.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut status = None;
    while asked.elapsed() < Duration::from_secs(15) {
        if let Some(s) = host.0.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = asked.elapsed();
    let status =
        status.unwrap_or_else(|| panic!("plughost run still running {took:?} after SIGTERM"));
    // Grace 2 s; the margin covers closing the broker connection and
    // process exit on a busy machine.
    assert!(took < Duration::from_secs(5), "exited after {took:?}");
    assert!(
        !status.success(),
        "abandoning work is a failure: {status:?}"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(host.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("stubborn")
            && stderr.contains("ignored stop")
            && stderr.contains("2000 ms"),
        "names what it abandoned: {stderr}"
    );
}

#[test]
fn a_clean_shutdown_exits_zero() {
    let ex = TestExchanges::new("clean");
    let m = TempManifest::new(&format!(
        "[host]\nname = \"clean\"\n{}\n{}\n[[plugins]]\npath = {:?}\n",
        rabbitmq(&ex, 16),
        no_tracker(),
        plugin_lib("math").display().to_string(),
    ));
    let mut host = KillOnDrop::spawn(
        plughost_bin(),
        &["run", "--manifest", m.path().to_str().unwrap()],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(wait_status(m.path(), "serving", |s| s.broker == "serving"));
    Command::new("kill")
        .args(["-TERM", &host.0.id().to_string()])
        .status()
        .unwrap();
    let status = host.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn an_admin_socket_in_a_folder_others_can_write_to_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = dir.path().join("admin.sock");
    let m = TempManifest::new(&format!(
        "[host]\nadmin = {:?}\n[roles]\nname_service = false\nrpc = false\nmanager = false\nservices = false\n",
        socket.display().to_string()
    ));
    let out = process::output(
        plughost_bin(),
        &["run", "--manifest", m.path().to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = process::stderr(&out);
    assert!(
        err.contains("writable by others") && err.contains("chmod go-w"),
        "{err}"
    );
    assert!(!socket.exists());
}
