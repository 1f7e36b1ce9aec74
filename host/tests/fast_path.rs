//! The per-call fast path (issue 15), against the real `plughost run` and
//! RabbitMQ: methods declared non-blocking run on the thread that received
//! the call until one of their calls overruns (caught on return, or by the
//! watchdog while it is still running), and a quick call's small reply
//! skips the publisher confirm while every other reply keeps it.

#![allow(clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use plughost_client::{Client, ClientOptions, Exchanges, RpcError};
use plughost_test_support::{
    free_port, plughost_bin, plugin_lib,
    process::{stderr, stdout},
    HostProcess, RabbitNode, TestExchanges, AMQP_URL,
};
use serde_json::Value;

/// A host serving faulty and math, with `/metrics` on `http_port`; the
/// exchanges live as long as the returned names.
fn host(label: &str, http_port: u16) -> (HostProcess, TestExchanges) {
    let ex = TestExchanges::new(label);
    let plugins: String = ["faulty", "math"]
        .iter()
        .map(|p| {
            format!(
                "[[plugins]]\npath = {:?}\n",
                plugin_lib(p).display().to_string()
            )
        })
        .collect();
    let host = HostProcess::start(
        plughost_bin(),
        &format!(
            "[host]\nname = \"fast-{label}\"\n\n{}\n[roles]\nmanager = false\nservices = false\n\n[http]\nlisten = \"127.0.0.1:{http_port}\"\n\n{plugins}",
            ex.rabbitmq_toml()
        ),
    );
    host.wait_serving();
    (host, ex)
}

