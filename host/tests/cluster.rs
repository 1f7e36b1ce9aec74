//! Hosts on a three-node RabbitMQ cluster (issue 17): real nodes of the
//! test's own (`RabbitCluster`, joined with `join_cluster`), real `plughost
//! run` hosts spread over them, and the real `plughost bench call` at 32
//! calls in flight while a node stops and comes back, a host is killed, or
//! a new host joins. Also: a host on one node and callers (v2 and the old
//! tools' v1) on another, and the route queues' declarations as
//! `rabbitmqctl list_queues` shows them.
//!
//! The cluster is shared by every test of this binary (starting three
//! nodes takes seconds), so the tests take turns on it and start every
//! node they stop again before they end; each uses exchange names of its
//! own.

#![allow(clippy::unwrap_used)]

use std::{
    io::Read,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use plughost_client::BrokerUrls;
use plughost_test_support::{
    plughost_bin, plugin_lib, pyzmq::pika_path, HostProcess, RabbitCluster,
};
use serde_json::Value;

/// Calls the bench keeps in flight (the figure).
const IN_FLIGHT: usize = 32;

/// Exchange names of one test's own.
struct Names {
    rpc: String,
    ns: String,
}

impl Names {
    fn new(label: &str) -> Self {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..10];
        Self {
            rpc: format!("cluster.{label}.{id}.rpc"),
            ns: format!("cluster.{label}.{id}.ns"),
        }
    }

    /// `--amqp a,b,c --rpc-exchange .. --ns-exchange ..` for the CLI.
    fn cli_args(&self, urls: &[String]) -> Vec<String> {
        vec![
            "--amqp".into(),
            urls.join(","),
            "--rpc-exchange".into(),
            self.rpc.clone(),
            "--ns-exchange".into(),
            self.ns.clone(),
        ]
    }

    fn route_queue(&self, route: &str) -> String {
        format!("plughost.{}.route.{route}", self.rpc)
    }
}

/// The manifest of a host named `name` serving `plugins`, given `urls` (a
/// cluster's nodes) and `route_queues`.
fn manifest(name: &str, names: &Names, urls: &[String], kind: &str, plugins: &[&str]) -> String {
    let mut text = format!(
        "[host]\nname = {name:?}\n\n[rabbitmq]\nurls = {urls:?}\nrpc_exchange = {:?}\nns_exchange = {:?}\nprefetch = 16\nroute_queues = {kind:?}\n\n[roles]\nmanager = false\nservices = false\n",
        names.rpc, names.ns
    );
    for p in plugins {
        text.push_str(&format!(
            "\n[[plugins]]\npath = {:?}\n",
            plugin_lib(p).display().to_string()
        ));
    }
    text
}

/// A host running [`manifest`].
fn host(name: &str, names: &Names, urls: &[String], kind: &str, plugins: &[&str]) -> HostProcess {
    HostProcess::start(plughost_bin(), &manifest(name, names, urls, kind, plugins))
}

/// Host names whose place in the URL list (`BrokerUrls::spread`, the rule
/// the host applies to its name) is node 0, 1, 2...: hosts given the same
/// list of `n` nodes land one on each.
fn spread_names(label: &str, n: usize, urls: &[String]) -> Vec<String> {
    let mut names = vec![String::new(); n];
    for k in 0.. {
        let name = format!("{label}-{k}");
        let at = BrokerUrls::new(urls[0].as_str(), &urls[1..])
            .spread(&name)
            .order()
            .next()
            .unwrap()
            .0;
        if names[at].is_empty() {
            names[at] = name;
        }
        if names.iter().all(|n| !n.is_empty()) {
            return names;
        }
    }
    unreachable!()
}

