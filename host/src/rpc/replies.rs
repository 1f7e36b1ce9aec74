//! Where a host's replies go out, and which reply addresses it may use.
//!
//! RabbitMQ answers a bad publish by closing the whole channel: a reply to
//! an exchange that does not exist (404), to an internal one (403), or over
//! the broker's `max_message_size` (406). On a shared reply channel one such
//! reply would silence every other reply, so:
//!
//! - [`ReplyExchanges`] checks a v1 reply exchange before the request runs:
//!   the host's own RPC exchange always takes replies; any other name is
//!   looked up with a passive declare on a probe channel of its own (which
//!   the broker may close freely), and the answer is cached briefly, so the
//!   per-call cost is a hash lookup at most.
//! - [`Replies`] sends an ordinary reply (one to the default exchange, which
//!   RabbitMQ never refuses, or to the host's own RPC exchange, up to
//!   [`FAST_REPLY_MAX`] bytes) on the request's own channel, without a
//!   confirm, and the request is acknowledged after it on that channel.
//!   The broker handles one channel's frames in order, so the ack is never
//!   processed before the reply is routed: if the channel dies in between,
//!   the ack dies with it and the request is redelivered. That keeps
//!   ack-after-reply and at-least-once, without a confirm round trip per call
//!   (issue 15 measured the confirms in `docs/benchmarks.md`).
//! - Every other reply (a large one, one to another exchange, a name
//!   service's answer) goes on the shared reply channel with publisher
//!   confirms, so it counts as sent only once the broker has it (the
//!   request is acknowledged only then, and requeued for another consumer
//!   otherwise). When the broker closes that channel anyway, the publish
//!   that caused it learns why (an exchange to avoid from now on, or the
//!   broker's size limit), the others learn that their reply did not go
//!   out, and the next publish reopens the channel. Such refusals can only
//!   come from these replies, so they never cost a request channel and the
//!   other requests it holds.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, RwLock,
    },
    time::{Duration, Instant},
};

use lapin::{
    options::{BasicPublishOptions, ConfirmSelectOptions},
    types::ShortString,
    BasicProperties, Channel, Confirmation, Connection,
};
use tracing::{info, warn};

use super::{
    health::RpcHealth,
    topology::{exchange_exists, ExchangeLookup},
    writes::Writing,
};
use crate::faults::{self, Fault};

/// How long any one broker operation of the RPC roles may take before the
/// host gives up on it (a frozen broker must not hang a request forever).
pub(crate) const BROKER_OP_TIMEOUT: Duration = Duration::from_secs(5);

/// A broker operation of the RPC roles that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ChannelError {
    /// The broker refused it or the connection failed.
    #[error("{what}: {source}")]
    Broker {
        /// What was being done.
        what: &'static str,
        /// lapin's error.
        source: lapin::Error,
    },
    /// The broker did not answer in time.
    #[error("{what}: no answer from the broker within {} s", BROKER_OP_TIMEOUT.as_secs())]
    Timeout {
        /// What was being done.
        what: &'static str,
    },
    /// A route queue that exists with other arguments (406).
    #[error(transparent)]
    Mismatch(#[from] super::route_queue::RouteQueueMismatch),
    /// A queue or consumer name AMQP cannot carry.
    #[error("queue `{name}`: its name (or its consumer's) is longer than AMQP's 255 bytes; use a shorter exchange, route or host name")]
    Name {
        /// The queue name.
        name: String,
    },
}

/// Runs one broker operation with [`BROKER_OP_TIMEOUT`].
pub(crate) async fn broker_op<T>(
    what: &'static str,
    op: impl std::future::Future<Output = lapin::Result<T>>,
) -> Result<T, ChannelError> {
    match tokio::time::timeout(BROKER_OP_TIMEOUT, op).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(ChannelError::Broker { what, source }),
        Err(_) => Err(ChannelError::Timeout { what }),
    }
}

/// How a publish ended.
#[derive(Debug)]
pub(crate) enum Sent {
    /// The broker has the reply.
    Yes,
    /// The broker refused the reply for its size (its `max_message_size`).
    TooLarge {
        /// The broker's limit, in bytes.
        broker_max: usize,
    },
    /// The reply did not go out.
    No {
        /// Why.
        reason: String,
        /// The exchange the broker refused replies to, when that was why its
        /// channel closed.
        refused_exchange: Option<String>,
    },
}

/// How a reply to a request went out ([`Replies::publish_for`]).
#[derive(Debug)]
pub(crate) enum ReplyOut {
    /// Queued on the request's own channel: the request is acknowledged
    /// once its consumer sees the write end (`writes`).
    Writing(Writing),
    /// Published on the reply channel, or not at all, as [`Sent`] says.
    Sent(Sent),
}

