//! The service tracker on real libzmq sockets (ephemeral ports): register,
//! heartbeat, bye, expiry, manager restart, stop and shutdown with a token,
//! garbage, many services, and peers that share an identity or vanish.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use plughost::{
    proto::{
        address::RawAddress,
        raw::{RawMessageType, RawRequest, RawResponse},
        uid::Uid,
    },
    shutdown::{self, ShutdownTrigger},
    tracker::{
        agent::{self, AgentConfig, AgentHandle},
        client::{ClientConfig, ManagementClient},
        manager::{self, ManagerConfig, ManagerHandle},
        registry::ServiceInfo,
    },
};

const BEACON: Duration = Duration::from_millis(100);

async fn start_manager_at(
    discovery: &str,
    management: &str,
    ttl: Duration,
) -> (ManagerHandle, ShutdownTrigger) {
    let (trigger, shutdown) = shutdown::channel();
    let mut config = ManagerConfig::new(discovery, management);
    config.beacon_interval = BEACON;
    config.ttl = ttl;
    config.v1_ttl = ttl;
    config.admin_token = Some("s3cret".into());
    (manager::start(config, shutdown).await.unwrap(), trigger)
}

async fn start_manager(ttl: Duration) -> (ManagerHandle, ShutdownTrigger) {
    start_manager_at("tcp://127.0.0.1:0", "tcp://127.0.0.1:0", ttl).await
}

fn start_agent(m: &ManagerHandle, name: &str) -> AgentHandle {
    let mut config = AgentConfig::new(
        RawAddress::new(name, Uid::new_v4()).unwrap(),
        &m.discovery,
        &m.management,
    );
    config.heartbeat = BEACON;
    agent::spawn(config)
}

async fn client(m: &ManagerHandle) -> ManagementClient {
    ManagementClient::connect(ClientConfig::new(
        &m.discovery,
        &m.management,
        Duration::from_secs(5),
    ))
    .await
    .unwrap()
}

/// Polls the listing until `done` holds (30 s at most: a thousand agents
/// registering on a machine busy with the rest of the test suite took
/// more than 10 s once).
async fn wait_listing(
    m: &ManagerHandle,
    what: &str,
    done: impl Fn(&[ServiceInfo]) -> bool,
) -> Vec<ServiceInfo> {
    wait_listing_on(&mut client(m).await, what, done).await
}

