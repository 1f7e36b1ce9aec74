//! Building plugin libraries for tests.
//!
//! `plugin_lib("math")` builds the workspace's plugin crates once per test
//! process (cargo makes repeat builds no-ops) and returns the path of the
//! cdylib. `variant_lib` builds a copy of a plugin with a changed build
//! environment or against a changed plugin-api, in its own target folder,
//! for hot-reload and ABI-mismatch tests.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::{Mutex, OnceLock},
};

/// The workspace root (two folders above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    // The outer `cargo test` may set these for its own crate; they must not leak in.
    cmd.env_remove("CARGO_TARGET_DIR").env_remove("RUSTFLAGS");
    cmd
}

/// Runs `cargo run -q -p <package> --example <example> -- <args>` in the
/// workspace with extra environment `env`: for tests that run an example
/// program as its reader would.
pub fn run_example(
    package: &str,
    example: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = cargo();
    cmd.args(["run", "-q", "-p", package, "--example", example, "--"])
        .args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().unwrap()
}

/// Runs `cargo build` with JSON messages and returns cdylib paths by crate name.
fn build_cdylibs(mut cmd: Command) -> HashMap<String, PathBuf> {
    let out = cmd
        .arg("--message-format=json-render-diagnostics")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut libs = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let kinds = msg["target"]["crate_types"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !kinds.iter().any(|k| k == "cdylib") {
            continue;
        }
        let name = msg["target"]["name"].as_str().unwrap().to_owned();
        for file in msg["filenames"].as_array().unwrap() {
            let file = PathBuf::from(file.as_str().unwrap());
            if file
                .extension()
                .is_some_and(|e| e == "so" || e == "dylib" || e == "dll")
            {
                libs.insert(name.clone(), file);
            }
        }
    }
    libs
}

/// The `plughost` binary (crate `plughost-cli`), built once per test
/// process, for tests of other crates that drive the real binary (a
/// package's own integration tests would use `CARGO_BIN_EXE_plughost`; only
/// the CLI's have it).
pub fn plughost_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut cmd = cargo();
        cmd.args([
            "build",
            "-p",
            "plughost-cli",
            "--bin",
            "plughost",
            "--message-format=json-render-diagnostics",
        ]);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "cargo build -p plughost-cli failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|msg| {
                msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "plughost"
            })
            .find_map(|msg| msg["executable"].as_str().map(str::to_owned))
            .expect("cargo built the plughost binary")
    })
}

/// The conformance kit's rule-breaking fixtures (`tests/conformance/fixtures/`).
pub const CONFORMANCE_FIXTURES: [&str; 9] = [
    "fixture-missing-doc",
    "fixture-bad-args-500",
    "fixture-ignores-stop",
    "fixture-prints-stdout",
    "fixture-examples-share-state",
    "fixture-wrong-error-code",
    "fixture-scenario-fails",
    "fixture-loses-state",
    "fixture-poisons-lock",
];

/// The built cdylib of a workspace plugin: `math`, `echo`, `faulty`, `kvstore`, the
/// fixture `not-a-plugin`, or a conformance fixture (`fixture-missing-doc`,
/// ..., see [`CONFORMANCE_FIXTURES`]).
pub fn plugin_lib(name: &str) -> PathBuf {
    static LIBS: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let libs = LIBS.get_or_init(|| {
        let mut cmd = cargo();
        cmd.args([
            "build",
            "-p",
            "plugin-math",
            "-p",
            "plugin-echo",
            "-p",
            "plugin-faulty",
            "-p",
            "plugin-kvstore",
            "-p",
            "not-a-plugin",
        ]);
        for fixture in CONFORMANCE_FIXTURES {
            cmd.args(["-p", fixture]);
        }
        build_cdylibs(cmd)
    });
    let key = match name {
        "not-a-plugin" => "not_a_plugin".to_owned(),
        fixture if fixture.starts_with("fixture-") => fixture.replace('-', "_"),
        other => format!("plugin_{other}"),
    };
    libs.get(&key)
        .unwrap_or_else(|| panic!("no cdylib built for {name}; built: {:?}", libs.keys()))
        .clone()
}

