//! `plughost stats` and `plughost top`: every host's per-method counters,
//! asked over the name-service exchange (`Client::stats`), one row per
//! host and method.

use std::{process::ExitCode, time::Duration};

use anyhow::Result;
use clap::Args;
use plughost_client::Client;
use plughost_proto::rpc::v2::StatsReply;

use super::rpc::{report, BrokerArgs};

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Seconds to wait for the hosts' answers (every host that answers within it is shown).
    #[arg(long, default_value_t = 1.0)]
    wait: f64,
    /// Print JSON: one object per host, with its methods' counters.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    broker: BrokerArgs,
}

fn wait_of(args: &StatsArgs) -> Result<Duration> {
    Duration::try_from_secs_f64(args.wait).map_err(|e| anyhow::anyhow!("--wait {}: {e}", args.wait))
}

/// `plughost stats`: one table (or JSON) of every answering host.
pub async fn stats(args: StatsArgs) -> Result<ExitCode> {
    let wait = wait_of(&args)?;
    let client = match Client::connect(args.broker.client_options()?).await {
        Ok(client) => client,
        Err(e) => return report(e),
    };
    let answers = client.stats(wait).await;
    client.close().await;
    let answers = match answers {
        Ok(a) => a,
        Err(e) => return report(e),
    };
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&answers)?);
    } else {
        for line in table(&answers) {
            crate::outln!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `plughost top`: `stats` every second, on a cleared screen, until ctrl-c.
pub async fn top(args: StatsArgs) -> Result<ExitCode> {
    let wait = wait_of(&args)?.min(Duration::from_millis(900));
    let client = match Client::connect(args.broker.client_options()?).await {
        Ok(client) => client,
        Err(e) => return report(e),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let answers = match client.stats(wait).await {
            Ok(a) => a,
            Err(e) => {
                client.close().await;
                return report(e);
            }
        };
        // Clear the screen and go home, then the table.
        crate::outln!("\x1b[2J\x1b[H{}", table(&answers).join("\n"));
    }
    client.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The rows: host, plugin.method, requests, errors, average and p99 time,
/// last error; aligned, with a header.
fn table(answers: &[StatsReply]) -> Vec<String> {
    let mut rows = vec![[
        "HOST".to_owned(),
        "METHOD".to_owned(),
        "REQUESTS".to_owned(),
        "ERRORS".to_owned(),
        "AVG".to_owned(),
        "P99".to_owned(),
        "LAST ERROR".to_owned(),
    ]];
    for answer in answers {
        if answer.methods.is_empty() {
            rows.push([
                answer.host.clone(),
                "(no calls yet)".to_owned(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        for m in &answer.methods {
            rows.push([
                answer.host.clone(),
                format!("{}.{}", m.plugin, m.method),
                m.requests.to_string(),
                m.errors.to_string(),
                format!("{:.2} ms", m.avg_ms),
                format!("{:.2} ms", m.p99_ms),
                m.last_error.clone().unwrap_or_default(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut lines: Vec<String> = rows
        .iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect();
    if answers.is_empty() {
        lines.push("(no host answered)".to_owned());
    }
    lines
}
