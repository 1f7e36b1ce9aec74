//! Hot loading under load: a running host follows its manifest and plugin
//! files, and callers keeping many calls in flight see zero failures while
//! plugins are added, replaced and removed.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use plughost::{
    admin::{self, AdminReply, AdminRequest},
    host::{self, HostOptions},
    manifest::Manifest,
    rpc::{Client, ClientOptions, Exchanges},
};
use plughost_test_support::{plugin_lib, variant_lib, TestExchanges, Variant, AMQP_URL};
use serde_json::{json, Value};
use tokio::{sync::oneshot, task::JoinHandle};

/// A `host::run` in this process, on a manifest in its own folder.
struct RunningHost {
    dir: tempfile::TempDir,
    manifest: PathBuf,
    head: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningHost {
    async fn start(ex: &TestExchanges, plugins: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("plughost.toml");
        let head = format!("[host]\nname = \"hot\"\n{}\n[roles]\nmanager = false\nservices = false\n\n", ex.rabbitmq_toml());
        std::fs::write(&manifest, format!("{head}{plugins}")).unwrap();
        let m = Manifest::load(&manifest).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            host::run(&m, &HostOptions::default(), async { let _ = stopped.await; }).await.unwrap();
        });
        let host = Self { dir, manifest, head, stop: Some(stop), task: Some(task) };
        let started = Instant::now();
        loop {
            if let Ok(reply) = host.admin(AdminRequest::Status).await {
                if reply.status.is_some_and(|s| s.broker == "serving") {
                    break;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(20), "host did not start serving");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        host
    }

    async fn admin(&self, request: AdminRequest) -> Result<AdminReply, admin::AdminError> {
        admin::request(&self.dir.path().join(".plughost.toml.admin.sock"), request).await
    }

    /// Rewrites the manifest's plugins and applies it through `plughost reload`'s path.
    async fn reload_with(&self, plugins: &str) -> AdminReply {
        std::fs::write(&self.manifest, format!("{}{plugins}", self.head)).unwrap();
        self.admin(AdminRequest::Reload).await.unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }
}

fn entry(path: &Path) -> String {
    format!("[[plugins]]\npath = {:?}\n\n", path.display().to_string())
}

async fn client(ex: &TestExchanges) -> Arc<Client> {
    let mut options = ClientOptions::new(AMQP_URL);
    options.exchanges = Exchanges { rpc: ex.rpc.clone(), ns: ex.ns.clone() };
    Arc::new(Client::connect(options).await.unwrap())
}

/// `workers` tasks calling `method(args)` in a loop until stopped; counts
/// failures (by message) and keeps every result with the time it was asked.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    results: Arc<Mutex<Vec<(Instant, Value)>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(client: &Arc<Client>, workers: usize, method: &'static str, args: Vec<Value>) -> Self {
        let load = Self {
            stop: Arc::default(),
            ok: Arc::default(),
            failures: Arc::default(),
            results: Arc::default(),
            tasks: Vec::new(),
        };
        let tasks = (0..workers)
            .map(|_| {
                let (client, args) = (Arc::clone(client), args.clone());
                let (stop, ok, failures, results) =
                    (Arc::clone(&load.stop), Arc::clone(&load.ok), Arc::clone(&load.failures), Arc::clone(&load.results));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let asked = Instant::now();
                        match client.call(method, &args).await {
                            Ok(v) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                results.lock().unwrap().push((asked, v));
                            }
                            Err(e) => failures.lock().unwrap().push(e.to_string()),
                        }
                    }
                })
            })
            .collect();
        Self { tasks, ..load }
    }

    /// Stops the workers and returns (successful calls, failures).
    async fn finish(self) -> (u64, Vec<String>, Vec<(Instant, Value)>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let results = std::mem::take(&mut *self.results.lock().unwrap());
        (self.ok.load(Ordering::Relaxed), self.failures.lock().unwrap().clone(), results)
    }
}

