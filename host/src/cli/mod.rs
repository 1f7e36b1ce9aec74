//! Command-line parsing and dispatch. Minimal on this branch: just enough to
//! run `plughost proto ...` end to end; the lead's `cli/mod.rs` replaces it
//! at merge and wires [`proto::ProtoCommand`] in the same way.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use plughost::logging::{self, LogFormat, LoggingOptions};

pub mod proto;

/// plughost: a plugin-based service host.
#[derive(Debug, Parser)]
#[command(name = "plughost", version, propagate_version = true)]
pub struct Cli {
    /// Log output format on stderr: text or json (default: the config's, else text).
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// A TOML logging config (overrides PLUGHOST_LOG; RUST_LOG overrides its levels).
    #[arg(long, global = true, value_name = "FILE")]
    pub log_config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The protocol toolkit: parse messages, look up status codes.
    #[command(subcommand)]
    Proto(proto::ProtoCommand),
}

/// Parses the command line, sets up logging, runs the command, and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _logging = logging::init(LoggingOptions {
        format: cli.log_format,
        config_file: cli.log_config,
        ..LoggingOptions::default()
    });
    let result = match cli.command {
        Command::Proto(command) => proto::run(command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
