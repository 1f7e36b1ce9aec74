//! Loading real plugin libraries through the real loader: listing, calling,
//! every load error, panic containment, and two versions of one plugin in
//! one process.

#![allow(clippy::unwrap_used)]

use plughost_loader::{load, LoadError, PluginSpec};
use plughost_test_support::{plugin_lib, variant_lib, SourcePatch, Variant};
use serde_json::json;

#[test]
fn math_plugin_describes_and_serves_fibo() {
    let math = load(&PluginSpec::file(plugin_lib("math"))).unwrap();
    let d = math.descriptor();
    assert_eq!(d.name, "math");
    assert_eq!(d.api_version, plughost_loader::host_api_version());
    let fibo = d.methods.iter().find(|m| m.name == "fibo").unwrap();
    assert_eq!(fibo.route, "com.goffersoft.math.algo.fibo");
    assert_eq!(math.call("fibo", &[json!(10)]).unwrap(), json!(55));
    assert_eq!(
        math.call("fibo", &[json!(93)]).unwrap(),
        json!(12200160415121876738u64)
    );
    let overflow = math.call("fibo", &[json!(94)]).unwrap_err();
    assert_eq!(overflow.code, 400);
    assert!(overflow.message.contains("overflows"), "{overflow}");
    let bad = math.call("fibo", &[json!("abc")]).unwrap_err();
    assert_eq!(bad.code, 400);
    assert!(bad.message.contains("argument 1"), "{bad}");
    assert_eq!(math.call("nosuch", &[]).unwrap_err().code, 404);
}

#[test]
fn missing_file_is_named() {
    let err = load(&PluginSpec::file("/nonexistent/libnope.so")).unwrap_err();
    assert!(matches!(err, LoadError::Missing { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("/nonexistent/libnope.so: file not found"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_library_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libfake.so");
    std::fs::write(&fake, b"this is not an ELF file").unwrap();
    let err = load(&PluginSpec::file(&fake)).unwrap_err();
    assert!(matches!(err, LoadError::NotALibrary { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("libfake.so") && msg.contains("not a loadable shared library"),
        "{msg}"
    );
}

#[test]
fn a_shared_library_that_is_not_a_plugin_is_refused() {
    let lib = plugin_lib("not-a-plugin");
    let err = load(&PluginSpec::file(&lib)).unwrap_err();
    assert!(matches!(err, LoadError::NotAPlugin { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("libnot_a_plugin") && msg.contains("not a plughost plugin"),
        "{msg}"
    );
}

#[test]
fn sha256_pin_mismatch_is_refused() {
    let mut spec = PluginSpec::file(plugin_lib("math"));
    spec.sha256 = Some("0".repeat(64));
    let err = load(&spec).unwrap_err();
    assert!(matches!(err, LoadError::ShaMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("manifest pins 0000"), "{err}");
}

#[test]
fn init_error_and_init_panic_are_reported() {
    let mut spec = PluginSpec::file(plugin_lib("faulty"));
    spec.config = json!({ "fail_init": true });
    let err = load(&spec).unwrap_err();
    assert!(matches!(err, LoadError::Init { .. }), "{err:?}");
    assert!(err.to_string().contains("told to fail init"), "{err}");

    spec.config = json!({ "panic_init": true });
    let err = load(&spec).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("initialisation failed") && msg.contains("panicked"),
        "{msg}"
    );
}

#[test]
fn panics_are_contained_and_the_plugin_keeps_working() {
    let faulty = load(&PluginSpec::file(plugin_lib("faulty"))).unwrap();
    for i in 0..1000 {
        let err = faulty
            .call("panic", &[json!(format!("boom {i}"))])
            .unwrap_err();
        assert_eq!(err.code, 500);
        assert!(
            err.message.contains(&format!("panicked: boom {i}")),
            "{err}"
        );
    }
    let err = faulty.call("fail", &[json!("plain failure")]).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (500, "plain failure"));
    let huge = faulty.call("huge", &[json!(8)]).unwrap();
    assert_eq!(huge.as_str().unwrap().len(), 8 * 1024 * 1024);
}

#[test]
fn two_versions_of_one_plugin_load_side_by_side() {
    let v1 = variant_lib(
        "echo",
        &Variant {
            env: vec![("ECHO_BUILD_TAG".into(), "one".into())],
            ..Default::default()
        },
    );
    let v2 = variant_lib(
        "echo",
        &Variant {
            env: vec![("ECHO_BUILD_TAG".into(), "two".into())],
            ..Default::default()
        },
    );
    // Same file name, different folders and content: both must load as themselves.
    assert_eq!(v1.file_name(), v2.file_name());
    let a = load(&PluginSpec::file(&v1)).unwrap();
    let b = load(&PluginSpec::file(&v2)).unwrap();
    let workspace = load(&PluginSpec::file(plugin_lib("echo"))).unwrap();
    assert_eq!(a.call("version", &[]).unwrap(), json!("0.1.0+one"));
    assert_eq!(b.call("version", &[]).unwrap(), json!("0.1.0+two"));
    assert_eq!(
        workspace.call("version", &[]).unwrap(),
        json!("0.1.0+default")
    );
    // And the first still answers after the others loaded.
    assert_eq!(a.call("version", &[]).unwrap(), json!("0.1.0+one"));
}

#[test]
fn rewriting_a_plugin_file_in_place_loads_the_new_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libplugin_echo.so");
    let v1 = variant_lib(
        "echo",
        &Variant {
            env: vec![("ECHO_BUILD_TAG".into(), "before".into())],
            ..Default::default()
        },
    );
    let v2 = variant_lib(
        "echo",
        &Variant {
            env: vec![("ECHO_BUILD_TAG".into(), "after".into())],
            ..Default::default()
        },
    );
    std::fs::copy(&v1, &path).unwrap();
    let old = load(&PluginSpec::file(&path)).unwrap();
    std::fs::copy(&v2, &path).unwrap();
    let new = load(&PluginSpec::file(&path)).unwrap();
    assert_eq!(old.call("version", &[]).unwrap(), json!("0.1.0+before"));
    assert_eq!(new.call("version", &[]).unwrap(), json!("0.1.0+after"));
    assert_ne!(old.sha256(), new.sha256());
}

#[test]
fn plugin_built_against_another_plugin_api_is_refused_with_both_versions() {
    let lib = variant_lib(
        "math",
        &Variant {
            api_version: Some("0.3.0".into()),
            ..Default::default()
        },
    );
    let err = load(&PluginSpec::file(&lib)).unwrap_err();
    assert!(matches!(err, LoadError::IncompatibleApi { .. }), "{err:?}");
    let msg = err.to_string();
    let host = plughost_loader::host_api_version();
    assert!(
        msg.contains(&format!(
            "built against plugin-api 0.3.0, host expects {host}"
        )),
        "{msg}"
    );
    assert!(msg.contains(&lib.display().to_string()), "{msg}");
}

#[test]
fn plugin_with_a_different_abi_layout_is_refused() {
    let patch = SourcePatch {
        file: "src/ffi.rs".into(),
        find: "    Error,\n}".into(),
        replace: "    Error,\n    /// Not in the host's plugin-api.\n    Fatal,\n}".into(),
    };
    let lib = variant_lib(
        "math",
        &Variant {
            api_patch: Some(patch),
            ..Default::default()
        },
    );
    let err = load(&PluginSpec::file(&lib)).unwrap_err();
    assert!(matches!(err, LoadError::Layout { .. }), "{err:?}");
    assert!(
        err.to_string().contains("ABI layout does not match"),
        "{err}"
    );
}
