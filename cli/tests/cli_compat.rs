//! Old callers and old deployments both ways, qualified names and
//! collisions, published signatures, and one deadline per call: the real
//! `plughost` binary against real hosts, and v1 peers written in Python
//! with pika (`tests/py/v1_peers.py`, independent of plughost's code, as
//! the old tools were).

#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use plughost_test_support::{
    plugin_lib, process, pyzmq::pika_path, variant_lib, HostProcess, KillOnDrop, TempManifest,
    TestExchanges, Variant, AMQP_URL,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_plughost");

fn plughost(args: &[&str]) -> Output {
    process::output(BIN, args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

fn peers_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/v1_peers.py")
}

fn python(ex: &TestExchanges, args: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONPATH", pika_path())
        .arg(peers_script())
        .args([AMQP_URL, &ex.rpc, &ex.ns])
        .args(args);
    cmd
}

/// Starts a long-running Python peer and waits for its "ready" line.
fn python_peer(ex: &TestExchanges, args: &[&str]) -> KillOnDrop {
    let mut child = python(ex, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the Python peer did not start");
    KillOnDrop(child)
}

/// An old-style client's find and call: (routes found, status, text).
fn old_client(ex: &TestExchanges, method: &str, args: &[&str]) -> (Vec<String>, String, String) {
    let mut all = vec!["client", method];
    all.extend_from_slice(args);
    let out = python(ex, &all).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let routes = v["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    (
        routes,
        v["status"].as_str().unwrap_or_default().to_owned(),
        v["text"].as_str().unwrap_or_default().to_owned(),
    )
}

fn broker_args(ex: &TestExchanges) -> Vec<String> {
    vec![
        "--amqp".into(),
        AMQP_URL.into(),
        "--rpc-exchange".into(),
        ex.rpc.clone(),
        "--ns-exchange".into(),
        ex.ns.clone(),
    ]
}

/// `plughost <args> <broker args for ex>`.
fn plughost_on(ex: &TestExchanges, args: &[&str]) -> Output {
    let broker = broker_args(ex);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(broker.iter().map(String::as_str));
    plughost(&all)
}

/// A host (real binary, JSON log, admin socket) named `name` serving the
/// plugin files `plugins` on `ex`, with `roles` as its `[roles]` table.
fn host(name: &str, ex: &TestExchanges, plugins: &[PathBuf], roles: &str) -> HostProcess {
    let mut text = format!(
        "[host]\nname = {name:?}\n\n{}\n[roles]\nmanager = false\nservices = false\n{roles}\n",
        ex.rabbitmq_toml()
    );
    for p in plugins {
        text.push_str(&format!(
            "\n[[plugins]]\npath = {:?}\n",
            p.display().to_string()
        ));
    }
    let host = HostProcess::start(BIN, &text);
    host.wait_serving();
    host
}

#[test]
fn old_callers_get_arguments_converted_by_the_parameter_types() {
    let ex = TestExchanges::new("compat-v1-args");
    let _host = host(
        "compat-v1-args",
        &ex,
        &[plugin_lib("math"), plugin_lib("echo")],
        "",
    );

    // upper(text: String): the old client's `123` is text, and stays text.
    let (routes, status, result) = old_client(&ex, "upper", &["123"]);
    assert_eq!(routes, ["plughost.echo.upper"]);
    assert_eq!((status.as_str(), result.as_str()), ("Success", "123"));

    // Quotes are part of the text: `"x"` comes back `"X"`, quotes kept.
    let (_, status, result) = old_client(&ex, "upper", &["\"x\""]);
    assert_eq!((status.as_str(), result.as_str()), ("Success", "\"X\""));

    // echo is variadic (no parameter types): the argument stays the text
    // the old caller sent, and comes back `"x"` with its quotes.
    let (_, status, result) = old_client(&ex, "echo", &["\"x\""]);
    assert_eq!((status.as_str(), result.as_str()), ("Success", "\"x\""));

    // fibo(n: u32): the text `10` becomes the number 10.
    let (_, status, result) = old_client(&ex, "fibo", &["10"]);
    assert_eq!((status.as_str(), result.as_str()), ("Success", "55"));
}

#[test]
fn plughost_reaches_an_old_deployment() {
    let ex = TestExchanges::new("compat-old-deploy");
    let route = "com.goffersoft.math.algo.fibo";
    let _old = python_peer(&ex, &["deployment", route]);

    let out = plughost_on(&ex, &["find", "fibo"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), route);
    assert!(
        text(&out.stderr).contains("v1"),
        "says which protocol answered: {out:?}"
    );

    let out = plughost_on(&ex, &["call", "fibo", "10"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "55");
    assert!(
        text(&out.stderr).contains("v1"),
        "says which protocol answered: {out:?}"
    );

    // bench follows the find to v1 as well: every call answered.
    let out = plughost_on(
        &ex,
        &[
            "bench",
            "call",
            "fibo",
            "10",
            "--duration",
            "1",
            "--concurrency",
            "2",
            "--json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["calls"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["errors"], serde_json::json!({}), "{summary}");

    // The old service's failure text comes back as the error.
    let out = plughost_on(&ex, &["call", "fibo", "ten"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(text(&out.stderr).contains("invalid literal"), "{out:?}");
}

#[test]
fn call_timeout_covers_a_slow_find_and_find_has_its_own() {
    let ex = TestExchanges::new("compat-slow-find");
    // The host serves fibo but does not answer finds; a name service that
    // takes 6 s to answer does.
    let _host = host(
        "compat-slow-find",
        &ex,
        &[plugin_lib("math")],
        "name_service = false\n",
    );
    let _slow = python_peer(
        &ex,
        &[
            "slow-v2-ns",
            "6",
            "com.goffersoft.math.algo.fibo",
            "slow-ns",
            "math",
        ],
    );

    let started = Instant::now();
    let out = plughost_on(&ex, &["call", "fibo", "10", "--timeout", "10"]);
    assert!(
        out.status.success(),
        "the find took 6 s of the call's 10: {out:?}"
    );
    assert_eq!(text(&out.stdout), "55");
    assert!(started.elapsed() >= Duration::from_secs(6));

    let out = plughost_on(&ex, &["find", "fibo", "--timeout", "2"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(text(&out.stderr).contains("[504]"), "{out:?}");
}

#[test]
fn a_bare_name_two_plugins_serve_is_refused_and_qualified_names_work() {
    let ex = TestExchanges::new("compat-collide");
    // The echo plugin rebuilt under another name: a different plugin with
    // the same method names (greet among them).
    let hello = variant_lib(
        "echo",
        &Variant {
            env: vec![("ECHO_PLUGIN_NAME".into(), "hello".into())],
            ..Default::default()
        },
    );
    let a = host("collide-a", &ex, &[plugin_lib("echo")], "");
    let b = host("collide-b", &ex, &[hello], "");

    let out = plughost_on(&ex, &["call", "greet", "ada"]);
    // Exit code 7: ambiguous (`plughost --help`).
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains("ambiguous")
            && err.contains("echo.greet on host collide-a")
            && err.contains("hello.greet on host collide-b")
            && err.contains("[409]"),
        "{err}"
    );

    let out = plughost_on(&ex, &["call", "echo.greet", "ada"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "\"Hello, ada!\"");
    let out = plughost_on(&ex, &["call", "hello.greet", "ada", "Hi"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "\"Hi, ada!\"");

    // find --all lists both.
    let out = plughost_on(&ex, &["find", "--all", "greet"]);
    assert!(out.status.success(), "{out:?}");
    let listing = text(&out.stdout);
    assert!(
        listing.contains("plughost.echo.greet\techo.greet")
            && listing.contains("plughost.hello.greet\thello.greet"),
        "{listing}"
    );

    // Both hosts log the collision, naming both qualified names.
    for (host, other) in [(&a, "collide-b"), (&b, "collide-a")] {
        let started = Instant::now();
        loop {
            let logged = host.log_records().iter().any(|r| {
                let message = r["fields"]["message"].as_str().unwrap_or_default();
                message.contains("method name collision: `greet`")
                    && message.contains("echo.greet")
                    && message.contains("hello.greet")
                    && r["fields"]["other_host"] == other
            });
            if logged {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no collision warning naming {other}:\n{}",
                host.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // An old finder knows only bare names: it gets one answer, always the
    // plugin whose name sorts first (echo).
    let (routes, status, result) = old_client(&ex, "greet", &["ada"]);
    assert_eq!(routes, ["plughost.echo.greet"]);
    assert_eq!(
        (status.as_str(), result.as_str()),
        ("Success", "Hello, ada!")
    );
}

#[test]
fn describe_returns_the_signatures_plugins_json_shows() {
    let ex = TestExchanges::new("compat-describe");
    let manifest = TempManifest::with_plugins(&[&plugin_lib("echo")]);
    let out = plughost(&[
        "plugins",
        "--json",
        "--manifest",
        manifest.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
    let greet = listing["plugins"][0]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "greet")
        .unwrap()
        .clone();
    assert_eq!(greet["params"][0]["name"], "name");
    assert_eq!(greet["params"][0]["schema"]["type"], "string");
    assert_eq!(greet["params"][0]["optional"], false);
    assert_eq!(greet["params"][1]["name"], "greeting");
    assert_eq!(greet["params"][1]["optional"], true);
    assert_eq!(greet["result"]["type"], "string");

    let host = host("compat-describe", &ex, &[plugin_lib("echo")], "");
    // plughost status shows them too.
    let status = host.status().unwrap();
    let shown = status["plugins"][0]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "greet")
        .unwrap()
        .clone();
    assert_eq!(shown["params"], greet["params"]);
    assert_eq!(shown["result"], greet["result"]);
    let out = host.plughost(&["status"]);
    assert!(
        text(&out.stdout).contains("greet(name: string, greeting?: string|null) -> string"),
        "{out:?}"
    );

    let out = plughost_on(&ex, &["describe", "--json", "greet"]);
    assert!(out.status.success(), "{out:?}");
    let described: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(described["plugin"], "echo");
    assert_eq!(described["signature"]["params"], greet["params"]);
    assert_eq!(described["signature"]["result"], greet["result"]);

    let out = plughost_on(&ex, &["describe", "greet"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).starts_with("echo.greet(name: string, greeting?: string|null) -> string"),
        "{out:?}"
    );
}

#[test]
fn named_arguments_and_omitted_trailing_optionals() {
    let ex = TestExchanges::new("compat-named");
    let _host = host("compat-named", &ex, &[plugin_lib("echo")], "");

    let out = plughost_on(&ex, &["call", "greet", "--named", r#"{"name":"ada"}"#]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "\"Hello, ada!\"");
    let out = plughost_on(
        &ex,
        &[
            "call",
            "greet",
            "--named",
            r#"{"greeting":"Hi","name":"ada"}"#,
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "\"Hi, ada!\"");
    let out = plughost_on(&ex, &["call", "echo.greet", "ada"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "\"Hello, ada!\"");

    let out = plughost_on(&ex, &["call", "greet", "--named", r#"{"nmae":"ada"}"#]);
    assert!(!out.status.success(), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains("[400]") && err.contains("expected: name, greeting?"),
        "{err}"
    );
}