/// The largest reply sent on the request's own channel without a confirm.
/// Far below any broker's `max_message_size` one would run (RabbitMQ's
/// default is 128 MiB), so the broker never refuses one and never closes a
/// request channel over a reply.
pub(crate) const FAST_REPLY_MAX: usize = 64 * 1024;

/// The reply channel of one session.
pub(crate) struct Replies {
    conn: Arc<Connection>,
    /// The host's RPC exchange: it always exists while the host serves.
    rpc_exchange: ShortString,
    current: RwLock<Arc<Channel>>,
    /// One repair at a time: concurrent publishers that find the channel
    /// closed wait for the same new channel.
    repair: tokio::sync::Mutex<()>,
    health: Arc<RpcHealth>,
    /// The broker's `max_message_size`, once a refusal told us (else `usize::MAX`).
    broker_max: AtomicUsize,
}

/// The name `plughost status` shows for the reply channel.
pub(crate) const REPLIES: &str = "replies";

impl Replies {
    /// Opens the reply channel.
    pub(crate) async fn open(
        conn: Arc<Connection>,
        rpc_exchange: ShortString,
        health: Arc<RpcHealth>,
    ) -> Result<Self, ChannelError> {
        let channel = Arc::new(open_channel(&conn).await?);
        health.watch(REPLIES, &channel, None);
        Ok(Self {
            conn,
            rpc_exchange,
            current: RwLock::new(channel),
            repair: tokio::sync::Mutex::new(()),
            health,
            broker_max: AtomicUsize::new(usize::MAX),
        })
    }

    /// The largest reply to publish: the configured limit, or the broker's
    /// once it refused a larger one.
    pub(crate) fn max_reply(&self, configured: usize) -> usize {
        configured.min(self.broker_max.load(Ordering::Relaxed))
    }

    fn current(&self) -> Arc<Channel> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// An open reply channel: the current one, or a new one if the broker
    /// closed it.
    pub(crate) async fn usable(&self) -> Result<Arc<Channel>, ChannelError> {
        let channel = self.current();
        if channel.status().connected() {
            return Ok(channel);
        }
        self.reopen(&channel).await
    }

    async fn reopen(&self, broken: &Arc<Channel>) -> Result<Arc<Channel>, ChannelError> {
        let _one_at_a_time = self.repair.lock().await;
        let now = self.current();
        if !Arc::ptr_eq(&now, broken) && now.status().connected() {
            return Ok(now);
        }
        let fresh = match open_channel(&self.conn).await {
            Ok(channel) => Arc::new(channel),
            Err(e) => {
                self.health.broken(REPLIES, e.to_string());
                return Err(e);
            }
        };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&fresh);
        self.health.watch(REPLIES, &fresh, None);
        if faults::note(Fault::ChannelRepaired) {
            info!("the broker closed the reply channel; reopened it");
        }
        Ok(fresh)
    }

    /// Publishes one reply to a request: on the request's own channel
    /// without a confirm when one is given and the broker cannot refuse the
    /// reply (see the module comment), else on the reply channel with a
    /// confirm. Either way the request is to be acknowledged (on its own
    /// channel) only once its reply is out: when the write this returns
    /// ends, or after [`Sent::Yes`].
    pub(crate) async fn publish_for(
        &self,
        request_channel: Option<&Arc<Channel>>,
        exchange: &ShortString,
        key: &ShortString,
        body: &[u8],
        props: BasicProperties,
    ) -> ReplyOut {
        let safe_exchange = exchange.as_str().is_empty() || *exchange == self.rpc_exchange;
        let safe_size = body.len() <= FAST_REPLY_MAX.min(self.broker_max.load(Ordering::Relaxed));
        let Some(request_channel) = request_channel.filter(|_| safe_exchange && safe_size) else {
            return ReplyOut::Sent(self.publish(exchange, key, body, props).await);
        };
        // The frames are queued now; the consumer sees the write end
        // (`writes`), and acknowledges the request then.
        let channel = Arc::clone(request_channel);
        let (exchange, key, body) = (exchange.clone(), key.clone(), body.to_vec());
        let write = async move {
            channel
                .basic_publish(exchange, key, BasicPublishOptions::default(), &body, props)
                .await
                .map(drop)
        };
        match Writing::start(write) {
            Ok(Ok(())) => {
                crate::metrics::reply_sent(false);
                ReplyOut::Sent(Sent::Yes)
            }
            Ok(Err(e)) => ReplyOut::Sent(Sent::No {
                reason: format!("the request's channel: {e}"),
                refused_exchange: None,
            }),
            Err(writing) => {
                crate::metrics::reply_sent(false);
                ReplyOut::Writing(writing)
            }
        }
    }

    /// Publishes one reply on the reply channel and waits for the broker's
    /// confirm.
    pub(crate) async fn publish(
        &self,
        exchange: &ShortString,
        key: &ShortString,
        body: &[u8],
        props: BasicProperties,
    ) -> Sent {
        let channel = match self.usable().await {
            Ok(channel) => channel,
            Err(e) => {
                return Sent::No {
                    reason: e.to_string(),
                    refused_exchange: None,
                }
            }
        };
        let confirmed = async {
            channel
                .basic_publish(
                    exchange.clone(),
                    key.clone(),
                    BasicPublishOptions::default(),
                    body,
                    props,
                )
                .await?
                .await
        };
        match broker_op("publish a reply", confirmed).await {
            Ok(Confirmation::Ack(_) | Confirmation::NotRequested) => {
                crate::metrics::reply_sent(true);
                Sent::Yes
            }
            Ok(Confirmation::Nack(_)) => Sent::No {
                reason: "the broker did not take it (nack)".into(),
                refused_exchange: None,
            },
            Err(ChannelError::Broker { source, .. }) => self.refused(&source, body.len()),
            Err(e) => Sent::No {
                reason: e.to_string(),
                refused_exchange: None,
            },
        }
    }

    /// Reads why the broker closed the channel under a publish.
    fn refused(&self, error: &lapin::Error, size: usize) -> Sent {
        let text = match error.kind() {
            lapin::ErrorKind::ProtocolError(amqp) => amqp.get_message().as_str(),
            _ => "",
        };
        if let Some(broker_max) = broker_size_limit(text) {
            let before = self.broker_max.fetch_min(broker_max, Ordering::Relaxed);
            if before > broker_max {
                warn!(
                    broker_max,
                    "the broker's max_message_size is {broker_max} bytes: larger replies are answered 413 from now on"
                );
            }
            if size > broker_max {
                return Sent::TooLarge { broker_max };
            }
        }
        Sent::No {
            reason: format!("the reply channel closed under it: {error}"),
            refused_exchange: refused_exchange(text).map(str::to_owned),
        }
    }
}

