//! `plughost doctor`: the host library's checks, one line each, then the
//! versions of the libraries the host speaks through.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::Args;
use plughost::{
    doctor::{self, Check, Verdict},
    host::HostOptions,
};

use super::exit;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The manifest of the host to check.
    #[arg(long, short, env = "PLUGHOST_MANIFEST")]
    manifest: PathBuf,
    /// Broker URL (overrides the manifest's [rabbitmq] url, as for `plughost run`).
    #[arg(long, env = "PLUGHOST_AMQP_URL")]
    amqp: Option<String>,
}

pub async fn run(args: DoctorArgs) -> Result<ExitCode> {
    let options = HostOptions {
        amqp_url: args.amqp,
    };
    let mut checks = doctor::diagnose(&args.manifest, &options).await;
    checks.push(versions());
    for check in &checks {
        crate::outln!("{check}");
    }
    Ok(if doctor::failed(&checks) {
        let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
        eprintln!("{failed} check(s) failed");
        ExitCode::from(exit::FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The lapin and libzmq this binary runs on.
fn versions() -> Check {
    let v = crate::versions::versions();
    let curve = if v.curve {
        "with CURVE"
    } else {
        "without CURVE"
    };
    Check {
        name: "versions".to_owned(),
        verdict: Verdict::Pass,
        detail: format!(
            "plughost {}, lapin {}, libzmq {} ({}, {curve})",
            v.plughost, v.lapin, v.libzmq, v.zmtp
        ),
    }
}