fn plughost(args: &[String]) -> Output {
    Command::new(plughost_bin()).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `plughost call <method> <args..>` through `urls`.
fn call(names: &Names, urls: &[String], method: &str, args: &[&str]) -> Output {
    let mut all: Vec<String> = vec!["call".into(), method.into()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    all.extend(["--timeout".into(), "20".into()]);
    all.extend(names.cli_args(urls));
    plughost(&all)
}

/// `plughost find <method>` through `urls`: the route, or the failure.
fn find(names: &Names, urls: &[String], method: &str) -> Result<String, String> {
    let mut all: Vec<String> = vec!["find".into(), method.into()];
    all.extend(names.cli_args(urls));
    let out = plughost(&all);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(text(&out))
    }
}

/// `plughost bench call` running in the background.
struct Bench {
    child: Child,
}

impl Bench {
    /// `seconds` of `method args` at [`IN_FLIGHT`] calls in flight.
    fn start(names: &Names, urls: &[String], seconds: u32, method: &str, args: &[&str]) -> Self {
        let mut all: Vec<String> = vec!["bench".into(), "call".into(), method.into()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all.extend([
            "--concurrency".into(),
            IN_FLIGHT.to_string(),
            "--duration".into(),
            seconds.to_string(),
            "--json".into(),
        ]);
        all.extend(names.cli_args(urls));
        let child = Command::new(plughost_bin())
            .args(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self { child }
    }

    /// Waits for the end; the bench's summary (calls, errors by code).
    fn finish(mut self) -> Value {
        let status = self.child.wait().unwrap();
        let mut out = String::new();
        let mut err = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(status.success(), "bench failed ({status}):\n{out}\n{err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"))
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bench's failed calls by code.
fn errors(summary: &Value) -> Vec<(u16, u64)> {
    summary["errors"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(code, n)| (code.parse().unwrap(), n.as_u64().unwrap()))
        .collect()
}

/// Calls a host has run, over all its plugins' methods.
fn calls_run(status: &Value) -> u64 {
    status["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["calls"].as_array().into_iter().flatten())
        .map(|c| c[1].as_u64().unwrap_or(0))
        .sum()
}

/// The connection names of every client of `node`.
fn connections_on(cluster: &RabbitCluster, node: usize) -> String {
    cluster
        .node(node)
        .ctl_ok(&["list_connections", "client_properties", "-q"])
}

/// `rabbitmqctl list_queues name type durable arguments`, the line of `queue`.
fn queue_line(cluster: &RabbitCluster, queue: &str) -> Option<String> {
    cluster
        .ctl_ok(&["list_queues", "name", "type", "durable", "arguments", "-q"])
        .lines()
        .find(|line| line.split('\t').next() == Some(queue))
        .map(str::to_owned)
}

#[test]
fn route_queue_declarations_are_the_documented_ones() {
    let cluster = RabbitCluster::shared();
    let urls = cluster.urls();
    let classic = Names::new("decl-classic");
    let quorum = Names::new("decl-quorum");
    let a = host("decl-classic", &classic, &urls, "classic", &["math"]);
    let b = host("decl-quorum", &quorum, &urls, "quorum", &["math"]);
    a.wait_serving();
    b.wait_serving();
    let route = "com.goffersoft.math.algo.fibo";
    let line = queue_line(&cluster, &classic.route_queue(route)).unwrap();
    let cols: Vec<&str> = line.split('\t').collect();
    assert_eq!(cols[1..3], ["classic", "true"], "{line}");
    assert!(
        cols[3].contains("x-expires")
            && cols[3].contains("600000")
            && !cols[3].contains("x-queue-type"),
        "{line}"
    );
    let line = queue_line(&cluster, &quorum.route_queue(route)).unwrap();
    let cols: Vec<&str> = line.split('\t').collect();
    assert_eq!(cols[1..3], ["quorum", "true"], "{line}");
    assert!(
        cols[3].contains("x-expires") && cols[3].contains("600000") && cols[3].contains("quorum"),
        "{line}"
    );
    // The old tools' exchanges stay as they declare them: not durable.
    let exchanges = cluster.ctl_ok(&["list_exchanges", "name", "type", "durable", "-q"]);
    for (name, kind) in [(&classic.rpc, "topic"), (&classic.ns, "fanout")] {
        let line = exchanges
            .lines()
            .find(|l| l.split('\t').next() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} in {exchanges}"));
        assert_eq!(
            line.split('\t').collect::<Vec<_>>()[1..],
            [kind, "false"],
            "{line}"
        );
    }
}

/// Starts three hosts, one per node (the first alone, so a classic route
/// queue lives on node 0), and waits until each serves.
fn three_hosts(
    cluster: &RabbitCluster,
    names: &Names,
    label: &str,
    kind: &str,
) -> Vec<HostProcess> {
    let urls = cluster.urls();
    let spread = spread_names(label, 3, &urls);
    let first = host(&spread[0], names, &urls, kind, &["echo"]);
    first.wait_serving();
    let hosts = vec![
        first,
        host(&spread[1], names, &urls, kind, &["echo"]),
        host(&spread[2], names, &urls, kind, &["echo"]),
    ];
    for h in &hosts {
        h.wait_serving();
    }
    // Spread: each node holds one host's connection.
    for (i, name) in spread.iter().enumerate() {
        let on = connections_on(cluster, i);
        assert!(
            on.contains(&format!("plughost host {name} (")),
            "host {name} on node {i}: {on}"
        );
    }
    hosts
}

/// Waits until the hosts together have run `more` calls beyond `from`.
fn wait_calls(hosts: &[HostProcess], from: u64, more: u64, what: &str) -> u64 {
    let started = Instant::now();
    loop {
        let total: u64 = hosts
            .iter()
            .filter_map(HostProcess::status)
            .map(|s| calls_run(&s))
            .sum();
        if total >= from + more {
            return total;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{what}: only {} of {more} more calls run",
            total.saturating_sub(from)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn total_calls(hosts: &[HostProcess]) -> u64 {
    hosts
        .iter()
        .filter_map(HostProcess::status)
        .map(|s| calls_run(&s))
        .sum()
}

/// What the name service answered and the bench measured during an outage.
struct Outage {
    /// `plughost find` answers (or failures) while the node was down.
    finds: Vec<Result<String, String>>,
    /// The bench's summary.
    bench: Value,
}

impl Outage {
    /// Every `find` made while the node was down was answered.
    fn assert_name_service_answered(&self) {
        assert!(
            self.finds.iter().all(Result::is_ok),
            "the name service answers throughout: {:?}",
            self.finds
        );
    }
}

/// Three hosts (one per node) on `kind` route queues and the bench
/// (connected to node 0, the one that stops, as are the first host and,
/// for classic queues, the route queues) at [`IN_FLIGHT`] calls in flight;
/// node 0 stops (`stop_app`) and comes back; `during` runs while it is
/// down.
fn node_outage(kind: &str, during: impl Fn(&[HostProcess], u64)) -> Outage {
    let cluster = RabbitCluster::shared();
    let label = format!("stop-{kind}");
    let names = Names::new(&label);
    let hosts = three_hosts(&cluster, &names, &label, kind);
    let caller = cluster.urls_from(0);
    let bench = Bench::start(&names, &caller, 30, "sleep_ms", &["20"]);
    let before = wait_calls(&hosts, total_calls(&hosts), 200, "before the stop");
    let stopped = cluster.stop_node(0);
    // The name service answers throughout: finds through the same list of
    // nodes (node 0 first, refusing) while it is down.
    let mut finds: Vec<_> = (0..5).map(|_| find(&names, &caller, "sleep_ms")).collect();
    during(&hosts, before);
    finds.extend((0..3).map(|_| find(&names, &caller, "sleep_ms")));
    stopped.start();
    // Back: every host serves every route again, and a call is answered.
    for h in &hosts {
        h.wait_serving();
    }
    let out = call(&names, &caller, "sleep_ms", &["1"]);
    assert!(
        out.status.success(),
        "after the node came back: {}",
        text(&out)
    );
    let bench = bench.finish();
    eprintln!("[{kind}] bench during the outage: {bench}");
    Outage { finds, bench }
}

#[test]
fn a_node_stops_and_comes_back_and_quorum_route_queues_keep_answering() {
    let outage = node_outage("quorum", |hosts, before| {
        // Calls keep being answered while the node is down: the queue's
        // other replicas elect a leader, hosts on the other nodes go on
        // consuming, the host and the bench that were on node 0 reconnect
        // to the next node.
        wait_calls(hosts, before, 300, "while node 0 was down");
    });
    outage.assert_name_service_answered();
    // Only the calls in flight on the bench's lost connection fail (503:
    // the connection is gone, their replies cannot reach it); no call the
    // broker took is lost (none waits out its deadline: no 504).
    let errors = errors(&outage.bench);
    assert!(
        errors.iter().all(|(code, _)| *code == 503),
        "only lost-connection errors: {}",
        outage.bench
    );
    let failed: u64 = errors.iter().map(|(_, n)| n).sum();
    assert!(
        failed <= IN_FLIGHT as u64,
        "at most the {IN_FLIGHT} calls in flight on the lost connection fail: {}",
        outage.bench
    );
    assert!(
        outage.bench["calls"].as_u64().unwrap() > failed + 500,
        "{}",
        outage.bench
    );
}

#[test]
fn a_node_stops_and_comes_back_and_classic_route_queues_fail_fast_until_it_returns() {
    let outage = node_outage("classic", |hosts, _| {
        // As docs/deploying.md says: the route queues live on node 0 (the
        // first host declared them there), so while it is down every host
        // shows the routes broken ("home node ... is down") and retries.
        for h in hosts {
            h.wait_status(
                Duration::from_secs(60),
                "reported the queue's node down",
                |s| {
                    s["channels"].as_array().is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c["channel"] == "route plughost.echo.sleep_ms"
                                && c["state"] == "broken"
                                && c["problem"].as_str().unwrap_or("").contains("is down")
                        })
                    })
                },
            );
        }
    });
    outage.assert_name_service_answered();
    // Calls fail at once while the node is down (404: no queue takes the
    // request; 503: the lost connection, or the broker's nack), never by
    // waiting out their deadline (504).
    let errors = errors(&outage.bench);
    assert!(
        errors.iter().all(|(code, _)| *code == 404 || *code == 503),
        "fail-fast errors only: {}",
        outage.bench
    );
    assert!(
        errors.iter().any(|(code, n)| *code == 404 && *n > 0),
        "calls to the stopped node's routes are refused: {}",
        outage.bench
    );
}

#[test]
fn a_host_killed_with_sigkill_leaves_its_unacked_calls_to_the_others() {
    let cluster = RabbitCluster::shared();
    let names = Names::new("sigkill");
    let hosts = three_hosts(&cluster, &names, "sigkill", "classic");
    let bench = Bench::start(&names, &cluster.urls_from(1), 20, "sleep_ms", &["200"]);
    let before = wait_calls(&hosts, total_calls(&hosts), 50, "before the kill");
    let victim = &hosts[2];
    // It holds calls it has not answered (and so not acknowledged) yet.
    victim.wait_status(Duration::from_secs(60), "held calls in flight", |s| {
        s["plugins"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["in_flight"].as_u64().unwrap_or(0) > 0))
    });
    let killed = Command::new("kill")
        .args(["-KILL", &victim.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_calls(&hosts[..2], before, 100, "after the kill");
    // Every call was answered: the broker handed the killed host's
    // unacknowledged requests to the other two.
    let summary = bench.finish();
    assert!(errors(&summary).is_empty(), "{summary}");
}

#[test]
fn a_host_that_joins_during_the_run_takes_part_of_the_load() {
    let cluster = RabbitCluster::shared();
    let urls = cluster.urls();
    let names = Names::new("join");
    let spread = spread_names("join", 3, &urls);
    let first = host(&spread[0], &names, &urls, "classic", &["echo"]);
    first.wait_serving();
    let second = host(&spread[1], &names, &urls, "classic", &["echo"]);
    second.wait_serving();
    let bench = Bench::start(&names, &cluster.urls_from(2), 20, "sleep_ms", &["50"]);
    let both = [first, second];
    wait_calls(&both, total_calls(&both), 100, "before the join");
    let newcomer = host(&spread[2], &names, &urls, "classic", &["echo"]);
    newcomer.wait_serving();
    wait_calls(std::slice::from_ref(&newcomer), 0, 100, "on the new host");
    let summary = bench.finish();
    assert!(errors(&summary).is_empty(), "{summary}");
}

#[test]
fn a_host_on_one_node_serves_v2_and_v1_callers_on_another() {
    let cluster = RabbitCluster::shared();
    let names = Names::new("cross");
    let node0 = vec![cluster.node(0).url()];
    let h = host("cross-node", &names, &node0, "classic", &["math"]);
    h.wait_serving();
    for caller in [1, 2] {
        let url = vec![cluster.node(caller).url()];
        assert_eq!(
            find(&names, &url, "fibo").unwrap(),
            "com.goffersoft.math.algo.fibo"
        );
        let out = call(&names, &url, "fibo", &["10"]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "55");
    }
    // The old tools' client (pika, docs/wire.md section 1) on node 2.
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cli/tests/py/v1_peers.py");
    let out = Command::new("python3")
        .env("PYTHONPATH", pika_path())
        .arg(script)
        .args([
            cluster.node(2).url().as_str(),
            &names.rpc,
            &names.ns,
            "client",
            "fibo",
            "10",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["routes"][0], "com.goffersoft.math.algo.fibo", "{v}");
    assert_eq!(
        (v["status"].as_str(), v["text"].as_str()),
        (Some("Success"), Some("55")),
        "{v}"
    );
}

/// The `route <route>` channel of a host's status.
fn route_channel(status: &Value, route: &str) -> Value {
    status["channels"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["channel"] == format!("route {route}"))
        .cloned()
        .unwrap_or_default()
}

/// Waits until `host` shows its `route` channel broken; the problem it names.
fn broken_route_problem(host: &HostProcess, route: &str) -> String {
    let status = host.wait_status(Duration::from_secs(60), "refused the route", |s| {
        route_channel(s, route)["state"] == "broken"
    });
    route_channel(&status, route)["problem"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_route_queue_declared_otherwise_is_refused_with_what_differs_and_the_fix() {
    let cluster = RabbitCluster::shared();
    let urls = cluster.urls();
    let route = "com.goffersoft.math.algo.fibo";

    // Hosts that disagree: the quorum host declared the queue first.
    let names = Names::new("mismatch");
    let quorum = host("mismatch-q", &names, &urls, "quorum", &["math"]);
    quorum.wait_serving();
    let classic = host("mismatch-c", &names, &urls, "classic", &["math"]);
    let problem = broken_route_problem(&classic, route);
    for needle in [
        format!("route queue `{}`", names.route_queue(route)),
        "exists with x-queue-type = quorum".to_owned(),
        "declares it with x-queue-type = absent".to_owned(),
        "406 PRECONDITION_FAILED".to_owned(),
        format!("rabbitmqctl delete_queue {}", names.route_queue(route)),
        "route_queues = \"quorum\"".to_owned(),
    ] {
        assert!(problem.contains(&needle), "{needle:?} in {problem}");
    }

    // A queue left by older hosts (transient, as plughost declared them
    // before): the host says so, and "transient" serves it.
    let old = Names::new("mismatch-old");
    let queue = old.route_queue(route);
    let declare = "import sys, pika\n\
        c = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))\n\
        c.channel().queue_declare(sys.argv[2], durable=False, arguments={'x-expires': 600000})\n\
        c.close()\n";
    let declared = Command::new("python3")
        .env("PYTHONPATH", pika_path())
        .arg("-c")
        .arg(declare)
        .args([urls[0].as_str(), queue.as_str()])
        .output()
        .unwrap();
    assert!(declared.status.success(), "{}", text(&declared));
    let new = host("mismatch-new", &old, &urls, "classic", &["math"]);
    let problem = broken_route_problem(&new, route);
    for needle in [
        "exists with durable = false",
        "declares it with durable = true",
        "route_queues = \"transient\"",
        "delete_queue",
    ] {
        assert!(problem.contains(needle), "{needle:?} in {problem}");
    }
    drop(new);
    let transient = host("mismatch-transient", &old, &urls, "transient", &["math"]);
    transient.wait_serving();
    let out = call(&old, &urls, "fibo", &["10"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "55");
}

#[test]
fn a_host_that_stops_serving_a_quorum_route_keeps_its_connection_and_leaves_the_queue_to_expire() {
    // RabbitMQ answers a conditional delete (if-unused, if-empty) of a
    // quorum queue with `not_implemented`, a connection error: a host that
    // asked would lose every route for a reconnect. It leaves the queue
    // to x-expires instead.
    let cluster = RabbitCluster::shared();
    let urls = cluster.urls();
    let names = Names::new("qdrop");
    let h = host("qdrop", &names, &urls, "quorum", &["math", "echo"]);
    h.wait_serving();
    h.rewrite_manifest(&manifest("qdrop", &names, &urls, "quorum", &["math"]));
    let logged = |what: &str| {
        h.log_records()
            .into_iter()
            .filter(|r| {
                r["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(what))
            })
            .count()
    };
    // Each of echo's five routes: consumer cancelled, queue left, channel closed.
    let started = Instant::now();
    while logged("stopped serving route") < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "echo's routes were never dropped:\n{}",
            h.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = call(&names, &urls, "fibo", &["10"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        logged("broker connection lost"),
        0,
        "the host kept its connection:\n{}",
        h.log_text()
    );
    assert!(
        queue_line(&cluster, &names.route_queue("plughost.echo.upper")).is_some(),
        "the quorum queue is left to x-expires"
    );
}
