//! `plughost new`: the generated crate builds and passes the conformance
//! kit as generated, with the real `cargo`, in a folder outside this
//! workspace.
//!
//! The generated crate builds in `target/scaffold-test` (shared between
//! runs, so compiled dependencies are reused) and offline, with the lock
//! file `plughost new` copied from this checkout.

#![allow(clippy::unwrap_used)]

use std::{
    path::Path,
    process::{Command, Output},
};

use plughost_test_support::build::workspace_root;

fn plughost(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plughost"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_new_plugin_builds_and_passes_conformance_as_generated() {
    let dir = tempfile::tempdir().unwrap();
    let out = plughost(
        &["new", "hello", "--path", dir.path().to_str().unwrap()],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let crate_dir = dir.path().join("hello");
    assert!(
        printed.contains(&format!(
            "created plugin crate `hello` in {}",
            crate_dir.display()
        )),
        "{printed}"
    );
    // Outside the checkout, but this binary was built from one: depend on it by path.
    let root = workspace_root();
    assert!(
        printed.contains(&format!(
            "path dependencies on the plughost checkout at {}",
            root.display()
        )),
        "{printed}"
    );
    let snippet = std::fs::read_to_string(crate_dir.join("plughost.toml.snippet")).unwrap();
    assert!(
        printed.ends_with(&snippet),
        "the snippet is printed too:\n{printed}"
    );
    assert!(
        snippet.contains(&format!(
            "path = \"{}\"",
            crate_dir.join("target/release/libhello.so").display()
        )),
        "{snippet}"
    );
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "src/lib.rs",
        "tests/conformance.rs",
        ".gitignore",
    ] {
        assert!(crate_dir.join(file).is_file(), "{file} missing");
    }

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());

    // A plugin author builds no broker, ZeroMQ, CLI or async runtime code,
    // and a small graph (docs/writing-plugins.md).
    let tree = Command::new(&cargo)
        .args(["tree", "--offline", "-e", "normal,dev", "--prefix", "none"])
        .current_dir(&crate_dir)
        .output()
        .unwrap();
    assert!(tree.status.success(), "{}", text(&tree.stderr));
    let lines: std::collections::BTreeSet<String> =
        text(&tree.stdout).lines().map(str::to_owned).collect();
    for heavy in [
        "lapin ",
        "zeromq ",
        "zmq ",
        "clap ",
        "indicatif ",
        "notify ",
        "hdrhistogram ",
        "tokio ",
    ] {
        let found: Vec<_> = lines.iter().filter(|l| l.starts_with(heavy)).collect();
        assert!(found.is_empty(), "a plugin crate depends on {found:?}");
    }
    assert!(
        lines.len() <= 80,
        "{} crates in a plugin's graph (at most 80):\n{lines:#?}",
        lines.len()
    );

    let test = Command::new(cargo)
        .args(["test", "--offline"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", root.join("target/scaffold-test"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    let (test_out, test_err) = (text(&test.stdout), text(&test.stderr));
    assert!(
        test.status.success(),
        "cargo test in the new crate failed:\n{test_out}\n{test_err}"
    );
    assert!(
        test_out.contains("test tests::greets_in_process ... ok"),
        "{test_out}"
    );
    assert!(
        test_out.contains("test the_plugin_passes_the_conformance_kit ... ok"),
        "{test_out}"
    );

    // The library it built is a plugin the host serves.
    // `cargo test` leaves the cdylib in deps/ (it uplifts it only on `cargo build`).
    let lib = root.join("target/scaffold-test/debug/deps/libhello.so");
    let out = plughost(
        &["invoke", "--plugin", lib.to_str().unwrap(), "greet", "ada"],
        dir.path(),
    );
    assert_eq!(
        text(&out.stdout).trim(),
        "\"hello, ada\"",
        "{}",
        text(&out.stderr)
    );
    let out = plughost(&["conformance", lib.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "{}", text(&out.stdout));
}

#[test]
fn new_refuses_bad_names_and_taken_folders_and_can_depend_by_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let out = plughost(&["new", "9lives", "--path", path], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("`9lives` cannot name a plugin crate: it must start with a letter"),
        "{}",
        text(&out.stderr)
    );

    let out = plughost(
        &["new", "byversion", "--path", path, "--api-version", "0.1.0"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cargo_toml = std::fs::read_to_string(dir.path().join("byversion/Cargo.toml")).unwrap();
    assert!(
        cargo_toml.contains("plughost-plugin-api = \"0.1.0\""),
        "{cargo_toml}"
    );
    assert!(
        cargo_toml.contains("plughost-conformance = \"0.1.0\""),
        "{cargo_toml}"
    );

    let out = plughost(&["new", "byversion", "--path", path], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already exists and is not empty"),
        "{}",
        text(&out.stderr)
    );

    let out = plughost(
        &["new", "x", "--path", path, "--api-path", path],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not a plughost checkout"),
        "{}",
        text(&out.stderr)
    );
}
