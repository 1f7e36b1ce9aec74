//! A host's plugin set from a manifest, with real plugin libraries: several
//! plugins side by side, and the conflicts a registry refuses (duplicate
//! plugin and method names, overrides of methods nobody declares).

#![allow(clippy::unwrap_used)]

use std::path::Path;

use plughost::{
    manifest::Manifest,
    plugins::{Registry, RegistryError},
};
use plughost_test_support::{plugin_lib, variant_lib, TempManifest, Variant};
use serde_json::json;

#[test]
fn manifest_with_two_plugins_lists_and_calls_both() {
    let m = TempManifest::with_plugins(&[&plugin_lib("math"), &plugin_lib("echo")]);
    let registry = Registry::from_manifest(&Manifest::load(m.path()).unwrap()).unwrap();
    let names: Vec<_> = registry
        .plugins()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    assert_eq!(names, ["math", "echo"]);
    assert_eq!(registry.call("fibo", &[json!(20)]).unwrap(), json!(6765));
    assert_eq!(
        registry.call("upper", &[json!("abc")]).unwrap(),
        json!("ABC")
    );
    assert_eq!(
        registry.call("echo", &[json!(1), json!("x")]).unwrap(),
        json!([1, "x"])
    );
    assert_eq!(registry.call("nosuch", &[]).unwrap_err().code, 404);
    let services = &registry.plugins()[1].descriptor().services;
    assert_eq!(services[0].name, "ticker");
}

#[test]
fn duplicate_plugin_name_is_refused() {
    // A copy of the same library under another name is the same plugin twice.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("libmath_copy.so");
    std::fs::copy(plugin_lib("math"), &copy).unwrap();
    let m = TempManifest::with_plugins(&[&plugin_lib("math"), &copy]);
    let err = Registry::from_manifest(&Manifest::load(m.path()).unwrap()).unwrap_err();
    assert!(
        matches!(err, RegistryError::DuplicatePlugin { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("libmath_copy.so") && msg.contains("`math` is already used by"),
        "{msg}"
    );
}

#[test]
fn duplicate_method_name_across_plugins_is_refused() {
    // A rebuilt echo whose plugin name differs still declares `echo`, `upper`, ...
    let renamed = variant_lib(
        "echo",
        &Variant {
            env: vec![("ECHO_PLUGIN_NAME".into(), "echo2".into())],
            ..Default::default()
        },
    );
    let m = TempManifest::with_plugins(&[&plugin_lib("echo"), &renamed]);
    let err = Registry::from_manifest(&Manifest::load(m.path()).unwrap()).unwrap_err();
    assert!(
        matches!(err, RegistryError::DuplicateMethod { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("method `echo` of plugin `echo2` is already served by plugin `echo`"),
        "{msg}"
    );
}

#[test]
fn unknown_method_override_is_refused() {
    let m = TempManifest::new(&format!(
        "[[plugins]]\npath = {:?}\n[plugins.methods.fibbo]\ntimeout_ms = 5\n",
        plugin_lib("math").display().to_string()
    ));
    let err = Registry::from_manifest(&Manifest::load(m.path()).unwrap()).unwrap_err();
    assert!(
        err.to_string().contains("overrides method `fibbo`"),
        "{err}"
    );
}

#[test]
fn example_manifest_parses_and_names_release_builds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plughost.toml");
    let m = Manifest::load(&path).unwrap();
    let files: Vec<_> = m
        .plugins
        .iter()
        .map(|p| p.path.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(files, ["libplugin_math.so", "libplugin_echo.so"]);
}
