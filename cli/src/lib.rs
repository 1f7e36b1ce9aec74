//! # plughost-cli
//!
//! The `plughost` command line: a thin shell over the libraries. Argument
//! parsing and printing live in [`commands`]; hosting is `plughost`'s,
//! calling `plughost-client`'s, checking plugins `plughost-conformance`'s.
//! What only the command line needs lives here too:
//!
//! - [`commands`]: one module per subcommand; [`commands::main`] is the binary.
//! - [`bench`]: load generators for `plughost bench` (plughost against a
//!   bare-lapin baseline, the tracker).
//! - [`scaffold`]: `plughost new`: a plugin crate that passes the kit as generated.
//! - [`logging`]: the process's `tracing` set-up from flags, a TOML config
//!   and the environment.
//! - [`versions`]: what this build is made of, for `plughost version`.
//! - [`output`]: command output that survives a closed pipe.
//! - [`human`]: times and ages in human form.

pub mod bench;
pub mod commands;
pub mod human;
pub mod logging;
pub mod output;
pub mod scaffold;
pub mod versions;
