//! The `plughost` binary's plugin commands, run as a user would run them.

#![allow(clippy::unwrap_used)]

use std::process::Output;

use plughost_test_support::{plugin_lib, TempManifest};

fn plughost(args: &[&str]) -> Output {
    plughost_test_support::process::output(env!("CARGO_BIN_EXE_plughost"), args)
}

use plughost_test_support::process::{stderr, stdout};

fn example_like_manifest() -> TempManifest {
    TempManifest::with_plugins(&[&plugin_lib("math"), &plugin_lib("echo")])
}

#[test]
fn plugins_lists_methods_routes_and_services() {
    let m = example_like_manifest();
    let out = plughost(&["plugins", "--manifest", m.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("math 0.1.0"), "{text}");
    assert!(
        text.contains("fibo") && text.contains("com.goffersoft.math.algo.fibo"),
        "{text}"
    );
    assert!(
        text.contains("echo 0.1.0") && text.contains("ticker"),
        "{text}"
    );
}

#[test]
fn plugins_json_has_the_same_content() {
    let m = example_like_manifest();
    let out = plughost(&[
        "plugins",
        "--manifest",
        m.path().to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plugins = v["plugins"].as_array().unwrap();
    assert_eq!(plugins[0]["name"], "math");
    assert_eq!(plugins[0]["methods"][0]["name"], "fibo");
    assert_eq!(
        plugins[0]["methods"][0]["route"],
        "com.goffersoft.math.algo.fibo"
    );
    assert_eq!(plugins[1]["name"], "echo");
    assert_eq!(plugins[1]["services"][0]["name"], "ticker");
}

#[test]
fn invoke_prints_results_and_fails_clearly() {
    let m = example_like_manifest();
    let manifest = m.path().to_str().unwrap();
    let ok = |args: &[&str]| {
        let out = plughost(&[&["invoke", "--manifest", manifest], args].concat());
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out).trim().to_owned()
    };
    assert_eq!(ok(&["fibo", "10"]), "55");
    assert_eq!(ok(&["fibo", "93"]), "12200160415121876738");
    assert_eq!(ok(&["upper", "abc"]), "\"ABC\"");
    assert_eq!(ok(&["echo", "1", "x", "[2]"]), "[1,\"x\",[2]]");

    let out = plughost(&["invoke", "--manifest", manifest, "fibo", "94"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("overflows u64"), "{}", stderr(&out));
    let out = plughost(&["invoke", "--manifest", manifest, "fibo", "abc"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("code 400") && stderr(&out).contains("argument 1"),
        "{}",
        stderr(&out)
    );
    let out = plughost(&["invoke", "--manifest", manifest, "nosuch"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("code 404"), "{}", stderr(&out));
}

#[test]
fn invoke_contains_a_panicking_plugin() {
    let faulty = plugin_lib("faulty");
    let out = plughost(&[
        "invoke",
        "--plugin",
        faulty.to_str().unwrap(),
        "panic",
        "kaboom",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "must fail normally, not abort: {out:?}"
    );
    let err = stderr(&out);
    assert!(err.contains("panicked: kaboom"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn invoke_with_a_bad_manifest_names_key_and_line() {
    let m = TempManifest::new("[host]\nname = \"x\"\n\n[rabbitmq]\nexchange = \"oops\"\n");
    let out = plughost(&[
        "invoke",
        "--manifest",
        m.path().to_str().unwrap(),
        "fibo",
        "1",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("line 5") && err.contains("exchange"), "{err}");
    assert!(err.contains(m.path().to_str().unwrap()), "{err}");
}

#[test]
fn every_command_explains_itself() {
    let out = plughost(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for cmd in [
        "plugins",
        "invoke",
        "version",
        "run",
        "find",
        "call",
        "bench",
        "proto",
        "services",
        "cmd-proc",
        "reload",
        "status",
        "conformance",
        "new",
    ] {
        assert!(text.contains(cmd), "top-level help lacks {cmd}: {text}");
        let sub = plughost(&[cmd, "--help"]);
        assert!(sub.status.success(), "{cmd} --help failed");
        assert!(
            stdout(&sub).contains("Usage: plughost"),
            "{cmd}: {}",
            stdout(&sub)
        );
    }
    let invoke = stdout(&plughost(&["invoke", "--help"]));
    assert!(invoke.contains("parsed as JSON"), "{invoke}");
}

#[test]
fn version_names_plugin_api() {
    let out = plughost(&["version"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("plughost") && text.contains("plugin-api 0.2.1"),
        "{text}"
    );
}
