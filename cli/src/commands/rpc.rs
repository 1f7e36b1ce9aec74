//! `plughost run`, `plughost find`, `plughost call`: serve and use RPC.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, Result};
use clap::Args;
use plughost::{
    host::{self, HostOptions},
    manifest::{BrokerOverrides, Manifest},
};
use plughost_client::{
    connection::check_settings, wire::Protocol, Args as CallArgsOf, Client, ClientOptions, Found,
    LocalMode, PublisherConfirms, RpcError, Transport,
};
use serde_json::Value;
use tokio::time::Instant;

use super::plugins::parse_arg;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The manifest to serve.
    #[arg(long, short, env = "PLUGHOST_MANIFEST")]
    manifest: PathBuf,
    /// Broker URL (overrides the manifest's [rabbitmq] url or urls); several,
    /// separated by commas, are one cluster's nodes.
    #[arg(long, env = "PLUGHOST_AMQP_URL")]
    amqp: Option<String>,
}

/// Where a caller finds the broker and which exchanges to use.
#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Broker URL [default: the manifest's, else amqp://guest:guest@127.0.0.1:5672/%2f];
    /// several, separated by commas, are one cluster's nodes, tried in order.
    #[arg(long, env = "PLUGHOST_AMQP_URL")]
    amqp: Option<String>,
    /// Take the broker URL and exchange names from this manifest.
    #[arg(long, short)]
    manifest: Option<PathBuf>,
    /// RPC exchange (topic) [default: the manifest's, else rpc_exchange].
    #[arg(long)]
    rpc_exchange: Option<String>,
    /// Name-service exchange (fanout) [default: the manifest's, else rpc_ns_exchange].
    #[arg(long)]
    ns_exchange: Option<String>,
    /// CA certificate (PEM) to trust for amqps:// besides the system's [default: the manifest's ca_file].
    #[arg(long, env = "PLUGHOST_AMQP_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Client certificate (PEM) to present over amqps:// [default: the manifest's client_cert].
    #[arg(long, env = "PLUGHOST_AMQP_CLIENT_CERT", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert [default: the manifest's client_key].
    #[arg(long, env = "PLUGHOST_AMQP_CLIENT_KEY", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// Use the host on this machine's local socket, not the broker. Without
    /// it, the local socket is used only when no broker listens at the URL.
    #[arg(long)]
    local: bool,
    /// The local socket [default: the manifest's [local] socket, else
    /// $XDG_RUNTIME_DIR/plughost/local.sock or /tmp/plughost-<uid>/local.sock].
    #[arg(long, env = "PLUGHOST_LOCAL_SOCKET", value_name = "PATH")]
    local_socket: Option<PathBuf>,
}

impl BrokerArgs {
    /// Client options from the flags, the manifest and the defaults, by the
    /// library's one precedence rule ([`BrokerOverrides::resolve`]).
    pub fn client_options(&self) -> Result<ClientOptions> {
        let manifest = self.manifest.as_deref().map(Manifest::load).transpose()?;
        let overrides = BrokerOverrides {
            url: self.amqp.clone(),
            rpc_exchange: self.rpc_exchange.clone(),
            ns_exchange: self.ns_exchange.clone(),
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            local_socket: self.local_socket.clone(),
        };
        let settings = overrides.resolve(manifest.as_ref());
        let mut options = settings.client_options();
        if self.local {
            options.local = LocalMode::Only(settings.local_socket);
        }
        Ok(options)
    }
}

/// Whether a caller publishes with publisher confirms, over the client's
/// default (on only with several broker URLs; `docs/client.md`).
#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// Publish with publisher confirms (the default only with several broker
    /// URLs: a cluster). A request the broker takes but cannot deliver then
    /// fails at once instead of waiting out its deadline; set it when one
    /// address (a load balancer) leads to a cluster.
    #[arg(long, conflicts_with = "no_confirms")]
    confirms: bool,
    /// Publish without publisher confirms, even with several broker URLs.
    #[arg(long)]
    no_confirms: bool,
}

