//! Loading one plugin file: trust, settle, hash, shadow copy, ELF check,
//! `dlopen`, ABI checks, instance.
//!
//! The file a manifest names is never mapped. It is checked for who could
//! change it ([`super::trust`]), waited on until it has stopped changing
//! ([`super::settle`]) and hashed; the hash decides reuse and is checked
//! against the manifest's pin. A new content is then copied into the shadow
//! cache ([`super::shadow`]): the copy must hash the same as the first read
//! and be a complete ELF shared object ([`super::elf`]) before it is opened.
//! A file caught half-written is refused with the reason, never mapped: a
//! mapped segment that runs past the end of its file kills the process with
//! SIGBUS on first touch.
//!
//! Why not `RootModule::load_from_file`: abi_stable caches one root module
//! per root-module *type* in a process-wide static, so a second plugin
//! would get the first plugin's module back. We go one level lower
//! (`lib_header_from_path` + `LibHeader::init_root_module`), which checks
//! each library on its own. Libraries are never unloaded (abi_stable leaks
//! them on purpose); see `docs/operations.md`.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Mutex, OnceLock},
    time::SystemTime,
};

use abi_stable::{
    library::{lib_header_from_path, LibHeader, LibraryError, RootModule},
    std_types::RStr,
};
use plughost_plugin_api::ffi::{HostApiBox, PluginRootRef};

use crate::{
    host_api::TracingHost,
    inspect::{inspect, PluginFile},
    shadow::{Cache, Shadow},
    LoadError, PluginHandle,
};

/// What to load: a file, an optional hash pin and the plugin's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSpec {
    /// The plugin library.
    pub path: PathBuf,
    /// Expected SHA-256 (lower-case hex), if pinned.
    pub sha256: Option<String>,
    /// The configuration handed to the plugin (JSON object).
    pub config: serde_json::Value,
    /// Load the file even when other users could change it (`[host]
    /// allow_insecure_plugin_files`); each problem is then logged as a
    /// warning at every load instead of refusing the file.
    pub allow_insecure_files: bool,
}

impl PluginSpec {
    /// A spec for a file with no pin and an empty configuration.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            sha256: None,
            config: serde_json::Value::Object(Default::default()),
            allow_insecure_files: false,
        }
    }
}

/// The plugin-api version this host was built with.
pub fn host_api_version() -> &'static str {
    PluginRootRef::VERSION_STRINGS.version.as_str()
}

/// Loads a plugin file and creates one instance of it.
///
/// Safe to call for several files, and for several versions of one plugin:
/// each distinct file content becomes its own library.
pub fn load(spec: &PluginSpec) -> Result<PluginHandle, LoadError> {
    load_with_host(spec, tracing_host(&spec.path))
}

/// The default host callbacks: log records go to `tracing` under
/// [`crate::PLUGIN_LOG_TARGET`], labelled with the plugin's declared name
/// (records logged during init are held until the name is known).
pub fn tracing_host(path: &Path) -> HostApiBox {
    TracingHost::boxed(file_label(path))
}

/// What to call a plugin before (or without) its declared name: the file
/// name without `lib` and the extension (`libkvstore.so` -> `kvstore`).
fn file_label(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match stem.strip_prefix("lib").unwrap_or(&stem) {
        "" => "plugin".to_owned(),
        label => label.to_owned(),
    }
}

/// Like [`load`], but the instance's log records go to `host` instead of
/// `tracing`: for tools that must see what a plugin logs, such as the
/// conformance kit (which also checks that nothing reaches stdout/stderr
/// while plugin code runs, so it cannot let records go to a log writer).
pub fn load_with_host(spec: &PluginSpec, host: HostApiBox) -> Result<PluginHandle, LoadError> {
    let file = inspect(spec)?;
    check_pin(&spec.path, spec.sha256.as_deref(), &file.sha256)?;
    instantiate(spec, file, host)
}

