//! Example plugin: `fibo(n)`, on the route the original system used.
use plughost_plugin_api::prelude::*;

/// F(0) = 0, F(1) = 1; F(93) is the largest that fits in a u64.
pub fn fibo(n: u32) -> Result<u64, PluginError> {
    let overflow = || {
        PluginError::bad_arguments(format!("fibo({n}) overflows u64"))
            .with_help("n must be at most 93")
    };
    let (mut a, mut b) = (0u64, Some(1u64)); // b = F(i + 1), None once it overflows
    for _ in 0..n {
        let next = b.ok_or_else(overflow)?;
        (a, b) = (next, a.checked_add(next));
    }
    Ok(a)
}

/// Builds the plugin; exported below.
pub fn plugin(_config: &Config) -> Result<Plugin, PluginError> {
    Ok(Plugin::new("math", env!("CARGO_PKG_VERSION"))
        .doc("Math algorithms")
        .method(
            Method::new("fibo", fibo)
                .non_blocking()
                .route("com.goffersoft.math.algo.fibo")
                .doc("The n-th Fibonacci number (F(0) = 0, F(1) = 1, n <= 93)")
                .example(json!([10]), json!(55))
                .example(json!([93]), json!(12200160415121876738u64)),
        ))
}

export_plugin!(plugin);