impl ConfirmArgs {
    /// Sets `options.publisher_confirms` when a flag asks for it.
    pub fn apply(&self, options: &mut ClientOptions) {
        if self.confirms {
            options.publisher_confirms = PublisherConfirms::On;
        } else if self.no_confirms {
            options.publisher_confirms = PublisherConfirms::Off;
        }
    }
}

#[derive(Debug, Args)]
pub struct FindArgs {
    /// The method to look up: a bare name (fibo) or a qualified one (math.fibo).
    method: String,
    /// Seconds to wait for an answer (connecting included).
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// List every name service's answer (route, qualified name, version, host, protocol), ambiguous or not.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    broker: BrokerArgs,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The method to describe: a bare name (fibo) or a qualified one (math.fibo).
    method: String,
    /// Seconds to wait for an answer (connecting included).
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Print the whole answer as JSON (host, plugin, version, route, signature).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    broker: BrokerArgs,
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// The method to call: a bare name (fibo) or a qualified one (math.fibo).
    method: String,
    /// Arguments: each is parsed as JSON when it parses (10, true, "x", [1]), else taken as a string.
    #[arg(conflicts_with = "named")]
    args: Vec<String>,
    /// Named arguments as one JSON object, e.g. '{"name":"ada"}' (trailing optional parameters may be left out).
    #[arg(long)]
    named: Option<String>,
    /// Seconds the whole call may take: connecting, finding, publishing and the reply.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Print the whole v2 reply as JSON ({"result": ...} or {"error": {...}}).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    confirms: ConfirmArgs,
    #[command(flatten)]
    broker: BrokerArgs,
}

