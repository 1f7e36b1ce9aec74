//! [`PluginHandle`]: one loaded plugin instance and what the host knows about it.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering},
    time::SystemTime,
};

use abi_stable::std_types::RStr;
use plughost_plugin_api::{
    ffi::{PluginInfo, PluginInstanceBox, ServiceHostBox},
    PluginError,
};
use serde::Serialize;
use serde_json::Value;

use crate::{is_valid_route, pool::PluginPool, LoadError};

/// Threads of an instance before a registry gives it its share.
const DEFAULT_THREADS: usize = 16;

/// Where a plugin is in its life inside a host. Named in logs and in
/// `plughost status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum PluginState {
    /// Listed in the manifest, not loaded yet.
    Declared = 0,
    /// Loaded and checked, not yet taking calls.
    Loaded = 1,
    /// Taking calls.
    Serving = 2,
    /// Replaced or removed: finishing the calls it has, taking no new ones.
    Draining = 3,
    /// Done; its library stays mapped (libraries are never unloaded).
    Retired = 4,
}

impl PluginState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Declared,
            1 => Self::Loaded,
            2 => Self::Serving,
            3 => Self::Draining,
            _ => Self::Retired,
        }
    }
}

impl fmt::Display for PluginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        f.write_str(s.as_deref().unwrap_or("?"))
    }
}

/// A plugin's self-description in plain Rust types.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginDescriptor {
    /// Unique plugin name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// The plugin-api version it was built against.
    pub api_version: String,
    /// One-line description.
    pub doc: String,
    /// Its RPC methods.
    pub methods: Vec<MethodDescriptor>,
    /// Its tracked services.
    pub services: Vec<ServiceDescriptor>,
    /// A sample configuration, if it offers one.
    pub sample_config: Option<Value>,
}

/// One method as the plugin declares it (before manifest overrides).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodDescriptor {
    /// Method name.
    pub name: String,
    /// Default route.
    pub route: String,
    /// One-line documentation.
    pub doc: String,
    /// Example calls: arguments and expected result.
    pub examples: Vec<(Value, Value)>,
    /// Latency budget for an example call, in milliseconds (0 = default).
    pub latency_budget_ms: u64,
}

/// One tracked service as the plugin declares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceDescriptor {
    /// Service name.
    pub name: String,
    /// One-line documentation.
    pub doc: String,
}

/// A loaded plugin instance: the FFI object plus its descriptor, file
/// identity, state and call counters.
pub struct PluginHandle {
    descriptor: PluginDescriptor,
    file: PathBuf,
    sha256: String,
    loaded_at: SystemTime,
    config: Value,
    state: AtomicU8,
    calls: HashMap<String, AtomicU64>,
    in_flight: AtomicUsize,
    pool: PluginPool,
    instance: PluginInstanceBox,
}

impl fmt::Debug for PluginHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginHandle")
            .field("name", &self.descriptor.name)
            .field("version", &self.descriptor.version)
            .field("file", &self.file)
            .field("state", &self.state())
            .finish()
    }
}

impl PluginHandle {
    pub(super) fn new(
        file: PathBuf,
        sha256: String,
        loaded_at: SystemTime,
        config: Value,
        instance: PluginInstanceBox,
    ) -> Result<Self, LoadError> {
        let descriptor = describe(&file, instance.info())?;
        let calls = descriptor
            .methods
            .iter()
            .map(|m| (m.name.clone(), AtomicU64::new(0)))
            .collect();
        let pool = PluginPool::new(descriptor.name.clone(), DEFAULT_THREADS);
        Ok(Self {
            descriptor,
            file,
            sha256,
            loaded_at,
            config,
            state: AtomicU8::new(PluginState::Loaded as u8),
            calls,
            in_flight: AtomicUsize::new(0),
            pool,
            instance,
        })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.descriptor.name
    }

    /// The plugin's version.
    pub fn version(&self) -> &str {
        &self.descriptor.version
    }

    /// Everything the plugin says about itself.
    pub fn descriptor(&self) -> &PluginDescriptor {
        &self.descriptor
    }

