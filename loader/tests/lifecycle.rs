//! One owner of an instance's life, with a real plugin library: calls are
//! admitted only while it serves, a drain is woken by the last call (not
//! polled), calls follow a hand-over to the successor, and identities are
//! never reused.

#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use plughost_loader::{load, NotAdmitted, PluginSpec, PluginState};
use plughost_test_support::plugin_lib;

fn math() -> Arc<plughost_loader::PluginHandle> {
    Arc::new(load(&PluginSpec::file(plugin_lib("math"))).unwrap())
}

#[tokio::test]
async fn a_draining_instance_admits_nothing_and_is_drained_by_its_last_call() {
    let old = math();
    assert_eq!(old.state(), PluginState::Loaded);
    assert_eq!(
        old.admit().unwrap_err(),
        NotAdmitted::Wait,
        "not serving yet"
    );
    old.set_state(PluginState::Serving);
    let call = old.admit().unwrap();
    assert_eq!(old.in_flight(), 1);

    old.set_state(PluginState::Draining);
    assert_eq!(old.admit().unwrap_err(), NotAdmitted::Wait);
    let drained = tokio::spawn({
        let old = Arc::clone(&old);
        async move { old.drained().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!drained.is_finished(), "a call is still in flight");
    drop(call);
    tokio::time::timeout(Duration::from_secs(5), drained)
        .await
        .expect("woken by the last call")
        .unwrap();
    assert_eq!(old.in_flight(), 0);

    let new = math();
    assert_ne!(new.id(), old.id(), "a new instance, a new identity");
    new.set_state(PluginState::Serving);
    old.hand_over_to(Arc::clone(&new));
    old.set_state(PluginState::Retired);
    assert_eq!(old.admit().unwrap_err(), NotAdmitted::Moved);
    let moved = old.successor().unwrap().admit().unwrap();
    assert_eq!(moved.plugin().id(), new.id());
}

#[test]
fn cancelling_an_instance_cancels_the_calls_in_its_scope() {
    let plugin = math();
    let call = plughost_loader::HostCall::new("math", "fibo", "v2")
        .scope(Arc::clone(plugin.cancel_scope()));
    assert!(!call.is_cancelled());
    plugin.cancel_scope().cancel();
    assert_eq!(
        call.cancel_reason(),
        Some(plughost_loader::CancelReason::Host)
    );
}