/// How a plugin variant differs from the workspace build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Variant {
    /// Environment variables for the build (e.g. `ECHO_BUILD_TAG`).
    pub env: Vec<(String, String)>,
    /// Build against a copy of plugin-api with this crate version.
    pub api_version: Option<String>,
    /// Build against a copy of plugin-api with one source edit (to change
    /// an ABI layout on purpose).
    pub api_patch: Option<SourcePatch>,
}

/// One text replacement in a plugin-api source file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourcePatch {
    /// File relative to plugin-api's folder, e.g. `src/ffi.rs`.
    pub file: String,
    /// Text to find (must be present).
    pub find: String,
    /// Its replacement.
    pub replace: String,
}

/// Builds a copy of plugin `name` (e.g. "echo") as described by `variant`
/// and returns the path of a copy of the library named by its content
/// (callers must copy it before changing it).
///
/// Variants build in `target/test-variants/` with a copy of the plugin's
/// sources (and of plugin-api when it is changed), so they never disturb the
/// workspace build and reuse compiled dependencies across runs.
pub fn variant_lib(name: &str, variant: &Variant) -> PathBuf {
    // One variant build at a time: they share a target folder.
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());

    let root = workspace_root();
    let base = root.join("target/test-variants");
    let src = base.join("src");
    let _ = fs::remove_dir_all(&src);
    fs::create_dir_all(&src).unwrap();

    let api_dir = src.join("plugin-api");
    copy_dir(&root.join("plugin-api"), &api_dir);
    let api_toml = api_dir.join("Cargo.toml");
    let version = variant
        .api_version
        .clone()
        .unwrap_or_else(|| plughost_plugin_api::API_VERSION.to_owned());
    // plugin-api's own Cargo.toml inherits from the workspace; the copy
    // names the same dependencies (with the same features) itself.
    fs::write(
        &api_toml,
        format!(
            "[package]\nname = \"plughost-plugin-api\"\nversion = \"{version}\"\nedition = \"2021\"\n\n[dependencies]\n\
             abi_stable = {{ version = \"0.11.3\", default-features = false }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\n\
             schemars = {{ version = \"1\", default-features = false, features = [\"derive\", \"std\"] }}\n"
        ),
    )
    .unwrap();
    if let Some(patch) = &variant.api_patch {
        let path = api_dir.join(&patch.file);
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&patch.find),
            "plugin-api/{} no longer contains {:?}; update the test",
            patch.file,
            patch.find
        );
        fs::write(&path, text.replacen(&patch.find, &patch.replace, 1)).unwrap();
    }

    let plugin_dir = src.join(name);
    copy_dir(&root.join("plugins").join(name), &plugin_dir);
    fs::write(
        plugin_dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"plugin-{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nplughost-plugin-api = {{ path = \"../plugin-api\" }}\n\n[workspace]\n"
        ),
    )
    .unwrap();
    // Share the workspace's lock file so variants build with the same dependency versions.
    fs::copy(root.join("Cargo.lock"), plugin_dir.join("Cargo.lock")).unwrap();

    let mut cmd = cargo();
    cmd.current_dir(&plugin_dir)
        .args(["build", "--offline", "--manifest-path"])
        .arg(plugin_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(base.join("target"));
    for (k, v) in &variant.env {
        cmd.env(k, v);
    }
    let libs = build_cdylibs(cmd);
    let built = libs.get(&format!("plugin_{name}")).expect("variant cdylib");
    // Keep each distinct build once, named by its content, so repeated runs
    // reuse the same files instead of piling up copies.
    let bytes = fs::read(built).unwrap();
    let out_dir = base.join("out").join(format!("{:016x}", fnv1a(&bytes)));
    fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(built.file_name().unwrap());
    if !out.exists() {
        let tmp = out_dir.join(".partial");
        fs::write(&tmp, &bytes).unwrap();
        fs::rename(&tmp, &out).unwrap();
    }
    out
}

/// A 64-bit FNV-1a hash: enough to tell builds apart in a test folder.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "target" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}