/// Refuses a file whose hash is not the one the manifest pins.
pub fn check_pin(path: &Path, pin: Option<&str>, actual: &str) -> Result<(), LoadError> {
    match pin {
        Some(expected) if !expected.eq_ignore_ascii_case(actual) => Err(LoadError::ShaMismatch {
            path: path.to_path_buf(),
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Opens (once per content) the library of a file already inspected and
/// checked, and creates an instance with the spec's configuration.
pub fn instantiate(
    spec: &PluginSpec,
    file: PluginFile,
    host: HostApiBox,
) -> Result<PluginHandle, LoadError> {
    let path = &spec.path;
    let root = root_module_for(spec, &file)?;

    let config = spec.config.to_string();
    let created = crate::host_api::initialising(
        &file_label(path),
        || (root.new_instance())(RStr::from_str(&config), host).into_result(),
        |created| {
            created
                .as_ref()
                .ok()
                .map(|instance| instance.info().name.into_string())
        },
    );
    let instance = created.map_err(|error| LoadError::Init {
        path: path.clone(),
        error,
    })?;

    PluginHandle::new(
        path.clone(),
        file.sha256,
        SystemTime::now(),
        spec.config.clone(),
        instance,
    )
}

/// Returns the checked root module of the library with this content. Each
/// content hash is opened and checked once for the life of the process; a
/// reload of known content only creates a new instance. The shadow copy's
/// lease is kept as long as the library is mapped: for the whole process.
fn root_module_for(spec: &PluginSpec, file: &PluginFile) -> Result<PluginRootRef, LoadError> {
    static OPENED: OnceLock<Mutex<HashMap<String, (PluginRootRef, Shadow)>>> = OnceLock::new();
    let opened = OPENED.get_or_init(Default::default);
    let mut opened = opened
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((root, _)) = opened.get(&file.sha256) {
        return Ok(*root);
    }
    let path = &file.path;
    let shadow = Cache::open(path, spec.allow_insecure_files)?.install(file)?;
    let header = lib_header_from_path(&shadow.path).map_err(|e| library_error(path, e))?;
    check_api_version(path, header)?;
    let root = header
        .init_root_module::<PluginRootRef>()
        .map_err(|e| library_error(path, e))?;
    opened.insert(file.sha256.clone(), (root, shadow));
    Ok(root)
}

/// The one compatibility rule between a plugin and this host: plugin-api
/// follows semver, so the same major version, and for 0.x the same minor.
///
/// ```
/// use plughost_loader::{check_api_compatible, host_api_version};
///
/// assert!(check_api_compatible(host_api_version()));
/// assert!(!check_api_compatible("0.0.1"));
/// assert!(!check_api_compatible("not a version"));
/// ```
pub fn check_api_compatible(plugin_api: &str) -> bool {
    match (
        semver::Version::parse(plugin_api),
        semver::Version::parse(host_api_version()),
    ) {
        (Ok(p), Ok(h)) => p.major == h.major && (h.major != 0 || p.minor == h.minor),
        _ => false,
    }
}

fn check_api_version(path: &Path, header: &LibHeader) -> Result<(), LoadError> {
    let plugin_api = header.version_strings().version.as_str();
    if check_api_compatible(plugin_api) {
        Ok(())
    } else {
        Err(LoadError::IncompatibleApi {
            path: path.to_path_buf(),
            plugin_api: plugin_api.to_owned(),
            host_api: host_api_version().to_owned(),
        })
    }
}

fn library_error(path: &Path, err: LibraryError) -> LoadError {
    let path = path.to_path_buf();
    match err {
        LibraryError::OpenError { err, .. } => LoadError::NotALibrary {
            path,
            reason: err.to_string(),
        },
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin { path },
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => LoadError::IncompatibleApi {
            path,
            plugin_api: actual_version.to_string(),
            host_api: expected_version.to_string(),
        },
        LibraryError::AbiInstability(e) => LoadError::Layout {
            path,
            reason: e.to_string(),
        },
        other => LoadError::Abi {
            path,
            reason: other.to_string(),
        },
    }
}
