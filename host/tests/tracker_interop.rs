//! Interop with peers on libzmq through pyzmq that behave like the old
//! Python tools (docs/wire.md §2): an old-style service registers with a
//! plughost manager, keeps its own 9 s pace and expires when it dies; a
//! plughost service registers with an old-style manager, again at the
//! first beacon of a new one; plughost's command processor lists through an
//! old manager that needs the To part; an old command processor's bare `s`
//! gets no answer and its listing is the old bytes; stopping a v1 service
//! says that it does not act on stop.

#![allow(clippy::unwrap_used)]

use std::{
    process::Output,
    time::{Duration, Instant},
};

use plughost::{
    proto::{
        address::RawAddress,
        raw::{parse_listing, ListingEntry, RawMessageType},
        uid::Uid,
    },
    shutdown,
    tracker::{
        agent::{self, AgentConfig},
        client::{ClientConfig, ManagementClient},
        manager::{self, ManagerConfig, ManagerHandle},
        registry::ServiceInfo,
    },
};
use plughost_test_support::{free_port, process, pyzmq::run_python};

/// Message helpers every script below starts with: the old tools' framing.
const PY_COMMON: &str = r#"
import sys, uuid, zmq, time, os
CRLF = "\r\n"
def req(frm, to, *body):
    rid = str(uuid.uuid4())
    parts = ["Raw Request Message : Version 1.0", rid, frm] + ([to] if to else []) + [""] + list(body)
    return rid, (CRLF.join(parts) + CRLF).encode()
def resp(rid, frm, to, code, reason, body):
    parts = ["Raw Response Message : Version 1.0", rid, frm, to, "", code, reason, body]
    return (CRLF.join(parts) + CRLF).encode()
def parse(data):
    return data.decode().split(CRLF)
def out(*a):
    print(*a, flush=True)
def first_beacon(ctx, disc):
    sub = ctx.socket(zmq.SUB); sub.connect(disc); sub.setsockopt_string(zmq.SUBSCRIBE, "")
    return sub, parse(sub.recv())[2]
"#;

fn python(script: &str, args: &[&str]) -> Output {
    run_python(&format!("{PY_COMMON}{script}"), args)
}

