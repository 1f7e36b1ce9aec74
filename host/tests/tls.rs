//! `amqps://` with the real binary against RabbitMQ TLS listeners of the
//! tests' own, with a CA made by the test (`TestCa`, the openssl commands
//! of docs/operations.md): `plughost run` and `plughost call` work over
//! TLS (the broker says so: `ssl = true`), with a client certificate when
//! the listener requires one; a scheme that cannot be honoured is refused,
//! never downgraded to plaintext.

#![allow(clippy::unwrap_used)]

use std::{net::TcpStream, process::Output, time::Duration};

use plughost_test_support::{
    free_port, plughost_bin,
    process::{output_within, stderr, stdout},
    HostProcess, RabbitNode, TestCa,
};

/// Longest any one CLI command may take before the test calls it hung;
/// each finishes in well under a second here.
const HANG_LIMIT: Duration = Duration::from_secs(30);

/// A node with a TLS listener signed by `ca`; returns it and the TLS port.
fn tls_node(ca: &TestCa, require_client_cert: bool) -> (RabbitNode, u16) {
    let port = free_port();
    let node = RabbitNode::start_with(ca.rabbit_conf(port, require_client_cert));
    // The TLS listener opens with the plain one; wait for it on its own.
    let started = std::time::Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no TLS listener on {port}:\n{}",
            node.server_output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (node, port)
}

fn amqps(port: u16) -> String {
    format!("amqps://guest:guest@127.0.0.1:{port}/%2f")
}

fn plughost(args: &[&str]) -> Output {
    output_within(plughost_bin(), args, HANG_LIMIT).0
}

/// The `ssl` column of the node's connections whose client properties
/// mention `name`.
fn ssl_of_connections(node: &RabbitNode, name: &str) -> Vec<String> {
    node.ctl_ok(&["list_connections", "client_properties", "ssl", "-q"])
        .lines()
        .filter(|l| l.contains(name))
        .filter_map(|l| l.rsplit('\t').next().map(str::to_owned))
        .collect()
}

#[test]
fn amqps_with_the_ca_file_serves_and_calls_over_tls_and_never_downgrades() {
    let ca = TestCa::new();
    let (node, tls_port) = tls_node(&ca, false);
    let host = HostProcess::math(
        plughost_bin(),
        &format!("url = {:?}\nca_file = {:?}", amqps(tls_port), &ca.ca_file()),
    );
    host.wait_serving();
    assert_eq!(
        ssl_of_connections(&node, "plughost host"),
        ["true"],
        "the host's connection is TLS"
    );

    // A caller with the CA file on its command line.
    let url = amqps(tls_port);
    let out = plughost(&[
        "call",
        "fibo",
        "10",
        "--amqp",
        &url,
        "--ca-file",
        &ca.ca_file(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out).trim(), "55");

    // Without the CA file the broker's certificate is not trusted.
    let out = plughost(&["call", "fibo", "10", "--amqp", &url]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("TLS to the broker")
            && err.contains("UnknownIssuer")
            && err.contains("--ca-file")
            && err.contains("[503]"),
        "{err}"
    );

    // With the CA file of another CA (of the same name: rustls then reports a
    // bad signature), the error says the file is the wrong one.
    let other = TestCa::new();
    let out = plughost(&[
        "call",
        "fibo",
        "10",
        "--amqp",
        &url,
        "--ca-file",
        &other.ca_file(),
    ]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("invalid peer certificate") && err.contains("not signed by the CA in ca_file"),
        "{err}"
    );

    // amqps:// to the plain port: a TLS error, not a plaintext connection.
    let plain = format!("amqps://guest:guest@127.0.0.1:{}/%2f", node.port());
    let out = plughost(&[
        "call",
        "fibo",
        "10",
        "--amqp",
        &plain,
        "--ca-file",
        &ca.ca_file(),
    ]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        err.contains("TLS to the broker") && err.contains("TLS listener"),
        "{err}"
    );
    // (The host's own client connection, for its collision checks, is TLS.)
    let clients = ssl_of_connections(&node, "plughost client");
    assert!(
        !clients.iter().any(|ssl| ssl == "false"),
        "no caller got through in plaintext: {clients:?}"
    );

    // TLS files with a plaintext URL, and unknown schemes, are refused up front.
    let out = plughost(&[
        "call",
        "fibo",
        "10",
        "--amqp",
        &node.url(),
        "--ca-file",
        &ca.ca_file(),
    ]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("plaintext") && err.contains("[400]"),
        "{err}"
    );
    let out = plughost(&["call", "fibo", "10", "--amqp", "amqpx://127.0.0.1:5672"]);
    let err = stderr(&out);
    assert!(
        !out.status.success()
            && err.contains("Invalid AMQP scheme: amqpx")
            && err.contains("[400]"),
        "{err}"
    );
}

#[test]
fn a_listener_that_requires_a_client_certificate_gets_one() {
    let ca = TestCa::new();
    let (node, tls_port) = tls_node(&ca, true);
    let host = HostProcess::math(
        plughost_bin(),
        &format!(
            "url = {:?}\nca_file = {:?}\nclient_cert = {:?}\nclient_key = {:?}",
            amqps(tls_port),
            &ca.ca_file(),
            &ca.client_cert(),
            &ca.client_key()
        ),
    );
    host.wait_serving();
    assert_eq!(ssl_of_connections(&node, "plughost host"), ["true"]);

    let url = amqps(tls_port);
    let (ca_file, cert, key) = (ca.ca_file(), ca.client_cert(), ca.client_key());
    let with_cert = [
        "call",
        "fibo",
        "10",
        "--amqp",
        &url,
        "--ca-file",
        &ca_file,
        "--client-cert",
        &cert,
        "--client-key",
        &key,
    ];
    let out = plughost(&with_cert);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out).trim(), "55");

    // Without one the broker refuses the handshake, and the error says what to set.
    let out = plughost(&with_cert[..7]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("TLS to the broker") && err.contains("client_cert"),
        "{err}"
    );

    // A certificate from another CA is not accepted either.
    let other = TestCa::new();
    let (other_cert, other_key) = (other.client_cert(), other.client_key());
    let mut wrong_cert = with_cert;
    wrong_cert[8] = &other_cert;
    wrong_cert[10] = &other_key;
    let out = plughost(&wrong_cert);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("TLS to the broker") && err.contains("may not accept this client certificate"),
        "{err}"
    );
}

#[test]
fn plughost_run_refuses_broker_settings_it_cannot_honour_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("plughost.toml");
    let missing = dir.path().join("no-such-ca.pem");
    std::fs::write(
        &manifest,
        format!(
            "[rabbitmq]\nurl = \"amqps://127.0.0.1:5671\"\nca_file = {:?}\n[roles]\nmanager = false\nservices = false\nadmin = false\n",
            missing.display().to_string()
        ),
    )
    .unwrap();
    let manifest = manifest.to_str().unwrap();
    // A missing CA file stops the start (it would never connect).
    let out = plughost(&["run", "--manifest", manifest]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        err.contains("ca_file") && err.contains("no-such-ca.pem") && err.contains("cannot read"),
        "{err}"
    );
    // So does a URL whose scheme cannot be honoured, given on the command line.
    let out = plughost(&["run", "--manifest", manifest, "--amqp", "amqpx://127.0.0.1"]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("Invalid AMQP scheme: amqpx"),
        "{err}"
    );
}