async fn open_channel(conn: &Connection) -> Result<Channel, ChannelError> {
    let channel = broker_op("open the reply channel", conn.create_channel()).await?;
    broker_op(
        "enable publisher confirms on the reply channel",
        channel.confirm_select(ConfirmSelectOptions::default()),
    )
    .await?;
    Ok(channel)
}

/// The limit in RabbitMQ's size refusal: `PRECONDITION_FAILED - message
/// size 2097163 is larger than configured max size 1048576`.
fn broker_size_limit(text: &str) -> Option<usize> {
    let (_, after) = text.split_once("is larger than")?;
    let (_, limit) = after.rsplit_once("max size ")?;
    let digits: String = limit.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The exchange in RabbitMQ's refusals of a publish: `NOT_FOUND - no
/// exchange 'x' in vhost '/'`, `ACCESS_REFUSED - cannot publish to internal
/// exchange 'x' in vhost '/'`.
fn refused_exchange(text: &str) -> Option<&str> {
    let (_, after) = text.split_once("exchange '")?;
    let (name, _) = after.rsplit_once("' in vhost")?;
    Some(name)
}

/// Whether a v1 reply exchange can take replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It can.
    Usable,
    /// It cannot, and why (the request can never be answered).
    Unusable(String),
    /// The host could not find out (its own connection is in trouble).
    Unknown(String),
}

/// How long a looked-up answer is trusted.
const KNOWN_FOR: Duration = Duration::from_secs(10);
/// Answers kept at most (random names in a flood must not grow the host).
const KNOWN_MAX: usize = 4096;
/// Lookups per second at most: each costs the broker a channel, so a flood
/// of made-up names is refused rather than looked up.
const LOOKUPS_PER_SECOND: u32 = 20;

/// `amq.*` names belong to the broker; these are the ones that take
/// ordinary publishes (`amq.rabbitmq.trace` and others are internal).
const BROKER_EXCHANGES: [&str; 5] = [
    "amq.direct",
    "amq.topic",
    "amq.fanout",
    "amq.headers",
    "amq.match",
];

/// The probe channel and the lookup budget of the current second.
struct Probe {
    channel: Option<Channel>,
    second: Instant,
    lookups: u32,
}

