//! Helpers shared by the hot-reload test binaries: a host running
//! `host::run` in this process, and a load of concurrent callers.

#![allow(dead_code)]

use std::{
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
};
use plughost_client::{Client, ClientOptions, Exchanges};
use plughost_test_support::{variant_lib, TestExchanges, Variant, AMQP_URL};
use serde_json::Value;
use tokio::{sync::oneshot, task::JoinHandle};

/// A `host::run` in this process, on a manifest in its own folder.
pub struct RunningHost {
    dir: tempfile::TempDir,
    pub manifest: PathBuf,
    admin_socket: PathBuf,
    pub head: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningHost {
    pub async fn start(ex: &TestExchanges, plugins: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("plughost.toml");
        let head = format!(
            "[host]\nname = \"hot\"\n{}\n[roles]\nmanager = false\nservices = false\n\n",
            ex.rabbitmq_toml()
        );
        std::fs::write(&manifest, format!("{head}{plugins}")).unwrap();
        let m = Manifest::load(&manifest).unwrap();
        let admin_socket = admin::socket_path(&m);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            host::run(&m, &HostOptions::default(), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        let host = Self {
            dir,
            manifest,
            admin_socket,
            head,
            stop: Some(stop),
            task: Some(task),
        };
        let started = Instant::now();
        loop {
            if let Ok(reply) = host.admin(AdminRequest::Status).await {
                if reply.status.is_some_and(|s| s.broker == "serving") {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "host did not start serving"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        host
    }

    pub async fn admin(&self, request: AdminRequest) -> Result<AdminReply, admin::AdminError> {
        admin::request(&self.admin_socket, request).await
    }

    /// Rewrites the manifest's plugins and applies it through `plughost reload`'s path.
    pub async fn reload_with(&self, plugins: &str) -> AdminReply {
        std::fs::write(&self.manifest, format!("{}{plugins}", self.head)).unwrap();
        self.admin(AdminRequest::Reload).await.unwrap()
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }
}

pub fn entry(path: &Path) -> String {
    format!("[[plugins]]\npath = {:?}\n\n", path.display().to_string())
}

pub async fn client(ex: &TestExchanges) -> Arc<Client> {
    let mut options = ClientOptions::new(AMQP_URL);
    options.exchanges = Exchanges {
        rpc: ex.rpc.clone(),
        ns: ex.ns.clone(),
    };
    Arc::new(Client::connect(options).await.unwrap())
}

/// `workers` tasks calling `method(args)` in a loop until stopped; counts
/// failures (by message) and keeps every result with the time it was asked.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    results: Arc<Mutex<Vec<(Instant, Value)>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start(
        client: &Arc<Client>,
        workers: usize,
        method: &'static str,
        args: Vec<Value>,
    ) -> Self {
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
                let (stop, ok, failures, results) = (
                    Arc::clone(&load.stop),
                    Arc::clone(&load.ok),
                    Arc::clone(&load.failures),
                    Arc::clone(&load.results),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let asked = Instant::now();
                        match client.call_json(method, &args).await {
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
    pub async fn finish(self) -> (u64, Vec<String>, Vec<(Instant, Value)>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let results = std::mem::take(&mut *self.results.lock().unwrap());
        (
            self.ok.load(Ordering::Relaxed),
            self.failures.lock().unwrap().clone(),
            results,
        )
    }
}

/// A build of the echo plugin whose `version` ends in `+<tag>`.
pub fn echo_build(tag: &str) -> PathBuf {
    variant_lib(
        "echo",
        &Variant {
            env: vec![("ECHO_BUILD_TAG".into(), tag.into())],
            ..Default::default()
        },
    )
}