/// `plughost call <args>` against the host; the result as JSON.
fn call(host: &HostProcess, args: &[&str]) -> Value {
    let mut all = vec!["call"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--timeout", "30"]);
    let out = host.plughost(&all);
    assert!(out.status.success(), "{out:?}\nlog:\n{}", host.log_text());
    serde_json::from_str(stdout(&out).trim()).unwrap()
}

fn fault(status: &Value, kind: &str) -> u64 {
    status["faults"][kind].as_u64().unwrap_or(0)
}

/// `plughost_replies_total{path=...}` from `/metrics`.
fn replies(port: u16, path: &str) -> u64 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let series = format!("plughost_replies_total{{path=\"{path}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_method_declared_non_blocking_runs_inline_until_a_call_overruns() {
    let (host, _ex) = host("inline", free_port());
    let on_pool = |name: &Value| name.as_str().unwrap().starts_with("plugin-faulty");

    let here = call(&host, &["here"]);
    assert!(!on_pool(&here), "a non-blocking method ran on {here}");
    let slow = call(&host, &["slow_inline", "50"]);
    assert!(!on_pool(&slow), "its first call runs inline: {slow}");

    // The 50 ms call broke the promise: counted, logged, and moved.
    let status = host.status().unwrap();
    assert_eq!(fault(&status, "inline_overrun"), 1, "{status:#}");
    // Caught on return or, if it came first, by the watchdog.
    let warned = host.log_records().into_iter().any(|r| {
        r["fields"]["method"] == "slow_inline"
            && r["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("non-blocking") && m.contains("budget 5 ms"))
    });
    assert!(
        warned,
        "no warning naming slow_inline:\n{}",
        host.log_text()
    );
    let moved = call(&host, &["slow_inline", "0"]);
    assert!(on_pool(&moved), "after its overrun it runs on {moved}");

    // Only that method moved.
    let here = call(&host, &["here"]);
    assert!(!on_pool(&here), "here ran on {here}");
    assert_eq!(fault(&host.status().unwrap(), "inline_overrun"), 1);
}

#[test]
fn a_panic_in_a_method_running_inline_is_a_500_and_costs_the_host_nothing() {
    let (host, _ex) = host("inline-panic", free_port());
    for _ in 0..3 {
        let out = host.plughost(&["call", "panic_inline", "on purpose", "--timeout", "30"]);
        assert!(!out.status.success(), "{out:?}");
        let err = plughost_test_support::process::stderr(&out);
        assert!(
            err.contains("[500]") && err.contains("panicked: on purpose"),
            "{err}"
        );
    }
    // The async thread it ran on goes on serving, inline calls included.
    let here = call(&host, &["here"]);
    assert!(!here.as_str().unwrap().starts_with("plugin-"), "{here}");
    assert_eq!(call(&host, &["fibo", "20"]), Value::from(6765));
    let status = host.status().unwrap();
    assert_eq!(fault(&status, "plugin_panic"), 3, "{status:#}");
    assert_eq!(fault(&status, "inline_overrun"), 0, "{status:#}");
}

#[test]
fn the_watchdog_moves_a_method_while_its_call_is_still_stuck_inline() {
    let (host, _ex) = host("watchdog", free_port());
    std::thread::scope(|s| {
        let stuck = s.spawn(|| call(&host, &["slow_inline", "4000"]));
        // Seen while the call still runs: the watchdog, not the return.
        let status = host.wait_status(Duration::from_secs(30), "the watchdog", |s| {
            s["faults"]["inline_overrun"] == 1
                && s["plugins"]
                    .as_array()
                    .and_then(|p| p.iter().find(|p| p["name"] == "faulty"))
                    .is_some_and(|p| p["in_flight"] == 1)
        });
        assert_eq!(fault(&status, "inline_overrun"), 1, "{status:#}");
        assert!(
            host.log_text().contains("is still running after"),
            "{}",
            host.log_text()
        );
        // Later calls of it go to the pool, while the stuck one goes on.
        let moved = call(&host, &["slow_inline", "0"]);
        assert!(
            moved.as_str().unwrap().starts_with("plugin-faulty"),
            "{moved}"
        );
        let first = stuck.join().unwrap();
        assert!(!first.as_str().unwrap().starts_with("plugin-"), "{first}");
    });
    // Counted once, not again when the stuck call returned.
    assert_eq!(fault(&host.status().unwrap(), "inline_overrun"), 1);
}

#[test]
fn a_quick_calls_small_reply_skips_the_confirm_and_other_replies_keep_it() {
    let port = free_port();
    let (host, _ex) = host("replies", port);
    let counts = || (replies(port, "request_channel"), replies(port, "confirmed"));

    // Each CLI call is a find and a call. Name-service answers (the CLI's
    // finds, the host's own collision checks) always go confirmed, so only
    // the request-channel count is exact.
    let (fast0, confirmed0) = counts();
    assert_eq!(call(&host, &["fibo", "10"]), Value::from(55));
    let (fast1, confirmed1) = counts();
    assert_eq!(fast1, fast0 + 1, "a quick, small reply");
    assert!(confirmed1 > confirmed0, "the find's answer");

    // A reply over 64 KiB keeps the confirm.
    let big = call(&host, &["huge", "1"]);
    assert_eq!(big.as_str().unwrap().len(), 1024 * 1024);
    assert_eq!(counts().0, fast1, "a 1 MiB reply");

    // So does a small reply after a call of more than 100 ms.
    call(&host, &["slow_inline", "300"]);
    assert_eq!(counts().0, fast1, "a slow call's reply");
}

/// Options for a client of the host behind `ex`, calls timing out after `timeout`.
fn client_options(ex: &TestExchanges, timeout: Duration) -> ClientOptions {
    let mut options = ClientOptions::new(AMQP_URL);
    options.exchanges = Exchanges {
        rpc: ex.rpc.clone(),
        ns: ex.ns.clone(),
    };
    options.timeout = timeout;
    options
}

#[test]
fn a_client_without_confirms_still_gets_its_404_at_once_from_the_brokers_return() {
    let (host, ex) = host("no-confirms", free_port());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut options = client_options(&ex, Duration::from_secs(30));
        options.publisher_confirms = plughost_client::PublisherConfirms::Off;
        let client = Client::connect(options).await.unwrap();
        assert_eq!(
            client.call_json("fibo", &[Value::from(10)]).await.unwrap(),
            Value::from(55)
        );
        // Nobody consumes this route: the broker returns the request, and
        // the returns drain hands it to the call long before its deadline.
        let started = std::time::Instant::now();
        let err = client
            .call_route("no.such.route", "x", &[])
            .await
            .unwrap_err();
        assert!(matches!(err, RpcError::NoRoute { .. }), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the 404 waited {:?}",
            started.elapsed()
        );
        client.close().await;
    });
    drop(host);
}

