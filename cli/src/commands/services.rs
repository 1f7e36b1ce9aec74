//! `plughost services ...` and `plughost cmd-proc`: the command processor,
//! talking to a service manager's management endpoint.

use std::{
    io::{BufRead, Write},
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use plughost::{
    manifest::Manifest,
    proto::uid::Uid,
    tracker::{
        self,
        client::{ClientConfig, ManagementClient},
        curve::{ClientCurve, KeyPair},
        registry::ServiceInfo,
    },
};

/// Where the manager is and how to talk to it.
#[derive(Debug, Args)]
pub struct ManagerArgs {
    /// Take endpoints, admin token and CURVE key files from this manifest's [zeromq].
    #[arg(long, short)]
    manifest: Option<PathBuf>,
    /// The manager's discovery endpoint, where its beacon tells its address
    /// [default: the manifest's, else tcp://127.0.0.1:5555].
    #[arg(long)]
    discovery: Option<String>,
    /// The manager's management endpoint [default: the manifest's, else tcp://127.0.0.1:6666].
    #[arg(long)]
    management: Option<String>,
    /// Seconds to wait for the manager's beacon and for each answer (an
    /// old manager beacons every 5 s).
    #[arg(long, default_value_t = 6.0)]
    timeout: f64,
    /// The admin token, for stop [default: the manifest's [zeromq] admin_token].
    #[arg(long, env = "PLUGHOST_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// CURVE: this client's own certificate (public and secret key)
    /// [default: the manifest's curve_client_key_file].
    #[arg(long)]
    curve_key: Option<PathBuf>,
    /// CURVE: the manager's public certificate [default: the manifest's curve_server_key_file].
    #[arg(long)]
    curve_server_key: Option<PathBuf>,
}

impl ManagerArgs {
    fn manifest(&self) -> Result<Option<Manifest>> {
        self.manifest
            .as_deref()
            .map(Manifest::load)
            .transpose()
            .map_err(Into::into)
    }

    fn token(&self) -> Result<Option<String>> {
        match &self.token {
            Some(token) => Ok(Some(token.clone())),
            None => Ok(self.manifest()?.and_then(|m| m.zeromq.admin_token)),
        }
    }

    async fn connect(&self) -> Result<ManagementClient> {
        let manifest = self.manifest()?;
        let local = |e: String| {
            e.replace("tcp://*:", "tcp://127.0.0.1:")
                .replace("tcp://0.0.0.0:", "tcp://127.0.0.1:")
        };
        let (discovery, management) = match &manifest {
            Some(m) => (
                local(m.zeromq.discovery.clone()),
                local(m.zeromq.management.clone()),
            ),
            None => (
                "tcp://127.0.0.1:5555".to_owned(),
                "tcp://127.0.0.1:6666".to_owned(),
            ),
        };
        let discovery = self.discovery.clone().unwrap_or(discovery);
        let management = self.management.clone().unwrap_or(management);
        let mut config = ClientConfig::new(
            discovery,
            management,
            Duration::try_from_secs_f64(self.timeout)?,
        );
        config.curve = match (&self.curve_key, &self.curve_server_key, &manifest) {
            (Some(own), Some(server), _) => Some(ClientCurve::load(own, server)?),
            (None, None, Some(m)) => tracker::client_curve(&m.zeromq)?,
            (None, None, None) => None,
            _ => anyhow::bail!("CURVE needs both --curve-key and --curve-server-key"),
        };
        Ok(ManagementClient::connect(config).await?)
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
    /// Make a CURVE key pair: FILE gets the certificate with the secret key
    /// (mode 0600), FILE.pub the public one; prints the public key for the
    /// manager's allowed-keys file.
    Keygen {
        /// Where to write the certificate.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct CmdProcArgs {
    #[command(flatten)]
    manager: ManagerArgs,
}

fn print_table(services: &[ServiceInfo]) {
    crate::outln!(
        "{:<40} {:<36} {:<6} {:>11} {:<3}",
        "name",
        "uuid",
        "last",
        "heard",
        "v"
    );
    for s in services {
        let heard = std::time::Duration::try_from_secs_f64(s.age_secs)
            .map(|age| format!("{} ago", crate::human::age(age)))
            .unwrap_or_else(|_| "-".into());
        crate::outln!(
            "{:<40} {:<36} {:<6} {:>11} {:<3}",
            s.name,
            s.uuid,
            s.last_msg_type,
            heard,
            s.protocol
        );
    }
}

pub async fn run(cmd: ServicesCommand) -> Result<ExitCode> {
    match cmd {
        ServicesCommand::List { json, manager } => {
            let services = manager.connect().await?.list().await?;
            if json {
                crate::outln!("{}", serde_json::to_string_pretty(&services)?);
            } else {
                print_table(&services);
            }
        }
        ServicesCommand::Stop { uuid, manager } => {
            let uid = Uid::parse(&uuid)
                .map_err(|e| anyhow::anyhow!("{uuid:?} is not a service uuid: {e}"))?;
            let token = manager.token()?;
            let answer = manager.connect().await?.stop(uid, token.as_deref()).await?;
            let text = answer.trimmed_body().join(" ");
            if !answer.is_success() {
                eprintln!("error: {} {}: {text}", answer.code(), answer.reason());
                let code = match answer.code() {
                    404 => super::exit::NOT_FOUND,
                    _ => super::exit::FAILED,
                };
                return Ok(ExitCode::from(code));
            }
            crate::outln!("{text}");
        }
        ServicesCommand::Watch { manager } => {
            let mut client = manager.connect().await?;
            loop {
                let services = client.list().await?;
                crate::out!("\x1b[2J\x1b[H");
                print_table(&services);
                std::io::stdout().flush()?;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = tokio::signal::ctrl_c() => break,
                }
            }
        }
        ServicesCommand::Keygen { file } => keygen(&file)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn keygen(file: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let pair = KeyPair::generate()?;
    let mut secret = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot create {} (it must not exist yet)", file.display()))?;
    secret.write_all(pair.to_certificate().as_bytes())?;
    let public_file = PathBuf::from(format!("{}.pub", file.display()));
    let public = KeyPair {
        public: pair.public.clone(),
        secret: None,
    };
    std::fs::write(&public_file, public.to_certificate())
        .with_context(|| format!("cannot write {}", public_file.display()))?;
    crate::outln!("{}", pair.public);
    Ok(())
}

/// The old interactive command processor: `l` lists, `s <uuid>` stops a
/// service, `e` exits the command processor (it does not shut the manager
/// down: use a management request with the admin token for that).
pub async fn cmd_proc(args: CmdProcArgs) -> Result<ExitCode> {
    let token = args.manager.token()?;
    let mut client = args.manager.connect().await?;
    let stdin = std::io::stdin();
    crate::outln!("commands: l = list services, s <uuid> = stop a service, e = exit");
    for line in stdin.lock().lines() {
        let line = line?;
        match line.trim() {
            "l" => crate::out!("{}", client.list_text().await?),
            "e" => break,
            "" => {}
            other => match other.strip_prefix("s ").map(|u| Uid::parse(u.trim())) {
                Some(Ok(uid)) => match client.stop(uid, token.as_deref()).await {
                    Ok(answer) => crate::outln!(
                        "{} {}: {}",
                        answer.code(),
                        answer.reason(),
                        answer.trimmed_body().join(" ")
                    ),
                    Err(e) => crate::outln!("{e}"),
                },
                Some(Err(e)) => crate::outln!("not a service uuid: {e}"),
                None => crate::outln!("unknown command {other:?}: l, s <uuid> or e"),
            },
        }
        std::io::stdout().flush()?;
    }
    Ok(ExitCode::SUCCESS)
}
