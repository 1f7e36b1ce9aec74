//! `plughost bench call`, `plughost bench baseline` (and its hidden
//! `pair-server` half) and `plughost bench tracker`.

use std::{
    process::ExitCode,
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use plughost_client::{Client, ReplyMode};

use crate::bench::{self, BenchReport, LoadShape, Progress};

use super::{
    plugins::parse_arg,
    rpc::{BrokerArgs, ConfirmArgs},
};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Load running hosts with calls to one method through plughost's client.
    Call(CallBench),
    /// Measure the broker's bare request/reply limit: a two-process lapin pair
    /// (a server process computing fib(n), this process calling it), no plughost code.
    Baseline(BaselineBench),
    /// The server half of `bench baseline` (started by it; not for direct use).
    #[command(hide = true)]
    PairServer(PairServer),
    /// Simulate many services heartbeating a service manager every second; time the listing.
    Tracker(TrackerBench),
}

#[derive(Debug, Args)]
pub struct TrackerBench {
    /// Services to simulate.
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Seconds to keep them heartbeating.
    #[arg(long, short, default_value_t = 10.0)]
    duration: f64,
    /// DEALER connections to spread them over.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// The manager's discovery endpoint (its beacon gives its address).
    #[arg(long, default_value = "tcp://127.0.0.1:5555")]
    discovery: String,
    /// The manager's management endpoint.
    #[arg(long, default_value = "tcp://127.0.0.1:6666")]
    management: String,
}

#[derive(Debug, Args)]
pub struct Load {
    /// Calls kept in flight at once.
    #[arg(long, short, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to measure.
    #[arg(long, short, default_value_t = 10.0)]
    duration: f64,
    /// Reply mechanism [default: queue for `call`, direct for `baseline`].
    #[arg(long, value_enum)]
    reply: Option<Reply>,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Reply {
    /// One exclusive reply queue per connection.
    Queue,
    /// RabbitMQ direct reply-to (amq.rabbitmq.reply-to).
    Direct,
}

impl From<Reply> for ReplyMode {
    fn from(r: Reply) -> Self {
        match r {
            Reply::Queue => ReplyMode::ExclusiveQueue,
            Reply::Direct => ReplyMode::DirectReplyTo,
        }
    }
}

#[derive(Debug, Args)]
pub struct CallBench {
    /// The method to call.
    method: String,
    /// Arguments (JSON when they parse, else strings). In a string, `{n}`
    /// becomes the call's own number (0, 1, 2, ... across all workers), so
    /// each call can write its own key.
    args: Vec<String>,
    /// After each successful call, call this method with the call's first
    /// argument and expect its last one back (a store's get after its put);
    /// another answer counts as an error with code 0.
    #[arg(long, value_name = "METHOD")]
    read_back: Option<String>,
    /// Also report this process's CPU per call (from /proc): the host's pid,
    /// when it runs on this machine.
    #[arg(long, value_name = "PID")]
    host_pid: Option<u32>,
    #[command(flatten)]
    confirms: ConfirmArgs,
    #[command(flatten)]
    load: Load,
    #[command(flatten)]
    broker: BrokerArgs,
}

#[derive(Debug, Args)]
pub struct BaselineBench {
    #[command(flatten)]
    load: Load,
    /// Prefetch of the pair's server.
    #[arg(long, default_value_t = 256)]
    prefetch: u16,
    /// The n of the fib(n) the server computes per call.
    #[arg(long, default_value_t = 10)]
    fib: u32,
    #[command(flatten)]
    broker: BrokerArgs,
}

#[derive(Debug, Args)]
pub struct PairServer {
    /// The topic exchange to declare and consume through.
    #[arg(long)]
    exchange: String,
    /// The queue to declare and consume.
    #[arg(long)]
    queue: String,
    /// Unacknowledged requests at once.
    #[arg(long, default_value_t = 256)]
    prefetch: u16,
    #[command(flatten)]
    broker: BrokerArgs,
}

pub async fn run(cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Call(b) => {
            let mut options = b.broker.client_options()?;
            if let Some(reply) = b.load.reply {
                options.reply_mode = reply.into();
            }
            b.confirms.apply(&mut options);
            let client = Arc::new(Client::connect(options).await?);
            eprintln!(
                "bench: calling through the {}",
                match client.transport() {
                    plughost_client::Transport::Broker => "broker".to_owned(),
                    plughost_client::Transport::Local => format!(
                        "local socket ({})",
                        match &client.options().local {
                            plughost_client::LocalMode::Only(p)
                            | plughost_client::LocalMode::Fallback(p) => p.display().to_string(),
                            plughost_client::LocalMode::Never => String::new(),
                        }
                    ),
                }
            );
            let args = b.args.iter().map(|a| parse_arg(a)).collect();
            let (shape, progress, bar) = start(&b.load)?;
            let host_cpu = b.host_pid.map(|pid| {
                bench::cpu::CpuClock::of(pid).ok_or_else(|| {
                    anyhow::anyhow!("--host-pid {pid}: no such process on this machine")
                })
            });
            let host_cpu = host_cpu.transpose()?;
            let report = bench::run_calls(
                Arc::clone(&client),
                &b.method,
                args,
                bench::CallPlan {
                    read_back: b.read_back.clone(),
                },
                shape,
                Arc::clone(&progress),
            )
            .await;
            client.close().await;
            let mut report = report?;
            report.server_cpu_us_per_call = host_cpu.and_then(|c| c.micros_per(report.calls()));
            finish(bar, report, &b.load)
        }
        BenchCommand::Tracker(b) => {
            let load = bench::tracker::simulate(
                &b.discovery,
                &b.management,
                b.services,
                b.connections,
                Duration::try_from_secs_f64(b.duration)?,
            )
            .await?;
            crate::outln!("{}", serde_json::to_string_pretty(&load)?);
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Baseline(b) => {
            let options = b.broker.client_options()?;
            let (shape, progress, bar) = start(&b.load)?;
            let report = bench::baseline(
                &options.url,
                &options.tls,
                b.load.reply.unwrap_or(Reply::Direct).into(),
                b.prefetch,
                b.fib,
                shape,
                Arc::clone(&progress),
            )
            .await;
            finish(bar, report?, &b.load)
        }
        BenchCommand::PairServer(b) => {
            let options = b.broker.client_options()?;
            let names = bench::PairNames {
                exchange: b.exchange,
                queue: b.queue,
            };
            bench::serve_pair(&options.url, &options.tls, &names, b.prefetch).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn start(load: &Load) -> Result<(LoadShape, Progress, tokio::task::JoinHandle<()>)> {
    let duration = Duration::try_from_secs_f64(load.duration)?;
    let shape = LoadShape {
        concurrency: load.concurrency,
        duration,
    };
    let progress = Progress::default();
    let bar = ProgressBar::new(duration.as_millis() as u64);
    bar.set_style(ProgressStyle::with_template(
        "{bar:30} {elapsed}/{duration} {msg}",
    )?);
    let ticker = {
        let progress = Arc::clone(&progress);
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                bar.set_position(started.elapsed().as_millis() as u64);
                bar.set_message(format!("{} calls", progress.load(Ordering::Relaxed)));
                if started.elapsed() >= duration {
                    bar.finish_and_clear();
                    break;
                }
            }
        })
    };
    Ok((shape, progress, ticker))
}

fn finish(bar: tokio::task::JoinHandle<()>, report: BenchReport, load: &Load) -> Result<ExitCode> {
    bar.abort();
    if load.json {
        crate::outln!("{}", serde_json::to_string_pretty(&report.summary())?);
    } else {
        crate::outln!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
