//! The baseline: a two-process bare-lapin request/reply pair.
//!
//! `plughost bench baseline` starts a server process (`plughost bench
//! pair-server`, this same binary) and drives it from its own process, on
//! the same broker, the way a plughost caller drives a host:
//!
//! - the server consumes one queue bound to a topic exchange (so the broker
//!   routes the request as it routes a plughost call), with prefetch 256,
//!   computes fib(n) with the same loop as the math plugin, publishes the
//!   answer to `reply_to` by correlation id and acknowledges after it;
//! - the client keeps C calls in flight over one channel, with direct
//!   reply-to (or an exclusive queue) and no publisher confirms.
//!
//! There is no name service, no JSON, no plugin, no metrics: it is the
//! limit plughost's own request/reply path is held to (issue 15). Two
//! processes, because one process would share the lapin I/O thread and the
//! wake-ups between caller and server, which flatters the ratio.
//!
//! The run reports the server process's CPU per call from `/proc`, to set
//! beside a host's (`plughost bench call --host-pid`).

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
};

use futures_util::StreamExt;
use lapin::{
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::FieldTable,
    BasicProperties, Channel, ExchangeKind,
};
use tokio::sync::oneshot;

use super::{closed_loop, cpu::CpuClock, BenchReport, LoadShape, Progress};
use plughost_client::{
    connection::{connect, redact, TlsFiles, DEFAULT_CONNECT_TIMEOUT},
    ReplyMode, RpcError,
};

/// The routing key the pair's requests travel under.
const ROUTE: &str = "pair.fib";

/// What the server process prints once it consumes (the client waits for it).
const READY: &str = "pair-server ready";

/// Where the pair meets: a topic exchange and the server's queue.
#[derive(Debug, Clone)]
pub struct PairNames {
    /// The topic exchange requests are published to.
    pub exchange: String,
    /// The queue the server consumes.
    pub queue: String,
}

impl PairNames {
    /// Fresh names, so runs never share a queue.
    pub fn fresh() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            exchange: format!("plughost.bench.{id}"),
            queue: format!("plughost.bench.{id}.fib"),
        }
    }
}

fn unavailable(url: &str) -> impl Fn(lapin::Error) -> RpcError + '_ {
    move |e| RpcError::BrokerUnavailable {
        url: redact(url),
        reason: e.to_string(),
    }
}

/// F(n) with the math plugin's loop (wrapping: the pair never refuses).
fn fib(n: u32) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a.wrapping_add(b));
    }
    a
}

/// The first decimal number in a request body (`[10]` or `10`).
fn first_number(body: &[u8]) -> u32 {
    body.iter()
        .skip_while(|b| !b.is_ascii_digit())
        .take_while(|b| b.is_ascii_digit())
        .fold(0u32, |n, d| {
            n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
        })
}