fn stdout_of(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

async fn plughost_manager(config: ManagerConfig) -> ManagerHandle {
    let (trigger, shutdown) = shutdown::channel();
    std::mem::forget(trigger); // the manager lives as long as the test
    manager::start(config, shutdown).await.unwrap()
}

async fn client(m: &ManagerHandle) -> ManagementClient {
    ManagementClient::connect(ClientConfig::new(
        &m.discovery,
        &m.management,
        Duration::from_secs(10),
    ))
    .await
    .unwrap()
}

async fn listed(c: &mut ManagementClient, name: &str) -> Option<ServiceInfo> {
    c.list().await.unwrap().into_iter().find(|s| s.name == name)
}

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
    let mut config = ManagerConfig::new("tcp://127.0.0.1:0", "tcp://127.0.0.1:0");
    config.beacon_interval = Duration::from_millis(100);
    config.ttl = Duration::from_secs(10);
    let m = plughost_manager(config).await;
    let flag = tempfile::NamedTempFile::new().unwrap();
    let flag_path = flag.path().to_path_buf();
    let (disc, mgmt) = (m.discovery.clone(), m.management.clone());
    let python = tokio::task::spawn_blocking(move || {
        run_python(OLD_SERVICE, &[&disc, &mgmt, flag_path.to_str().unwrap()])
    });

    let mut client = client(&m).await;
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
    let mut config = AgentConfig::new(
        RawAddress::new("plughost interop", Uid::new_v4()).unwrap(),
        format!("tcp://127.0.0.1:{pub_port}"),
        format!("tcp://127.0.0.1:{router_port}"),
    );
    config.heartbeat = Duration::from_millis(200);
    let agent = agent::spawn(config);
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

/// An old-style manager that is as strict as the old one: a request without
/// a To part kills it (the old manager dereferenced it: `AttributeError`),
/// INIT and HELLO are answered with the listing, `l` with the listing, and
/// anything else gets silence. It knows one service of its own from the start.
const STRICT_OLD_MANAGER: &str = r#"
pub_port, router_port, flag = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = zmq.Context()
pub = ctx.socket(zmq.PUB); pub.bind("tcp://127.0.0.1:" + pub_port)
router = ctx.socket(zmq.ROUTER); router.bind("tcp://127.0.0.1:" + router_port)
me = "Service Manager:%s" % uuid.uuid4()
registry = [("Old Service 7", str(uuid.uuid4()), time.time(), "hello")]
def listing():
    now = time.time()
    return "".join("[%d] : service_name = %s : service_id = %s :time_since_lastUpdate = %s : last_msg_type = %s\n" % (i + 1, n, u, str(now - t), k) for i, (n, u, t, k) in enumerate(registry))
poller = zmq.Poller(); poller.register(router, zmq.POLLIN)
next_beacon = 0
deadline = time.time() + 120
while time.time() < deadline and not os.path.exists(flag):
    if time.time() >= next_beacon:
        pub.send(req(me, None, "hello")[1]); next_beacon = time.time() + 0.5
    if not poller.poll(100):
        continue
    frames = router.recv_multipart()
    ident, p = frames[0], parse(b"".join(frames[1:]))
    to, frm = p[3], p[2]
    if to == "":
        out("CRASH: a request without a To part")
        sys.exit(3)
    kind = p[5]
    if kind in ("init", "hello"):
        out("got", kind, "to-me", to == me)
        body = listing()
        name, uid = frm.split(":")
        registry = [r for r in registry if r[1] != uid] + [(name, uid, time.time(), kind)]
        router.send_multipart([ident, resp(p[1], me, frm, "200", "Success", body)])
    elif kind == "bye":
        out("got bye")
        registry = [r for r in registry if r[1] != frm.split(":")[1]]
    elif kind == "mgmt":
        out("got mgmt", repr(p[6]), "to-me", to == me)
        if p[6] == "l":
            router.send_multipart([ident, resp(p[1], me, frm, "200", "Success", listing())])
out("alive")
"#;

#[test]
fn the_command_processor_lists_through_an_old_manager_that_needs_the_to_part() {
    let (pub_port, router_port) = (free_port(), free_port());
    let flag = tempfile::tempdir().unwrap();
    let flag_path = flag.path().join("done");
    let (p1, p2, f) = (
        pub_port.to_string(),
        router_port.to_string(),
        flag_path.to_str().unwrap().to_owned(),
    );
    let manager = std::thread::spawn(move || python(STRICT_OLD_MANAGER, &[&p1, &p2, &f]));
    let endpoints = [
        "--discovery".to_owned(),
        format!("tcp://127.0.0.1:{pub_port}"),
        "--management".to_owned(),
        format!("tcp://127.0.0.1:{router_port}"),
        "--timeout".to_owned(),
        "30".to_owned(),
    ];
    let cli = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(endpoints.iter().map(String::as_str));
        process::output(plughost_test_support::plughost_bin(), &all)
    };

    let out = cli(&["services", "list", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let services: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let old = services
        .iter()
        .find(|s| s["name"] == "Old Service 7")
        .unwrap_or_else(|| panic!("{services:?}"));
    let uuid = old["uuid"].as_str().unwrap().to_owned();
    let out = cli(&["services", "list"]);
    assert!(process::stdout(&out).contains("Old Service 7"), "{out:?}");

    let mut cmd = std::process::Command::new(plughost_test_support::plughost_bin());
    cmd.arg("cmd-proc").args(&endpoints);
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("l\ns {uuid}\ne\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = process::stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "[1] : service_name = Old Service 7 : service_id = {uuid} :time_since_lastUpdate = "
        )),
        "{text}"
    );
    assert!(text.contains("old (v1) service manager"), "{text}");

    let out = cli(&["services", "stop", &uuid]);
    assert!(!out.status.success());
    assert!(
        process::stderr(&out).contains("old (v1) service manager; it cannot stop services"),
        "{out:?}"
    );

    std::fs::write(&flag_path, "done").unwrap();
    let log = stdout_of(&manager.join().unwrap());
    assert!(log.ends_with("alive\n"), "the old manager survived: {log}");
    assert!(!log.contains("CRASH"), "{log}");
    assert!(
        !log.contains("to-me False"),
        "every request was To the manager: {log}"
    );
    // Exactly what the old command processor sent: INIT, `l`, BYE; never
    // plughost's `lj`, never a stop.
    let commands: Vec<&str> = log.lines().filter(|l| l.starts_with("got mgmt")).collect();
    assert!(
        !commands.is_empty() && commands.iter().all(|l| l.starts_with("got mgmt 'l'")),
        "{log}"
    );
    assert!(log.contains("got init"), "{log}");
}

