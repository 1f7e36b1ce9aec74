//! The TOML manifest: which plugins a host loads and how its roles are set up.
//!
//! Parsing is strict on purpose: an unknown key or a bad value is an error
//! that names the key and its line, because a typo in a manifest that a
//! running host follows must never silently change what it serves.
//! [`Manifest::load`] reads and validates a file; [`Manifest::parse`] does the
//! same for text (relative plugin paths resolve against `base_dir`).
//!
//! ```
//! use plughost::manifest::Manifest;
//!
//! let m = Manifest::parse(r#"
//! [host]
//! name = "h1"
//!
//! [[plugins]]
//! path = "libplugin_math.so"
//! [plugins.methods.fibo]
//! timeout_ms = 2000
//! "#, "/srv/plughost".as_ref(), "example.toml").unwrap();
//! assert_eq!(m.host.name, "h1");
//! assert_eq!(m.plugins[0].path, std::path::Path::new("/srv/plughost/libplugin_math.so"));
//! assert_eq!(m.plugins[0].methods["fibo"].timeout_ms, Some(2000));
//! ```

mod broker;
mod error;
mod model;

pub use broker::{split_urls, BrokerOverrides, BrokerSettings};

pub use error::ManifestError;
pub use model::{
    HostSettings, HttpSettings, Limits, LocalSettings, Manifest, MethodOverride, PluginEntry,
    RabbitSettings, RestartPolicy, Roles, ServiceSettings, ZmqSettings, DEFAULT_AMQP_URL,
    DEFAULT_MAX_PLUGIN_THREADS, DEFAULT_SHUTDOWN_GRACE_MS,
};

/// Route syntax is a plugin-metadata rule; its one home is the loader.
pub use plughost_loader::is_valid_route;