fn echo_build(tag: &str) -> PathBuf {
    variant_lib("echo", &Variant { env: vec![("ECHO_BUILD_TAG".into(), tag.into())], ..Default::default() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_replace_and_remove_under_load_with_zero_failed_calls() {
    let (one, two) = (echo_build("one"), echo_build("two"));
    let (math, faulty) = (plugin_lib("math"), plugin_lib("faulty"));
    let ex = TestExchanges::new("hot");
    let host = RunningHost::start(&ex, &(entry(&math) + &entry(&one))).await;
    let c = client(&ex).await;

    let fibo = Load::start(&c, 16, "fibo", vec![json!(20)]);
    let versions = Load::start(&c, 8, "version", vec![]);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Add: faulty's methods become callable.
    assert_eq!(c.call("huge", &[json!(0)]).await.unwrap_err().code(), 404);
    let reply = host.reload_with(&(entry(&math) + &entry(&one) + &entry(&faulty))).await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(reply.changes.unwrap().added, ["faulty"]);
    assert_eq!(c.call("huge", &[json!(0)]).await.unwrap(), json!(""));

    // Replace echo with a rebuild while a slow call runs on the old one.
    let slow = { let c = Arc::clone(&c); tokio::spawn(async move { c.call("sleep_ms", &[json!(1000)]).await }) };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reply = host.reload_with(&(entry(&math) + &entry(&two) + &entry(&faulty))).await;
    let switched = Instant::now();
    assert!(reply.ok, "{reply:?}");
    assert_eq!(reply.changes.unwrap().replaced, ["echo"]);
    assert_eq!(slow.await.unwrap().unwrap(), json!(1000), "the call in flight finishes on the old version");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (ok, failures, results) = versions.finish().await;
    assert!(failures.is_empty(), "version calls failed: {failures:?}");
    assert!(results.iter().any(|(_, v)| v == "0.1.0+one"), "the old version served before the switch");
    let after: Vec<_> = results.iter().filter(|(asked, _)| *asked > switched).collect();
    assert!(!after.is_empty() && after.iter().all(|(_, v)| v == "0.1.0+two"), "every call after the switch gets the new version ({ok} calls)");

    // Remove echo while a slow call runs: it completes, then echo is gone.
    let slow = { let c = Arc::clone(&c); tokio::spawn(async move { c.call("sleep_ms", &[json!(1000)]).await }) };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reply = host.reload_with(&(entry(&math) + &entry(&faulty))).await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(reply.changes.unwrap().removed, ["echo"]);
    assert_eq!(slow.await.unwrap().unwrap(), json!(1000), "calls running on a removed plugin complete");
    assert_eq!(c.call("upper", &[json!("x")]).await.unwrap_err().code(), 404);

    let (ok, failures, _) = fibo.finish().await;
    assert!(failures.is_empty(), "fibo calls failed during reloads: {failures:?}");
    assert!(ok > 100, "the load really ran: {ok} calls");

    let status = host.admin(AdminRequest::Status).await.unwrap().status.unwrap();
    let states: BTreeMap<String, Vec<String>> = status.plugins.iter().fold(BTreeMap::new(), |mut m, p| {
        m.entry(p.name.clone()).or_default().push(format!("{} {}", p.version, p.state));
        m
    });
    assert_eq!(states["echo"], ["0.1.0 retired", "0.1.0 retired"], "{status:?}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_changes_leave_the_old_set_serving_with_a_clear_error() {
    let math = plugin_lib("math");
    let ex = TestExchanges::new("hot-bad");
    let host = RunningHost::start(&ex, &entry(&math)).await;
    let c = client(&ex).await;
    let load = Load::start(&c, 16, "fibo", vec![json!(15)]);

    let reply = host.reload_with("[[plugins]]\npath = \"x.so\"\ncolour = \"red\"\n").await;
    assert!(!reply.ok);
    let error = reply.error.unwrap();
    assert!(error.contains("colour") && error.contains("line"), "{error}");

    let old_api = variant_lib("echo", &Variant { api_version: Some("0.2.0".into()), ..Default::default() });
    let reply = host.reload_with(&(entry(&math) + &entry(&old_api))).await;
    assert!(!reply.ok);
    assert!(reply.error.as_deref().unwrap().contains("built against plugin-api 0.2.0"), "{reply:?}");

    let echo = plugin_lib("echo");
    let pinned = format!("{}\nsha256 = \"{}\"\n", entry(&echo).trim_end(), "ab".repeat(32));
    let reply = host.reload_with(&(entry(&math) + &pinned + "\n")).await;
    assert!(!reply.ok);
    assert!(reply.error.as_deref().unwrap().contains("manifest pins abab"), "{reply:?}");

    // Still the old set: fibo served all along, echo never arrived.
    assert_eq!(c.call("upper", &[json!("x")]).await.unwrap_err().code(), 404);
    let (ok, failures, _) = load.finish().await;
    assert!(failures.is_empty() && ok > 0, "{failures:?}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_manifest_file_is_enough() {
    let (math, echo) = (plugin_lib("math"), plugin_lib("echo"));
    let ex = TestExchanges::new("hot-watch");
    let host = RunningHost::start(&ex, &entry(&math)).await;
    let c = client(&ex).await;
    // No admin request: the host sees the file change by itself.
    std::fs::write(&host.manifest, format!("{}{}{}", host.head, entry(&math), entry(&echo))).unwrap();
    let started = Instant::now();
    loop {
        match c.call("upper", &[json!("watched")]).await {
            Ok(v) => {
                assert_eq!(v, json!("WATCHED"));
                break;
            }
            Err(e) => assert_eq!(e.code(), 404, "{e}"),
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the edit was never applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    host.stop().await;
}