/// The pair's server process: declares `names`, consumes with `prefetch`,
/// and answers every request until the connection ends. Prints [`READY`]
/// on stdout once it consumes.
pub async fn serve_pair(
    url: &str,
    tls: &TlsFiles,
    names: &PairNames,
    prefetch: u16,
) -> Result<(), RpcError> {
    let fail = unavailable(url);
    let conn = connect(
        url,
        tls,
        "plughost bench pair-server",
        DEFAULT_CONNECT_TIMEOUT,
    )
    .await?;
    let ch = conn.create_channel().await.map_err(&fail)?;
    ch.exchange_declare(
        names.exchange.as_str().into(),
        ExchangeKind::Topic,
        Default::default(),
        FieldTable::default(),
    )
    .await
    .map_err(&fail)?;
    let options = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    ch.queue_declare(names.queue.as_str().into(), options, FieldTable::default())
        .await
        .map_err(&fail)?;
    ch.queue_bind(
        names.queue.as_str().into(),
        names.exchange.as_str().into(),
        ROUTE.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(&fail)?;
    ch.basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(&fail)?;
    let mut requests = ch
        .basic_consume(
            names.queue.as_str().into(),
            "pair-server".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(&fail)?;
    crate::outln!("{READY}");
    while let Some(Ok(delivery)) = requests.next().await {
        let ch = ch.clone();
        tokio::spawn(async move {
            let props = &delivery.properties;
            if let Some(reply_to) = props.reply_to() {
                let answer = fib(first_number(&delivery.data)).to_string();
                let reply_props = BasicProperties::default()
                    .with_correlation_id(props.correlation_id().clone().unwrap_or_default());
                let _ = ch
                    .basic_publish(
                        "".into(),
                        reply_to.clone(),
                        BasicPublishOptions::default(),
                        answer.as_bytes(),
                        reply_props,
                    )
                    .await;
            }
            let _ = delivery.ack(BasicAckOptions::default()).await;
        });
    }
    Ok(())
}

/// The server child, killed (and its queue with it) when dropped.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `plughost bench pair-server` and waits until it consumes.
fn start_server(
    url: &str,
    tls: &TlsFiles,
    names: &PairNames,
    prefetch: u16,
) -> Result<ServerProcess, RpcError> {
    let failed = |reason: String| RpcError::BrokerUnavailable {
        url: redact(url),
        reason: format!("the pair's server process: {reason}"),
    };
    let exe = std::env::current_exe().map_err(|e| failed(format!("cannot find plughost: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.args(["bench", "pair-server", "--amqp", url])
        .args(["--exchange", &names.exchange, "--queue", &names.queue])
        .args(["--prefetch", &prefetch.to_string()]);
    for (flag, file) in [
        ("--ca-file", &tls.ca_file),
        ("--client-cert", &tls.client_cert),
        ("--client-key", &tls.client_key),
    ] {
        if let Some(file) = file {
            cmd.arg(flag).arg(file);
        }
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| failed(format!("cannot start it: {e}")))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let server = ServerProcess(child);
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .map_err(|e| failed(format!("cannot read it: {e}")))?;
    if first.trim() != READY {
        return Err(failed(
            "it ended before it consumed (its error is above)".into(),
        ));
    }
    Ok(server)
}

/// Runs the pair against the broker at `url` (connected the way every
/// plughost connection is, so `amqps://` works here too).
pub async fn baseline(
    url: &str,
    tls: &TlsFiles,
    reply_mode: ReplyMode,
    prefetch: u16,
    fib_n: u32,
    shape: LoadShape,
    progress: Progress,
) -> Result<BenchReport, RpcError> {
    let fail = unavailable(url);
    let names = PairNames::fresh();
    let server = start_server(url, tls, &names, prefetch)?;
    let client = connect(
        url,
        tls,
        "plughost bench pair-client",
        DEFAULT_CONNECT_TIMEOUT,
    )
    .await?;
    let ch = client.create_channel().await.map_err(&fail)?;
    let reply_to = match reply_mode {
        ReplyMode::DirectReplyTo => "amq.rabbitmq.reply-to".to_owned(),
        ReplyMode::ExclusiveQueue => exclusive_queue(&ch).await.map_err(&fail)?,
    };
    let pending: Arc<Mutex<HashMap<String, oneshot::Sender<()>>>> = Arc::default();
    let mut reply_stream = ch
        .basic_consume(
            reply_to.as_str().into(),
            "replies".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(&fail)?;
    let reader = {
        let pending = Arc::clone(&pending);
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = reply_stream.next().await {
                if let Some(id) = delivery.properties.correlation_id() {
                    let tx = pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(id.as_str());
                    if let Some(tx) = tx {
                        let _ = tx.send(());
                    }
                }
            }
        })
    };

    let body = format!("[{fib_n}]").into_bytes();
    let cpu = CpuClock::of(server.0.id());
    let mut report = closed_loop(shape, progress, {
        let call = Arc::new((ch.clone(), names.exchange.clone(), reply_to, body));
        move || {
            let (call, pending) = (Arc::clone(&call), Arc::clone(&pending));
            async move {
                let (ch, exchange, reply_to, body) = &*call;
                let id = uuid::Uuid::new_v4().to_string();
                let (tx, rx) = oneshot::channel();
                pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id.clone(), tx);
                let props = BasicProperties::default()
                    .with_correlation_id(id.as_str().into())
                    .with_reply_to(reply_to.as_str().into());
                ch.basic_publish(
                    exchange.as_str().into(),
                    ROUTE.into(),
                    BasicPublishOptions::default(),
                    body,
                    props,
                )
                .await
                .map_err(|_| 503u16)?;
                rx.await.map_err(|_| 503u16)
            }
        }
    })
    .await;
    report.server_cpu_us_per_call = cpu.and_then(|c| c.micros_per(report.calls()));

    reader.abort();
    let _ = ch
        .exchange_delete(
            names.exchange.as_str().into(),
            ExchangeDeleteOptions::default(),
        )
        .await;
    let _ = client.close(200, "bench done".into()).await;
    drop(server);
    Ok(report)
}

/// A server-named queue that lives as long as the connection.
async fn exclusive_queue(channel: &Channel) -> lapin::Result<String> {
    let options = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    let queue = channel
        .queue_declare("".into(), options, FieldTable::default())
        .await?;
    Ok(queue.name().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pair_computes_what_the_math_plugin_computes() {
        assert_eq!(fib(0), 0);
        assert_eq!(fib(1), 1);
        assert_eq!(fib(10), 55);
        assert_eq!(fib(20), 6765);
        assert_eq!(fib(93), 12_200_160_415_121_876_738);
    }

    #[test]
    fn the_request_body_carries_n() {
        assert_eq!(first_number(b"[10]"), 10);
        assert_eq!(first_number(b"20"), 20);
        assert_eq!(first_number(b"[]"), 0);
    }
}
