//! Faults on the RPC side, as an attacker or an operator causes them, each
//! against the real `plughost run` binary and a real RabbitMQ (issue 10):
//! thousands of malformed messages, a reply over the broker's size limit, a
//! route queue deleted under the host, a queue the host cannot declare, a
//! flood of plugin panics. After each, the host answers, holds one broker
//! connection, leaves no message behind, and says what happened (log lines
//! with a count, counters in `plughost status`).
//!
//! Tests that need a clean broker (to count every queue and connection) or
//! special broker settings run their own node (`RabbitNode`); the others
//! use the shared broker with exchanges and a host name of their own.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::{
    options::{BasicConsumeOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
    BasicProperties, Channel, Connection, ConnectionProperties,
};
use plughost_client::{Client, ClientOptions, Exchanges, RpcError};
use plughost_test_support::{
    plughost_bin, plugin_lib, HostProcess, NodeConfig, RabbitNode, TestExchanges, AMQP_URL,
};
use serde_json::{json, Value};
use tokio::task::block_in_place;

const FIBO_ROUTE: &str = "com.goffersoft.math.algo.fibo";

fn unique(label: &str) -> String {
    format!(
        "{label}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// A manifest for a host named `name` with the RPC roles and the admin
/// socket on, `rabbitmq` and `extra` tables, and these example plugins.
fn manifest(name: &str, rabbitmq: &str, extra: &str, plugins: &[&str]) -> String {
    let mut text = format!(
        "[host]\nname = {name:?}\n{rabbitmq}\n[roles]\nmanager = false\nservices = false\n\n{extra}\n"
    );
    for p in plugins {
        text.push_str(&format!(
            "[[plugins]]\npath = {:?}\n\n",
            plugin_lib(p).display().to_string()
        ));
    }
    text
}

fn node_rabbitmq(node: &RabbitNode) -> String {
    format!("[rabbitmq]\nurl = {:?}\nprefetch = 16\n", node.url())
}

async fn client(url: &str, exchanges: Exchanges, timeout: Duration) -> Client {
    let mut options = ClientOptions::new(url);
    options.exchanges = exchanges;
    options.timeout = timeout;
    options.find_timeout = Duration::from_secs(10);
    Client::connect(options).await.unwrap()
}

fn shared_exchanges(ex: &TestExchanges) -> Exchanges {
    Exchanges {
        rpc: ex.rpc.clone(),
        ns: ex.ns.clone(),
    }
}

/// `fault` counter of a `plughost status --json` answer.
fn fault(status: &Value, kind: &str) -> u64 {
    status["faults"][kind]
        .as_u64()
        .unwrap_or_else(|| panic!("no `{kind}` counter in status: {status:#}"))
}

/// A raw AMQP client for what the plughost client never sends.
struct RawClient {
    _conn: Connection,
    channel: Channel,
    queue: String,
    consumer: lapin::Consumer,
}

impl RawClient {
    async fn new(url: &str) -> Self {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = conn.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .name()
            .to_string();
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "raw".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        Self {
            _conn: conn,
            channel,
            queue,
            consumer,
        }
    }

    async fn bind(&self, exchange: &str, key: &str) {
        self.channel
            .queue_bind(
                self.queue.as_str().into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }

    /// Publishes without waiting for the confirm (wait with [`RawClient::confirmed`]).
    async fn send(&self, exchange: &str, key: &str, body: &[u8], props: BasicProperties) {
        // The confirm is collected by `wait_for_confirms` once dropped.
        drop(
            self.channel
                .basic_publish(exchange.into(), key.into(), Default::default(), body, props)
                .await
                .unwrap(),
        );
    }

    async fn confirmed(&self) {
        self.channel.wait_for_confirms().await.unwrap();
    }

    async fn receive(&mut self) -> lapin::message::Delivery {
        tokio::time::timeout(Duration::from_secs(20), self.consumer.next())
            .await
            .expect("a reply within 20 s")
            .unwrap()
            .unwrap()
    }
}

fn v2_props() -> BasicProperties {
    BasicProperties::default().with_content_type("application/json".into())
}

/// A small deterministic generator, so a failing fuzz run can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// One hostile message: where it goes, its body and properties.
struct Hostile {
    to_name_service: bool,
    body: Vec<u8>,
    props: BasicProperties,
}

/// The `i`-th hostile message of the fuzz run. Bodies over the host's
/// 64 KiB limit are 70,000 bytes.
fn hostile(i: usize, rng: &mut XorShift) -> Hostile {
    let call = "fibo\r\n\r\nrpc_exchange\r\n\r\n10\r\n";
    let find = "fibo\r\n\r\nrpc_exchange\r\n\r\nq.RpcNameServiceClient\r\n";
    let id = format!("fuzz-{i}");
    let with_id = || BasicProperties::default().with_correlation_id(id.as_str().into());
    let nobody = format!("nobody.{}", rng.below(1000));
    let missing = match rng.below(5) {
        0 => "rpc_excha".to_owned(),
        1 => "amq.rabbitmq.trace".to_owned(),
        2 => "x".repeat(300),
        _ => format!("missing.{}", rng.below(50)),
    };
    let big = |head: &str| {
        let mut body = head.as_bytes().to_vec();
        body.resize(70_000, b'7');
        body
    };
    let (to_name_service, body, props) = match i % 12 {
        0 => (false, rng.bytes(512), BasicProperties::default()),
        1 => (true, rng.bytes(512), BasicProperties::default()),
        2 => (
            false,
            call.as_bytes()[..rng.below(call.len())].to_vec(),
            with_id(),
        ),
        3 => (
            false,
            format!("fibo\r\n\r\n{missing}\r\n\r\n10\r\n").into_bytes(),
            with_id(),
        ),
        4 => {
            let key = if rng.below(4) == 0 {
                "k".repeat(300)
            } else {
                format!("k.{i}")
            };
            (
                true,
                format!("fibo\r\n\r\n{missing}\r\n\r\n{key}\r\n").into_bytes(),
                with_id(),
            )
        }
        5 => (
            true,
            find.as_bytes()[..rng.below(find.len())].to_vec(),
            with_id(),
        ),
        6 => {
            let bodies: [&[u8]; 6] = [
                br#"{"method":5}"#,
                br#"{"method":"fibo","args":{}}"#,
                br#"[1,2]"#,
                b"null",
                br#"{"method":"fibo","args":["x"]}"#,
                br#"{"args":[1]}"#,
            ];
            let reply_to = if rng.below(2) == 0 {
                nobody
            } else {
                "amq.rabbitmq.reply-to.garbage".to_owned()
            };
            (
                false,
                bodies[rng.below(bodies.len())].to_vec(),
                v2_props()
                    .with_correlation_id(id.as_str().into())
                    .with_reply_to(reply_to.as_str().into()),
            )
        }
        7 => (
            false,
            br#"{"method":"fibo","args":[10]}"#.to_vec(),
            v2_props().with_correlation_id(id.as_str().into()),
        ),
        8 => (
            false,
            br#"{"method":"fibo","args":[10]}"#.to_vec(),
            v2_props().with_reply_to(nobody.as_str().into()),
        ),
        9 => match rng.below(4) {
            0 => (false, big(call), with_id()),
            1 => (
                false,
                big(r#"{"method":"fibo","args":["#),
                v2_props()
                    .with_correlation_id(id.as_str().into())
                    .with_reply_to(nobody.as_str().into()),
            ),
            2 => (true, big(find), with_id()),
            _ => (
                true,
                big(r#"{"method":""#),
                v2_props()
                    .with_correlation_id(id.as_str().into())
                    .with_reply_to(nobody.as_str().into()),
            ),
        },
        10 => match rng.below(3) {
            0 => (
                true,
                br#"{"method":["fibo"]}"#.to_vec(),
                v2_props()
                    .with_correlation_id(id.as_str().into())
                    .with_reply_to(nobody.as_str().into()),
            ),
            1 => (
                true,
                br#"{"method":"fibo"}"#.to_vec(),
                v2_props().with_correlation_id(id.as_str().into()),
            ),
            _ => (
                true,
                format!(r#"{{"method":"{}"}}"#, "m".repeat(300)).into_bytes(),
                v2_props()
                    .with_correlation_id(id.as_str().into())
                    .with_reply_to(nobody.as_str().into()),
            ),
        },
        _ => {
            let mut headers = FieldTable::default();
            headers.insert(
                plughost_proto::rpc::v2::DEADLINE_HEADER.into(),
                AMQPValue::LongString("tomorrow".into()),
            );
            match rng.below(3) {
                0 => (
                    false,
                    call.as_bytes().to_vec(),
                    with_id().with_content_type("APPLICATION/JSON".into()),
                ),
                1 => (
                    false,
                    br#"{"method":"fibo","args":[10]}"#.to_vec(),
                    with_id().with_content_type("text/plain".into()),
                ),
                _ => (
                    false,
                    br#"{"method":"fibo","args":[3]}"#.to_vec(),
                    v2_props()
                        .with_correlation_id(id.as_str().into())
                        .with_reply_to(nobody.as_str().into())
                        .with_headers(headers),
                ),
            }
        }
    };
    Hostile {
        to_name_service,
        body,
        props,
    }
}

/// Polls `check` (blocking) until it is true or `timeout` passes.
fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let started = Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(last) => assert!(
                started.elapsed() < timeout,
                "{what} did not happen within {timeout:?}: {last}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_malformed_messages_cost_only_themselves() {
    let node = RabbitNode::start();
    let name = unique("fuzz");
    let host = HostProcess::start(
        plughost_bin(),
        &manifest(
            &name,
            &node_rabbitmq(&node),
            "[limits]\nmax_request_bytes = 65536\n",
            &["math"],
        ),
    );
    block_in_place(|| host.wait_serving());

    let raw = RawClient::new(&node.url()).await;
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for i in 0..10_000 {
        let m = hostile(i, &mut rng);
        let (exchange, key) = if m.to_name_service {
            ("rpc_ns_exchange", "")
        } else {
            ("rpc_exchange", FIBO_ROUTE)
        };
        raw.send(exchange, key, &m.body, m.props).await;
    }
    raw.confirmed().await;

    // 100 of 100 ordinary calls are answered, queued behind what is left of
    // the flood (a generous 120 s: the host works through 10,000 messages
    // on a machine shared with parallel builds).
    let c = client(&node.url(), Exchanges::default(), Duration::from_secs(120)).await;
    let calls = (0..100u32).map(|n| {
        let c = &c;
        async move { c.call_json("fibo", &[json!(n % 20)]).await }
    });
    let results = futures_util::future::join_all(calls).await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 100 calls failed after the flood, e.g. {:?}\nlog:\n{}",
        failed.len(),
        failed.first(),
        host.log_text()
    );
    drop(c);
    drop(raw);

    // Every queue drains: nothing ready, nothing held unacknowledged.
    block_in_place(|| {
        eventually(Duration::from_secs(60), "every queue emptying", || {
            let busy: Vec<_> = node
                .queues()
                .into_iter()
                .filter(|q| q.ready > 0 || q.unacked > 0)
                .collect();
            if busy.is_empty() {
                Ok(())
            } else {
                Err(format!("{busy:?}"))
            }
        })
    });
    let connections = node.connections_named(&format!("plughost host {name} ("));
    assert_eq!(
        connections, 1,
        "the host holds exactly one broker connection"
    );

    let status = block_in_place(|| host.wait_serving());
    for kind in [
        "malformed_v1_call",
        "malformed_v1_find",
        "malformed_v2_call",
        "malformed_v2_find",
        "missing_reply_to",
        "missing_correlation_id",
        "unknown_reply_exchange",
        "request_too_large",
        "find_method_too_long",
    ] {
        assert!(fault(&status, kind) > 0, "{kind} was counted: {status:#}");
    }
    // Logs stay bounded: a burst per kind and window, then counts.
    let warnings = host
        .log_records()
        .iter()
        .filter(|r| {
            r["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("plughost"))
                && matches!(r["level"].as_str(), Some("WARN" | "ERROR"))
        })
        .count();
    assert!(warnings < 400, "{warnings} warnings for 10,000 messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_over_the_brokers_limit_is_a_413_and_later_calls_work() {
    let node = RabbitNode::start_with(NodeConfig::default().line("max_message_size = 1048576"));
    let name = unique("broker-limit");
    // The host would publish up to 4 MiB; the broker takes 1 MiB.
    let host = HostProcess::start(
        plughost_bin(),
        &manifest(
            &name,
            &node_rabbitmq(&node),
            "[limits]\nmax_reply_bytes = 4194304\n",
            &["math", "echo", "faulty"],
        ),
    );
    block_in_place(|| host.wait_serving());
    let c = client(&node.url(), Exchanges::default(), Duration::from_secs(20)).await;

    for attempt in [
        "first (the broker refuses it)",
        "second (the host knows the limit now)",
    ] {
        // Calls in flight beside the oversized reply are all answered: a
        // reply caught in the channel the broker closed is requeued and
        // answered again, never lost.
        let bystanders = (0..100u32).map(|n| {
            let c = &c;
            let text = "y".repeat(300_000);
            async move {
                if n % 5 == 0 {
                    c.call_json("echo", &[json!(text)]).await
                } else {
                    c.call_json("fibo", &[json!(n % 30)]).await
                }
            }
        });
        let huge_args = [json!(2)];
        let (huge, others) = tokio::join!(
            c.call_json("huge", &huge_args),
            futures_util::future::join_all(bystanders)
        );
        let lost: Vec<_> = others.iter().filter(|r| r.is_err()).collect();
        assert!(
            lost.is_empty(),
            "{attempt}: calls beside it failed: {lost:?}"
        );
        match huge {
            Err(RpcError::Remote { code, message, .. }) => {
                assert_eq!(code, 413, "{attempt}: {message}");
                assert!(message.contains("max_message_size"), "{attempt}: {message}");
            }
            other => panic!(
                "{attempt}: a 2 MiB reply must be a 413, got {other:?}\nlog:\n{}",
                host.log_text()
            ),
        }
        for n in 0..20u32 {
            assert!(
                c.call_json("fibo", &[json!(n)]).await.is_ok(),
                "later calls work"
            );
        }
    }
    assert_eq!(c.call_json("huge", &[json!(0)]).await.unwrap(), json!(""));
    let status = block_in_place(|| host.wait_serving());
    assert!(fault(&status, "reply_too_large") >= 2, "{status:#}");
    assert_eq!(
        node.connections_named(&format!("plughost host {name} (")),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_the_broker_does_not_confirm_is_requeued_not_acked() {
    let node = RabbitNode::start();
    let name = unique("requeue");
    let host = HostProcess::start(
        plughost_bin(),
        &manifest(&name, &node_rabbitmq(&node), "", &["echo"]),
    );
    block_in_place(|| host.wait_serving());
    let c = std::sync::Arc::new(
        client(&node.url(), Exchanges::default(), Duration::from_secs(90)).await,
    );
    let call = tokio::spawn({
        let c = std::sync::Arc::clone(&c);
        async move { c.call_json("sleep_ms", &[json!(1500)]).await }
    });
    // Once the host runs the call, freeze the broker: the reply is written
    // but never confirmed, and the host gives up on it after 5 s.
    block_in_place(|| {
        host.wait_status(Duration::from_secs(30), "ran the call", |s| {
            s["plugins"][0]["in_flight"] == 1
        })
    });
    node.freeze();
    let status = block_in_place(|| {
        host.wait_status(Duration::from_secs(40), "requeued the request", |s| {
            s["faults"]["requeued"] == 1
        })
    });
    assert_eq!(fault(&status, "reply_not_published"), 1, "{status:#}");
    node.thaw();

    // The caller is answered, and the request was handed back, not acked:
    // it ran again (at least once, never zero times) and nothing is left.
    assert_eq!(call.await.unwrap().unwrap(), json!(1500));
    block_in_place(|| {
        host.wait_status(Duration::from_secs(30), "ran the requeued request", |s| {
            s["plugins"][0]["calls"]
                .as_array()
                .is_some_and(|calls| calls.contains(&json!(["sleep_ms", 2])))
        })
    });
    block_in_place(|| {
        eventually(Duration::from_secs(30), "every queue emptying", || {
            let busy: Vec<_> = node
                .queues()
                .into_iter()
                .filter(|q| q.ready > 0 || q.unacked > 0)
                .collect();
            if busy.is_empty() {
                Ok(())
            } else {
                Err(format!("{busy:?}"))
            }
        })
    });
    assert_eq!(
        node.connections_named(&format!("plughost host {name} (")),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_over_the_hosts_limit_is_a_413_for_v2_and_v1() {
    let ex = TestExchanges::new("reply-limit");
    let host = HostProcess::start(
        plughost_bin(),
        &manifest(
            &unique("reply-limit"),
            &ex.rabbitmq_toml(),
            "",
            &["math", "faulty"],
        ),
    );
    block_in_place(|| host.wait_serving());
    let c = client(AMQP_URL, shared_exchanges(&ex), Duration::from_secs(20)).await;
    // Default max_reply_bytes is 8 MiB (below every broker's limit).
    match c.call_json("huge", &[json!(9)]).await {
        Err(RpcError::Remote { code, message, .. }) => {
            assert_eq!(code, 413, "{message}");
            assert!(message.contains("this host's limit"), "{message}");
        }
        other => panic!("a 9 MiB reply must be a 413, got {other:?}"),
    }
    assert_eq!(c.call_json("fibo", &[json!(10)]).await.unwrap(), json!(55));

    let mut old = RawClient::new(AMQP_URL).await;
    old.bind(&ex.rpc, "plughost.faulty.huge.result").await;
    let props = BasicProperties::default().with_correlation_id("v1-huge".into());
    let body = format!("huge\r\n\r\n{}\r\n\r\n9\r\n", ex.rpc);
    old.send(&ex.rpc, "plughost.faulty.huge", body.as_bytes(), props)
        .await;
    let reply = old.receive().await;
    let text = String::from_utf8(reply.data).unwrap();
    assert!(
        text.starts_with("Failure\r\n\r\nreply too large (413)"),
        "{text:.200}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_route_queue_is_declared_and_consumed_again() {
    let ex = TestExchanges::new("deleted-queue");
    let name = unique("deleted-queue");
    let host = HostProcess::start(
        plughost_bin(),
        &manifest(&name, &ex.rabbitmq_toml(), "", &["math"]),
    );
    block_in_place(|| host.wait_serving());
    let c = client(AMQP_URL, shared_exchanges(&ex), Duration::from_secs(5)).await;
    assert_eq!(c.call_json("fibo", &[json!(10)]).await.unwrap(), json!(55));

    let ctl = |args: &[&str]| {
        let out = std::process::Command::new("rabbitmqctl")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "rabbitmqctl {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let route_queue = format!("plughost.{}.route.{FIBO_ROUTE}", ex.rpc);
    block_in_place(|| ctl(&["delete_queue", &route_queue]));
    let started = Instant::now();
    while c.call_json("fibo", &[json!(11)]).await.ok() != Some(json!(89)) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the host never consumed its route again\nlog:\n{}",
            host.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The name-service queue too.
    let ns_queue = block_in_place(|| ctl(&["list_queues", "name", "-q"]))
        .lines()
        .find(|q| q.starts_with(&format!("plughost.ns.{name}.")))
        .expect("the host's name-service queue is named after it")
        .to_owned();
    block_in_place(|| ctl(&["delete_queue", &ns_queue]));
    let started = Instant::now();
    while c.find("fibo").await.ok().as_deref() != Some(FIBO_ROUTE) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the host never answered finds again\nlog:\n{}",
            host.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let status = block_in_place(|| host.wait_serving());
    assert!(fault(&status, "channel_repaired") >= 2, "{status:#}");
    let connections = block_in_place(|| {
        ctl(&["list_connections", "client_properties", "-q"])
            .lines()
            .filter(|l| l.contains(&format!("plughost host {name} (")))
            .count()
    });
    assert_eq!(connections, 1, "no connection leaked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_tells_the_truth_about_each_channel() {
    let ex = TestExchanges::new("truth");
    // An operator (or another tool) took the name of a route queue with
    // other arguments: the host cannot declare it (406) until it is gone.
    let taken = format!("plughost.{}.route.plughost.faulty.fail", ex.rpc);
    let squatter = Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = squatter.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(1));
    ch.queue_declare(taken.as_str().into(), QueueDeclareOptions::default(), args)
        .await
        .unwrap();

    let host = HostProcess::start(
        plughost_bin(),
        &manifest(
            &unique("truth"),
            &ex.rabbitmq_toml(),
            "",
            &["math", "faulty"],
        ),
    );
    let status = block_in_place(|| {
        host.wait_status(Duration::from_secs(60), "reported the broken route", |s| {
            s["broker"] == "degraded"
        })
    });
    let channels = status["channels"].as_array().unwrap();
    let route = channels
        .iter()
        .find(|c| c["channel"] == "route plughost.faulty.fail")
        .unwrap_or_else(|| panic!("{status:#}"));
    assert_eq!(route["state"], "broken", "{status:#}");
    assert!(
        route["problem"]
            .as_str()
            .unwrap()
            .contains("PRECONDITION_FAILED"),
        "{status:#}"
    );
    for c in channels
        .iter()
        .filter(|c| c["channel"] != "route plughost.faulty.fail")
    {
        assert!(
            c["state"] == "consuming" || c["state"] == "open",
            "one broken route leaves the others serving: {status:#}"
        );
    }
    let text = String::from_utf8(host.plughost(&["status"]).stdout).unwrap();
    assert!(
        text.contains("broker: degraded")
            && text.contains("route plughost.faulty.fail")
            && text.contains("broken"),
        "{text}"
    );
    let c = client(AMQP_URL, shared_exchanges(&ex), Duration::from_secs(10)).await;
    assert_eq!(c.call_json("fibo", &[json!(10)]).await.unwrap(), json!(55));

    // Once the queue is free, the host declares and consumes it on its own.
    ch.queue_delete(taken.as_str().into(), Default::default())
        .await
        .unwrap();
    block_in_place(|| host.wait_serving());
    match c.call_json("fail", &[json!("on purpose")]).await {
        Err(RpcError::Remote { code, message, .. }) => {
            assert_eq!((code, message.as_str()), (500, "on purpose"));
        }
        other => panic!("the repaired route answers: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_panics_give_a_few_log_lines_with_a_count() {
    let ex = TestExchanges::new("panics");
    let host = HostProcess::start(
        plughost_bin(),
        &manifest(&unique("panics"), &ex.rabbitmq_toml(), "", &["faulty"]),
    );
    block_in_place(|| host.wait_serving());
    let c = client(AMQP_URL, shared_exchanges(&ex), Duration::from_secs(60)).await;
    let args = [json!("boom")];
    for batch in 0..20 {
        let calls = (0..500).map(|_| c.call_json("panic", &args));
        for result in futures_util::future::join_all(calls).await {
            match result {
                Err(RpcError::Remote {
                    code: 500, message, ..
                }) => {
                    assert!(message.contains("panicked: boom"), "{message}")
                }
                other => panic!("batch {batch}: a panic is a 500, got {other:?}"),
            }
        }
    }

    // The "N more" line comes when the log window closes (10 s after the
    // first panic; 40 s leaves room for a busy machine).
    let mut last = String::new();
    let started = Instant::now();
    let (detailed, counted) = loop {
        let records = host.log_records();
        let detailed: Vec<&Value> = records
            .iter()
            .filter(|r| {
                r["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("plugin panicked"))
            })
            .collect();
        let counted: u64 = records
            .iter()
            .filter(|r| r["fields"]["fault"] == "plugin_panic")
            .map(|r| r["fields"]["suppressed"].as_u64().unwrap())
            .sum();
        if detailed.len() as u64 + counted == 10_000 {
            break (detailed.into_iter().cloned().collect::<Vec<_>>(), counted);
        }
        last = format!("{} detailed lines, {counted} counted", detailed.len());
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the log never accounted for 10,000 panics: {last}\nlog:\n{}",
            host.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        (1..=25).contains(&detailed.len()),
        "a handful of detailed lines, got {} ({last})",
        detailed.len()
    );
    assert!(counted > 9_000, "the rest is a count: {counted}");
    for line in &detailed {
        let f = &line["fields"];
        assert_eq!(
            (f["plugin"].as_str(), f["method"].as_str()),
            (Some("faulty"), Some("panic")),
            "{line}"
        );
        assert!(
            f["location"]
                .as_str()
                .unwrap()
                .contains("plugins/faulty/src/lib.rs:"),
            "{line}"
        );
        assert_eq!(f["panic"], "boom", "{line}");
    }
    let summary = host
        .log_records()
        .into_iter()
        .find(|r| r["fields"]["fault"] == "plugin_panic")
        .unwrap();
    let text = summary["fields"]["message"].as_str().unwrap();
    assert!(
        text.contains("more plugin panics in the last") && text.ends_with('s'),
        "{text}"
    );
    let status = block_in_place(|| host.wait_serving());
    assert_eq!(fault(&status, "plugin_panic"), 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_counters_show_in_status() {
    let ex = TestExchanges::new("counters");
    let socket_dir = tempfile::tempdir().unwrap();
    let socket = socket_dir.path().join("admin.sock");
    let head = format!(
        "[host]\nname = {:?}\nwatch = false\nadmin = {:?}\n{}\n[roles]\nmanager = false\nservices = false\n\n\
         [limits]\nmax_request_bytes = 1024\nmax_find_method_bytes = 16\n\n",
        unique("counters"),
        socket.display().to_string(),
        ex.rabbitmq_toml()
    );
    let plugins = format!(
        "[[plugins]]\npath = {:?}\n",
        plugin_lib("math").display().to_string()
    );
    let host = HostProcess::start(plughost_bin(), &format!("{head}{plugins}"));
    block_in_place(|| host.wait_serving());
    let mut raw = RawClient::new(AMQP_URL).await;
    raw.bind(&ex.rpc, &format!("{FIBO_ROUTE}.result")).await;
    let id = |n: &str| BasicProperties::default().with_correlation_id(n.into());
    let v2 = || {
        v2_props()
            .with_correlation_id("c".into())
            .with_reply_to(raw.queue.as_str().into())
    };
    let call = |method: &str, exchange: &str| format!("{method}\r\n\r\n{exchange}\r\n\r\n10\r\n");

    // Two malformed v1 calls (answered Failure), one v1 call naming an
    // exchange that does not exist (dropped), one malformed v2 call
    // (answered 400), one without reply_to (dropped), one over the size
    // limit for each version (answered 413), one malformed v1 find, one
    // find for an over-long method name.
    raw.send(&ex.rpc, FIBO_ROUTE, b"fibo", id("a")).await;
    raw.send(&ex.rpc, FIBO_ROUTE, &[0xff, 0xfe], id("b")).await;
    raw.send(
        &ex.rpc,
        FIBO_ROUTE,
        call("fibo", "no.such.exchange").as_bytes(),
        id("c"),
    )
    .await;
    raw.send(&ex.rpc, FIBO_ROUTE, b"{not json", v2()).await;
    raw.send(
        &ex.rpc,
        FIBO_ROUTE,
        br#"{"method":"fibo","args":[10]}"#,
        v2_props().with_correlation_id("d".into()),
    )
    .await;
    let mut big = br#"{"method":"fibo","args":["#.to_vec();
    big.resize(2000, b'1');
    raw.send(&ex.rpc, FIBO_ROUTE, &big, v2()).await;
    let mut big_v1 = call("fibo", &ex.rpc).into_bytes();
    big_v1.resize(2000, b'1');
    raw.send(&ex.rpc, FIBO_ROUTE, &big_v1, id("e")).await;
    raw.send(&ex.ns, "", b"fibo\r\n", id("f")).await;
    raw.send(
        &ex.ns,
        "",
        br#"{"method":"a_method_name_longer_than_16"}"#,
        v2(),
    )
    .await;
    raw.confirmed().await;

    let mut replies = Vec::new();
    for _ in 0..5 {
        replies.push(String::from_utf8(raw.receive().await.data).unwrap());
    }
    replies.sort();
    assert!(
        replies[0].starts_with("Failure\r\n\r\nrequest too large (413)"),
        "{replies:?}"
    );
    assert!(replies[1].starts_with("Failure\r\n\r\nv1"), "{replies:?}");
    assert!(replies[2].starts_with("Failure\r\n\r\nv1"), "{replies:?}");
    let v: Value = serde_json::from_str(&replies[3]).unwrap();
    assert_eq!(v["error"]["code"], 400, "{replies:?}");
    let v: Value = serde_json::from_str(&replies[4]).unwrap();
    assert_eq!(v["error"]["code"], 413, "{replies:?}");

    // A refused reload.
    host.rewrite_manifest(&format!("{head}[colour]\nred = true\n{plugins}"));
    let out = std::process::Command::new(plughost_bin())
        .args(["reload", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    // `plughost status` finds the host through its manifest: make it readable again.
    host.rewrite_manifest(&format!("{head}{plugins}"));

    let expected = [
        ("malformed_v1_call", 2),
        ("unknown_reply_exchange", 1),
        ("malformed_v2_call", 1),
        ("missing_reply_to", 1),
        ("request_too_large", 2),
        ("malformed_v1_find", 1),
        ("find_method_too_long", 1),
        ("reload_refused", 1),
    ];
    let status = block_in_place(|| {
        host.wait_status(Duration::from_secs(20), "counted every fault", |s| {
            expected.iter().all(|(kind, n)| s["faults"][kind] == *n)
        })
    });
    for kind in [
        "plugin_panic",
        "reply_not_published",
        "requeued",
        "reply_too_large",
    ] {
        assert_eq!(fault(&status, kind), 0, "{status:#}");
    }
    // Nothing that was refused ran.
    let fibo_calls = &status["plugins"][0]["calls"];
    assert_eq!(fibo_calls, &json!([["fibo", 0]]), "{status:#}");

    let text = String::from_utf8(host.plughost(&["status"]).stdout).unwrap();
    assert!(
        text.contains("malformed_v1_call=2") && text.contains("reload_refused=1"),
        "{text}"
    );
    assert!(
        text.contains("route com.goffersoft.math.algo.fibo") && text.contains("consuming"),
        "{text}"
    );
}

/// The host's peak resident memory so far (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_large_request_costs_the_host_little_more_than_itself() {
    const SIZE: usize = 50 * 1024 * 1024;
    let ex = TestExchanges::new("large-request");
    let host = HostProcess::start(
        plughost_bin(),
        &manifest(&unique("large-request"), &ex.rabbitmq_toml(), "", &["echo"]),
    );
    block_in_place(|| host.wait_serving());
    let before = peak_rss(host.pid());
    let mut raw = RawClient::new(AMQP_URL).await;
    let mut body = br#"{"method":"echo","args":[""#.to_vec();
    body.resize(SIZE, b'x');
    body.extend_from_slice(br#""]}"#);
    let props = v2_props()
        .with_correlation_id("big".into())
        .with_reply_to(raw.queue.as_str().into());
    raw.send(&ex.rpc, "plughost.echo.echo", &body, props).await;
    raw.confirmed().await;
    drop(body);
    let reply = raw.receive().await.data;
    let grew = peak_rss(host.pid()).saturating_sub(before);
    eprintln!(
        "peak RSS grew by {} MiB for one {} MiB request",
        grew >> 20,
        SIZE >> 20
    );
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply["error"]["code"], 413, "{:.300}", reply.to_string());
    // The message itself has to be received whole (lapin assembles it);
    // nothing beyond one more copy of it is allowed. Measured here: 50 MiB
    // (main before the limits: 200 MiB, parse, copies and a 50 MB reply).
    assert!(
        grew < 2 * SIZE as u64,
        "one {} MiB request grew the host by {} MiB",
        SIZE >> 20,
        grew >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_queue_name_amqp_cannot_carry_costs_only_that_route() {
    // 240 bytes of exchange name: fine for an exchange, too long for the
    // route queues named after it (`plughost.<exchange>.route.<route>`).
    let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let ex = TestExchanges {
        rpc: format!("test.long.{id}.{}", "r".repeat(240 - 19)),
        ns: format!("test.long.{id}.ns"),
    };
    assert_eq!(ex.rpc.len(), 240);
    let host = HostProcess::start(
        plughost_bin(),
        &manifest(&unique("long-names"), &ex.rabbitmq_toml(), "", &["math"]),
    );
    let status = block_in_place(|| {
        host.wait_status(Duration::from_secs(60), "reported the route", |s| {
            s["broker"] == "degraded"
        })
    });
    let route = status["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == format!("route {FIBO_ROUTE}"))
        .unwrap_or_else(|| panic!("{status:#}"))
        .clone();
    assert_eq!(route["state"], "broken", "{status:#}");
    assert!(
        route["problem"].as_str().unwrap().contains("255 bytes"),
        "{status:#}"
    );
    // The name service still answers (the host lives; only that route is out).
    let c = client(AMQP_URL, shared_exchanges(&ex), Duration::from_secs(5)).await;
    assert_eq!(c.find("fibo").await.unwrap(), FIBO_ROUTE);
}
