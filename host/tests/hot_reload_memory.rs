//! Repeated hot reloads under load: zero failed calls and bounded memory.
//! In its own test binary so that the process's RSS is this test's alone.

#![allow(clippy::unwrap_used)]

mod common;

use common::{client, echo_build, entry, Load, RunningHost};
use plughost_test_support::{plugin_lib, TestExchanges};
use serde_json::json;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Memory bound stated in docs/operations.md: alternating between two
/// builds loads each library once; 50 reloads may add at most 16 MiB of
/// RSS (plugin instances, registries, counters), after both are loaded.
const RELOAD_RSS_BUDGET_KIB: u64 = 16 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reloads_under_load_with_bounded_memory() {
    let (one, two, math) = (echo_build("one"), echo_build("two"), plugin_lib("math"));
    let ex = TestExchanges::new("hot-50");
    let host = RunningHost::start(&ex, &(entry(&math) + &entry(&one))).await;
    let c = client(&ex).await;
    let load = Load::start(&c, 16, "upper", vec![json!("x")]);
    // Warm up: both builds loaded once.
    for build in [&two, &one] {
        assert!(host.reload_with(&(entry(&math) + &entry(build))).await.ok);
    }
    let before = rss_kib();
    for i in 0..50 {
        let build = if i % 2 == 0 { &two } else { &one };
        let reply = host.reload_with(&(entry(&math) + &entry(build))).await;
        assert!(
            reply.ok && reply.changes.as_ref().unwrap().replaced == ["echo"],
            "reload {i}: {reply:?}"
        );
    }
    let grown = rss_kib().saturating_sub(before);
    let (ok, failures, _) = load.finish().await;
    assert!(
        failures.is_empty(),
        "calls failed during 50 reloads: {failures:?}"
    );
    assert!(ok > 100, "{ok}");
    assert!(
        grown <= RELOAD_RSS_BUDGET_KIB,
        "RSS grew {grown} KiB over 50 reloads (budget {RELOAD_RSS_BUDGET_KIB} KiB)"
    );
    println!("rss growth over 50 reloads: {grown} KiB");
    host.stop().await;
}
