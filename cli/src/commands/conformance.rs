//! `plughost conformance`: run the conformance kit on a plugin file and
//! print the report (table, `--json`, or the table plus `--junit FILE`).
//! Exit status 0 when no check failed (skips are allowed), 1 otherwise.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args};
use plughost_conformance::{engine as conformance, render, Options, PanicProbe};
use serde_json::Value;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("format").args(["json", "junit"])))]
pub struct ConformanceArgs {
    /// The plugin library to check (a cdylib built with plughost-plugin-api's `export_plugin!`).
    plugin: PathBuf,
    /// Configuration for the checked instance: a TOML table like a manifest's
    /// [plugins.config], or JSON when the file ends in .json [default: the plugin's sample config].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write the report as JUnit XML to FILE for CI systems (the table still goes to stdout).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Latency budget in milliseconds for methods that declare none.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = conformance::DEFAULT_LATENCY_BUDGET.as_millis() as u64,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    latency_budget_ms: u64,
    /// A call that makes METHOD panic on purpose, to show the panic is contained:
    /// METHOD and its arguments as a JSON array, e.g. --panic-probe panic '["boom"]'. Repeatable.
    #[arg(long, num_args = 2, value_names = ["METHOD", "ARGS_JSON"])]
    panic_probe: Vec<String>,
}

pub fn run(args: ConformanceArgs) -> Result<ExitCode> {
    let mut options = Options {
        default_latency_budget: Duration::from_millis(args.latency_budget_ms),
        ..Options::default()
    };
    if let Some(file) = &args.config {
        options.config = Some(conformance::read_config_file(file)?);
    }
    for pair in args.panic_probe.chunks(2) {
        let [method, json] = pair else {
            bail!("--panic-probe takes METHOD and ARGS_JSON")
        };
        let args: Vec<Value> = serde_json::from_str(json)
            .with_context(|| format!("--panic-probe {method}: {json} is not a JSON array"))?;
        options.panic_probes.push(PanicProbe {
            method: method.clone(),
            args,
        });
    }

    let report = conformance::run(&args.plugin, &options);

    if args.json {
        crate::outln!("{}", render::json(&report));
    } else {
        crate::out!("{}", render::table(&report));
    }
    if let Some(file) = &args.junit {
        std::fs::write(file, render::junit(&report))
            .with_context(|| format!("writing the JUnit report to {}", file.display()))?;
        crate::outln!("JUnit report written to {}", file.display());
    }
    if report.passed() {
        return Ok(ExitCode::SUCCESS);
    }
    let failed: Vec<String> = report
        .failed()
        .map(|c| format!("{} ({})", c.check.id(), c.summary))
        .collect();
    eprintln!(
        "conformance failed for {}: {}",
        report.plugin_label(),
        failed.join("; ")
    );
    Ok(ExitCode::FAILURE)
}
