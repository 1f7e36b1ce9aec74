//! Test plugin that misbehaves on purpose: the host must contain all of it.
//!
//! Config keys `fail_init` and `panic_init` make instance creation fail or
//! panic, for the loader's init-error tests.
use plughost_plugin_api::prelude::*;

fn panic_now(message: String) -> Result<(), PluginError> {
    panic!("{message}");
}

fn fail(message: String) -> Result<(), PluginError> {
    Err(PluginError::failed(message))
}

fn huge(megabytes: usize) -> Result<String, PluginError> {
    if megabytes > 256 {
        return Err(PluginError::bad_arguments("huge: at most 256 MiB"));
    }
    Ok("x".repeat(megabytes * 1024 * 1024))
}

/// Builds the plugin; exported below.
pub fn plugin(config: &Config) -> Result<Plugin, PluginError> {
    if config.get::<bool>("fail_init")?.unwrap_or(false) {
        return Err(PluginError::failed("faulty: told to fail init by config"));
    }
    if config.get::<bool>("panic_init")?.unwrap_or(false) {
        panic!("faulty: told to panic in init by config");
    }
    Ok(Plugin::new("faulty", env!("CARGO_PKG_VERSION"))
        .doc("Misbehaves on purpose, for tests")
        .method(
            Method::new("panic", panic_now)
                .route("plughost.faulty.panic")
                .doc("Panics with the given message"),
        )
        .method(
            Method::new("fail", fail)
                .route("plughost.faulty.fail")
                .doc("Fails with a 500 error carrying the given message"),
        )
        .method(
            Method::new("huge", huge)
                .route("plughost.faulty.huge")
                .doc("Returns a string of the given size in MiB"),
        ))
}

export_plugin!(plugin);
