//! Loading one plugin file: hash, shadow copy, `dlopen`, ABI checks, instance.
//!
//! Why a shadow copy: the dynamic loader hands back the already-loaded
//! library when asked for the same path again, so a rebuilt plugin written
//! over the old file could never be loaded next to the old version; and a
//! file rewritten in place under a mapped library can crash the host. So
//! every file is first copied to a content-addressed path
//! (`<cache>/<stem>-<sha256 prefix>.so`) and loaded from there: identical
//! content shares one library, new content is a new library.
//!
//! Why not `RootModule::load_from_file`: abi_stable caches one root module
//! per root-module *type* in a process-wide static, so a second plugin
//! would get the first plugin's module back. We go one level lower
//! (`lib_header_from_path` + `LibHeader::init_root_module`), which checks
//! each library on its own. Libraries are never unloaded (abi_stable leaks
//! them on purpose); see `docs/operations.md`.

use std::{
    collections::HashMap,
    fs,
    io::Write,
    path::{Path, PathBuf},
    sync::{Mutex, OnceLock},
    time::SystemTime,
};

use abi_stable::{
    library::{lib_header_from_path, LibHeader, LibraryError, RootModule},
    std_types::RStr,
};
use plughost_plugin_api::ffi::{HostApiBox, PluginRootRef};
use sha2::{Digest, Sha256};

use super::{host_api::TracingHost, LoadError, PluginHandle};
use crate::manifest::PluginEntry;

/// What to load: a file, an optional hash pin and the plugin's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSpec {
    /// The plugin library.
    pub path: PathBuf,
    /// Expected SHA-256 (lower-case hex), if pinned.
    pub sha256: Option<String>,
    /// The configuration handed to the plugin (JSON object).
    pub config: serde_json::Value,
}

impl PluginSpec {
    /// A spec for a file with no pin and an empty configuration.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            sha256: None,
            config: serde_json::Value::Object(Default::default()),
        }
    }
}

