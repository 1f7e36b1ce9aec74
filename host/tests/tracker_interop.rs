//! Interop with the reference ZeroMQ (libzmq, through pyzmq) speaking the
//! old system's bytes (WIRE.md §2): an old-style service registers with a
//! plughost manager, and a plughost service registers with an old-style
//! manager.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use plughost::{
    proto::{address::RawAddress, uid::Uid},
    shutdown,
    tracker::{
        agent::{self, AgentConfig},
        client::ManagementClient,
        manager::{self, ManagerConfig},
    },
};
use plughost_test_support::pyzmq::run_python;

/// A v1 service in Python: waits for a beacon, INIT, HELLO, then BYE,
/// printing each answer's status line; lists in between via a callback file.
const OLD_SERVICE: &str = r#"
import sys, uuid, zmq, time
disc, mgmt, flag = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = zmq.Context()
sub = ctx.socket(zmq.SUB); sub.connect(disc); sub.setsockopt_string(zmq.SUBSCRIBE, "")
beacon = sub.recv().decode().split("\r\n")
manager = beacon[2]
me = uuid.uuid4()
dealer = ctx.socket(zmq.DEALER); dealer.setsockopt(zmq.IDENTITY, str(me).encode()); dealer.connect(mgmt)
def send(kind):
    rid = uuid.uuid4()
    msg = "Raw Request Message : Version 1.0\r\n%s\r\nOld Service:%s\r\n%s\r\n\r\n%s\r\n" % (rid, me, manager, kind)
    dealer.send(msg.encode())
    return rid
rid = send("init")
reply = dealer.recv().decode().split("\r\n")
print("init", reply[0], reply[1] == str(rid), reply[5], flush=True)
print("uuid", me, flush=True)
# wait until the test has listed us
while open(flag).read().strip() != "listed": time.sleep(0.05)
rid = send("hello")
reply = dealer.recv().decode().split("\r\n")
print("hello", reply[1] == str(rid), reply[5], flush=True)
send("bye")
time.sleep(0.3)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_libzmq_service_registers_with_a_plughost_manager() {
    let (_trigger, shutdown) = shutdown::channel();
    let m = manager::start(
        ManagerConfig {
            discovery: "tcp://127.0.0.1:0".into(),
            management: "tcp://127.0.0.1:0".into(),
            beacon_interval: Duration::from_millis(100),
            ttl: Duration::from_secs(10),
            admin_token: None,
        },
        shutdown,
    )
    .await
    .unwrap();
    let flag = tempfile::NamedTempFile::new().unwrap();
    let flag_path = flag.path().to_path_buf();
    let (disc, mgmt) = (m.discovery.clone(), m.management.clone());
    let python = tokio::task::spawn_blocking(move || {
        run_python(OLD_SERVICE, &[&disc, &mgmt, flag_path.to_str().unwrap()])
    });

    let mut client = ManagementClient::connect(&m.management, Duration::from_secs(5))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let listed = loop {
        let list = client.list().await.unwrap();
        if let Some(s) = list.into_iter().find(|s| s.name == "Old Service") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the libzmq service never registered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(listed.last_msg_type, "init");
    std::fs::write(flag.path(), "listed").unwrap();
    let out = python.await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("init Raw Response Message : Version 1.0 True 200"),
        "{stdout}"
    );
    assert!(stdout.contains("hello True 200"), "{stdout}");
    // After its BYE it is gone.
    let list = client.list().await.unwrap();
    assert!(!list.iter().any(|s| s.name == "Old Service"), "{list:?}");
}

/// A v1 manager in Python: beacons, answers the first INIT and HELLO with
/// 200 and reports what it received.
const OLD_MANAGER: &str = r#"
import sys, uuid, zmq, time
pub_port, router_port = sys.argv[1], sys.argv[2]
ctx = zmq.Context()
pub = ctx.socket(zmq.PUB); pub.bind("tcp://127.0.0.1:" + pub_port)
router = ctx.socket(zmq.ROUTER); router.bind("tcp://127.0.0.1:" + router_port)
me = "Service Manager:%s" % uuid.uuid4()
poller = zmq.Poller(); poller.register(router, zmq.POLLIN)
seen = []
deadline = time.time() + 30
while time.time() < deadline and len(seen) < 2:
    pub.send(("Raw Request Message : Version 1.0\r\n%s\r\n%s\r\n\r\nhello\r\n" % (uuid.uuid4(), me)).encode())
    if poller.poll(200):
        frames = router.recv_multipart()
        ident, parts = frames[0], b"".join(frames[1:]).decode().split("\r\n")
        kind = parts[5] if parts[3] else parts[4]
        sender = parts[2]
        ok = ident.decode() == sender.split(":")[1] and parts[3] == me
        seen.append(kind)
        print("got", kind, "identity-matches", ok, flush=True)
        reply = "Raw Response Message : Version 1.0\r\n%s\r\n%s\r\n%s\r\n\r\n200\r\nSuccess\r\n\r\n" % (parts[1], me, sender)
        router.send_multipart([ident, reply.encode()])
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plughost_service_registers_with_an_old_libzmq_manager() {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string()
    };
    let (pub_port, router_port) = (free(), free());
    let (p1, p2) = (pub_port.clone(), router_port.clone());
    let python = tokio::task::spawn_blocking(move || run_python(OLD_MANAGER, &[&p1, &p2]));
    let agent = agent::spawn(AgentConfig {
        address: RawAddress::new("plughost interop", Uid::new_v4()).unwrap(),
        discovery: format!("tcp://127.0.0.1:{pub_port}"),
        management: format!("tcp://127.0.0.1:{router_port}"),
        heartbeat: Duration::from_millis(200),
        details: None,
    });
    let mut registered = agent.registered();
    tokio::time::timeout(
        Duration::from_secs(60),
        registered.wait_for(|m| m.is_some()),
    )
    .await
    .expect("registered with the libzmq manager")
    .unwrap();
    let out = python.await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("got init identity-matches True"),
        "{stdout}"
    );
    assert!(
        stdout.contains("got hello identity-matches True"),
        "{stdout}"
    );
    agent.stop().await;
}
