//! `plughost doctor` as an operator runs it: a healthy setup passes (with
//! the broker's version and the library versions shown), and each broken
//! setup it checks fails on its own line with exit code 1.

#![allow(clippy::unwrap_used)]

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Output,
};

use plughost_test_support::{
    free_port, plugin_lib,
    process::{stderr, stdout},
    TempManifest, TestExchanges, AMQP_URL,
};

fn doctor(manifest: &Path) -> Output {
    plughost_test_support::process::output(
        env!("CARGO_BIN_EXE_plughost"),
        &["doctor", "--manifest", manifest.to_str().unwrap()],
    )
}

/// A host with the RPC roles on `ex`'s exchanges, no manager, these
/// `extra` tables and plugin files.
fn manifest_text(ex: &TestExchanges, extra: &str, plugins: &[&Path]) -> String {
    let mut text = format!(
        "[host]\nname = \"doctor-test\"\n\n{}\n[roles]\nmanager = false\nservices = false\n\n{extra}\n",
        ex.rabbitmq_toml()
    );
    for p in plugins {
        text.push_str(&format!(
            "[[plugins]]\npath = {:?}\n\n",
            p.display().to_string()
        ));
    }
    text
}

/// The lines of a doctor run that failed.
fn failures(out: &Output) -> Vec<String> {
    stdout(out)
        .lines()
        .filter(|l| l.starts_with("FAIL"))
        .map(str::to_owned)
        .collect()
}

/// Asserts that the run failed with exit code 1 and exactly one failed
/// check, whose line starts with `check` and contains every `words`.
fn fails_on(out: &Output, check: &str, words: &[&str]) {
    let failed = failures(out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "doctor exits 1 on a failure:\n{}\n{}",
        stdout(out),
        stderr(out)
    );
    assert_eq!(failed.len(), 1, "one failed check:\n{}", stdout(out));
    let line = &failed[0];
    assert!(
        line.starts_with(&format!("FAIL  {check}")),
        "the failed check is {check}:\n{}",
        stdout(out)
    );
    for word in words {
        assert!(line.contains(word), "{word:?} in {line}");
    }
}

/// A copy of the math plugin in a folder of its own, with `mode`.
fn plugin_copy(dir: &Path, mode: u32) -> PathBuf {
    let copy = dir.join("libplugin_math.so");
    fs::copy(plugin_lib("math"), &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(mode)).unwrap();
    copy
}

#[test]
fn a_healthy_setup_passes_and_shows_versions() {
    let ex = TestExchanges::new("doctor-ok");
    ex.declare();
    let m = TempManifest::new(&manifest_text(&ex, "", &[&plugin_lib("math")]));
    let out = doctor(m.path());
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(failures(&out).is_empty(), "{text}");
    for line in [
        "pass  manifest: ",
        "pass  manifest file: ",
        "pass  plugin file ",
        "pass  admin socket: ",
        "pass  broker: reachable at amqp://guest:***@127.0.0.1:5672/%2f: RabbitMQ 3.",
        "pass  route queues: durable classic queues with x-expires",
        "pass  exchange test.doctor-ok.",
        "pass  versions: plughost ",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
    assert!(
        !text.contains("transient_nonexcl_queues"),
        "route queues are declared as RabbitMQ 4.3 accepts them:\n{text}"
    );
    assert!(
        text.contains("lapin 4.") && text.contains("libzmq 4."),
        "{text}"
    );
}

#[test]
fn an_invalid_manifest_fails() {
    let m = TempManifest::new("[host]\nname = \"x\"\n\n[limits]\nmax_request_bytes = -1\n");
    let out = doctor(m.path());
    fails_on(&out, "manifest:", &["max_request_bytes", "line 5"]);
    assert_eq!(
        stdout(&out).lines().count(),
        2,
        "one line per check (the manifest, versions)"
    );
}

#[test]
fn a_plugin_file_others_can_write_fails() {
    let ex = TestExchanges::new("doctor-plugin");
    let dir = tempfile::tempdir().unwrap();
    let copy = plugin_copy(dir.path(), 0o666);
    let m = TempManifest::new(&manifest_text(&ex, "", &[&copy]));
    let out = doctor(m.path());
    fails_on(
        &out,
        "plugin file",
        &["writable by", "others", "chmod go-w", "refuses"],
    );
}

#[test]
fn a_manifest_others_can_write_fails() {
    let ex = TestExchanges::new("doctor-manifest");
    let m = TempManifest::new(&manifest_text(&ex, "", &[&plugin_lib("math")]));
    fs::set_permissions(m.path(), fs::Permissions::from_mode(0o646)).unwrap();
    let out = doctor(m.path());
    fails_on(&out, "manifest file:", &["writable by others"]);
}

#[test]
fn an_admin_socket_in_a_folder_others_can_write_fails() {
    let ex = TestExchanges::new("doctor-admin");
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let socket = open.join("admin.sock");
    let m = TempManifest::new(&manifest_text(&ex, "", &[&plugin_lib("math")]).replace(
        "[host]\n",
        &format!("[host]\nadmin = {:?}\n", socket.display().to_string()),
    ));
    let out = doctor(m.path());
    fails_on(
        &out,
        "admin socket:",
        &["writable by others", "[host] admin"],
    );
}

#[test]
fn a_tracker_endpoint_beyond_loopback_without_curve_fails() {
    let ex = TestExchanges::new("doctor-tracker");
    let text = manifest_text(
        &ex,
        &format!(
            "[zeromq]\ndiscovery = \"tcp://0.0.0.0:{}\"\nmanagement = \"tcp://127.0.0.1:{}\"\n",
            free_port(),
            free_port()
        ),
        &[&plugin_lib("math")],
    )
    .replace("manager = false", "manager = true");
    let out = doctor(TempManifest::new(&text).path());
    fails_on(
        &out,
        "tracker endpoint zeromq.discovery:",
        &["without CURVE", "127.0.0.1"],
    );
}

#[test]
fn an_unreachable_broker_fails() {
    let ex = TestExchanges::new("doctor-broker");
    let text = manifest_text(&ex, "", &[&plugin_lib("math")]).replace(
        AMQP_URL,
        &format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port()),
    );
    let out = doctor(TempManifest::new(&text).path());
    fails_on(&out, "broker:", &["127.0.0.1"]);
}

#[test]
fn an_exchange_declared_unlike_the_old_tools_fails() {
    let ex = TestExchanges::new("doctor-exchange");
    // The RPC exchange, declared durable and fanout: not what the old tools
    // (nor plughost) declare, so neither could declare it again.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = lapin::Connection::connect(AMQP_URL, Default::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.exchange_declare(
            ex.rpc.as_str().into(),
            lapin::ExchangeKind::Fanout,
            lapin::options::ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
        let _ = conn.close(200, "declared".into()).await;
    });
    let m = TempManifest::new(&manifest_text(&ex, "", &[&plugin_lib("math")]));
    let out = doctor(m.path());
    fails_on(
        &out,
        &format!("exchange {}:", ex.rpc),
        &["PRECONDITION_FAILED", "topic", "delete"],
    );
}
