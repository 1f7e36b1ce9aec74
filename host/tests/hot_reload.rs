//! Hot loading under load: a running host follows its manifest and plugin
//! files, and callers keeping many calls in flight see zero failures while
//! plugins are added, replaced and removed.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use common::{client, echo_build, entry, Load, RunningHost};
use plughost::admin::AdminRequest;
use plughost_test_support::{plugin_lib, variant_lib, TestExchanges, Variant};
use serde_json::json;

/// Starts a one-second `sleep_ms` call, to be in flight across a reload.
fn slow_call(
    c: &Arc<plughost_client::Client>,
) -> tokio::task::JoinHandle<Result<serde_json::Value, plughost_client::RpcError>> {
    let c = Arc::clone(c);
    tokio::spawn(async move { c.call_json("sleep_ms", &[json!(1000)]).await })
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
    assert_eq!(
        c.call_json("huge", &[json!(0)]).await.unwrap_err().code(),
        404
    );
    let reply = host
        .reload_with(&(entry(&math) + &entry(&one) + &entry(&faulty)))
        .await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(reply.changes.unwrap().added, ["faulty"]);
    assert_eq!(c.call_json("huge", &[json!(0)]).await.unwrap(), json!(""));

    // Replace echo with a rebuild while a slow call runs on the old one.
    let slow = slow_call(&c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reply = host
        .reload_with(&(entry(&math) + &entry(&two) + &entry(&faulty)))
        .await;
    let switched = Instant::now();
    assert!(reply.ok, "{reply:?}");
    assert_eq!(reply.changes.unwrap().replaced, ["echo"]);
    assert_eq!(
        slow.await.unwrap().unwrap(),
        json!(1000),
        "the call in flight finishes on the old version"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (ok, failures, results) = versions.finish().await;
    assert!(failures.is_empty(), "version calls failed: {failures:?}");
    assert!(
        results.iter().any(|(_, v)| v == "0.1.0+one"),
        "the old version served before the switch"
    );
    let after: Vec<_> = results
        .iter()
        .filter(|(asked, _)| *asked > switched)
        .collect();
    assert!(
        !after.is_empty() && after.iter().all(|(_, v)| v == "0.1.0+two"),
        "every call after the switch gets the new version ({ok} calls)"
    );

    // Remove echo while a slow call runs: it completes, then echo is gone.
    let slow = slow_call(&c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reply = host.reload_with(&(entry(&math) + &entry(&faulty))).await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(reply.changes.unwrap().removed, ["echo"]);
    assert_eq!(
        slow.await.unwrap().unwrap(),
        json!(1000),
        "calls running on a removed plugin complete"
    );
    assert_eq!(
        c.call_json("upper", &[json!("x")])
            .await
            .unwrap_err()
            .code(),
        404
    );

    let (ok, failures, _) = fibo.finish().await;
    assert!(
        failures.is_empty(),
        "fibo calls failed during reloads: {failures:?}"
    );
    assert!(ok > 100, "the load really ran: {ok} calls");

    let status = host
        .admin(AdminRequest::Status)
        .await
        .unwrap()
        .status
        .unwrap();
    let states: BTreeMap<String, Vec<String>> =
        status.plugins.iter().fold(BTreeMap::new(), |mut m, p| {
            m.entry(p.name.clone())
                .or_default()
                .push(format!("{} {}", p.version, p.state));
            m
        });
    assert_eq!(
        states["echo"],
        ["0.1.0 retired", "0.1.0 retired"],
        "{status:?}"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_changes_leave_the_old_set_serving_with_a_clear_error() {
    let math = plugin_lib("math");
    let ex = TestExchanges::new("hot-bad");
    let host = RunningHost::start(&ex, &entry(&math)).await;
    let c = client(&ex).await;
    let load = Load::start(&c, 16, "fibo", vec![json!(15)]);

    let reply = host
        .reload_with("[[plugins]]\npath = \"x.so\"\ncolour = \"red\"\n")
        .await;
    assert!(!reply.ok);
    let error = reply.error.unwrap();
    assert!(
        error.contains("colour") && error.contains("line"),
        "{error}"
    );

    let old_api = variant_lib(
        "echo",
        &Variant {
            api_version: Some("0.3.0".into()),
            ..Default::default()
        },
    );
    let reply = host.reload_with(&(entry(&math) + &entry(&old_api))).await;
    assert!(!reply.ok);
    assert!(
        reply
            .error
            .as_deref()
            .unwrap()
            .contains("built against plugin-api 0.3.0"),
        "{reply:?}"
    );

    let echo = plugin_lib("echo");
    let pinned = format!(
        "{}\nsha256 = \"{}\"\n",
        entry(&echo).trim_end(),
        "ab".repeat(32)
    );
    let reply = host.reload_with(&(entry(&math) + &pinned + "\n")).await;
    assert!(!reply.ok);
    assert!(
        reply
            .error
            .as_deref()
            .unwrap()
            .contains("manifest pins abab"),
        "{reply:?}"
    );

    // Still the old set: fibo served all along, echo never arrived.
    assert_eq!(
        c.call_json("upper", &[json!("x")])
            .await
            .unwrap_err()
            .code(),
        404
    );
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
    std::fs::write(
        &host.manifest,
        format!("{}{}{}", host.head, entry(&math), entry(&echo)),
    )
    .unwrap();
    let started = Instant::now();
    loop {
        match c.call_json("upper", &[json!("watched")]).await {
            Ok(v) => {
                assert_eq!(v, json!("WATCHED"));
                break;
            }
            Err(e) => assert_eq!(e.code(), 404, "{e}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the edit was never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    host.stop().await;
}
