//! RPC over a real RabbitMQ: find, call (bare and qualified names, named arguments, describe), errors, load sharing between two
//! hosts, many concurrent calls, the old system's v1 bytes, and recovery
//! after the broker drops the host's connection.
//!
//! Every test uses its own exchanges (`TestExchanges`), so tests run in
//! parallel and leave the broker as they found it.

#![allow(clippy::unwrap_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use lapin::{options::*, types::FieldTable, BasicProperties, Connection};
use plughost::{
    host::{Host, HostOptions},
    manifest::Manifest,
    rpc::BrokerState,
};
use plughost_client::{Client, ClientOptions, Exchanges, RpcError};
use plughost_test_support::{
    close_broker_connection, plugin_lib, TempManifest, TestExchanges, AMQP_URL,
};
use serde_json::json;

struct TestHost {
    host: Host,
    _manifest: TempManifest,
}

/// Starts a host named `name` serving math, echo and faulty on `ex`.
async fn start_host(name: &str, ex: &TestExchanges, extra: &str) -> TestHost {
    let text = format!(
        "[host]\nname = {name:?}\n{}\n[roles]\nmanager = false\nservices = false\nadmin = false\n\n\
         [[plugins]]\npath = {:?}\n\n[[plugins]]\npath = {:?}\n[plugins.methods.sleep_ms]\ntimeout_ms = 500\n\n[[plugins]]\npath = {:?}\n{extra}",
        ex.rabbitmq_toml(),
        plugin_lib("math").display().to_string(),
        plugin_lib("echo").display().to_string(),
        plugin_lib("faulty").display().to_string(),
    );
    let manifest = TempManifest::new(&text);
    let host = Host::start(
        &Manifest::load(manifest.path()).unwrap(),
        &HostOptions::default(),
    )
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), host.wait_serving())
        .await
        .expect("host connects to RabbitMQ");
    TestHost {
        host,
        _manifest: manifest,
    }
}