/// Acknowledgements go out several in one frame where they can (issue 15),
/// but never past a request still running: with a prefetch of 2, quick
/// calls whose acknowledgements waited behind a slow call on the same
/// route would stop the broker delivering (two unacknowledged requests)
/// until the slow one ended.
#[test]
fn a_slow_call_holds_back_no_later_calls_acknowledgement() {
    let ex = TestExchanges::new("ack-window");
    let host = HostProcess::start(
        plughost_bin(),
        &format!(
            "[host]\nname = \"fast-ack-window\"\n\n{}\n[roles]\nmanager = false\nservices = false\n\n[[plugins]]\npath = {:?}\n",
            ex.rabbitmq_toml().replace("prefetch = 16", "prefetch = 2"),
            plugin_lib("echo").display().to_string()
        ),
    );
    host.wait_serving();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let options = client_options(&ex, Duration::from_secs(60));
        let client = std::sync::Arc::new(Client::connect(options).await.unwrap());
        assert_eq!(
            client
                .call_json("sleep_ms", &[Value::from(0)])
                .await
                .unwrap(),
            Value::from(0)
        );
        let slow = {
            let client = std::sync::Arc::clone(&client);
            tokio::spawn(async move { client.call_json("sleep_ms", &[Value::from(20_000)]).await })
        };
        // The slow call is delivered first (the host's status counts it
        // running), then quick ones go through behind it.
        host.wait_status(Duration::from_secs(30), "ran the slow call", |s| {
            s["plugins"]
                .as_array()
                .and_then(|p| p.iter().find(|p| p["name"] == "echo"))
                .is_some_and(|p| p["in_flight"] == 1)
        });
        for i in 0..20u64 {
            let answer = client.call_json("sleep_ms", &[Value::from(i % 2)]).await;
            assert_eq!(answer.unwrap(), Value::from(i % 2));
        }
        assert!(
            !slow.is_finished(),
            "the quick calls finished only after the slow one"
        );
        assert_eq!(slow.await.unwrap().unwrap(), Value::from(20_000));
        client.close().await;
    });
    drop(host);
}

/// A node of the test's own (to freeze, or to set policies on) and a host
/// serving the math plugin on it.
fn math_host_on_own_node() -> (RabbitNode, HostProcess) {
    let node = RabbitNode::start();
    let host = HostProcess::math(plughost_bin(), &format!("url = {:?}", node.url()));
    host.wait_serving();
    (node, host)
}

/// A client without confirms does not wait for its request to be written
/// before waiting for the reply (issue 15), yet a timeout still says the
/// broker never took the request: on a frozen node, 64 MiB of arguments
/// cannot all leave the client (more than the sockets' buffers hold), and
/// the 504 names the broker's taking of the request, not a reply the
/// broker took the request for.
#[test]
fn without_confirms_a_request_the_broker_never_took_is_named_at_the_deadline() {
    let (node, host) = math_host_on_own_node();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut options = ClientOptions::new(node.url());
    options.publisher_confirms = plughost_client::PublisherConfirms::Off;
    let client = rt.block_on(Client::connect(options)).unwrap();
    let fibo =
        |arg: Value| rt.block_on(client.call_with_timeout("fibo", &[arg], Duration::from_secs(3)));
    assert_eq!(fibo(Value::from(10)).unwrap(), Value::from(55));

    node.freeze();
    let e = fibo(Value::from("x".repeat(64 << 20))).unwrap_err();
    node.thaw();
    let text = e.to_string();
    assert_eq!(e.code(), 504, "{text}");
    assert!(text.contains("the broker to confirm the request"), "{text}");
    assert!(!text.contains("after taking it"), "{text}");
    drop(host);
}

/// `plughost call --confirms` publishes with publisher confirms, whatever
/// the client's default for one broker URL (off): a route queue that
/// refuses new messages (a length limit of 0 with `reject-publish`, set by
/// policy on a node of the test's own) makes the broker nack the request,
/// and the call fails at once with a 503 saying so. Without confirms the
/// same request is dropped unseen, and the call waits out its deadline.
#[test]
fn plughost_call_with_confirms_hears_the_brokers_nack_at_once() {
    let (node, host) = math_host_on_own_node();
    let full = r#"{"max-length":0,"overflow":"reject-publish"}"#;
    let route_queues = r"^plughost\..*\.route\.";
    node.ctl_ok(&[
        "set_policy",
        "--apply-to",
        "queues",
        "full",
        route_queues,
        full,
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !node
        .ctl_ok(&["list_queues", "name", "policy"])
        .lines()
        .any(|l| l.contains(".route.") && l.trim_end().ends_with("full"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the policy never reached the route queue"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let call = |flag: &str| {
        let started = std::time::Instant::now();
        let out = host.plughost(&["call", "fibo", "10", "--timeout", "3", flag]);
        (stderr(&out), started.elapsed())
    };
    let (err, took) = call("--confirms");
    assert!(err.contains("[503]") && err.contains("nack"), "{err}");
    assert!(took < Duration::from_secs(3), "took {took:?}: {err}");
    let (err, took) = call("--no-confirms");
    assert!(err.contains("[504]"), "{err}");
    assert!(took >= Duration::from_secs(3), "took {took:?}: {err}");
    drop(host);
}