pub async fn run(args: RunArgs) -> Result<ExitCode> {
    let manifest = Manifest::load(&args.manifest)?;
    let options = HostOptions {
        amqp_url: args.amqp,
    };
    // A URL or TLS file that can never work fails the start, not the reconnect loop.
    let broker = host::broker_settings(&options, &manifest);
    for url in std::iter::once(&broker.url).chain(&broker.fallback_urls) {
        check_settings(url, &broker.tls)?;
    }
    host::run(&manifest, &options, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

fn seconds(s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s).context("timeout must be a positive number of seconds")
}

/// Connects a client whose connect counts against `timeout` seconds;
/// returns it and the deadline that covers the rest of the command.
async fn connect_within(
    broker: &BrokerArgs,
    timeout: f64,
) -> Result<Result<(Client, Instant), RpcError>> {
    let timeout = seconds(timeout)?;
    let deadline = Instant::now() + timeout;
    let mut options = broker.client_options()?;
    options.connect_timeout = timeout;
    Ok(Client::connect(options)
        .await
        .map(|client| (client, deadline)))
}

pub async fn find(args: FindArgs) -> Result<ExitCode> {
    let (client, deadline) = match connect_within(&args.broker, args.timeout).await? {
        Ok(connected) => connected,
        Err(e) => return report(e),
    };
    say_transport(&client);
    let left = deadline.saturating_duration_since(Instant::now());
    if args.all {
        let found = client.find_all(&args.method, left).await;
        client.close().await;
        return match found {
            Ok(answers) => {
                for f in &answers {
                    crate::outln!("{}", answer_line(f));
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => report(e),
        };
    }
    let found = client.resolve(&args.method, left).await;
    client.close().await;
    match found.and_then(|found| match found.reply.route {
        Some(route) => Ok((route, found.protocol)),
        None => Err(RpcError::MethodNotFound {
            method: args.method.clone(),
        }),
    }) {
        Ok((route, protocol)) => {
            crate::outln!("{route}");
            if protocol == Protocol::V1 {
                eprintln!("(answered by a v1 name service: the old text protocol)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => report(e),
    }
}

/// One line of `find --all`: route, qualified name and version, host, protocol.
fn answer_line(f: &Found) -> String {
    let r = &f.reply;
    let protocol = match f.protocol {
        Protocol::V1 => "v1",
        Protocol::V2 => "v2",
    };
    let name = r.qualified().unwrap_or_else(|| r.method.clone());
    let version = r.version.as_deref().unwrap_or("-");
    let route = r.route.as_deref().unwrap_or("(not here)");
    format!("{route}\t{name}\t{version}\t{}\t{protocol}", r.host)
}

/// `plughost describe`: a method's signature, from the name service of a
/// host that serves it (a v2 `describe` request).
pub async fn describe(args: DescribeArgs) -> Result<ExitCode> {
    let (client, deadline) = match connect_within(&args.broker, args.timeout).await? {
        Ok(connected) => connected,
        Err(e) => return report(e),
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let found = client.describe(&args.method, left).await;
    client.close().await;
    let found = match found {
        Ok(found) => found,
        Err(e) => return report(e),
    };
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&found.reply)?);
        return Ok(ExitCode::SUCCESS);
    }
    let r = &found.reply;
    if let Some(signature) = &r.signature {
        let name = r.qualified().unwrap_or_else(|| r.method.clone());
        crate::outln!("{}", signature.render(&name));
        for p in &signature.params {
            let optional = if p.optional { " (optional)" } else { "" };
            crate::outln!("  {}{optional}: {}", p.name, p.schema);
        }
        crate::outln!("  result: {}", signature.result);
    }
    Ok(ExitCode::SUCCESS)
}

/// One deadline covers connect, find, publish and the reply; the
/// connection is closed with `connection.close` before the process exits.
pub async fn call(args: CallArgs) -> Result<ExitCode> {
    let timeout = seconds(args.timeout)?;
    let deadline = Instant::now() + timeout;
    let mut options = args.broker.client_options()?;
    options.connect_timeout = timeout;
    args.confirms.apply(&mut options);
    let call_args: Vec<_> = args.args.iter().map(|a| parse_arg(a)).collect();
    let named = match args.named.as_deref().map(serde_json::from_str::<Value>) {
        None => None,
        Some(Ok(Value::Object(named))) => Some(named),
        Some(_) => anyhow::bail!("--named must be a JSON object, e.g. '{{\"name\":\"ada\"}}'"),
    };
    let call = match &named {
        Some(named) => CallArgsOf::Named(named),
        None => CallArgsOf::Positional(&call_args),
    };
    let mut transport = None;
    let result = match Client::connect(options).await {
        Ok(client) => {
            if !args.json {
                say_transport(&client);
            }
            transport = Some(client.transport());
            let result = client.call_answer(&args.method, call, deadline).await;
            client.close().await;
            result.map(|answer| {
                if answer.protocol == Protocol::V1 {
                    eprintln!(
                        "(answered by a v1 service on route {}: the old text protocol)",
                        answer.route
                    );
                }
                answer.value
            })
        }
        Err(e) => Err(e),
    };
    let transport = transport.map(|t| t.to_string());
    match (result, args.json) {
        (Ok(value), false) => crate::outln!("{value}"),
        (Ok(value), true) => crate::outln!(
            "{}",
            serde_json::json!({ "result": value, "transport": transport })
        ),
        (Err(e), true) => {
            let mut error = serde_json::json!({ "code": e.code(), "message": e.to_string() });
            if let RpcError::Remote {
                help: Some(help), ..
            } = &e
            {
                error["help"] = help.clone().into();
            }
            crate::outln!(
                "{}",
                serde_json::json!({ "error": error, "transport": transport })
            );
            return Ok(super::exit::for_rpc(&e));
        }
        (Err(e), false) => return report(e),
    }
    Ok(ExitCode::SUCCESS)
}

/// Says on stderr when the answer comes from a host's local socket rather
/// than the broker (stdout stays the result alone, for scripts).
pub fn say_transport(client: &Client) {
    if client.transport() == Transport::Local {
        if let LocalMode::Only(socket) | LocalMode::Fallback(socket) = &client.options().local {
            eprintln!("note: answered by the local host on {}", socket.display());
        }
    }
}

/// Prints an RPC failure for a person (the message, its code, the
/// method's help when it gave one) and picks the exit code for its kind.
pub(super) fn report(e: RpcError) -> Result<ExitCode> {
    eprintln!("error: {e} [{}]", e.code());
    if let RpcError::Remote {
        help: Some(help), ..
    } = &e
    {
        eprintln!("help: {help}");
    }
    Ok(super::exit::for_rpc(&e))
}
