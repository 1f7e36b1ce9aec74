//! A three-node RabbitMQ cluster of the test binary's own, built from
//! [`RabbitNode`]s: each node has its own name, ports, data and log
//! folders and config file (see `rabbit_node`), and all of them share one
//! Erlang cookie (the nodes of one test process get the same one), which is
//! what lets them join. The second and third nodes join the first with
//! `stop_app`, `join_cluster`, `start_app`.
//!
//! Starting three nodes takes seconds, so one cluster serves every cluster
//! test of a test binary ([`RabbitCluster::shared`]): tests that stop a
//! node start it again before they end (a [`NodeStopped`] guard does it
//! even when the test fails), and each test uses exchange names of its own.
//! The cluster is torn down when the test process exits (an `atexit`
//! handler drops the nodes: statics are never dropped).

use std::{
    process::Output,
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use crate::{NodeConfig, RabbitNode};

/// Three clustered nodes.
pub struct RabbitCluster {
    nodes: Vec<RabbitNode>,
}

/// The process-wide cluster, taken out and dropped at exit.
static SHARED: OnceLock<Mutex<Option<RabbitCluster>>> = OnceLock::new();

extern "C" fn stop_shared_cluster() {
    if let Some(cell) = SHARED.get() {
        let cluster = cell.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(cluster);
    }
}

impl RabbitCluster {
    /// Starts `n` nodes (in parallel) and joins the others to the first.
    pub fn start(n: usize) -> Self {
        assert!(n >= 1);
        let starting: Vec<_> = (0..n)
            .map(|_| std::thread::spawn(|| RabbitNode::start_with(NodeConfig::default())))
            .collect();
        let nodes: Vec<RabbitNode> = starting
            .into_iter()
            .map(|t| t.join().expect("a node starts"))
            .collect();
        let first = nodes[0].name().to_owned();
        for node in &nodes[1..] {
            node.ctl_ok(&["stop_app"]);
            node.ctl_ok(&["join_cluster", &first]);
            node.start_app();
        }
        let cluster = Self { nodes };
        cluster.wait_running(n);
        cluster
    }

    /// The binary's one three-node cluster, started on first use and
    /// stopped when the process exits. Hold the returned guard for the
    /// whole test: cluster tests take turns, since some stop nodes.
    pub fn shared() -> SharedCluster {
        let cell = SHARED.get_or_init(|| {
            // SAFETY: registering a plain `extern "C" fn` with atexit has
            // no preconditions.
            unsafe {
                libc::atexit(stop_shared_cluster);
            }
            Mutex::new(Some(Self::start(3)))
        });
        let guard = cell.lock().unwrap_or_else(|p| p.into_inner());
        let cluster = SharedCluster(guard);
        // A test that failed while a node was stopped left it to its guard;
        // make sure every node runs before the next test starts.
        for node in cluster.nodes() {
            if std::net::TcpStream::connect(("127.0.0.1", node.port())).is_err() {
                node.start_app();
            }
        }
        cluster.wait_running(cluster.nodes().len());
        cluster
    }

    /// Its nodes, the first being the one the others joined.
    pub fn nodes(&self) -> &[RabbitNode] {
        &self.nodes
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &RabbitNode {
        &self.nodes[i]
    }

    /// Every node's AMQP URL, in node order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RabbitNode::url).collect()
    }

    /// The URLs starting at node `first` (then the others in order): a
    /// caller or host that prefers that node and fails over to the rest.
    pub fn urls_from(&self, first: usize) -> Vec<String> {
        let n = self.nodes.len();
        (0..n).map(|i| self.nodes[(first + i) % n].url()).collect()
    }

    /// `rabbitmqctl args...` against the first running node.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let node = self
            .nodes
            .iter()
            .find(|n| std::net::TcpStream::connect(("127.0.0.1", n.port())).is_ok())
            .unwrap_or(&self.nodes[0]);
        node.ctl(args)
    }

    /// Like [`RabbitCluster::ctl`], panicking with the output on failure.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        crate::rabbit_node::ctl_stdout(args, &self.ctl(args))
    }

    /// `stop_app` on node `i`: its connections drop and it refuses new
    /// ones; the Erlang node stays up. Start it again by dropping the guard.
    pub fn stop_node(&self, i: usize) -> NodeStopped<'_> {
        self.nodes[i].stop_app();
        NodeStopped {
            node: &self.nodes[i],
            running: false,
        }
    }

    /// Waits until `n` nodes report themselves running in the cluster.
    fn wait_running(&self, n: usize) {
        let started = Instant::now();
        loop {
            let status = self.ctl(&["cluster_status", "--formatter", "json"]);
            let text = String::from_utf8_lossy(&status.stdout).into_owned();
            let running = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["running_nodes"].as_array().map(Vec::len))
                .unwrap_or(0);
            if running >= n {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the cluster never had {n} running nodes: {text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Exclusive use of the shared cluster for one test.
pub struct SharedCluster(std::sync::MutexGuard<'static, Option<RabbitCluster>>);

impl std::ops::Deref for SharedCluster {
    type Target = RabbitCluster;

    fn deref(&self) -> &RabbitCluster {
        self.0
            .as_ref()
            .expect("the cluster runs until the process exits")
    }
}

/// A node stopped with `stop_app`; started again on [`NodeStopped::start`]
/// or on drop.
pub struct NodeStopped<'a> {
    node: &'a RabbitNode,
    running: bool,
}

impl NodeStopped<'_> {
    /// `start_app`, waiting for its listener.
    pub fn start(mut self) {
        self.restart();
    }

    fn restart(&mut self) {
        if !self.running {
            self.running = true;
            self.node.start_app();
        }
    }
}

impl Drop for NodeStopped<'_> {
    fn drop(&mut self) {
        self.restart();
    }
}
