//! `plughost version`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: VersionArgs) -> Result<ExitCode> {
    let v = crate::versions::versions();
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        crate::outln!("plughost   {}", v.plughost);
        crate::outln!("plugin-api {} (abi_stable {})", v.plugin_api, v.abi_stable);
        crate::outln!("lapin      {}", v.lapin);
        let curve = if v.curve { "CURVE" } else { "no CURVE" };
        crate::outln!(
            "libzmq     {} ({}, {curve}; zmq crate {})",
            v.libzmq,
            v.zmtp,
            v.zmq_crate
        );
    }
    Ok(ExitCode::SUCCESS)
}