/// An old service: INIT at the first beacon, then HELLO every `pace`
/// seconds, `count` times, and then it dies without BYE (old services never
/// said bye).
const PACED_OLD_SERVICE: &str = r#"
disc, mgmt, pace, count = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
ctx = zmq.Context()
sub, manager = first_beacon(ctx, disc)
me = "Paced Service:%s" % uuid.uuid4()
dealer = ctx.socket(zmq.DEALER); dealer.setsockopt(zmq.IDENTITY, me.split(":")[1].encode()); dealer.connect(mgmt)
dealer.send(req(me, manager, "init")[1]); dealer.recv()
out("registered")
for i in range(count):
    time.sleep(pace)
    dealer.send(req(me, manager, "hello")[1]); dealer.recv()
out("died")
dealer.setsockopt(zmq.LINGER, 0)
os._exit(0)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_service_on_a_9_s_pace_stays_listed_and_expires_within_two_intervals_of_dying() {
    let m = plughost_manager(ManagerConfig::new("tcp://127.0.0.1:0", "tcp://127.0.0.1:0")).await;
    let (disc, mgmt) = (m.discovery.clone(), m.management.clone());
    // 7 hellos 9 s apart: the service lives 63 s.
    let service =
        tokio::task::spawn_blocking(move || python(PACED_OLD_SERVICE, &[&disc, &mgmt, "9", "7"]));
    let mut c = client(&m).await;
    let started = Instant::now();
    while listed(&mut c, "Paced Service").await.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never registered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Listed at every sample for 60 s (the old manager's TTL; plughost's
    // v2 TTL is 3 s, which made old services flap).
    let registered = Instant::now();
    while registered.elapsed() < Duration::from_secs(60) {
        let entry = listed(&mut c, "Paced Service").await;
        assert!(
            entry.is_some(),
            "an old service heartbeating every 9 s left the listing after {:?}",
            registered.elapsed()
        );
        assert_eq!(entry.unwrap().protocol, "v1");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let out = service.await.unwrap();
    let died = Instant::now();
    assert!(stdout_of(&out).contains("died"));
    while listed(&mut c, "Paced Service").await.is_some() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        died.elapsed() < Duration::from_secs(18),
        "a dead old service (9 s pace) expired after {:?}, not within two intervals",
        died.elapsed()
    );
}

/// An old command processor: registers, then sends what the old menu sent
/// for `s <uuid>` (a bare `s`), an unknown command, and `l`, each followed
/// by a read of whatever answer comes; prints the answers it got.
const OLD_COMMAND_PROCESSOR: &str = r#"
disc, mgmt = sys.argv[1], sys.argv[2]
ctx = zmq.Context()
sub, manager = first_beacon(ctx, disc)
me = "Command Processor:%s" % uuid.uuid4()
dealer = ctx.socket(zmq.DEALER); dealer.setsockopt(zmq.IDENTITY, me.split(":")[1].encode()); dealer.connect(mgmt)
dealer.send(req(me, manager, "init")[1]); dealer.recv()
out("me", me)
out("manager", manager)
for command in ["s", "frobnicate"]:
    dealer.send(req(me, manager, "mgmt", command)[1])
    if dealer.poll(1500):
        out("answered", repr(command), repr(dealer.recv()))
    else:
        out("silent", repr(command))
rid, data = req(me, manager, "mgmt", "l")
dealer.send(data)
answer = dealer.recv()
out("l-id", rid)
out("l-bytes", answer.hex())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_command_processor_gets_silence_for_a_bare_s_and_the_old_listing_bytes() {
    let m = plughost_manager(ManagerConfig::new("tcp://127.0.0.1:0", "tcp://127.0.0.1:0")).await;
    let (disc, mgmt) = (m.discovery.clone(), m.management.clone());
    let out = tokio::task::spawn_blocking(move || python(OLD_COMMAND_PROCESSOR, &[&disc, &mgmt]))
        .await
        .unwrap();
    let log = stdout_of(&out);
    let value = |key: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key} in {log}"))
            .to_owned()
    };
    assert!(log.contains("silent 's'"), "{log}");
    assert!(log.contains("silent 'frobnicate'"), "{log}");
    assert!(!log.contains("answered"), "{log}");
    assert_eq!(
        m.counters
            .unanswered
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );

    // The answer to `l` is the very next message, and byte for byte the old
    // manager's: one body part with `\n`-ended lines, then CRLF.
    let (me, manager, id) = (value("me"), value("manager"), value("l-id"));
    let bytes = hex_decode(&value("l-bytes"));
    let text = String::from_utf8(bytes).unwrap();
    let head = format!(
        "Raw Response Message : Version 1.0\r\n{id}\r\n{manager}\r\n{me}\r\n\r\n200\r\nSuccess\r\n"
    );
    let listing = text
        .strip_prefix(&head)
        .unwrap_or_else(|| panic!("{text:?} does not start with {head:?}"));
    let lines = listing
        .strip_suffix("\r\n")
        .unwrap_or_else(|| panic!("{listing:?} does not end with the part's CRLF"));
    assert!(!lines.contains('\r'), "{listing:?}");
    let entries = parse_listing(lines).unwrap();
    assert_eq!(entries.len(), 1, "{listing:?}");
    let uid = me.split(':').nth(1).unwrap();
    let expected = ListingEntry::new(
        1,
        RawAddress::new("Command Processor", Uid::parse(uid).unwrap()).unwrap(),
        entries[0].seconds_since_update,
        RawMessageType::Init,
    );
    assert_eq!(lines, format!("{expected}\n"));
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// A manager that restarts as far as its peers can tell: it beacons as A,
/// answers, and after the first INIT it beacons as B (a new uuid) and
/// reports how long after B's first beacon an INIT addressed to B came.
const RESTARTING_OLD_MANAGER: &str = r#"
pub_port, router_port = sys.argv[1], sys.argv[2]
ctx = zmq.Context()
pub = ctx.socket(zmq.PUB); pub.bind("tcp://127.0.0.1:" + pub_port)
router = ctx.socket(zmq.ROUTER); router.bind("tcp://127.0.0.1:" + router_port)
me = "Service Manager:%s" % uuid.uuid4()
poller = zmq.Poller(); poller.register(router, zmq.POLLIN)
next_beacon, switched_at, deadline = 0, None, time.time() + 60
while time.time() < deadline:
    if time.time() >= next_beacon:
        pub.send(req(me, None, "hello")[1]); next_beacon = time.time() + 2.0
    if not poller.poll(50):
        continue
    frames = router.recv_multipart()
    ident, p = frames[0], parse(b"".join(frames[1:]))
    kind, to = p[5], p[3]
    router.send_multipart([ident, resp(p[1], me, p[2], "200", "Success", "")])
    if kind == "init" and switched_at is None:
        me = "Service Manager:%s" % uuid.uuid4()
        pub.send(req(me, None, "hello")[1]); switched_at = time.time(); next_beacon = switched_at + 2.0
        out("switched")
    elif kind == "init" and to == me:
        out("registered again after %.3f s" % (time.time() - switched_at))
        break
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plughost_service_registers_again_at_the_first_beacon_of_a_new_manager() {
    let (pub_port, router_port) = (free_port(), free_port());
    let (p1, p2) = (pub_port.to_string(), router_port.to_string());
    let manager = tokio::task::spawn_blocking(move || python(RESTARTING_OLD_MANAGER, &[&p1, &p2]));
    // A heartbeat far longer than the test, so only the beacon can trigger INIT.
    let mut config = AgentConfig::new(
        RawAddress::new("plughost restart", Uid::new_v4()).unwrap(),
        format!("tcp://127.0.0.1:{pub_port}"),
        format!("tcp://127.0.0.1:{router_port}"),
    );
    config.heartbeat = Duration::from_secs(120);
    let agent = agent::spawn(config);
    let log = stdout_of(&manager.await.unwrap());
    let delay: f64 = log
        .lines()
        .find_map(|l| l.strip_prefix("registered again after "))
        .and_then(|l| l.strip_suffix(" s"))
        .unwrap_or_else(|| panic!("{log}"))
        .parse()
        .unwrap();
    // The next beacon comes 2 s later; INIT at the first one is far sooner.
    assert!(
        delay < 1.0,
        "registered again {delay} s after the new manager's first beacon"
    );
    agent.stop().await;
}

