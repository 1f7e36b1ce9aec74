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

#[test]
fn restart_policies_come_from_the_manifest_and_unknown_services_are_refused() {
    let echo = plugin_lib("echo").display().to_string();
    let m = TempManifest::new(&format!(
        "[[plugins]]\npath = {echo:?}\n[plugins.services.ticker]\nrestart = \"never\"\n"
    ));
    let registry = Registry::from_manifest(&Manifest::load(m.path()).unwrap()).unwrap();
    assert_eq!(
        registry.restart_policy("echo", "ticker"),
        plughost::manifest::RestartPolicy::Never
    );
    assert_eq!(
        registry.restart_policy("echo", "other"),
        plughost::manifest::RestartPolicy::OnFailure,
        "the default"
    );

    m.rewrite(&format!(
        "[[plugins]]\npath = {echo:?}\n[plugins.services.tickr]\nrestart = \"always\"\n"
    ));
    let err = Registry::from_manifest(&Manifest::load(m.path()).unwrap()).unwrap_err();
    assert!(
        matches!(err, RegistryError::UnknownService { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("plugin echo has no tracked service `tickr` (named in [plugins.services]); its services: ticker"),
        "{err}"
    );

    m.rewrite(&format!(
        "[[plugins]]\npath = {echo:?}\n[plugins.services.ticker]\nrestart = \"sometimes\"\n"
    ));
    let err = Manifest::load(m.path()).unwrap_err().to_string();
    assert!(err.contains("sometimes"), "{err}");
}

#[test]
fn a_reload_keeps_the_concurrency_limiter_of_a_method_served_the_same_way() {
    let math = plugin_lib("math").display().to_string();
    let with = |concurrency: usize| {
        format!(
            "[[plugins]]\npath = {math:?}\n[plugins.methods.fibo]\nconcurrency = {concurrency}\n"
        )
    };
    let m = TempManifest::new(&with(4));
    let current = Registry::from_manifest(&Manifest::load(m.path()).unwrap()).unwrap();
    let limiter = |r: &Registry| std::sync::Arc::clone(&r.method("fibo").unwrap().limiter);

    // A new instance (another config), same limit: calls still running on
    // the old instance keep counting against the limit.
    m.rewrite(&format!("{}[plugins.config]\nx = 1\n", with(4)));
    let (next, changes) =
        plughost::plugins::rebuild(&current, &Manifest::load(m.path()).unwrap()).unwrap();
    assert_eq!(changes.replaced, ["math"]);
    assert_ne!(next.plugins()[0].id(), current.plugins()[0].id());
    assert!(std::sync::Arc::ptr_eq(&limiter(&current), &limiter(&next)));

    // Another limit: a limiter of its own.
    m.rewrite(&with(2));
    let (other, _) =
        plughost::plugins::rebuild(&current, &Manifest::load(m.path()).unwrap()).unwrap();
    assert!(!std::sync::Arc::ptr_eq(
        &limiter(&current),
        &limiter(&other)
    ));
    assert_eq!(other.method("fibo").unwrap().limiter.available_permits(), 2);
}
