//! Example plugin: echo methods for tests and demos, and a tracked service.
//!
//! Two compile-time knobs serve the host's tests: `ECHO_BUILD_TAG` shows in
//! `version`, so hot-reload tests can tell two builds apart, and
//! `ECHO_PLUGIN_NAME` renames the plugin, for duplicate-method tests.
use std::time::Duration;

use plughost_plugin_api::prelude::*;

fn upper(text: String) -> Result<String, PluginError> {
    Ok(text.to_uppercase())
}

/// Greets `name`, with `greeting` when given (a trailing `Option`: callers
/// may leave it out, positionally or by name).
fn greet(name: String, greeting: Option<String>) -> Result<String, PluginError> {
    Ok(format!(
        "{}, {name}!",
        greeting.as_deref().unwrap_or("Hello")
    ))
}

fn sleep_ms(ms: u64) -> Result<u64, PluginError> {
    if ms > 60_000 {
        return Err(PluginError::bad_arguments("sleep_ms: at most 60000 ms"));
    }
    std::thread::sleep(Duration::from_millis(ms));
    Ok(ms)
}

fn version() -> Result<String, PluginError> {
    let tag = option_env!("ECHO_BUILD_TAG").unwrap_or("default");
    Ok(format!("{}+{tag}", env!("CARGO_PKG_VERSION")))
}

/// Logs a tick through the host every `tick_ms` (config, default 1000) until stopped.
fn ticker(ctx: &ServiceContext, tick_ms: u64) -> Result<(), PluginError> {
    let mut ticks = 0u64;
    while !ctx.wait_stop(Duration::from_millis(tick_ms)) {
        ticks += 1;
        ctx.log(LogLevel::Debug, &format!("tick {ticks}"));
    }
    ctx.log(
        LogLevel::Info,
        &format!("ticker stopping after {ticks} ticks"),
    );
    Ok(())
}

/// One argument comes back as it is (`echo "x"` gives `"x"`, as the old
/// system's echo did); several come back as an array.
fn echo(mut args: Vec<Value>) -> Result<Value, PluginError> {
    Ok(match args.len() {
        1 => args.remove(0),
        _ => Value::Array(args),
    })
}

/// Builds the plugin; exported below.
pub fn plugin(config: &Config) -> Result<Plugin, PluginError> {
    let tick_ms = config.get::<u64>("tick_ms")?.unwrap_or(1000);
    let name = option_env!("ECHO_PLUGIN_NAME").unwrap_or("echo");
    // Logged while the host creates the instance, before it knows the
    // plugin's name: the host still files it under `echo`.
    log(LogLevel::Info, format!("ticker set to every {tick_ms} ms"));
    Ok(Plugin::new(name, env!("CARGO_PKG_VERSION"))
        .doc("Echo methods and a ticker service, for demos and tests")
        .sample_config(json!({ "tick_ms": 500 }))
        .method(
            Method::variadic("echo", echo)
                .route("plughost.echo.echo")
                .doc("Returns its argument as it came; several arguments as a JSON array")
                .example(json!(["a"]), json!("a"))
                .example(json!(["a", 1]), json!(["a", 1])),
        )
        .method(
            Method::new("upper", upper)
                .route("plughost.echo.upper")
                .doc("Upper-cases a string")
                .example(json!(["abc"]), json!("ABC")),
        )
        .method(
            Method::new("greet", greet)
                .params(["name", "greeting"])
                .route(format!("plughost.{name}.greet"))
                .doc("Greets someone: greet(name, greeting?) (the greeting defaults to Hello)")
                .example(json!(["ada"]), json!("Hello, ada!"))
                .example(json!({"name": "ada", "greeting": "Hi"}), json!("Hi, ada!")),
        )
        .method(
            Method::new("sleep_ms", sleep_ms)
                .route("plughost.echo.sleep_ms")
                .doc("Sleeps for the given milliseconds (at most 60000), then returns them")
                .example(json!([1]), json!(1)),
        )
        .method(
            Method::new("version", version)
                .route("plughost.echo.version")
                .doc("The plugin's version and build tag"),
        )
        .service(
            Service::new("ticker", move |ctx| ticker(ctx, tick_ms))
                .doc("Logs a tick every tick_ms milliseconds"),
        ))
}

export_plugin!(plugin);