/// An old service that says hello every second for `secs` and reports any
/// request it receives (old services ignore them).
const HELLO_OLD_SERVICE: &str = r#"
disc, mgmt, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
ctx = zmq.Context()
sub, manager = first_beacon(ctx, disc)
me = "Stubborn Service:%s" % uuid.uuid4()
dealer = ctx.socket(zmq.DEALER); dealer.setsockopt(zmq.IDENTITY, me.split(":")[1].encode()); dealer.connect(mgmt)
dealer.send(req(me, manager, "init")[1])
end = time.time() + secs
next_hello = time.time() + 1
while time.time() < end:
    if dealer.poll(100):
        p = parse(dealer.recv())
        if p[0].startswith("Raw Request"):
            out("got request", p[5])
    if time.time() >= next_hello:
        dealer.send(req(me, manager, "hello")[1]); next_hello = time.time() + 1
dealer.send(req(me, manager, "bye")[1])
time.sleep(0.2)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_v1_service_says_that_it_does_not_act_on_stop() {
    let mut config = ManagerConfig::new("tcp://127.0.0.1:0", "tcp://127.0.0.1:0");
    config.beacon_interval = Duration::from_millis(200);
    let m = plughost_manager(config).await;
    let (disc, mgmt) = (m.discovery.clone(), m.management.clone());
    let service =
        tokio::task::spawn_blocking(move || python(HELLO_OLD_SERVICE, &[&disc, &mgmt, "8"]));
    let mut c = client(&m).await;
    let started = Instant::now();
    let uuid = loop {
        if let Some(s) = listed(&mut c, "Stubborn Service").await {
            break s.uuid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never registered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (disc, mgmt) = (m.discovery.clone(), m.management.clone());
    let out = tokio::task::spawn_blocking(move || {
        process::output(
            plughost_test_support::plughost_bin(),
            &[
                "services",
                "stop",
                &uuid,
                "--discovery",
                &disc,
                "--management",
                &mgmt,
            ],
        )
    })
    .await
    .unwrap();
    let text = process::stdout(&out);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("v1 service, which does not act on stop"),
        "{text}"
    );
    let log = stdout_of(&service.await.unwrap());
    assert!(log.contains("got request stop"), "the stop was sent: {log}");
}
