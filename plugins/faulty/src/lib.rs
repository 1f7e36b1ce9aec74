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

/// The OS name of the thread running the call: `plugin-faulty` for the
/// plugin's own threads, the host's runtime thread for a method it runs
/// inline. (Read from the kernel: this library's own copy of `std` does not
/// know the names the host gave its threads.)
fn thread_name() -> String {
    std::fs::read_to_string("/proc/thread-self/comm")
        .map(|name| name.trim_end().to_owned())
        .unwrap_or_else(|e| format!("(unknown: {e})"))
}

fn here() -> Result<String, PluginError> {
    Ok(thread_name())
}

/// Declared non-blocking, but sleeps: breaks the promise on purpose.
fn slow_inline(ms: u64) -> Result<String, PluginError> {
    std::thread::sleep(std::time::Duration::from_millis(ms.min(60_000)));
    Ok(thread_name())
}

/// Declared non-blocking, but sleeps `ms` and returns it. Built with
/// `FAULTY_NAP_EXAMPLE_MS` set, it carries an example that naps that long,
/// for the kit's check of non-blocking methods.
fn nap(ms: u64) -> Result<u64, PluginError> {
    std::thread::sleep(std::time::Duration::from_millis(ms.min(60_000)));
    Ok(ms)
}

/// Builds the plugin; exported below.
pub fn plugin(config: &Config) -> Result<Plugin, PluginError> {
    if config.get::<bool>("fail_init")?.unwrap_or(false) {
        return Err(PluginError::failed("faulty: told to fail init by config"));
    }
    if config.get::<bool>("panic_init")?.unwrap_or(false) {
        panic!("faulty: told to panic in init by config");
    }
    let mut nap_method = Method::new("nap", nap)
        .non_blocking()
        .route("plughost.faulty.nap")
        .doc("Declared non-blocking, yet sleeps the given milliseconds; returns them");
    if let Some(ms) = option_env!("FAULTY_NAP_EXAMPLE_MS").and_then(|ms| ms.parse::<u64>().ok()) {
        nap_method = nap_method.example(json!([ms]), json!(ms));
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
        )
        .method(
            Method::new("here", here)
                .non_blocking()
                .route("plughost.faulty.here")
                .doc("Names the thread that ran the call (declared non-blocking)"),
        )
        .method(
            Method::new("slow_inline", slow_inline)
                .non_blocking()
                .route("plughost.faulty.slow_inline")
                .doc("Declared non-blocking, yet sleeps the given milliseconds; names its thread"),
        )
        .method(nap_method)
        .method(
            Method::new("panic_inline", panic_now)
                .non_blocking()
                .route("plughost.faulty.panic_inline")
                .doc("Declared non-blocking, and panics with the given message"),
        ))
}

export_plugin!(plugin);