async fn client(ex: &TestExchanges) -> Client {
    let mut options = ClientOptions::new(AMQP_URL);
    options.exchanges = Exchanges {
        rpc: ex.rpc.clone(),
        ns: ex.ns.clone(),
    };
    options.find_timeout = Duration::from_secs(10);
    Client::connect(options).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_and_call() {
    let ex = TestExchanges::new("find-call");
    let h = start_host("rpc-find-call", &ex, "").await;
    let c = client(&ex).await;
    assert_eq!(
        c.find("fibo").await.unwrap(),
        "com.goffersoft.math.algo.fibo"
    );
    let reply = c.find_reply("fibo", Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        (reply.host.as_str(), reply.plugin.as_deref()),
        ("rpc-find-call", Some("math"))
    );
    assert_eq!(c.call_json("fibo", &[json!(10)]).await.unwrap(), json!(55));
    assert_eq!(
        c.call_json("upper", &[json!("abc")]).await.unwrap(),
        json!("ABC")
    );
    assert_eq!(
        c.call_route("plughost.echo.echo", "echo", &[json!(1), json!([2])])
            .await
            .unwrap(),
        json!([1, [2]])
    );
    h.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qualified_names_reach_only_their_plugin() {
    let ex = TestExchanges::new("qualified");
    let h = start_host("rpc-qualified", &ex, "").await;
    let c = client(&ex).await;
    assert_eq!(
        c.find("math.fibo").await.unwrap(),
        "com.goffersoft.math.algo.fibo"
    );
    assert_eq!(
        c.call_json("math.fibo", &[json!(10)]).await.unwrap(),
        json!(55)
    );
    // echo has no fibo: the qualified name does not fall back to math's.
    let err = c.call_json("echo.fibo", &[json!(10)]).await.unwrap_err();
    assert_eq!(err.code(), 404, "{err}");

    // Named arguments through the library, the trailing optional left out.
    let named = serde_json::Map::from_iter([("name".to_owned(), json!("ada"))]);
    let answer = c
        .call_answer(
            "echo.greet",
            plughost_client::Args::Named(&named),
            tokio::time::Instant::now() + Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(answer.value, json!("Hello, ada!"));
    assert_eq!(answer.protocol, plughost_client::wire::Protocol::V2);

    let described = c
        .describe("math.fibo", Duration::from_secs(5))
        .await
        .unwrap();
    let signature = described.reply.signature.unwrap();
    assert_eq!(signature.params[0].schema["type"], "integer");
    assert_eq!(signature.result["type"], "integer");
    h.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_their_codes() {
    let ex = TestExchanges::new("errors");
    let h = start_host("rpc-errors", &ex, "").await;
    let c = client(&ex).await;

    let bad = c.call_json("fibo", &[json!("abc")]).await.unwrap_err();
    assert_eq!(bad.code(), 400, "{bad}");
    assert!(bad.to_string().contains("argument 1"), "{bad}");

    let panic = c
        .call_json("panic", &[json!("on purpose")])
        .await
        .unwrap_err();
    assert_eq!(panic.code(), 500, "{panic}");
    assert!(
        panic.to_string().contains("panicked: on purpose"),
        "{panic}"
    );

    // sleep_ms has a 500 ms timeout in the manifest: the host answers 504.
    let slow = c.call_json("sleep_ms", &[json!(2000)]).await.unwrap_err();
    assert_eq!(slow.code(), 504, "{slow}");
    assert!(
        matches!(slow, RpcError::Remote { .. }),
        "the host, not the client, timed out: {slow:?}"
    );

    // A caller's own shorter timeout also ends in 504.
    let slow = c
        .call_with_timeout("sleep_ms", &[json!(400)], Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(slow.code(), 504, "{slow}");

    // The host still serves after all of that.
    assert_eq!(
        c.call_json("fibo", &[json!(20)]).await.unwrap(),
        json!(6765)
    );
    h.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_method_is_404_without_waiting_for_the_timeout() {
    let ex = TestExchanges::new("unknown");
    let h = start_host("rpc-unknown", &ex, "").await;
    let c = client(&ex).await; // find timeout 10 s
    let started = Instant::now();
    let err = c.call_json("nosuch", &[]).await.unwrap_err();
    assert_eq!(err.code(), 404, "{err}");
    assert!(matches!(err, RpcError::MethodNotFound { .. }), "{err:?}");
    // The "not here" answer ends the wait, not the 10 s find timeout.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    // A route nobody consumes comes back from the broker (mandatory publish).
    let err = c.call_route("no.such.route", "x", &[]).await.unwrap_err();
    assert!(matches!(err, RpcError::NoRoute { .. }), "{err:?}");
    h.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_name_service_is_503() {
    let ex = TestExchanges::new("no-ns");
    // Declare the exchanges with nobody bound to them.
    let conn = Connection::connect(AMQP_URL, Default::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    plughost_client::topology::declare_exchanges(
        &ch,
        &Exchanges {
            rpc: ex.rpc.clone(),
            ns: ex.ns.clone(),
        },
    )
    .await
    .unwrap();
    let c = client(&ex).await;
    let err = c.call_json("fibo", &[json!(1)]).await.unwrap_err();
    assert_eq!(err.code(), 503, "{err}");
    assert!(matches!(err, RpcError::NoNameService { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_share_a_route_and_each_call_runs_once() {
    let ex = TestExchanges::new("share");
    let a = start_host("rpc-share-a", &ex, "").await;
    let b = start_host("rpc-share-b", &ex, "").await;
    let c = Arc::new(client(&ex).await);
    let route = c.find("echo").await.unwrap();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let c = Arc::clone(&c);
        let route = route.clone();
        calls.spawn(async move { (i, c.call_route(&route, "echo", &[json!(i)]).await) });
        if i % 50 == 49 {
            // Keep ~50 in flight so both consumers get work.
            while calls.len() > 50 {
                let (i, r) = calls.join_next().await.unwrap().unwrap();
                assert_eq!(r.unwrap(), json!(i));
            }
        }
    }
    while let Some(done) = calls.join_next().await {
        let (i, r) = done.unwrap();
        assert_eq!(r.unwrap(), json!(i));
    }
    let ran = |h: &TestHost| {
        h.host
            .registry()
            .method("echo")
            .unwrap()
            .plugin
            .call_counts()
            .into_iter()
            .find(|(m, _)| m == "echo")
            .unwrap()
            .1
    };
    let (ran_a, ran_b) = (ran(&a), ran(&b));
    assert!(
        ran_a > 0 && ran_b > 0,
        "both hosts must serve: a={ran_a} b={ran_b}"
    );
    assert_eq!(
        ran_a + ran_b,
        1000,
        "each call runs exactly once: a={ran_a} b={ran_b}"
    );
    a.host.shutdown().await;
    b.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_over_one_client() {
    let ex = TestExchanges::new("concurrent");
    let h = start_host("rpc-concurrent", &ex, "").await;
    let c = Arc::new(client(&ex).await);
    c.find("echo").await.unwrap();
    let calls: Vec<_> = (0..1000)
        .map(|i| {
            let c = Arc::clone(&c);
            tokio::spawn(async move { (i, c.call_json("echo", &[json!(i), json!("tag")]).await) })
        })
        .collect();
    for call in calls {
        let (i, result) = call.await.unwrap();
        assert_eq!(
            result.unwrap(),
            json!([i, "tag"]),
            "reply of call {i} must match its request"
        );
    }
    h.host.shutdown().await;
}

/// A v1 client speaking raw AMQP exactly as the old Python tools do.
struct OldClient {
    _conn: Connection,
    channel: lapin::Channel,
    queue: String,
    consumer: lapin::Consumer,
}

impl OldClient {
    async fn new() -> Self {
        let conn = Connection::connect(AMQP_URL, Default::default())
            .await
            .unwrap();
        let channel = conn.create_channel().await.unwrap();
        let q = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let queue = q.name().to_string();
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "old".into(),
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
                Default::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }

    async fn publish(&self, exchange: &str, key: &str, body: &[u8], correlation_id: &str) {
        let props = BasicProperties::default().with_correlation_id(correlation_id.into());
        self.channel
            .basic_publish(exchange.into(), key.into(), Default::default(), body, props)
            .await
            .unwrap()
            .await
            .unwrap();
    }

    async fn receive(&mut self) -> lapin::message::Delivery {
        tokio::time::timeout(Duration::from_secs(10), self.consumer.next())
            .await
            .expect("a reply within 10 s")
            .unwrap()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_find_and_call_byte_for_byte() {
    let ex = TestExchanges::new("v1");
    let h = start_host("rpc-v1", &ex, "").await;
    let mut old = OldClient::new().await;

    // Find: bind callback queue to X with K, publish M CRLF CRLF X CRLF CRLF K CRLF to the fanout.
    let key = format!("{}.RpcNameServiceClient", old.queue);
    old.bind(&ex.rpc, &key).await;
    let find_id = uuid::Uuid::new_v4().to_string();
    let body = format!("fibo\r\n\r\n{}\r\n\r\n{key}\r\n", ex.rpc);
    old.publish(&ex.ns, "", body.as_bytes(), &find_id).await;
    let reply = old.receive().await;
    assert_eq!(reply.data, b"fibo\r\n\r\ncom.goffersoft.math.algo.fibo\r\n");
    assert_eq!(
        reply.properties.correlation_id().as_ref().unwrap().as_str(),
        find_id
    );
    assert!(
        reply.properties.content_type().is_none(),
        "v1 replies carry no content type"
    );

    // Call: bind to R.result, publish M CRLF CRLF X CRLF CRLF a1 CRLF with key R.
    let route = "com.goffersoft.math.algo.fibo";
    old.bind(&ex.rpc, &format!("{route}.result")).await;
    let call_id = uuid::Uuid::new_v4().to_string();
    old.publish(
        &ex.rpc,
        route,
        format!("fibo\r\n\r\n{}\r\n\r\n10\r\n", ex.rpc).as_bytes(),
        &call_id,
    )
    .await;
    let reply = old.receive().await;
    assert_eq!(reply.data, b"Success\r\n\r\n55\r\n");
    assert_eq!(
        reply.properties.correlation_id().as_ref().unwrap().as_str(),
        call_id
    );
    assert_eq!(reply.routing_key.as_str(), format!("{route}.result"));

    // A failing v1 call answers Failure with the error text.
    old.publish(
        &ex.rpc,
        route,
        format!("fibo\r\n\r\n{}\r\n\r\n94\r\n", ex.rpc).as_bytes(),
        &call_id,
    )
    .await;
    let reply = old.receive().await;
    let text = String::from_utf8(reply.data).unwrap();
    assert!(
        text.starts_with("Failure\r\n\r\n") && text.contains("overflows") && text.ends_with("\r\n"),
        "{text:?}"
    );

    // A malformed body (no reply exchange) still gets a Failure on <route>.result.
    old.publish(&ex.rpc, route, b"fibo", &call_id).await;
    let reply = old.receive().await;
    let text = String::from_utf8(reply.data).unwrap();
    assert!(
        text.starts_with("Failure\r\n\r\n") && text.contains("reply exchange"),
        "{text:?}"
    );

    // A v1 find for an unknown method gets no answer (as in the old system),
    // and the host keeps serving.
    old.publish(
        &ex.ns,
        "",
        format!("nosuch\r\n\r\n{}\r\n\r\n{key}\r\n", ex.rpc).as_bytes(),
        &find_id,
    )
    .await;
    old.publish(&ex.ns, "", b"garbage without crlf", &find_id)
        .await;
    old.publish(
        &ex.rpc,
        route,
        format!("fibo\r\n\r\n{}\r\n\r\n5\r\n", ex.rpc).as_bytes(),
        &call_id,
    )
    .await;
    let reply = old.receive().await;
    assert_eq!(
        reply.data, b"Success\r\n\r\n5\r\n",
        "the next message is the call's answer, not a find answer"
    );
    h.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_serves_again_after_losing_its_broker_connection() {
    let ex = TestExchanges::new("reconnect");
    let name = format!("rpc-reconnect-{}", uuid::Uuid::new_v4().simple());
    let h = start_host(&name, &ex, "").await;
    let c = client(&ex).await;
    assert_eq!(c.call_json("fibo", &[json!(10)]).await.unwrap(), json!(55));

    let mut state = h.host.broker_state();
    let closed = tokio::task::spawn_blocking({
        let name = name.clone();
        move || close_broker_connection(&format!("plughost host {name} "))
    })
    .await
    .unwrap();
    assert_eq!(closed, 1, "exactly the host's connection is closed");
    tokio::time::timeout(
        Duration::from_secs(10),
        state.wait_for(|s| *s == BrokerState::Disconnected),
    )
    .await
    .unwrap()
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        state.wait_for(|s| *s == BrokerState::Serving),
    )
    .await
    .unwrap()
    .unwrap();

    // Same client, same cached route: the host consumes again.
    assert_eq!(c.call_json("fibo", &[json!(11)]).await.unwrap(), json!(89));
    h.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_is_answered_504_without_running() {
    use lapin::types::{AMQPValue, FieldTable};
    let ex = TestExchanges::new("deadline");
    let h = start_host("rpc-deadline", &ex, "").await;
    let mut old = OldClient::new().await; // any raw AMQP client will do
    let mut headers = FieldTable::default();
    let past_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 1000;
    headers.insert(
        plughost_proto::rpc::v2::DEADLINE_HEADER.into(),
        AMQPValue::LongLongInt(past_ms),
    );
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_correlation_id("late-1".into())
        .with_reply_to(old.queue.as_str().into())
        .with_headers(headers);
    let body = br#"{"method":"fibo","args":[10]}"#;
    old.channel
        .basic_publish(
            ex.rpc.as_str().into(),
            "com.goffersoft.math.algo.fibo".into(),
            Default::default(),
            body,
            props,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let reply = old.receive().await;
    let v: serde_json::Value = serde_json::from_slice(&reply.data).unwrap();
    assert_eq!(v["error"]["code"], 504, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("not run"),
        "{v}"
    );
    let ran = h
        .host
        .registry()
        .method("fibo")
        .unwrap()
        .plugin
        .call_counts();
    assert_eq!(
        ran,
        [("fibo".to_owned(), 0)],
        "the method must not have run"
    );

    // A malformed v2 body is answered 400, not dropped.
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_correlation_id("bad-1".into())
        .with_reply_to(old.queue.as_str().into());
    old.channel
        .basic_publish(
            ex.rpc.as_str().into(),
            "com.goffersoft.math.algo.fibo".into(),
            Default::default(),
            b"{not json",
            props,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let reply = old.receive().await;
    let v: serde_json::Value = serde_json::from_slice(&reply.data).unwrap();
    assert_eq!(v["error"]["code"], 400, "{v}");
    h.host.shutdown().await;
}