    /// The file it was loaded from (not the shadow copy).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// SHA-256 of the file's content when it was loaded.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// When it was loaded.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// The configuration it was created with.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// Its current state.
    pub fn state(&self) -> PluginState {
        PluginState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Moves it to another state.
    pub fn set_state(&self, state: PluginState) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// Calls served so far, per method.
    pub fn call_counts(&self) -> Vec<(String, u64)> {
        let mut counts: Vec<_> = self
            .calls
            .iter()
            .map(|(m, c)| (m.clone(), c.load(Ordering::Relaxed)))
            .collect();
        counts.sort();
        counts
    }

    /// Calls a method with JSON values. Blocking: run it off async workers.
    pub fn call(&self, method: &str, args: &[Value]) -> Result<Value, PluginError> {
        let args = serde_json::to_string(args)
            .map_err(|e| PluginError::bad_arguments(format!("arguments do not serialise: {e}")))?;
        let result = self.call_json(method, &args)?;
        serde_json::from_str(&result).map_err(|e| {
            PluginError::failed(format!(
                "plugin {} returned invalid JSON from {method}: {e}",
                self.name()
            ))
        })
    }

    /// Calls a method with its arguments already encoded as a JSON array and
    /// returns the JSON result text: the RPC path, which never needs the
    /// values decoded in the host.
    pub fn call_json(&self, method: &str, args_json: &str) -> Result<String, PluginError> {
        if let Some(counter) = self.calls.get(method) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let result = self
            .instance
            .call(RStr::from_str(method), RStr::from_str(args_json))
            .into_result();
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        result.map(|s| s.into_string())
    }

    /// The threads its calls run on (see [`PluginPool`]); the registry sets
    /// its limit from the manifest.
    pub fn pool(&self) -> &PluginPool {
        &self.pool
    }

    /// Calls running in the plugin right now (a draining plugin retires at 0).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Runs one of its tracked services until `host` says stop. Blocking.
    pub fn run_service(&self, service: &str, host: ServiceHostBox) -> Result<(), PluginError> {
        self.instance
            .run_service(RStr::from_str(service), host)
            .into_result()
    }
}

/// Converts and checks the FFI description.
fn describe(file: &Path, info: PluginInfo) -> Result<PluginDescriptor, LoadError> {
    let bad = |reason: String| LoadError::Metadata {
        path: file.to_path_buf(),
        reason,
    };
    let name = info.name.into_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(bad(format!(
            "plugin name `{name}` must be non-empty letters, digits, '_' or '-'"
        )));
    }
    let version = info.version.into_string();
    if semver::Version::parse(&version).is_err() {
        return Err(bad(format!(
            "version `{version}` of plugin `{name}` is not semver (e.g. 1.2.3)"
        )));
    }
    let mut methods: Vec<MethodDescriptor> = Vec::new();
    for m in info.methods {
        let method = m.name.into_string();
        if method.is_empty() || methods.iter().any(|seen| seen.name == method) {
            return Err(bad(format!(
                "method name `{method}` is empty or declared twice"
            )));
        }
        let route = m.route.into_string();
        if !is_valid_route(&route) {
            return Err(bad(format!(
                "method `{method}` has an invalid route `{route}`"
            )));
        }
        let examples = m
            .examples
            .into_iter()
            .map(|e| {
                let args = serde_json::from_str(e.args_json.as_str());
                let expected = serde_json::from_str(e.expected_json.as_str());
                match (args, expected) {
                    (Ok(a @ Value::Array(_)), Ok(x)) => Ok((a, x)),
                    (Ok(_), Ok(_)) => Err(bad(format!(
                        "method `{method}` has an example whose arguments are not a JSON array"
                    ))),
                    _ => Err(bad(format!(
                        "method `{method}` has an example that is not JSON"
                    ))),
                }
            })
            .collect::<Result<_, _>>()?;
        methods.push(MethodDescriptor {
            name: method,
            route,
            doc: m.doc.into_string(),
            examples,
            latency_budget_ms: m.latency_budget_ms,
        });
    }
    let mut services: Vec<ServiceDescriptor> = Vec::new();
    for s in info.services {
        let service = s.name.into_string();
        if service.trim().is_empty() || services.iter().any(|seen| seen.name == service) {
            return Err(bad(format!(
                "tracked service name `{service}` is empty or declared twice"
            )));
        }
        services.push(ServiceDescriptor {
            name: service,
            doc: s.doc.into_string(),
        });
    }
    let sample_config = info
        .sample_config
        .into_option()
        .map(|s| serde_json::from_str(s.as_str()))
        .transpose()
        .map_err(|e| bad(format!("sample config is not JSON: {e}")))?;
    Ok(PluginDescriptor {
        name,
        version,
        api_version: info.api_version.into_string(),
        doc: info.doc.into_string(),
        methods,
        services,
        sample_config,
    })
}
