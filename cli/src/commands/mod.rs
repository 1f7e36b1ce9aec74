//! Command-line parsing and dispatch. Each subcommand module parses its
//! arguments, calls the library and prints; none holds logic of its own.

use std::{path::PathBuf, process::ExitCode};

use crate::logging::{self, LogFormat, LoggingOptions};
use clap::{Parser, Subcommand};

mod admin;
mod bench;
mod conformance;
mod doctor;
pub mod exit;
mod new;
mod plugins;
pub mod proto;
mod rpc;
mod services;
mod stats;
mod version;

/// plughost: a plugin-based service host.
///
/// Loads RPC methods and tracked services from plugins (cdylibs built
/// against plughost-plugin-api) listed in a TOML manifest, serves them over
/// RabbitMQ and tracks services over ZeroMQ.
#[derive(Debug, Parser)]
#[command(name = "plughost", version, propagate_version = true, after_help = exit::HELP)]
pub(crate) struct Cli {
    /// Log output format on stderr: text or json (default: the log config's, else text).
    /// RUST_LOG sets levels, e.g. RUST_LOG=plughost=debug (default: info for
    /// `run`, warn otherwise; plugins log under the target plughost::plugin).
    #[arg(long, global = true, value_name = "FORMAT")]
    pub(crate) log_format: Option<LogFormat>,

    /// A TOML logging config: levels per target, format, rotating file (overrides PLUGHOST_LOG).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) log_config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List the plugins of a manifest: versions, files, methods with routes, services.
    Plugins(plugins::PluginsArgs),
    /// Call a plugin method in this process (no broker needed) and print its JSON result.
    Invoke(plugins::InvokeArgs),
    /// Print the versions of plughost, the plugin ABI and the libraries it speaks through.
    Version(version::VersionArgs),
    /// Run a host: load the manifest's plugins and serve them (RPC over RabbitMQ) until ctrl-c.
    Run(rpc::RunArgs),
    /// Ask the name services which route serves a method and print it.
    #[command(after_help = exit::HELP)]
    Find(rpc::FindArgs),
    /// Call a method over RabbitMQ (find, then call) and print its JSON result.
    #[command(after_help = exit::HELP)]
    Call(rpc::CallArgs),
    /// Ask the name services for a method's signature (parameters, their JSON Schemas, the result).
    Describe(rpc::DescribeArgs),
    /// Load generators: calls/s and latency of plughost, and of the bare broker as a baseline.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The protocol toolkit: parse raw-protocol messages, look up raw/HTTP/SIP status codes.
    #[command(subcommand)]
    Proto(proto::ProtoCommand),
    /// The command processor: list and stop the services a service manager tracks.
    #[command(subcommand)]
    Services(services::ServicesCommand),
    /// The old interactive command processor on stdin: l (list), s <uuid> (stop), e (exit).
    CmdProc(services::CmdProcArgs),
    /// Tell a running host to re-read its manifest now (it also follows file changes and SIGHUP).
    Reload(admin::AdminArgs),
    /// Show a running host's plugins: versions, file hashes, states, load times, call counts.
    Status(admin::AdminArgs),
    /// Every host's per-method counters (requests, errors, last error, average and p99 time), one row per host and method.
    Stats(stats::StatsArgs),
    /// `stats`, refreshed every second until ctrl-c.
    Top(stats::StatsArgs),
    /// Check a host's manifest, files, sockets and broker; one line per check, exit 1 on a failure.
    Doctor(doctor::DoctorArgs),
    /// Check that a plugin library behaves (the conformance kit); exit 1 naming the failed checks.
    Conformance(conformance::ConformanceArgs),
    /// Create a plugin crate that builds and passes the conformance kit as generated.
    New(new::NewArgs),
}

/// Parses the command line, runs the command, and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // A host says what it serves and what happens to it; one-shot commands
    // print their result and stay quiet otherwise.
    let default_level = match cli.command {
        Command::Run(_) => tracing::level_filters::LevelFilter::INFO,
        _ => tracing::level_filters::LevelFilter::WARN,
    };
    let _logging = logging::init(LoggingOptions {
        format: cli.log_format,
        config_file: cli.log_config,
        default_level,
    });
    let result = match cli.command {
        Command::Plugins(args) => plugins::list(args),
        Command::Invoke(args) => plugins::invoke(args),
        Command::Version(args) => version::run(args),
        Command::Run(args) => block_on(rpc::run(args)),
        Command::Find(args) => block_on(rpc::find(args)),
        Command::Call(args) => block_on(rpc::call(args)),
        Command::Describe(args) => block_on(rpc::describe(args)),
        Command::Bench(cmd) => block_on(bench::run(cmd)),
        Command::Proto(command) => proto::run(command),
        Command::Services(cmd) => block_on(services::run(cmd)),
        Command::CmdProc(args) => block_on(services::cmd_proc(args)),
        Command::Reload(args) => block_on(admin::reload(args)),
        Command::Status(args) => block_on(admin::status(args)),
        Command::Doctor(args) => block_on(doctor::run(args)),
        Command::Stats(args) => block_on(stats::stats(args)),
        Command::Top(args) => block_on(stats::top(args)),
        Command::Conformance(args) => conformance::run(args),
        Command::New(args) => new::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an async command on the one runtime of the process, built by the
/// library with the host's limits. Plugin code runs on its plugin's own
/// bounded threads, never on the runtime's.
fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    future: F,
) -> anyhow::Result<ExitCode> {
    let runtime = plughost::runtime::build()?;
    let result = runtime.block_on(future);
    // Whatever still runs on the blocking pool (a reload being built, say)
    // must not keep the process from exiting.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
