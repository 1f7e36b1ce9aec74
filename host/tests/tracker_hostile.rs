//! Hostile peers against the real binary (and a manager in process): frame
//! headers announcing 1 TiB and 100 MiB, sent after a hand-written ZMTP
//! handshake to the management port, to the discovery port, and by a fake
//! manager to a services host; a thousand connections opened and dropped.
//!
//! With the pure-Rust `zeromq` crate one such header aborted the whole host
//! (it reserved the announced length before reading). libzmq checks
//! `ZMQ_MAXMSGSIZE` before it allocates: the connection is dropped, the
//! drop is logged by the socket monitor, and every role keeps working (RPC
//! answers, the manager lists).

#![allow(clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use plughost_test_support::{free_port, plugin_lib, process, TempManifest, TestExchanges};

/// Frame sizes a hostile peer announces: far beyond memory, and merely too large.
const HOSTILE_SIZES: [u64; 2] = [1 << 40, 100 << 20];

/// A `plughost run` whose stderr goes to a file the test reads.
struct Host {
    child: Child,
    log: tempfile::NamedTempFile,
    manifest: TempManifest,
}

impl Host {
    fn start(manifest: TempManifest) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(plughost_test_support::plughost_bin())
            .args(["run", "--manifest"])
            .arg(manifest.path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        Self {
            child,
            log,
            manifest,
        }
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap()
    }