/// Checks v1 reply exchanges (see the module comment).
pub(crate) struct ReplyExchanges {
    conn: Arc<Connection>,
    rpc: String,
    known: Mutex<HashMap<String, (ExchangeLookup, Instant)>>,
    probe: tokio::sync::Mutex<Probe>,
}

impl ReplyExchanges {
    /// Checks for one session; `rpc` is the host's own RPC exchange.
    pub(crate) fn new(conn: Arc<Connection>, rpc: String) -> Self {
        Self {
            conn,
            rpc,
            known: Mutex::new(HashMap::new()),
            probe: tokio::sync::Mutex::new(Probe {
                channel: None,
                second: Instant::now(),
                lookups: 0,
            }),
        }
    }

    /// Whether replies may be published to exchange `name`.
    pub(crate) async fn check(&self, name: &str) -> Verdict {
        if name == self.rpc {
            return Verdict::Usable;
        }
        let Ok(short) = ShortString::try_new(name) else {
            return Verdict::Unusable("an exchange name is at most 255 bytes".into());
        };
        if name.starts_with("amq.") && !BROKER_EXCHANGES.contains(&name) {
            return Verdict::Unusable(
                "amq.* exchanges are the broker's own and may be internal".into(),
            );
        }
        if let Some(known) = self.known(name) {
            return known;
        }
        let mut probe = self.probe.lock().await;
        if let Some(known) = self.known(name) {
            return known;
        }
        let now = Instant::now();
        if now.saturating_duration_since(probe.second) >= Duration::from_secs(1) {
            probe.second = now;
            probe.lookups = 0;
        }
        if probe.lookups >= LOOKUPS_PER_SECOND {
            return Verdict::Unusable(format!(
                "not known, and more than {LOOKUPS_PER_SECOND} unknown exchanges a second are not looked up"
            ));
        }
        probe.lookups += 1;
        let channel = match probe.channel.take() {
            Some(channel) if channel.status().connected() => channel,
            _ => match broker_op("open a probe channel", self.conn.create_channel()).await {
                Ok(channel) => channel,
                Err(e) => return Verdict::Unknown(e.to_string()),
            },
        };
        match broker_op(
            "look up a reply exchange",
            exchange_exists(&channel, &short),
        )
        .await
        {
            Ok(answer) => {
                if answer == ExchangeLookup::Exists {
                    // The broker closes the channel on a no; keep it on a yes.
                    probe.channel = Some(channel);
                }
                self.remember(name, answer.clone());
                verdict(&answer)
            }
            Err(e) => Verdict::Unknown(e.to_string()),
        }
    }

    /// Remembers that the broker refused replies to `name` (it closed the
    /// reply channel over one).
    pub(crate) fn refused(&self, name: &str, reason: &str) {
        self.remember(name, ExchangeLookup::Refused(reason.to_owned()));
    }

    fn known(&self, name: &str) -> Option<Verdict> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let (answer, at) = known.get(name)?;
        (at.elapsed() < KNOWN_FOR).then(|| verdict(answer))
    }

    fn remember(&self, name: &str, answer: ExchangeLookup) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= KNOWN_MAX {
            known.retain(|_, (_, at)| at.elapsed() < KNOWN_FOR);
            if known.len() >= KNOWN_MAX {
                known.clear();
            }
        }
        known.insert(name.to_owned(), (answer, Instant::now()));
    }
}

fn verdict(answer: &ExchangeLookup) -> Verdict {
    match answer {
        ExchangeLookup::Exists => Verdict::Usable,
        ExchangeLookup::Refused(reason) => Verdict::Unusable(reason.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brokers_size_refusal_names_its_limit() {
        assert_eq!(
            broker_size_limit(
                "PRECONDITION_FAILED - message size 2097163 is larger than configured max size 1048576"
            ),
            Some(1_048_576)
        );
        assert_eq!(
            broker_size_limit("PRECONDITION_FAILED - message size 9 is larger than max size 8"),
            Some(8)
        );
        assert_eq!(
            broker_size_limit("NOT_FOUND - no exchange 'x' in vhost '/'"),
            None
        );
    }

    #[test]
    fn the_brokers_exchange_refusals_name_the_exchange() {
        assert_eq!(
            refused_exchange("NOT_FOUND - no exchange 'rpc_excha' in vhost '/'"),
            Some("rpc_excha")
        );
        assert_eq!(
            refused_exchange(
                "ACCESS_REFUSED - cannot publish to internal exchange 'amq.rabbitmq.trace' in vhost 'v'"
            ),
            Some("amq.rabbitmq.trace")
        );
        assert_eq!(
            refused_exchange("PRECONDITION_FAILED - unknown delivery tag 3"),
            None
        );
    }
}