/// [`wait_listing`] through a client already connected.
async fn wait_listing_on(
    c: &mut ManagementClient,
    what: &str,
    done: impl Fn(&[ServiceInfo]) -> bool,
) -> Vec<ServiceInfo> {
    let started = Instant::now();
    loop {
        let list = c.list().await.unwrap();
        if done(&list) {
            return list;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: listing stayed {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn has(list: &[ServiceInfo], uid: Uid) -> bool {
    list.iter().any(|s| s.uuid == uid.to_string())
}

/// A raw DEALER, as an old Python service would use, with any identity.
fn raw_dealer(endpoint: &str, identity: &str) -> zmq::Socket {
    let dealer = zmq::Context::new().socket(zmq::DEALER).unwrap();
    dealer.set_identity(identity.as_bytes()).unwrap();
    dealer.set_linger(0).unwrap();
    dealer.connect(endpoint).unwrap();
    dealer
}

fn recv_response(dealer: &zmq::Socket) -> RawResponse {
    assert!(dealer.poll(zmq::POLLIN, 5000).unwrap() > 0, "an answer");
    let frames = dealer.recv_multipart(0).unwrap();
    RawResponse::parse_frames(frames.iter()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_heartbeat_bye_and_expiry() {
    let (m, _stop) = start_manager(Duration::from_millis(400)).await;
    let a = start_agent(&m, "Service A");
    let uid = a.address.uid();
    let list = wait_listing(&m, "A registers", |l| has(l, uid)).await;
    assert_eq!(list[0].name, "Service A");
    wait_listing(&m, "A heartbeats", |l| {
        l.iter()
            .any(|s| s.uuid == uid.to_string() && s.last_msg_type == "hello")
    })
    .await;
    // The v1 listing text has the old shape.
    let text = client(&m).await.list_text().await.unwrap();
    assert!(
        text.starts_with(&format!(
            "[1] : service_name = Service A : service_id = {uid} :time_since_lastUpdate = "
        )),
        "{text}"
    );

    // A service reaches the manager through its agent (what a plugin's
    // ServiceContext::ask_manager uses): `l` answers with the listing.
    let answer = a.ask("l").await.unwrap();
    assert_eq!(answer.code(), 200);
    assert!(
        answer.trimmed_body()[0].contains(&uid.to_string()),
        "{answer:?}"
    );

    a.stop().await; // BYE
    wait_listing(&m, "A says bye", |l| !has(l, uid)).await;

    // A v1 service that registers and then goes silent expires after the
    // v1 TTL (here as short as the v2 one).
    let silent = RawAddress::new("Silent", Uid::new_v4()).unwrap();
    let dealer = raw_dealer(&m.management, &silent.uid().to_string());
    let init = RawRequest::of_type(silent.clone(), m.address.clone(), RawMessageType::Init);
    dealer.send(init.serialize(), 0).unwrap();
    let answer = recv_response(&dealer);
    assert_eq!((answer.id(), answer.code()), (init.id(), 200));
    assert!(has(&client(&m).await.list().await.unwrap(), silent.uid()));
    wait_listing(&m, "silent service expires", |l| !has(l, silent.uid())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_register_again_after_a_manager_restart() {
    let (m1, stop1) = start_manager(Duration::from_secs(3)).await;
    let (discovery, management) = (m1.discovery.clone(), m1.management.clone());
    let agents: Vec<_> = (0..5)
        .map(|i| start_agent(&m1, &format!("Service {i}")))
        .collect();
    wait_listing(&m1, "all register", |l| l.len() == 5).await;

    stop1.fire();
    m1.task.await.unwrap();
    let (m2, _stop2) = start_manager_at(&discovery, &management, Duration::from_secs(3)).await;
    assert_ne!(
        m2.address.uid(),
        agents[0].registered().borrow().as_ref().unwrap().uid()
    );
    let restarted = Instant::now();
    wait_listing(&m2, "all register with the new manager", |l| l.len() == 5).await;
    // The first beacon after the restart triggers INIT at once; allow two
    // beacon intervals plus scheduling slack on a loaded machine.
    assert!(
        restarted.elapsed() < 2 * BEACON + Duration::from_millis(900),
        "took {:?}",
        restarted.elapsed()
    );
    for a in agents {
        a.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_needs_the_token_asks_the_service_and_unknown_uuids_are_404() {
    let (m, _stop) = start_manager(Duration::from_secs(3)).await;
    let a = start_agent(&m, "Stoppable");
    let uid = a.address.uid();
    wait_listing(&m, "registers", |l| has(l, uid)).await;
    let mut c = client(&m).await;
    // The manager has an admin token: stop needs it.
    let answer = c.stop(uid, None).await.unwrap();
    assert_eq!(answer.code(), 403, "{answer:?}");
    assert!(
        answer.trimmed_body()[0].contains("admin token"),
        "{answer:?}"
    );
    let answer = c.stop(uid, Some("guess")).await.unwrap();
    assert_eq!(answer.code(), 403, "{answer:?}");
    assert!(
        !*a.stop_requested().borrow(),
        "a refused stop reaches nobody"
    );
    assert!(
        m.counters
            .refused
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
    let answer = c.stop(uid, Some("s3cret")).await.unwrap();
    assert_eq!(answer.code(), 200, "{answer:?}");
    assert!(
        answer.trimmed_body()[0].starts_with("stopping"),
        "{answer:?}"
    );
    let mut requested = a.stop_requested();
    tokio::time::timeout(Duration::from_secs(5), requested.wait_for(|r| *r))
        .await
        .unwrap()
        .unwrap();
    a.stop().await;
    wait_listing(&m, "stopped service is gone", |l| !has(l, uid)).await;
    let answer = c.stop(Uid::new_v4(), Some("s3cret")).await.unwrap();
    assert_eq!(answer.code(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_needs_the_admin_token() {
    let (m, _stop) = start_manager(Duration::from_secs(3)).await;
    let mut c = client(&m).await;
    assert_eq!(c.shutdown(None).await.unwrap().code(), 403);
    assert_eq!(c.shutdown(Some("guess")).await.unwrap().code(), 403);
    assert!(!m.task.is_finished());
    let answer = c.shutdown(Some("s3cret")).await.unwrap();
    assert_eq!(answer.code(), 200);
    tokio::time::timeout(Duration::from_secs(5), m.task)
        .await
        .expect("the manager stops")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_fail_authenticity_are_refused() {
    let (m, _stop) = start_manager(Duration::from_secs(3)).await;
    // From uuid differs from the socket identity, and To is not the manager.
    let dealer = raw_dealer(&m.management, &Uid::new_v4().to_string());
    let other = RawAddress::new("Impostor", Uid::new_v4()).unwrap();
    let request = RawRequest::new(other.clone(), None, ["mgmt", "l"]);
    dealer.send(request.serialize(), 0).unwrap();
    assert_eq!(recv_response(&dealer).code(), 403);
    // Addressed To the manager, it is accepted whatever the identity.
    let request = RawRequest::new(other, Some(m.address.clone()), ["mgmt", "l"]);
    dealer.send(request.serialize(), 0).unwrap();
    assert_eq!(recv_response(&dealer).code(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_garbage_messages_change_nothing() {
    let (m, _stop) = start_manager(Duration::from_secs(30)).await;
    let a = start_agent(&m, "Survivor");
    wait_listing(&m, "registers", |l| has(l, a.address.uid())).await;
    let dealer = raw_dealer(&m.management, &Uid::new_v4().to_string());
    dealer.set_sndhwm(0).unwrap();
    let valid = RawRequest::of_type(
        RawAddress::new("X", Uid::new_v4()).unwrap(),
        m.address.clone(),
        RawMessageType::Init,
    )
    .serialize();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..10_000 {
        let frame: Vec<u8> = match i % 5 {
            0 => (0..(next() % 200)).map(|_| next() as u8).collect(), // random bytes
            1 => valid[..(next() as usize % valid.len())].to_vec(),   // truncated
            2 => String::from_utf8_lossy(&valid)
                .replace(&m.address.uid().to_string()[..8], "zzzzzzzz")
                .into_bytes(), // bad uuid
            3 if i % 100 == 3 => vec![b'x'; 1 << 19], // large (512 KiB; 100 of them)
            3 => vec![b'y'; 70_000],                  // larger than the read buffer
            _ => {
                let mut v = valid.clone();
                let at = next() as usize % v.len();
                v[at] = next() as u8; // one flipped byte
                v
            }
        };
        dealer.send(frame, 0).unwrap();
    }
    // Wait until the manager has worked through the garbage: random bytes,
    // bad uuids and oversized frames (at least 6,000 of them) never parse.
    let started = Instant::now();
    while m.dropped.load(std::sync::atomic::Ordering::Relaxed) < 6000 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "garbage not all seen: {m_dropped}",
            m_dropped = m.dropped.load(std::sync::atomic::Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = wait_listing(&m, "still answers", |l| has(l, a.address.uid())).await;
    // A flipped byte can still leave a valid INIT (another one-letter name or
    // another uuid): those are registrations, not garbage. Nothing else is.
    assert!(
        list.iter()
            .all(|s| s.name == "Survivor" || s.name.chars().count() == 1),
        "{list:?}"
    );
    assert!(!m.task.is_finished(), "the manager is alive");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_services_register_and_are_listed() {
    let (m, _stop) = start_manager(Duration::from_secs(30)).await;
    // The observer connects first: a thousand agent threads starting in
    // this process beside the rest of the suite left a client connecting
    // among them without an answer to its INIT within its 5 s once.
    let mut c = client(&m).await;
    let agents: Vec<_> = (0..1000)
        .map(|i| {
            agent::spawn(AgentConfig::new(
                RawAddress::new(format!("Service {i}"), Uid::new_v4()).unwrap(),
                &m.discovery,
                &m.management,
            ))
        })
        .collect();
    let list = wait_listing_on(&mut c, "1000 register", |l| l.len() == 1000).await;
    for a in &agents {
        assert!(has(&list, a.address.uid()));
    }
    let text = c.list_text().await.unwrap();
    assert_eq!(text.lines().count(), 1000);
    for a in agents {
        a.request_stop();
    }
    wait_listing_on(&mut c, "all say bye", |l| l.is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_share_an_identity_or_vanish_do_not_stall_the_manager() {
    let (m, _stop) = start_manager(Duration::from_secs(30)).await;
    // Two peers with one identity.
    let shared = Uid::new_v4();
    let twin = RawAddress::new("Twin", shared).unwrap();
    let first = raw_dealer(&m.management, &shared.to_string());
    let _second = raw_dealer(&m.management, &shared.to_string());
    let init = RawRequest::of_type(twin.clone(), m.address.clone(), RawMessageType::Init);
    first.send(init.serialize(), 0).unwrap();
    // Peers that send INIT and disconnect before the answer: the manager
    // routes to peers that went away.
    for _ in 0..20 {
        let ghost = RawAddress::new("Ghost", Uid::new_v4()).unwrap();
        let dealer = raw_dealer(&m.management, &ghost.uid().to_string());
        dealer.set_linger(1000).unwrap();
        let init = RawRequest::of_type(ghost, m.address.clone(), RawMessageType::Init);
        dealer.send(init.serialize(), 0).unwrap();
        drop(dealer);
    }
    // The manager still answers a fresh client.
    let list = wait_listing(&m, "ghosts registered", |l| {
        l.iter().filter(|s| s.name == "Ghost").count() == 20
    })
    .await;
    assert!(list.len() >= 20);
    assert!(!m.task.is_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_identity_is_taken_over_gets_it_back() {
    let (m, _stop) = start_manager(Duration::from_secs(30)).await;
    let a = start_agent(&m, "Real Service");
    let uid = a.address.uid();
    wait_listing(&m, "registers", |l| has(l, uid)).await;
    // A squatter connecting with the service's identity takes it over
    // (ZMQ_ROUTER_HANDOVER, which is what lets a reconnecting service in).
    let squatter = raw_dealer(&m.management, &uid.to_string());
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(squatter);
    // libzmq reconnects the service's DEALER by itself; its identity is its
    // own again and it is fresh in the listing.
    let started = Instant::now();
    loop {
        let list = client(&m).await.list().await.unwrap();
        let age = list
            .iter()
            .find(|s| s.uuid == uid.to_string())
            .map(|s| s.age_secs);
        if age.is_some_and(|a| a < 0.3) && started.elapsed() > Duration::from_millis(600) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the service did not get its registration back: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.stop().await;
}

/// A TCP proxy to `target` whose connections can be frozen: bytes stop
/// flowing both ways while the sockets stay open, as when a machine on the
/// path vanishes without a FIN.
struct FreezingProxy {
    port: u16,
    connections:
        std::sync::Arc<std::sync::Mutex<Vec<std::sync::Arc<std::sync::atomic::AtomicBool>>>>,
}

impl FreezingProxy {
    fn start(target: u16) -> Self {
        use std::{
            io::{Read, Write},
            net::{TcpListener, TcpStream},
            sync::{atomic::AtomicBool, Arc, Mutex},
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let all = Arc::clone(&connections);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    return;
                };
                let frozen = Arc::new(AtomicBool::new(false));
                all.lock().unwrap().push(Arc::clone(&frozen));
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let frozen = Arc::clone(&frozen);
                    std::thread::spawn(move || {
                        from.set_read_timeout(Some(Duration::from_millis(20)))
                            .unwrap();
                        let mut buf = [0u8; 65536];
                        loop {
                            if frozen.load(std::sync::atomic::Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(20));
                                continue;
                            }
                            match from.read(&mut buf) {
                                Ok(0) => return,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        return;
                                    }
                                }
                                Err(e)
                                    if e.kind() == std::io::ErrorKind::WouldBlock
                                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                                Err(_) => return,
                            }
                        }
                    });
                }
            }
        });
        Self { port, connections }
    }

    fn count(&self) -> usize {
        self.connections.lock().unwrap().len()
    }

    fn freeze_latest(&self) {
        if let Some(c) = self.connections.lock().unwrap().last() {
            c.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_connection_to_a_plughost_manager_is_noticed_and_redone() {
    let (m, _stop) = start_manager(Duration::from_secs(30)).await;
    let port: u16 = m.management.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = FreezingProxy::start(port);
    let mut config = AgentConfig::new(
        RawAddress::new("Heartbeating", Uid::new_v4()).unwrap(),
        &m.discovery,
        format!("tcp://127.0.0.1:{}", proxy.port),
    );
    config.heartbeat = Duration::from_millis(200);
    let a = agent::spawn(config);
    let uid = a.address.uid();
    wait_listing(&m, "registers", |l| has(l, uid)).await;
    // After the manager's `ok` the agent reopens its DEALER with heartbeats:
    // a second connection through the proxy, which then carries the HELLOs.
    let started = Instant::now();
    while proxy.count() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no heartbeat DEALER"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.freeze_latest();
    let frozen_at = Instant::now();
    // Three silent heartbeats (600 ms) later the agent drops the connection
    // and libzmq makes a new one, through which the HELLOs arrive again.
    while proxy.count() < 3 {
        assert!(
            frozen_at.elapsed() < Duration::from_secs(10),
            "the frozen management connection was never redone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_listing(&m, "fresh again", |l| {
        l.iter()
            .any(|s| s.uuid == uid.to_string() && s.age_secs < 0.3)
    })
    .await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_for_a_service_between_connections_goes_with_its_next_heartbeat() {
    let (m, _stop) = start_manager(Duration::from_secs(30)).await;
    let service = RawAddress::new("Reconnecting", Uid::new_v4()).unwrap();
    let first = raw_dealer(&m.management, &service.uid().to_string());
    let init = RawRequest::of_type(service.clone(), m.address.clone(), RawMessageType::Init);
    first.send(init.serialize(), 0).unwrap();
    assert_eq!(recv_response(&first).code(), 200);
    drop(first); // no connection with its identity now
    let mut c = client(&m).await;
    let started = Instant::now();
    let answer = loop {
        let answer = c.stop(service.uid(), Some("s3cret")).await.unwrap();
        let text = answer.trimmed_body()[0].clone();
        // The manager may not have seen the connection go yet; then the
        // stop is routed into the void and the next attempt tells.
        if text.contains("not reachable") {
            break answer;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{answer:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(answer.code(), 200);
    // Back on a new connection: the answer to its HELLO, then the stop.
    let second = raw_dealer(&m.management, &service.uid().to_string());
    let hello = RawRequest::of_type(service.clone(), m.address.clone(), RawMessageType::Hello);
    second.send(hello.serialize(), 0).unwrap();
    assert_eq!(recv_response(&second).id(), hello.id());
    assert!(
        second.poll(zmq::POLLIN, 5000).unwrap() > 0,
        "the stop follows"
    );
    let frames = second.recv_multipart(0).unwrap();
    let stop = plughost::proto::raw::RawRequest::parse_frames(frames.iter()).unwrap();
    assert_eq!(stop.trimmed_body(), ["stop"]);
}
