//! `plughost reload` and `plughost status`: talk to a running host through
//! its admin socket.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::Args;
use plughost::{
    admin::{self, AdminRequest},
    manifest::Manifest,
};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The manifest the host runs (its admin socket is found from it).
    #[arg(
        long,
        short,
        env = "PLUGHOST_MANIFEST",
        required_unless_present = "socket"
    )]
    manifest: Option<PathBuf>,
    /// The admin socket, when not the manifest's default.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Print the host's JSON answer.
    #[arg(long)]
    json: bool,
}

impl AdminArgs {
    fn socket(&self) -> Result<PathBuf> {
        if let Some(socket) = &self.socket {
            return Ok(socket.clone());
        }
        let manifest = self.manifest.as_deref().map(Manifest::load).transpose()?;
        let manifest = manifest.ok_or_else(|| anyhow::anyhow!("give --manifest or --socket"))?;
        Ok(admin::socket_path(&manifest))
    }
}

pub async fn reload(args: AdminArgs) -> Result<ExitCode> {
    let reply = admin::request(&args.socket()?, AdminRequest::Reload).await?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&reply)?);
    }
    match (reply.ok, reply.changes) {
        (true, Some(c)) => {
            if !args.json {
                if c.is_empty() {
                    crate::outln!("reloaded: nothing changed");
                } else {
                    crate::outln!(
                        "reloaded: added {:?}, removed {:?}, replaced {:?}",
                        c.added,
                        c.removed,
                        c.replaced
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!(
                "error: reload refused, the host keeps serving its previous set: {}",
                reply.error.unwrap_or_default()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

pub async fn status(args: AdminArgs) -> Result<ExitCode> {
    let reply = admin::request(&args.socket()?, AdminRequest::Status).await?;
    let Some(status) = reply.status else {
        eprintln!(
            "error: {}",
            reply
                .error
                .unwrap_or_else(|| "no status in the answer".into())
        );
        return Ok(ExitCode::FAILURE);
    };
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    crate::outln!("host {}  broker: {}", status.host, status.broker);
    crate::outln!(
        "{:<10} {:<8} {:<9} {:<14} {:>9}  {:<36}  calls",
        "plugin",
        "version",
        "state",
        "sha256",
        "in-flight",
        "loaded"
    );
    let now = std::time::SystemTime::now();
    for p in &status.plugins {
        let calls: Vec<String> = p.calls.iter().map(|(m, n)| format!("{m}={n}")).collect();
        crate::outln!(
            "{:<10} {:<8} {:<9} {:<14} {:>9}  {:<36}  {}",
            p.name,
            p.version,
            p.state.to_string(),
            &p.sha256[..12.min(p.sha256.len())],
            p.in_flight,
            crate::human::time_ago(p.loaded_at, now),
            calls.join(" ")
        );
        for m in &p.methods {
            crate::outln!("  {}", m.signature.render(&m.name));
        }
    }
    if !status.channels.is_empty() {
        crate::outln!("{:<40} {:<14} problem", "channel", "state");
        for c in &status.channels {
            crate::outln!(
                "{:<40} {:<14} {}",
                c.channel,
                c.state,
                c.problem.as_deref().unwrap_or("")
            );
        }
    }
    if !status.services.is_empty() {
        crate::outln!(
            "{:<30} {:<11} {:>8}  last error",
            "service",
            "state",
            "restarts"
        );
        for s in &status.services {
            crate::outln!(
                "{:<30} {:<11} {:>8}  {}",
                format!("{}.{}", s.plugin, s.service),
                s.state,
                s.restarts,
                s.last_error.as_deref().unwrap_or("")
            );
        }
    }
    let faults: Vec<String> = status
        .faults
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(kind, n)| format!("{kind}={n}"))
        .collect();
    if faults.is_empty() {
        crate::outln!("faults: none");
    } else {
        crate::outln!("faults: {}", faults.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}