    /// Waits until the log has `n` lines containing every one of `parts`.
    fn wait_log(&self, parts: &[&str], n: usize) {
        let started = Instant::now();
        loop {
            let log = self.log();
            let found = log
                .lines()
                .filter(|l| parts.iter().all(|p| l.contains(p)))
                .count();
            if found >= n {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "expected {n} log lines with {parts:?}, found {found}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An RPC call through the real CLI answers (the host's RPC role is alive).
    fn assert_rpc_answers(&self) {
        let manifest = self.manifest.path().to_str().unwrap();
        let started = Instant::now();
        loop {
            let out = process::output(
                plughost_test_support::plughost_bin(),
                &[
                    "call",
                    "fibo",
                    "10",
                    "--manifest",
                    manifest,
                    "--timeout",
                    "5",
                ],
            );
            if out.status.success() {
                assert_eq!(process::stdout(&out).trim(), "55");
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "RPC does not answer: {}",
                process::stderr(&out)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(port: u16) -> TcpStream {
    let started = Instant::now();
    loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing listens on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The ZMTP 3.0 greeting (NULL mechanism, as server when `server`) and a
/// READY command for a socket of `kind` (with `identity` for a DEALER).
fn zmtp_handshake(stream: &mut TcpStream, kind: &str, server: bool) {
    let mut greeting = vec![0xffu8, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0];
    let mut mechanism = b"NULL".to_vec();
    mechanism.resize(20, 0);
    greeting.extend(mechanism);
    greeting.push(u8::from(server));
    greeting.resize(64, 0);
    stream.write_all(&greeting).unwrap();
    let mut theirs = [0u8; 64];
    stream.read_exact(&mut theirs).unwrap();
    let mut ready = vec![5u8];
    ready.extend(b"READY");
    let mut properties: Vec<(&[u8], &[u8])> = vec![(b"Socket-Type", kind.as_bytes())];
    if kind == "DEALER" {
        properties.push((b"Identity", b"attacker"));
    }
    for (name, value) in properties {
        ready.push(name.len() as u8);
        ready.extend(name);
        ready.extend((value.len() as u32).to_be_bytes());
        ready.extend(value);
    }
    let mut command = vec![0x04u8, ready.len() as u8];
    command.extend(ready);
    stream.write_all(&command).unwrap();
}

/// Sends a long-frame header announcing `size` bytes and a little payload.
fn send_hostile_header(stream: &mut TcpStream, size: u64) {
    let mut header = vec![0x02u8]; // a long frame, the last one
    header.extend(size.to_be_bytes());
    let _ = stream.write_all(&header);
    let _ = stream.write_all(&[0u8; 64]);
}

/// The peer closes the connection (read gives EOF or a reset) within 10 s.
fn assert_dropped(stream: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    loop {
        let read = stream.read(&mut buf);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: the connection was not dropped within 10 s ({read:?})"
        );
        if matches!(read, Ok(0) | Err(_)) {
            return;
        }
    }
}

fn rpc_manifest(ex: &TestExchanges, zeromq: &str, roles: &str) -> TempManifest {
    TempManifest::new(&format!(
        "[host]\nname = \"victim\"\n{}\n{zeromq}[roles]\nadmin = false\n{roles}\n[[plugins]]\npath = {:?}\n",
        ex.rabbitmq_toml(),
        plugin_lib("math").display().to_string()
    ))
}

#[test]
fn oversized_frame_headers_to_the_manager_drop_the_connection_and_nothing_else() {
    let ex = TestExchanges::new("hostile-mgr");
    let (disc, mgmt) = (free_port(), free_port());
    let zeromq = format!(
        "[zeromq]\ndiscovery = \"tcp://127.0.0.1:{disc}\"\nmanagement = \"tcp://127.0.0.1:{mgmt}\"\n"
    );
    let mut host = Host::start(rpc_manifest(&ex, &zeromq, "services = false\n"));
    host.assert_rpc_answers();
    for (port, kind, socket) in [(mgmt, "DEALER", "management"), (disc, "SUB", "discovery")] {
        for size in HOSTILE_SIZES {
            let mut stream = connect(port);
            zmtp_handshake(&mut stream, kind, false);
            send_hostile_header(&mut stream, size);
            assert_dropped(&mut stream, &format!("{size} bytes to the {socket} port"));
            assert!(host.alive(), "the host died after {size} bytes to {socket}");
        }
        host.wait_log(&["connection dropped", &format!("socket=\"{socket}\"")], 2);
    }
    host.assert_rpc_answers();
    let out = process::output(
        plughost_test_support::plughost_bin(),
        &[
            "services",
            "list",
            "--manifest",
            host.manifest.path().to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "the manager still lists: {out:?}");
    assert!(host.alive());
}

/// A fake manager: accepts connections on `listener`, greets as `kind`
/// (PUB or ROUTER) and sends one hostile header per connection, for each
/// size in turn; returns once each was dropped by the host.
fn fake_manager(listener: TcpListener, kind: &'static str) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for size in HOSTILE_SIZES {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            zmtp_handshake(&mut stream, kind, true);
            send_hostile_header(&mut stream, size);
            assert_dropped(&mut stream, &format!("{size} bytes from a fake {kind}"));
        }
    })
}

#[test]
fn a_fake_manager_sending_oversized_frames_cannot_crash_a_services_host() {
    let ex = TestExchanges::new("hostile-svc");
    let discovery = TcpListener::bind("127.0.0.1:0").unwrap();
    let management = TcpListener::bind("127.0.0.1:0").unwrap();
    let zeromq = format!(
        "[zeromq]\ndiscovery = \"tcp://127.0.0.1:{}\"\nmanagement = \"tcp://127.0.0.1:{}\"\n",
        discovery.local_addr().unwrap().port(),
        management.local_addr().unwrap().port()
    );
    let mut host = Host::start(rpc_manifest(&ex, &zeromq, "manager = false\n"));
    let pub_side = fake_manager(discovery, "PUB");
    let router_side = fake_manager(management, "ROUTER");
    pub_side.join().unwrap();
    router_side.join().unwrap();
    assert!(host.alive(), "the services host died");
    host.wait_log(&["connection dropped", "socket=\"agent discovery\""], 2);
    host.wait_log(&["connection dropped", "socket=\"agent management\""], 2);
    host.assert_rpc_answers();
    assert!(host.alive());
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_opened_and_dropped_change_nothing() {
    use plughost::{
        proto::{address::RawAddress, uid::Uid},
        shutdown,
        tracker::{
            agent::{self, AgentConfig},
            client::{ClientConfig, ManagementClient},
            manager::{self, ManagerConfig},
        },
    };
    let (_trigger, shutdown) = shutdown::channel();
    let m = manager::start(
        ManagerConfig::new("tcp://127.0.0.1:0", "tcp://127.0.0.1:0"),
        shutdown,
    )
    .await
    .unwrap();
    let a = agent::spawn(AgentConfig::new(
        RawAddress::new("Bystander", Uid::new_v4()).unwrap(),
        &m.discovery,
        &m.management,
    ));
    let mut registered = a.registered();
    tokio::time::timeout(
        Duration::from_secs(10),
        registered.wait_for(|r| r.is_some()),
    )
    .await
    .unwrap()
    .unwrap();
    let port = |endpoint: &str| -> u16 { endpoint.rsplit(':').next().unwrap().parse().unwrap() };
    let (mgmt, disc) = (port(&m.management), port(&m.discovery));
    let before = open_fds();
    let churn = tokio::task::spawn_blocking(move || {
        for i in 0..1000 {
            let target = if i % 2 == 0 { mgmt } else { disc };
            let mut stream = TcpStream::connect(("127.0.0.1", target)).unwrap();
            match i % 4 {
                // Bare connect and close; half a greeting; a full handshake.
                0 | 1 => {}
                2 => {
                    let _ = stream.write_all(&[0xff, 0, 0, 0]);
                }
                _ => {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let kind = if target == mgmt { "DEALER" } else { "SUB" };
                    zmtp_handshake(&mut stream, kind, false);
                }
            }
            drop(stream);
        }
    });
    churn.await.unwrap();
    let mut client = ManagementClient::connect(ClientConfig::new(
        &m.discovery,
        &m.management,
        Duration::from_secs(10),
    ))
    .await
    .unwrap();
    let list = client.list().await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].name, "Bystander");
    assert!(!m.task.is_finished());
    assert_eq!(m.dropped.load(std::sync::atomic::Ordering::Relaxed), 0);
    // The manager let go of every connection (its fds are in this process).
    let started = Instant::now();
    while open_fds() > before + 16 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} fds open after the churn, {before} before",
            open_fds()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.stop().await;
}
