//! `plughost services ...` and `plughost cmd-proc`: the command processor,
//! talking to a service manager's management endpoint.

use std::{
    io::{BufRead, Write},
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use anyhow::Result;
use clap::{Args, Subcommand};
use plughost::{
    manifest::Manifest,
    tracker::{client::ManagementClient, registry::ServiceInfo},
};
use plughost_proto::uid::Uid;

/// Where the manager's management endpoint is.
#[derive(Debug, Args)]
pub struct ManagerArgs {
    /// Take the endpoint from this manifest's [zeromq] management.
    #[arg(long, short)]
    manifest: Option<PathBuf>,
    /// The manager's management endpoint [default: the manifest's, else tcp://127.0.0.1:6666].
    #[arg(long)]
    management: Option<String>,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
}

impl ManagerArgs {
    async fn connect(&self) -> Result<ManagementClient> {
        let endpoint = match (&self.management, &self.manifest) {
            (Some(endpoint), _) => endpoint.clone(),
            (None, Some(path)) => Manifest::load(path)?
                .zeromq
                .management
                .replace("tcp://*:", "tcp://127.0.0.1:"),
            (None, None) => "tcp://127.0.0.1:6666".to_owned(),
        };
        Ok(
            ManagementClient::connect(&endpoint, Duration::try_from_secs_f64(self.timeout)?)
                .await?,
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum ServicesCommand {
    /// List the services the manager tracks: name, uuid, last message type, age.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        manager: ManagerArgs,
    },
    /// Ask the manager to stop a service; it says BYE and ends.
    Stop {
        /// The service's uuid (from `plughost services list`).
        uuid: String,
        #[command(flatten)]
        manager: ManagerArgs,
    },
    /// Show the service list, refreshed every second, until ctrl-c.
    Watch {
        #[command(flatten)]
        manager: ManagerArgs,
    },
}

#[derive(Debug, Args)]
pub struct CmdProcArgs {
    #[command(flatten)]
    manager: ManagerArgs,
}

fn print_table(services: &[ServiceInfo]) {
    println!(
        "{:<40} {:<36} {:<6} {:>8}",
        "name", "uuid", "last", "age (s)"
    );
    for s in services {
        println!(
            "{:<40} {:<36} {:<6} {:>8.1}",
            s.name, s.uuid, s.last_msg_type, s.age_secs
        );
    }
}

pub async fn run(cmd: ServicesCommand) -> Result<ExitCode> {
    match cmd {
        ServicesCommand::List { json, manager } => {
            let services = manager.connect().await?.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&services)?);
            } else {
                print_table(&services);
            }
        }
        ServicesCommand::Stop { uuid, manager } => {
            let uid = Uid::parse(&uuid)
                .map_err(|e| anyhow::anyhow!("{uuid:?} is not a service uuid: {e}"))?;
            let answer = manager.connect().await?.stop(uid).await?;
            let text = answer.trimmed_body().join(" ");
            if !answer.is_success() {
                eprintln!("error: {} {}: {text}", answer.code(), answer.reason());
                return Ok(ExitCode::FAILURE);
            }
            println!("{text}");
        }
        ServicesCommand::Watch { manager } => {
            let mut client = manager.connect().await?;
            loop {
                let services = client.list().await?;
                print!("\x1b[2J\x1b[H");
                print_table(&services);
                std::io::stdout().flush()?;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = tokio::signal::ctrl_c() => break,
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The old interactive command processor: `l` lists, `s <uuid>` stops a
/// service, `e` exits the command processor (it does not shut the manager
/// down: use a management request with the admin token for that).
pub async fn cmd_proc(args: CmdProcArgs) -> Result<ExitCode> {
    let mut client = args.manager.connect().await?;
    let stdin = std::io::stdin();
    println!("commands: l = list services, s <uuid> = stop a service, e = exit");
    for line in stdin.lock().lines() {
        let line = line?;
        match line.trim() {
            "l" => print!("{}", client.list_text().await?),
            "e" => break,
            "" => {}
            other => match other.strip_prefix("s ").map(|u| Uid::parse(u.trim())) {
                Some(Ok(uid)) => {
                    let answer = client.stop(uid).await?;
                    println!(
                        "{} {}: {}",
                        answer.code(),
                        answer.reason(),
                        answer.trimmed_body().join(" ")
                    );
                }
                Some(Err(e)) => println!("not a service uuid: {e}"),
                None => println!("unknown command {other:?}: l, s <uuid> or e"),
            },
        }
        std::io::stdout().flush()?;
    }
    Ok(ExitCode::SUCCESS)
}
