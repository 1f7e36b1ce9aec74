//! The client crate as a Rust caller uses it, against a real host
//! (`plughost run`) on the real broker: typed calls, the errors a caller
//! tells apart, and the example program from `docs/client.md`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use plughost_client::{Client, ClientOptions, RpcError};
use plughost_test_support::{
    plughost_bin, plugin_lib, process, run_example, HostProcess, TestExchanges, AMQP_URL,
};
use serde_json::{json, Value};

fn math_host(ex: &TestExchanges) -> HostProcess {
    let host = HostProcess::start(
        plughost_bin(),
        &format!(
            "[host]\nname = \"client-test\"\n{}\n[roles]\nmanager = false\nservices = false\n\n[[plugins]]\npath = {:?}\n\n[[plugins]]\npath = {:?}\n",
            ex.rabbitmq_toml(),
            plugin_lib("math").display().to_string(),
            plugin_lib("echo").display().to_string()
        ),
    );
    host.wait_serving();
    host
}

fn options(ex: &TestExchanges) -> ClientOptions {
    let mut options = ClientOptions::new(AMQP_URL);
    options.exchanges.rpc = ex.rpc.clone();
    options.exchanges.ns = ex.ns.clone();
    options.timeout = Duration::from_secs(10);
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_calls_and_the_errors_a_caller_tells_apart() {
    let ex = TestExchanges::new("client-typed");
    let _host = math_host(&ex);
    let client = Client::connect(options(&ex)).await.unwrap();

    // Typed arguments (a tuple) and a typed result.
    let f: u64 = client.call("fibo", (10,)).await.unwrap();
    assert_eq!(f, 55);
    let words: Vec<Value> = client.call("echo", ("a", 1, true)).await.unwrap();
    assert_eq!(words, vec![json!("a"), json!(1), json!(true)]);
    let upper: String = client.call("upper", vec!["abc"]).await.unwrap();
    assert_eq!(upper, "ABC");

    // The method's own error, with its code and help.
    match client.call::<u64>("fibo", (94,)).await {
        Err(RpcError::Remote {
            code,
            message,
            help,
        }) => {
            assert_eq!(code, 400);
            assert!(message.contains("overflows"), "{message}");
            assert_eq!(help.as_deref(), Some("n must be at most 93"));
        }
        other => panic!("expected the method's 400, got {other:?}"),
    }
    // No host serves it: not the same thing as a method's 404.
    let missing = client.call::<Value>("nosuch", ()).await.unwrap_err();
    assert!(
        matches!(missing, RpcError::MethodNotFound { .. }),
        "{missing:?}"
    );
    // The result is not the type asked for: said, with the value.
    let wrong = client.call::<String>("fibo", (10,)).await.unwrap_err();
    assert!(
        matches!(&wrong, RpcError::UnexpectedResult { result, .. } if result == "55"),
        "{wrong:?}"
    );
    // Arguments that are neither an array nor an object are refused before sending.
    let bad = client.call::<u64>("fibo", 10).await.unwrap_err();
    assert!(matches!(bad, RpcError::Arguments { .. }), "{bad:?}");
    assert_eq!(bad.code(), 400);
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_with_no_broker_gets_unavailable_within_its_timeout() {
    let mut options = ClientOptions::new("amqp://guest:guest@127.0.0.1:1/%2f");
    options.connect_timeout = Duration::from_secs(2);
    options.local = plughost_client::LocalMode::Never;
    let err = match Client::connect(options).await {
        Err(e) => e,
        Ok(_) => panic!("connected to a closed port"),
    };
    // Nothing listens there: no broker at all (a caller may fall back to a
    // local host; this one was told not to).
    assert!(matches!(err, RpcError::NoBroker { .. }), "{err:?}");
    assert_eq!(err.code(), 503);
}

#[test]
fn the_example_program_calls_a_real_host() {
    let ex = TestExchanges::new("client-example");
    let _host = math_host(&ex);
    let env = [
        ("PLUGHOST_AMQP_URL", AMQP_URL),
        ("PLUGHOST_RPC_EXCHANGE", ex.rpc.as_str()),
        ("PLUGHOST_NS_EXCHANGE", ex.ns.as_str()),
    ];
    let out = run_example("plughost-client", "fibo", &["10"], &env);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(process::stdout(&out).trim(), "fibo(10) = 55");

    let out = run_example("plughost-client", "fibo", &["94"], &env);
    assert!(!out.status.success());
    let err = process::stderr(&out);
    assert!(
        err.contains("fibo refused (400)") && err.contains("help: n must be at most 93"),
        "{err}"
    );
}
