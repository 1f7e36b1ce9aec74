//! A host's tracked services follow its plugin set: a reload that removes a
//! plugin makes its services say BYE; adding it back registers them again;
//! a service the manager stopped stays stopped across unrelated reloads.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use plughost::{
    host::{Host, HostOptions},
    manifest::Manifest,
    tracker::{
        client::{ClientConfig, ManagementClient},
        registry::ServiceInfo,
    },
};

use plughost_test_support::{free_port, plugin_lib, TempManifest};

/// Polls until the echo ticker is (or is not) listed, next to the host itself.
async fn wait_ticker(client: &mut ManagementClient, present: bool) -> Vec<ServiceInfo> {
    let started = Instant::now();
    loop {
        let list = client.list().await.unwrap();
        let has_host = list.iter().any(|s| s.name == "plughost svc-host");
        let has_ticker = list.iter().any(|s| s.name == "echo.ticker on svc-host");
        if has_host && has_ticker == present {
            return list;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "ticker present = {has_ticker}: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_services_follow_reloads() {
    let (disc, mgmt) = (free_port(), free_port());
    let head = format!(
        "[host]\nname = \"svc-host\"\n[zeromq]\ndiscovery = \"tcp://127.0.0.1:{disc}\"\nmanagement = \"tcp://127.0.0.1:{mgmt}\"\n\
         beacon_interval_ms = 100\nheartbeat_interval_ms = 100\n[roles]\nname_service = false\nrpc = false\nadmin = false\n\n"
    );
    let echo = format!(
        "[[plugins]]\npath = {:?}\n",
        plugin_lib("echo").display().to_string()
    );
    let math = format!(
        "[[plugins]]\npath = {:?}\n",
        plugin_lib("math").display().to_string()
    );
    let m = TempManifest::new(&format!("{head}{math}{echo}"));
    let host = Host::start(&Manifest::load(m.path()).unwrap(), &HostOptions::default())
        .await
        .unwrap();
    let mut client = ManagementClient::connect(ClientConfig::new(
        format!("tcp://127.0.0.1:{disc}"),
        format!("tcp://127.0.0.1:{mgmt}"),
        Duration::from_secs(5),
    ))
    .await
    .unwrap();
    let list = wait_ticker(&mut client, true).await;
    let first = list
        .iter()
        .find(|s| s.name.starts_with("echo.ticker"))
        .unwrap()
        .uuid
        .clone();
    let details = list
        .iter()
        .find(|s| s.name.starts_with("echo.ticker"))
        .unwrap()
        .details
        .clone()
        .unwrap();
    assert_eq!(
        details["plugin"], "echo",
        "v2 details travel after the init line: {details}"
    );

    m.rewrite(&format!("{head}{math}"));
    host.reload(&Manifest::load(m.path()).unwrap())
        .await
        .unwrap();
    wait_ticker(&mut client, false).await;
    m.rewrite(&format!("{head}{math}{echo}"));
    host.reload(&Manifest::load(m.path()).unwrap())
        .await
        .unwrap();
    let list = wait_ticker(&mut client, true).await;
    let again = list
        .iter()
        .find(|s| s.name.starts_with("echo.ticker"))
        .unwrap()
        .uuid
        .clone();
    assert_ne!(first, again, "a new instance registers as a new service");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_stopped_by_the_manager_stays_stopped_across_unrelated_reloads() {
    let (disc, mgmt) = (free_port(), free_port());
    let head = format!(
        "[host]\nname = \"svc-host\"\n[zeromq]\ndiscovery = \"tcp://127.0.0.1:{disc}\"\nmanagement = \"tcp://127.0.0.1:{mgmt}\"\n\
         beacon_interval_ms = 100\nheartbeat_interval_ms = 100\n[roles]\nname_service = false\nrpc = false\nadmin = false\n\n"
    );
    let echo = format!(
        "[[plugins]]\npath = {:?}\n",
        plugin_lib("echo").display().to_string()
    );
    let math = format!(
        "[[plugins]]\npath = {:?}\n",
        plugin_lib("math").display().to_string()
    );
    let m = TempManifest::new(&format!("{head}{math}{echo}"));
    let host = Host::start(&Manifest::load(m.path()).unwrap(), &HostOptions::default())
        .await
        .unwrap();
    let mut client = ManagementClient::connect(ClientConfig::new(
        format!("tcp://127.0.0.1:{disc}"),
        format!("tcp://127.0.0.1:{mgmt}"),
        Duration::from_secs(5),
    ))
    .await
    .unwrap();
    let list = wait_ticker(&mut client, true).await;
    let ticker = list
        .iter()
        .find(|s| s.name.starts_with("echo.ticker"))
        .unwrap()
        .uuid
        .clone();
    let answer = client
        .stop(plughost::proto::uid::Uid::parse(&ticker).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(answer.code(), 200, "{answer:?}");
    wait_ticker(&mut client, false).await;

    // A reload that removes math (echo untouched) must not bring the ticker back.
    m.rewrite(&format!("{head}{echo}"));
    let changes = host
        .reload(&Manifest::load(m.path()).unwrap())
        .await
        .unwrap();
    assert!(!changes.is_empty(), "the reload changed something");
    // Give a wrongly restarted ticker time to register (ten heartbeats).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let list = wait_ticker(&mut client, false).await;
    assert!(
        !list.iter().any(|s| s.name.starts_with("echo.ticker")),
        "{list:?}"
    );
    host.shutdown().await;
}