impl From<&PluginEntry> for PluginSpec {
    /// What a manifest entry asks to load.
    fn from(entry: &PluginEntry) -> Self {
        Self {
            path: entry.path.clone(),
            sha256: entry.sha256.clone(),
            config: entry.config.clone(),
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

/// The default host callbacks: log records go to `tracing`, labelled with
/// the file's stem.
pub(crate) fn tracing_host(path: &Path) -> HostApiBox {
    let label = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".to_owned());
    TracingHost::boxed(label)
}

/// Like [`load`], but the instance's log records go to `host` instead of
/// `tracing`: for tools that must see what a plugin logs, such as the
/// conformance kit (which also checks that nothing reaches stdout/stderr
/// while plugin code runs, so it cannot let records go to a log writer).
pub fn load_with_host(spec: &PluginSpec, host: HostApiBox) -> Result<PluginHandle, LoadError> {
    let sha256 = file_sha256(&spec.path)?;
    check_pin(&spec.path, spec.sha256.as_deref(), &sha256)?;
    instantiate(spec, sha256, host)
}

/// Refuses a file whose hash is not the one the manifest pins.
pub(crate) fn check_pin(path: &Path, pin: Option<&str>, actual: &str) -> Result<(), LoadError> {
    match pin {
        Some(expected) if !expected.eq_ignore_ascii_case(actual) => Err(LoadError::ShaMismatch {
            path: path.to_path_buf(),
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Opens (once per content) the library of a file already hashed and
/// checked, and creates an instance with the spec's configuration.
pub(crate) fn instantiate(
    spec: &PluginSpec,
    sha256: String,
    host: HostApiBox,
) -> Result<PluginHandle, LoadError> {
    let path = &spec.path;
    let root = root_module_for(path, &sha256)?;

    let config = spec.config.to_string();
    let instance = (root.new_instance())(RStr::from_str(&config), host)
        .into_result()
        .map_err(|error| LoadError::Init {
            path: path.clone(),
            error,
        })?;

    PluginHandle::new(
        path.clone(),
        sha256,
        SystemTime::now(),
        spec.config.clone(),
        instance,
    )
}

/// Returns the checked root module of the library with this content. Each
/// content hash is opened and checked once for the life of the process; a
/// reload of known content only creates a new instance.
fn root_module_for(path: &Path, sha256: &str) -> Result<PluginRootRef, LoadError> {
    static OPENED: OnceLock<Mutex<HashMap<String, PluginRootRef>>> = OnceLock::new();
    let opened = OPENED.get_or_init(Default::default);
    let mut opened = opened
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(root) = opened.get(sha256) {
        return Ok(*root);
    }
    let shadow = shadow_copy(path, sha256)?;
    let header = lib_header_from_path(&shadow).map_err(|e| library_error(path, e))?;
    check_api_version(path, header)?;
    let root = header
        .init_root_module::<PluginRootRef>()
        .map_err(|e| library_error(path, e))?;
    opened.insert(sha256.to_owned(), root);
    Ok(root)
}

/// SHA-256 of a file, streamed (plugin files can be tens of MiB in debug
/// builds; reading them whole on every reload would churn the heap).
pub fn file_sha256(path: &Path) -> Result<String, LoadError> {
    let mut file = fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::Missing {
            path: path.to_path_buf(),
        },
        _ => LoadError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    })?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| LoadError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(hex::encode(hasher.finalize()))
}

/// Copies the file to its content-addressed shadow path (atomically, so a
/// concurrent host never opens a half-written file) and returns that path.
/// The copy is hashed again: if the file changed while we copied it, we
/// refuse rather than load something other than what was hashed.
fn shadow_copy(path: &Path, sha256: &str) -> Result<PathBuf, LoadError> {
    let io = |e: std::io::Error| LoadError::Io {
        path: path.to_path_buf(),
        reason: format!("cannot write shadow copy: {e}"),
    };
    let dir = shadow_dir();
    fs::create_dir_all(&dir).map_err(io)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "so".into());
    let target = dir.join(format!("{stem}-{}.{ext}", &sha256[..16]));
    if target.exists() && file_sha256(&target).is_ok_and(|s| s == sha256) {
        return Ok(target);
    }
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
    let mut source = fs::File::open(path).map_err(io)?;
    std::io::copy(&mut source, tmp.as_file_mut()).map_err(io)?;
    tmp.as_file_mut().flush().map_err(io)?;
    if file_sha256(tmp.path())? != sha256 {
        return Err(LoadError::Io {
            path: path.to_path_buf(),
            reason: "the file changed while it was being loaded; try again".into(),
        });
    }
    tmp.persist(&target).map_err(|e| io(e.error))?;
    Ok(target)
}

/// Where shadow copies live: `$PLUGHOST_LIB_CACHE`, else a per-user folder
/// under the temp directory.
fn shadow_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PLUGHOST_LIB_CACHE") {
        return PathBuf::from(dir);
    }
    use std::os::unix::fs::MetadataExt;
    let uid = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    std::env::temp_dir()
        .join(format!("plughost-{uid}"))
        .join("libs")
}

/// plugin-api follows semver: same major, and for 0.x the same minor.
fn check_api_version(path: &Path, header: &LibHeader) -> Result<(), LoadError> {
    let plugin_api = header.version_strings().version.as_str().to_owned();
    let host_api = host_api_version().to_owned();
    let compatible = match (
        semver::Version::parse(&plugin_api),
        semver::Version::parse(&host_api),
    ) {
        (Ok(p), Ok(h)) => p.major == h.major && (h.major != 0 || p.minor == h.minor),
        _ => false,
    };
    if compatible {
        Ok(())
    } else {
        Err(LoadError::IncompatibleApi {
            path: path.to_path_buf(),
            plugin_api,
            host_api,
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
