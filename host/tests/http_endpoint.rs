//! The HTTP endpoint (`[http] listen`) of the real `plughost run` binary:
//! `/metrics` moves with calls, errors and reloads; `/readyz` follows the
//! broker (on a test-owned node, stopped and started under the host);
//! `/healthz` answers; every route is read-only.

#![allow(clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use plughost_client::{Client, ClientOptions, Exchanges};
use plughost_test_support::{
    free_port, plughost_bin, plugin_lib, HostProcess, RabbitNode, TestExchanges, AMQP_URL,
};
use serde_json::json;
use tokio::task::block_in_place;

fn unique(label: &str) -> String {
    format!(
        "{label}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// A host named `name` with the RPC roles, `[http] listen` on `port`, the
/// `rabbitmq` table and these example plugins.
fn manifest(name: &str, rabbitmq: &str, port: u16, plugins: &[&str]) -> String {
    // The local socket next to the manifest: the default path is shared by
    // every host of this user, and tests run in parallel.
    let mut text = format!(
        "[host]\nname = {name:?}\n\n{rabbitmq}\n[roles]\nmanager = false\nservices = false\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n[local]\nsocket = \"local.sock\"\n\n"
    );
    for p in plugins {
        text.push_str(&format!(
            "[[plugins]]\npath = {:?}\n\n",
            plugin_lib(p).display().to_string()
        ));
    }
    text
}

/// One HTTP/1.1 request; the status code and the body. A refused
/// connection is tried again for a while: a host that was just started
/// may not listen yet.
fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    let started = Instant::now();
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(e) if started.elapsed() < Duration::from_secs(30) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("nothing listens on 127.0.0.1:{port}: {e}"),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    (code, body.to_owned())
}

fn scrape(port: u16) -> String {
    let (code, body) = http(port, "GET", "/metrics");
    assert_eq!(code, 200, "{body}");
    body
}

/// The value of one sample (`name{labels}` exactly as exposed), if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Scrapes until `done` holds (panics with the last scrape after `timeout`).
fn wait_metrics(port: u16, timeout: Duration, what: &str, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let metrics = scrape(port);
        if done(&metrics) {
            return metrics;
        }
        assert!(
            started.elapsed() < timeout,
            "/metrics never showed {what} within {timeout:?}:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Asks `/readyz` until it answers `code` (panics after `timeout`).
fn wait_ready(port: u16, code: u16, timeout: Duration) -> String {
    let started = Instant::now();
    loop {
        let (got, body) = http(port, "GET", "/readyz");
        if got == code {
            return body;
        }
        assert!(
            started.elapsed() < timeout,
            "/readyz never answered {code} within {timeout:?}; last: {got} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn client(url: &str, ex: &TestExchanges) -> Client {
    let mut options = ClientOptions::new(url);
    options.exchanges = Exchanges {
        rpc: ex.rpc.clone(),
        ns: ex.ns.clone(),
    };
    options.timeout = Duration::from_secs(20);
    Client::connect(options).await.unwrap()
}

const FIBO_OK: &str =
    "plughost_calls_total{plugin=\"math\",method=\"fibo\",protocol=\"v2\",code=\"200\"}";
const FIBO_BAD_ARGS: &str =
    "plughost_calls_total{plugin=\"math\",method=\"fibo\",protocol=\"v2\",code=\"400\"}";
const FIBO_LATENCY_COUNT: &str =
    "plughost_call_duration_seconds_count{plugin=\"math\",method=\"fibo\"}";
const APPLIED: &str = "plughost_reloads_total{result=\"applied\"}";
const REFUSED: &str = "plughost_reloads_total{result=\"refused\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_calls_errors_and_reloads() {
    let ex = TestExchanges::new("http-metrics");
    let port = free_port();
    let name = unique("http-metrics");
    let text = manifest(&name, &ex.rabbitmq_toml(), port, &["math"]);
    let host = HostProcess::start(plughost_bin(), &text);
    block_in_place(|| host.wait_serving());

    let before = block_in_place(|| scrape(port));
    assert_eq!(sample(&before, FIBO_OK), None, "no call yet:\n{before}");
    assert_eq!(sample(&before, APPLIED), Some(0.0), "{before}");
    assert_eq!(sample(&before, REFUSED), Some(0.0), "{before}");
    assert_eq!(
        sample(&before, "plughost_plugin_instances{state=\"serving\"}"),
        Some(1.0),
        "{before}"
    );
    assert_eq!(
        sample(&before, "plughost_broker_state{state=\"serving\"}"),
        Some(1.0),
        "{before}"
    );
    assert!(
        before.contains("# TYPE plughost_faults counter"),
        "{before}"
    );
    assert!(
        before.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );

    let c = client(AMQP_URL, &ex).await;
    for n in 0..5u32 {
        assert!(c.call_json("fibo", &[json!(n)]).await.is_ok());
    }
    for _ in 0..2 {
        let e = c.call_json("fibo", &[json!("seven")]).await.unwrap_err();
        assert_eq!(e.code(), 400, "{e}");
    }
    // The local socket's calls go through the same dispatch, counted once
    // under their own protocol.
    let local = host.plughost(&["call", "--local", "fibo", "10"]);
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    let after = block_in_place(|| scrape(port));
    assert_eq!(sample(&after, FIBO_OK), Some(5.0), "{after}");
    assert_eq!(
        sample(
            &after,
            "plughost_calls_total{plugin=\"math\",method=\"fibo\",protocol=\"local\",code=\"200\"}"
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(sample(&after, FIBO_BAD_ARGS), Some(2.0), "{after}");
    assert_eq!(sample(&after, FIBO_LATENCY_COUNT), Some(8.0), "{after}");
    assert_eq!(
        sample(
            &after,
            "plughost_calls_in_flight{plugin=\"math\",method=\"fibo\"}"
        ),
        Some(0.0),
        "{after}"
    );

    // A reload that adds a plugin is applied; a broken manifest is refused.
    host.rewrite_manifest(&manifest(
        &name,
        &ex.rabbitmq_toml(),
        port,
        &["math", "echo"],
    ));
    let applied = block_in_place(|| {
        wait_metrics(port, Duration::from_secs(30), "the reload", |m| {
            sample(m, APPLIED) == Some(1.0)
        })
    });
    assert_eq!(
        sample(&applied, "plughost_plugin_instances{state=\"serving\"}"),
        Some(2.0),
        "{applied}"
    );
    host.rewrite_manifest("[host\nthis is not TOML\n");
    block_in_place(|| {
        wait_metrics(port, Duration::from_secs(30), "the refusal", |m| {
            sample(m, REFUSED) == Some(1.0)
        })
    });
    assert_eq!(
        c.call_json("upper", &[json!("a")]).await.unwrap(),
        json!("A")
    );
    let last = block_in_place(|| scrape(port));
    assert_eq!(
        sample(
            &last,
            "plughost_calls_total{plugin=\"echo\",method=\"upper\",protocol=\"v2\",code=\"200\"}"
        ),
        Some(1.0),
        "{last}"
    );
    assert_eq!(sample(&last, FIBO_OK), Some(5.0), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_are_read_only_and_healthz_answers() {
    let ex = TestExchanges::new("http-routes");
    let port = free_port();
    let text = manifest(&unique("http-routes"), &ex.rabbitmq_toml(), port, &["math"]);
    let host = HostProcess::start(plughost_bin(), &text);
    block_in_place(|| host.wait_serving());
    block_in_place(|| {
        assert_eq!(http(port, "GET", "/healthz"), (200, "alive\n".to_owned()));
        let (code, body) = http(port, "POST", "/metrics");
        assert_eq!(code, 405, "{body}");
        assert!(body.contains("read-only"), "{body}");
        let (code, body) = http(port, "GET", "/nothing");
        assert_eq!(code, 404, "{body}");
        assert!(body.contains("/metrics"), "{body}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_the_broker_is_away_and_200_after() {
    let node = RabbitNode::start();
    let port = free_port();
    let rabbitmq = format!("[rabbitmq]\nurl = {:?}\n", node.url());
    let host = HostProcess::start(
        plughost_bin(),
        &manifest(&unique("http-ready"), &rabbitmq, port, &["math"]),
    );
    block_in_place(|| {
        host.wait_serving();
        assert_eq!(wait_ready(port, 200, Duration::from_secs(30)), "ready\n");
        node.stop_app();
        let reason = wait_ready(port, 503, Duration::from_secs(60));
        assert!(reason.starts_with("not ready: "), "{reason}");
        assert!(
            reason.contains("broker"),
            "the reason names the broker: {reason}"
        );
        // Alive all the same: only readiness follows the broker.
        assert_eq!(http(port, "GET", "/healthz").0, 200);
        let away = scrape(port);
        assert_eq!(
            sample(&away, "plughost_broker_state{state=\"serving\"}"),
            Some(0.0),
            "{away}"
        );
        node.start_app();
        // Reconnecting waits out a backoff of up to a few seconds.
        wait_ready(port, 200, Duration::from_secs(90));
        let back = scrape(port);
        assert!(
            sample(&back, "plughost_broker_reconnects_total").unwrap_or(0.0) >= 1.0,
            "{back}"
        );
    });
}

#[test]
fn tracker_registrations_and_expiries_are_counted() {
    let (discovery, management, port) = (free_port(), free_port(), free_port());
    let zeromq = format!(
        "[zeromq]\ndiscovery = \"tcp://127.0.0.1:{discovery}\"\nmanagement = \"tcp://127.0.0.1:{management}\"\nheartbeat_interval_ms = 200\nttl_ms = 1000\nv1_ttl_ms = 1000\n"
    );
    let manager = HostProcess::start(
        plughost_bin(),
        &format!(
            "[host]\nname = {:?}\n\n{zeromq}\n[roles]\nname_service = false\nrpc = false\nmanager = true\nservices = false\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
            unique("http-manager")
        ),
    );
    wait_metrics(port, Duration::from_secs(30), "an empty registry", |m| {
        sample(m, "plughost_tracker_services") == Some(0.0)
    });
    // A host whose tracked services (the echo ticker, and the host itself)
    // register with the manager, then vanish without a BYE.
    let services = HostProcess::start(
        plughost_bin(),
        &format!(
            "[host]\nname = {:?}\n\n{zeromq}\n[roles]\nname_service = false\nrpc = false\nmanager = false\nservices = true\n\n[[plugins]]\npath = {:?}\n",
            unique("http-services"),
            plugin_lib("echo").display().to_string()
        ),
    );
    let registered = wait_metrics(port, Duration::from_secs(30), "registrations", |m| {
        sample(m, "plughost_tracker_registrations_total").unwrap_or(0.0) >= 1.0
            && sample(m, "plughost_tracker_services").unwrap_or(0.0) >= 1.0
    });
    assert_eq!(
        sample(&registered, "plughost_tracker_expiries_total"),
        Some(0.0),
        "{registered}"
    );
    drop(services); // SIGKILL: no BYE
    let expired = wait_metrics(port, Duration::from_secs(30), "expiries", |m| {
        sample(m, "plughost_tracker_services") == Some(0.0)
    });
    assert!(
        sample(&expired, "plughost_tracker_expiries_total").unwrap_or(0.0) >= 1.0,
        "{expired}"
    );
    drop(manager);
}

#[test]
fn a_taken_port_stops_the_start_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let ex = TestExchanges::new("http-taken");
    let m = plughost_test_support::TempManifest::new(&manifest(
        &unique("http-taken"),
        &ex.rabbitmq_toml(),
        port,
        &["math"],
    ));
    let (out, _) = plughost_test_support::process::output_within(
        plughost_bin(),
        &["run", "--manifest", m.path().to_str().unwrap()],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("[http] listen = \"127.0.0.1:{port}\""))
            && stderr.contains("cannot listen"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_for_its_methods_concurrency_limit_is_counted() {
    let ex = TestExchanges::new("http-limit");
    let port = free_port();
    let text = manifest(&unique("http-limit"), &ex.rabbitmq_toml(), port, &["echo"])
        + "[plugins.methods.sleep_ms]\nconcurrency = 1\n";
    let host = HostProcess::start(plughost_bin(), &text);
    block_in_place(|| host.wait_serving());
    let c = client(AMQP_URL, &ex).await;
    // Two calls at once on a method that runs one at a time: the second
    // waits for the first (a second each, so they overlap on any machine).
    let args = [json!(1000)];
    let (one, two) = tokio::join!(
        c.call_json("sleep_ms", &args),
        c.call_json("sleep_ms", &args)
    );
    assert!(one.is_ok() && two.is_ok(), "{one:?} {two:?}");
    let metrics = block_in_place(|| scrape(port));
    assert_eq!(
        sample(
            &metrics,
            "plughost_concurrency_limit_waits_total{plugin=\"echo\",method=\"sleep_ms\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
}
