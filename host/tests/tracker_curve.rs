//! CURVE on the tracker, on real libzmq sockets: a service and a client
//! whose public keys are in the manager's allowed-keys file register and
//! list; a peer with another key, and a peer without CURVE (every old v1
//! tool), can neither register nor list, and the refusal is counted.

#![allow(clippy::unwrap_used)]

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use plughost::{
    proto::{address::RawAddress, uid::Uid},
    shutdown,
    tracker::{
        agent::{self, AgentConfig},
        client::{ClientConfig, ManagementClient},
        curve::{ClientCurve, KeyPair, ServerCurve},
        manager::{self, ManagerConfig},
        TrackerError,
    },
};

struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, pair: &KeyPair) -> std::path::PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, pair.to_certificate()).unwrap();
        path
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_peers_with_an_allowed_key_register_and_list() {
    let keys = Keys::new();
    let server = KeyPair::generate().unwrap();
    let (friend, stranger) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
    let server_file = keys.write("manager.key_secret", &server);
    let server_public = keys.write(
        "manager.key",
        &KeyPair {
            public: server.public.clone(),
            secret: None,
        },
    );
    let friend_file = keys.write("friend.key_secret", &friend);
    let stranger_file = keys.write("stranger.key_secret", &stranger);
    let allowed = keys.dir.path().join("allowed");
    std::fs::write(
        &allowed,
        format!("# who may talk to the manager\n{}\n", friend.public),
    )
    .unwrap();

    let (_trigger, shutdown) = shutdown::channel();
    let mut config = ManagerConfig::new("tcp://127.0.0.1:0", "tcp://127.0.0.1:0");
    config.beacon_interval = Duration::from_millis(100);
    config.curve = Some(ServerCurve::load(&server_file, &allowed).unwrap());
    let m = manager::start(config, shutdown).await.unwrap();

    let friend_curve = ClientCurve::load(&friend_file, &server_public).unwrap();
    let stranger_curve = ClientCurve::load(&stranger_file, &server_public).unwrap();
    let client_config = |curve: Option<ClientCurve>| {
        let mut c = ClientConfig::new(&m.discovery, &m.management, Duration::from_secs(2));
        c.curve = curve;
        c
    };

    // The friend's service registers, and the friend lists it.
    let mut good = AgentConfig::new(
        RawAddress::new("Friend", Uid::new_v4()).unwrap(),
        &m.discovery,
        &m.management,
    );
    good.heartbeat = Duration::from_millis(100);
    good.curve = Some(friend_curve.clone());
    let good = agent::spawn(good);
    let mut registered = good.registered();
    tokio::time::timeout(
        Duration::from_secs(10),
        registered.wait_for(|r| r.is_some()),
    )
    .await
    .expect("the allowed service registers")
    .unwrap();

    // A stranger's service never registers (it does not even hear a beacon).
    let mut bad = AgentConfig::new(
        RawAddress::new("Stranger", Uid::new_v4()).unwrap(),
        &m.discovery,
        &m.management,
    );
    bad.heartbeat = Duration::from_millis(100);
    bad.curve = Some(stranger_curve.clone());
    let bad = agent::spawn(bad);
    // Without CURVE at all, as an old tool would connect.
    let plain = agent::spawn(AgentConfig::new(
        RawAddress::new("Plain", Uid::new_v4()).unwrap(),
        &m.discovery,
        &m.management,
    ));

    // Neither can list: no beacon reaches them.
    for (who, curve) in [("stranger", Some(stranger_curve)), ("plain", None)] {
        match ManagementClient::connect(client_config(curve)).await {
            Err(TrackerError::NoBeacon { .. }) => {}
            Err(other) => panic!("{who}: expected no beacon, got {other}"),
            Ok(_) => panic!("{who} connected to a CURVE manager"),
        }
    }
    let mut friend_client = ManagementClient::connect(client_config(Some(friend_curve)))
        .await
        .unwrap();
    // The refusals were counted (ZAP for the stranger, handshakes for both).
    let started = Instant::now();
    while m.counters.refused.load(Ordering::Relaxed) == 0
        || m.counters.connections_dropped.load(Ordering::Relaxed) == 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no refusal counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = friend_client.list().await.unwrap();
    let names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Friend"], "{list:?}");
    assert!(bad.registered().borrow().is_none());
    assert!(plain.registered().borrow().is_none());
    good.stop().await;
    bad.stop().await;
    plain.stop().await;
}

#[test]
fn curve_settings_that_cannot_work_are_refused_with_the_file_and_the_reason() {
    use plughost::{manifest::Manifest, tracker};
    let keys = Keys::new();
    let server = KeyPair::generate().unwrap();
    let server_file = keys.write("manager.key_secret", &server);
    let parse = |extra: &str| {
        Manifest::parse(
            &format!("[zeromq]\ncurve_server_key_file = {server_file:?}\n{extra}"),
            keys.dir.path(),
            "m.toml",
        )
        .unwrap()
        .zeromq
    };
    // CURVE on without an allowed-keys file would let nobody in.
    let err = tracker::server_curve(&parse("")).unwrap_err().to_string();
    assert!(
        err.contains("manager.key_secret") && err.contains("curve_allowed_clients_file"),
        "{err}"
    );
    // A services host needs its own certificate.
    let err = tracker::client_curve(&parse("")).unwrap_err().to_string();
    assert!(err.contains("curve_client_key_file"), "{err}");
    // An allowed-keys file that is not there.
    let err = tracker::server_curve(&parse("curve_allowed_clients_file = \"nope\"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope") && err.contains("cannot read"), "{err}");
    // No CURVE keys at all: CURVE is off.
    let plain = Manifest::parse("", keys.dir.path(), "m.toml")
        .unwrap()
        .zeromq;
    assert!(tracker::server_curve(&plain).unwrap().is_none());
    assert!(tracker::client_curve(&plain).unwrap().is_none());
}
