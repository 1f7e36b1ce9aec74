//! `plughost plugins` and `plughost invoke`: inspect and call plugins in
//! process, without a broker.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use clap::{ArgGroup, Args};
use plughost::{manifest::Manifest, plugins::Registry};
use plughost_loader::{load, PluginSpec};
use serde_json::{json, Value};

#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// The manifest whose plugins to load and list.
    #[arg(long, short, env = "PLUGHOST_MANIFEST")]
    manifest: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["manifest", "plugin"])))]
pub struct InvokeArgs {
    /// Load every plugin of this manifest and call the method there.
    #[arg(long, short)]
    manifest: Option<PathBuf>,
    /// Load just this plugin file.
    #[arg(long, short)]
    plugin: Option<PathBuf>,
    /// Plugin configuration as JSON, with --plugin (default: {}).
    #[arg(long, requires = "plugin")]
    config: Option<String>,
    /// The method to call.
    method: String,
    /// Arguments: each is parsed as JSON when it parses (10, true, "x", [1]), else taken as a string.
    args: Vec<String>,
}

pub fn list(args: PluginsArgs) -> Result<ExitCode> {
    let manifest = Manifest::load(&args.manifest)?;
    let registry = Registry::from_manifest(&manifest)?;
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&registry_json(&registry))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    for plugin in registry.plugins() {
        let d = plugin.descriptor();
        crate::outln!("{} {}  ({})", d.name, d.version, plugin.file().display());
        if !d.doc.is_empty() {
            crate::outln!("  {}", d.doc);
        }
        crate::outln!("  methods:");
        for m in registry.methods().filter(|m| m.plugin.name() == d.name) {
            crate::outln!("    {:<12} {:<36} {}", m.name, m.route, m.doc);
            crate::outln!("    {:<12} {}", "", m.signature().render(&m.name));
        }
        crate::outln!("  services:");
        if d.services.is_empty() {
            crate::outln!("    (none)");
        }
        for s in &d.services {
            crate::outln!("    {:<12} {}", s.name, s.doc);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The JSON form of a registry, shared by `plugins --json`.
fn registry_json(registry: &Registry) -> Value {
    let plugins: Vec<Value> = registry
        .plugins()
        .iter()
        .map(|p| {
            let d = p.descriptor();
            let methods: Vec<Value> = registry
                .methods()
                .filter(|m| m.plugin.name() == d.name)
                .map(|m| {
                    let signature = m.signature();
                    json!({
                        "name": m.name,
                        "qualified_name": m.qualified_name(),
                        "route": m.route,
                        "doc": m.doc,
                        "params": signature.params,
                        "variadic": signature.variadic,
                        "result": signature.result,
                        "timeout_ms": m.timeout.as_millis() as u64,
                        "concurrency": m.concurrency,
                    })
                })
                .collect();
            json!({
                "name": d.name,
                "version": d.version,
                "api_version": d.api_version,
                "doc": d.doc,
                "file": p.file(),
                "sha256": p.sha256(),
                "methods": methods,
                "services": d.services,
            })
        })
        .collect();
    json!({ "plugins": plugins })
}

pub fn invoke(args: InvokeArgs) -> Result<ExitCode> {
    let call_args: Vec<Value> = args.args.iter().map(|a| parse_arg(a)).collect();
    let result = match (&args.manifest, &args.plugin) {
        (Some(manifest), _) => {
            let manifest = Manifest::load(manifest)?;
            Registry::from_manifest(&manifest)?.call(&args.method, &call_args)
        }
        (None, Some(file)) => {
            let mut spec = PluginSpec::file(file);
            if let Some(config) = &args.config {
                spec.config = serde_json::from_str(config).context("--config is not valid JSON")?;
            }
            load(&spec)?.call(&args.method, &call_args)
        }
        (None, None) => unreachable!("clap requires --manifest or --plugin"),
    };
    match result {
        Ok(value) => {
            crate::outln!("{value}");
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!(
                "error: {} failed with code {}: {err}",
                args.method, err.code
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A CLI argument as JSON when it parses, else as a string (so `fibo 10`
/// sends the number 10 and `upper abc` the string "abc"): the v1 rule.
pub fn parse_arg(arg: &str) -> Value {
    plughost_proto::rpc::v1::arg_value(arg)
}
