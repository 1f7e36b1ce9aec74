//! The host's RPC roles over RabbitMQ: the name service and the RPC service.
//!
//! [`serve`] owns the broker connection and runs one [`Session`] on it at a
//! time. A session declares the topology and holds a reply channel, the
//! name-service consumer and one consumer per served route, each on a
//! channel of its own, and then watches the connection (its events, and its
//! consumers' own reports), the registry (on change it starts and stops
//! route consumers) and the shutdown signal (on which it stops consuming,
//! lets in-flight calls finish and closes the connection).
//!
//! Faults are contained where they happen:
//!
//! - The broker closing one channel, or cancelling one consumer (an operator
//!   deleted its queue), costs that channel only: the session hears of it at
//!   once and reopens just it (the queue declared and consumed again, with
//!   backoff while that fails), and `plughost status` shows each channel's
//!   state meanwhile ([`super::health`]).
//! - Only a lost connection ends a session, and the session is torn down
//!   (consumers stopped, tasks aborted, connection closed) before the next
//!   one starts: a host never holds two.
//! - A request is acknowledged once its reply is out (written on its own
//!   channel ahead of the acknowledgement, or confirmed by the broker; see
//!   `replies`), several in one frame where none still running is covered
//!   (`acks`), requeued for another consumer when the host's own channel failed it,
//!   and dropped (acknowledged, never run) when it can never be answered: no
//!   reply address, or a v1 reply exchange that cannot take replies
//!   (checked before the call runs, see `replies`).
//! - Every request and reply is held to `[limits]`: an oversized request is
//!   answered 413 without being parsed, an oversized result becomes a 413
//!   error reply (also when the broker's own `max_message_size` refuses it),
//!   and a find for an over-long method name is ignored.
//!
//! Every refusal is counted and logged with a rate limit ([`crate::faults`]).

use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::{stream::FuturesUnordered, FutureExt, StreamExt};
use lapin::{
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
        BasicQosOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
    BasicProperties, Channel, Connection,
};
use plughost_plugin_api::codes;
use tokio::{
    sync::{mpsc, watch},
    task::{JoinHandle, JoinSet},
};
use tracing::{debug, info, warn};

use plughost_client::urls::BrokerUrls;

use super::{
    acks::AckWindow,
    collisions::{self, Collisions},
    connection::{redact, Backoff, TlsFiles, DEFAULT_CONNECT_TIMEOUT},
    dispatch::{dispatch, Origin},
    health::RpcHealth,
    replies::{broker_op, ChannelError, Replies, ReplyExchanges, ReplyOut, Sent, Verdict},
    route_queue::RouteQueueMismatch,
    topology::{
        declare_exchanges, declare_name_service_queue, declare_route_queue,
        name_service_queue_name, route_queue_name, Exchanges, RouteQueueKind,
    },
    wire::{v1, v2, Protocol},
    writes::{Writes, Writing, Written, CHECK_AFTER},
};
use crate::{
    faults::{self, Fault},
    manifest::Limits,
    plugins::Registry,
    shutdown::Shutdown,
};

/// What the RPC roles need to know.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// Broker URL.
    pub url: String,
    /// A cluster's other nodes, tried in order when `url` does not answer
    /// or is lost; the host starts its walk at a place of its own (see
    /// [`plughost_client::urls`]), so hosts spread over the nodes.
    pub fallback_urls: Vec<String>,
    /// How route queues are declared (`[rabbitmq] route_queues`).
    pub route_queues: RouteQueueKind,
    /// Exchange names.
    pub exchanges: Exchanges,
    /// This host's name (in v2 find replies and the connection name).
    pub host_name: String,
    /// Unacknowledged requests per route consumer (and for the name service).
    pub prefetch: u16,
    /// Answer finds.
    pub name_service: bool,
    /// Consume route queues.
    pub rpc: bool,
    /// Largest requests and replies (`[limits]`).
    pub limits: Limits,
    /// TLS files for an `amqps://` URL (`[rabbitmq] ca_file`, ...).
    pub tls: TlsFiles,
}

/// Connection state of the RPC roles, for status and tests. Per-channel
/// truth is in [`RpcHealth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerState {
    /// Not connected (starting, or reconnecting after a loss).
    Disconnected,
    /// Connected, topology declared, consumers started.
    Serving,
}

/// How long closing a connection may take (a frozen broker never answers).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the RPC roles until `shutdown`, reconnecting whenever the broker
/// connection is lost. `registry` is the host's current plugin set;
/// `served` is set to each registry once its routes are consumed, so the
/// name service never hands out a route before its queue is bound (and a
/// reload can wait for its change to be live). `health` is told about
/// every channel, for `plughost status`.
pub async fn serve(
    config: RpcConfig,
    registry: watch::Receiver<Arc<Registry>>,
    served: watch::Sender<Arc<Registry>>,
    state: watch::Sender<BrokerState>,
    health: Arc<RpcHealth>,
    mut shutdown: Shutdown,
) {
    let served = Arc::new(served);
    let mut backoff = Backoff::default();
    let conn_name = format!(
        "plughost host {} ({})",
        config.host_name,
        std::process::id()
    );
    let mut urls =
        BrokerUrls::new(config.url.as_str(), &config.fallback_urls).spread(&config.host_name);
    let all = urls.redacted();
    while !shutdown.is_fired() {
        let connected = urls
            .connect(&config.tls, &conn_name, DEFAULT_CONNECT_TIMEOUT)
            .await;
        let (session, index) = match connected {
            Ok((conn, index)) => (
                Session::start(
                    conn,
                    &config,
                    registry.clone(),
                    Arc::clone(&served),
                    Arc::clone(&health),
                )
                .await
                .map_err(|e| e.to_string()),
                index,
            ),
            Err(e) => (Err(e.to_string()), 0),
        };
        let mut session = match session {
            Ok(s) => s,
            Err(reason) => {
                let delay = backoff.next_delay();
                warn!(broker = %all, %reason, retry_in_ms = delay.as_millis() as u64, "RPC roles cannot reach the broker; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => continue,
                    _ = shutdown.wait() => break,
                }
            }
        };
        let url = redact(urls.get(index));
        backoff.reset();
        info!(broker = %url, consumers = session.consumers.len(), "RPC roles serving");
        let _ = state.send(BrokerState::Serving);
        let lost = session.run(registry.clone(), shutdown.clone()).await;
        let _ = state.send(BrokerState::Disconnected);
        match lost {
            Some(reason) => {
                warn!(broker = %url, %reason, "broker connection lost; closing what is left of it, then reconnecting (this node last)");
                crate::metrics::broker_reconnect();
                urls.lost(index);
                session.teardown().await;
            }
            None => break,
        }
    }
    health.disconnected();
    info!("RPC roles stopped");
}

/// What a consumer consumes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Role {
    /// The host's name-service queue (finds).
    NameService,
    /// A route's shared queue (calls).
    Route(String),
}

impl Role {
    /// The channel's name in `plughost status`.
    fn channel_name(&self) -> String {
        match self {
            Role::NameService => "name-service".to_owned(),
            Role::Route(route) => format!("route {route}"),
        }
    }
}

/// A consumer, or why there is none yet.
enum Slot {
    Consuming(QueueConsumer),
    /// Could not consume; tried again at `retry_at`.
    Broken {
        retry_at: Instant,
        backoff: Backoff,
    },
}

/// A consumer's report that the broker stopped delivering to it.
struct Ended {
    tag: String,
    /// The channel error, if that was why (else a cancel).
    reason: Option<String>,
}

/// Everything built on one connection.
struct Session {
    conn: Arc<Connection>,
    ctx: Arc<CallContext>,
    config: RpcConfig,
    /// Names this session's name-service queue.
    id: uuid::Uuid,
    consumers: HashMap<Role, Slot>,
    /// Consumers the broker stopped, finishing the requests they hold.
    retired: JoinSet<()>,
    ended_tx: mpsc::UnboundedSender<Ended>,
    ended_rx: mpsc::UnboundedReceiver<Ended>,
    /// The running collision check of the newest served registry.
    collision_check: Option<JoinHandle<()>>,
    /// The client connection the collision checks share.
    checker: collisions::Checker,
}

/// What a request handler needs: where to reply and which plugins to use.
struct CallContext {
    replies: Replies,
    reply_exchanges: ReplyExchanges,
    /// The RPC exchange, where malformed v1 calls are answered.
    rpc_exchange: ShortString,
    host_name: String,
    limits: Limits,
    health: Arc<RpcHealth>,
    /// The newest plugin set: calls run on it.
    registry: watch::Receiver<Arc<Registry>>,
    /// The newest plugin set whose routes are consumed: finds answer from it.
    served: Arc<watch::Sender<Arc<Registry>>>,
    /// Other hosts' plugins under this host's bare names.
    collisions: Arc<Collisions>,
}

/// A consumer on one queue, on a channel of its own.
struct QueueConsumer {
    channel: Channel,
    queue: String,
    tag: String,
    task: JoinHandle<()>,
}

impl Session {
    /// Declares the topology and starts every consumer; on failure the
    /// connection is closed again (nothing of it is left behind).
    async fn start(
        conn: Connection,
        config: &RpcConfig,
        registry: watch::Receiver<Arc<Registry>>,
        served: Arc<watch::Sender<Arc<Registry>>>,
        health: Arc<RpcHealth>,
    ) -> Result<Self, ChannelError> {
        let conn = Arc::new(conn);
        health.connected(conn.status().clone());
        let ctx = match Self::topology(&conn, config, registry.clone(), served, &health).await {
            Ok(ctx) => Arc::new(ctx),
            Err(e) => {
                close_connection(&conn, "plughost host could not set up").await;
                health.disconnected();
                return Err(e);
            }
        };
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        let mut session = Self {
            conn,
            ctx,
            config: config.clone(),
            id: uuid::Uuid::new_v4(),
            consumers: HashMap::new(),
            retired: JoinSet::new(),
            ended_tx,
            ended_rx,
            collision_check: None,
            checker: Arc::default(),
        };
        if config.name_service {
            session.start_consumer(Role::NameService).await;
        }
        let current = registry.borrow().clone();
        session.sync_routes(&current).await;
        Ok(session)
    }

    /// Declares the exchanges and opens the reply channel.
    async fn topology(
        conn: &Arc<Connection>,
        config: &RpcConfig,
        registry: watch::Receiver<Arc<Registry>>,
        served: Arc<watch::Sender<Arc<Registry>>>,
        health: &Arc<RpcHealth>,
    ) -> Result<CallContext, ChannelError> {
        let setup = broker_op("open a channel", conn.create_channel()).await?;
        broker_op(
            "declare the exchanges",
            declare_exchanges(&setup, &config.exchanges),
        )
        .await?;
        let _ = broker_op("close the set-up channel", setup.close(200, "done".into())).await;
        // The manifest keeps exchange names within 255 bytes.
        let rpc_exchange = ShortString::try_new(config.exchanges.rpc.as_str()).unwrap_or_default();
        let replies =
            Replies::open(Arc::clone(conn), rpc_exchange.clone(), Arc::clone(health)).await?;
        Ok(CallContext {
            replies,
            reply_exchanges: ReplyExchanges::new(Arc::clone(conn), config.exchanges.rpc.clone()),
            rpc_exchange,
            host_name: config.host_name.clone(),
            limits: config.limits,
            health: Arc::clone(health),
            registry,
            served,
            collisions: Arc::default(),
        })
    }

    /// Serves until the connection is lost (returns why) or shutdown (None).
    async fn run(
        &mut self,
        mut registry: watch::Receiver<Arc<Registry>>,
        mut shutdown: Shutdown,
    ) -> Option<String> {
        let mut events = self.conn.events_listener();
        let mut check = tokio::time::interval(Duration::from_millis(500));
        loop {
            let retry = self.next_retry();
            tokio::select! {
                event = events.next() => match event {
                    Some(lapin::Event::Error(e)) => {
                        if !self.conn.status().connected() {
                            return Some(e.to_string());
                        }
                        // The broker closed one channel; the connection stands.
                        debug!(error = %e, "the broker closed a channel of the RPC roles");
                        self.repair_replies().await;
                    }
                    Some(_) => {}
                    None => return Some("connection event stream ended".into()),
                },
                Some(ended) = self.ended_rx.recv() => {
                    if !self.conn.status().connected() {
                        return Some(ended.reason.unwrap_or_else(|| "connection closed".into()));
                    }
                    self.consumer_ended(ended).await;
                }
                _ = sleep_until(retry), if retry.is_some() => self.retry_broken().await,
                _ = check.tick() => {
                    if !self.conn.status().connected() {
                        return Some("connection closed".into());
                    }
                    while self.retired.try_join_next().is_some() {}
                    self.repair_replies().await;
                }
                changed = registry.changed() => {
                    if changed.is_err() {
                        self.stop().await;
                        return None;
                    }
                    let current = registry.borrow_and_update().clone();
                    self.sync_routes(&current).await;
                }
                _ = shutdown.wait() => {
                    self.stop().await;
                    return None;
                }
            }
        }
    }

    /// Starts consumers for routes the registry serves and stops the others.
    async fn sync_routes(&mut self, registry: &Arc<Registry>) {
        let wanted: Vec<String> = if self.config.rpc {
            let mut routes: Vec<String> = registry.methods().map(|m| m.route.clone()).collect();
            routes.sort();
            routes.dedup();
            routes
        } else {
            Vec::new()
        };
        // New routes first, so a method that moves route is never unserved.
        for route in &wanted {
            let role = Role::Route(route.clone());
            if !self.consumers.contains_key(&role) {
                self.start_consumer(role).await;
            }
        }
        self.ctx.served.send_replace(Arc::clone(registry));
        self.check_collisions(registry);
        let gone: Vec<Role> = self
            .consumers
            .keys()
            .filter(|role| matches!(role, Role::Route(r) if !wanted.contains(r)))
            .cloned()
            .collect();
        for role in gone {
            self.ctx.health.forget(&role.channel_name());
            if let Some(Slot::Consuming(consumer)) = self.consumers.remove(&role) {
                consumer
                    .stop(self.config.route_queues.conditional_delete())
                    .await;
                info!(channel = %role.channel_name(), "stopped serving route");
            }
        }
    }

    /// Starts this host's collision check of `registry` (at start and after
    /// each reload), replacing one still running for an older registry.
    fn check_collisions(&mut self, registry: &Arc<Registry>) {
        if let Some(old) = self.collision_check.take() {
            old.abort();
        }
        if !self.config.name_service || registry.methods().next().is_none() {
            return;
        }
        self.collision_check = Some(tokio::spawn(collisions::check(
            self.config.clone(),
            registry,
            Arc::clone(&self.ctx.collisions),
            Arc::clone(&self.checker),
        )));
    }

    /// Starts consuming for `role`, or records it as broken (retried with backoff).
    async fn start_consumer(&mut self, role: Role) {
        let slot = match self.open_consumer(&role).await {
            Ok(consumer) => {
                debug!(channel = %role.channel_name(), queue = %consumer.queue, "consuming");
                Slot::Consuming(consumer)
            }
            Err(e) => self.broken(&role, Backoff::default(), &e),
        };
        self.consumers.insert(role, slot);
    }

    fn broken(&self, role: &Role, mut backoff: Backoff, error: &ChannelError) -> Slot {
        let delay = backoff.next_delay();
        let name = role.channel_name();
        warn!(channel = %name, error = %error, retry_in_ms = delay.as_millis() as u64, "cannot consume; retrying");
        self.ctx.health.broken(&name, error.to_string());
        Slot::Broken {
            retry_at: Instant::now() + delay,
            backoff,
        }
    }

    /// Opens a channel, declares the queue and consumes it.
    async fn open_consumer(&self, role: &Role) -> Result<QueueConsumer, ChannelError> {
        let channel = broker_op("open a channel", self.conn.create_channel()).await?;
        match self.consume_on(&channel, role).await {
            Ok((queue, tag, consumer)) => {
                let consuming = Arc::new(AtomicBool::new(true));
                self.ctx
                    .health
                    .watch(&role.channel_name(), &channel, Some(Arc::clone(&consuming)));
                let kind = match role {
                    Role::NameService => Kind::Finds,
                    Role::Route(_) => Kind::Calls,
                };
                let task = tokio::spawn(consume(
                    consumer,
                    channel.clone(),
                    Arc::clone(&self.ctx),
                    kind,
                    consuming,
                    self.ended_tx.clone(),
                    tag.clone(),
                ));
                Ok(QueueConsumer {
                    channel,
                    queue,
                    tag,
                    task,
                })
            }
            Err(e) => {
                if channel.status().connected() {
                    let _ =
                        broker_op("close a channel", channel.close(200, "not used".into())).await;
                }
                Err(e)
            }
        }
    }

    async fn consume_on(
        &self,
        channel: &Channel,
        role: &Role,
    ) -> Result<(String, String, lapin::Consumer), ChannelError> {
        let exchanges = &self.config.exchanges;
        let queue = match role {
            Role::Route(route) => route_queue_name(&exchanges.rpc, route),
            Role::NameService => name_service_queue_name(&self.config.host_name, &self.id),
        };
        let host: String = self.config.host_name.chars().take(64).collect();
        let tag = format!("plughost-{host}-{}", uuid::Uuid::new_v4());
        let (Ok(queue_name), Ok(tag_name)) = (
            ShortString::try_new(queue.as_str()),
            ShortString::try_new(tag.as_str()),
        ) else {
            return Err(ChannelError::Name { name: queue });
        };
        broker_op(
            "set prefetch",
            channel.basic_qos(self.config.prefetch, BasicQosOptions::default()),
        )
        .await?;
        match role {
            Role::Route(route) => {
                let kind = self.config.route_queues;
                broker_op(
                    "declare the route queue",
                    declare_route_queue(channel, exchanges, route, kind),
                )
                .await
                .map_err(|e| mismatch(e, &queue, kind))?;
            }
            Role::NameService => {
                broker_op(
                    "declare the name-service queue",
                    declare_name_service_queue(channel, exchanges, &queue),
                )
                .await?;
            }
        }
        let consumer = broker_op(
            "consume",
            channel.basic_consume(
                queue_name,
                tag_name,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
        Ok((queue, tag, consumer))
    }

    /// A consumer the broker stopped delivering to: consume again (on a new
    /// channel; the old one finishes the requests it holds, then closes).
    async fn consumer_ended(&mut self, ended: Ended) {
        let Some(role) = self
            .consumers
            .iter()
            .find(|(_, slot)| matches!(slot, Slot::Consuming(c) if c.tag == ended.tag))
            .map(|(role, _)| role.clone())
        else {
            return; // one the session stopped itself
        };
        let Some(Slot::Consuming(old)) = self.consumers.remove(&role) else {
            return;
        };
        let why = ended
            .reason
            .unwrap_or_else(|| "the broker cancelled the consumer (was its queue deleted?)".into());
        if faults::note(Fault::ChannelRepaired) {
            warn!(channel = %role.channel_name(), queue = %old.queue, reason = %why, "the broker stopped delivering; declaring the queue and consuming again");
        }
        self.retired.spawn(old.retire());
        self.start_consumer(role).await;
    }

    fn next_retry(&self) -> Option<Instant> {
        self.consumers
            .values()
            .filter_map(|slot| match slot {
                Slot::Broken { retry_at, .. } => Some(*retry_at),
                Slot::Consuming(_) => None,
            })
            .min()
    }

    /// Tries the broken consumers that are due again.
    async fn retry_broken(&mut self) {
        let now = Instant::now();
        let due: Vec<Role> = self
            .consumers
            .iter()
            .filter(|(_, slot)| matches!(slot, Slot::Broken { retry_at, .. } if *retry_at <= now))
            .map(|(role, _)| role.clone())
            .collect();
        for role in due {
            let Some(Slot::Broken { backoff, .. }) = self.consumers.remove(&role) else {
                continue;
            };
            let slot = match self.open_consumer(&role).await {
                Ok(consumer) => {
                    faults::note(Fault::ChannelRepaired);
                    info!(channel = %role.channel_name(), queue = %consumer.queue, "consuming again");
                    Slot::Consuming(consumer)
                }
                Err(e) => self.broken(&role, backoff, &e),
            };
            self.consumers.insert(role, slot);
        }
    }

    /// Reopens the reply channel if the broker closed it.
    async fn repair_replies(&self) {
        if let Err(e) = self.ctx.replies.usable().await {
            warn!(error = %e, "cannot reopen the reply channel; replies wait for it");
        }
    }

    /// Stops consuming, lets in-flight calls finish, closes the connection.
    async fn stop(&mut self) {
        if let Some(check) = self.collision_check.take() {
            check.abort();
        }
        collisions::close_checker(&self.checker).await;
        for (role, slot) in self.consumers.drain() {
            if let Slot::Consuming(consumer) = slot {
                let delete =
                    matches!(role, Role::Route(_)) && self.config.route_queues.conditional_delete();
                consumer.stop(delete).await;
            }
        }
        while self.retired.join_next().await.is_some() {}
        close_connection(&self.conn, "plughost host shutting down").await;
        self.ctx.health.disconnected();
    }

    /// After the connection was lost: stops every task of this session and
    /// closes what is left of its connection, so that nothing of it keeps
    /// taking requests beside the next session.
    async fn teardown(mut self) {
        if let Some(check) = self.collision_check.take() {
            check.abort();
        }
        collisions::close_checker(&self.checker).await;
        for (_, slot) in self.consumers.drain() {
            if let Slot::Consuming(consumer) = slot {
                consumer.task.abort();
            }
        }
        self.retired.abort_all();
        while self.retired.join_next().await.is_some() {}
        close_connection(&self.conn, "plughost host reconnecting").await;
        self.ctx.health.disconnected();
    }
}

/// A 406 on a route queue's declaration, told as what differs and how to
/// fix it; any other error as it was.
fn mismatch(error: ChannelError, queue: &str, kind: RouteQueueKind) -> ChannelError {
    if let ChannelError::Broker { source, .. } = &error {
        if let lapin::ErrorKind::ProtocolError(amqp) = source.kind() {
            if let Some(m) =
                RouteQueueMismatch::from_broker(queue, kind, amqp.get_message().as_str())
            {
                warn!(queue, argument = %m.argument, theirs = %m.theirs, ours = %m.ours, "route queue declared elsewhere with other arguments");
                return m.into();
            }
        }
    }
    error
}

/// Sleeps until `at` (forever for None: the branch is disabled then).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

async fn close_connection(conn: &Connection, why: &str) {
    if conn.status().connected() {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.close(200, why.into())).await;
    }
}

impl QueueConsumer {
    /// Cancels the consumer and waits for its in-flight calls; when the
    /// route is no longer served here, removes its queue if nobody else
    /// consumes it and it is empty (so callers get "no route" at once).
    async fn stop(self, delete_if_unused: bool) {
        let _ = broker_op(
            "cancel a consumer",
            self.channel
                .basic_cancel(self.tag.as_str().into(), BasicCancelOptions::default()),
        )
        .await;
        let _ = self.task.await;
        if delete_if_unused {
            // A refused delete closes the channel, which we are done with anyway.
            let _ = broker_op(
                "delete an unused route queue",
                self.channel.queue_delete(
                    self.queue.as_str().into(),
                    QueueDeleteOptions {
                        if_unused: true,
                        if_empty: true,
                        nowait: false,
                    },
                ),
            )
            .await;
        }
        if self.channel.status().connected() {
            let _ = broker_op(
                "close a channel",
                self.channel.close(200, "route no longer served".into()),
            )
            .await;
        }
    }

    /// For a consumer the broker stopped: waits for the requests it holds,
    /// then closes its channel.
    async fn retire(self) {
        let _ = self.task.await;
        if self.channel.status().connected() {
            let _ = broker_op(
                "close a channel",
                self.channel.close(200, "consumer replaced".into()),
            )
            .await;
        }
    }
}

/// What a consumer's deliveries are.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Calls,
    Finds,
}

/// Consumes one queue, handling requests concurrently (up to the channel's
/// prefetch); tells the session the moment the broker stops delivering,
/// then returns once every request it took has been settled.
///
/// The requests in flight are futures this task polls itself rather than
/// tasks of their own: a spawned task per request made the runtime wake
/// its other worker to steal it, a thread wake-up per call (measured in
/// `docs/benchmarks.md`). A panic in one is caught and costs only that
/// request (unacknowledged, it is redelivered once this consumer's channel
/// closes).
///
/// Requests are acknowledged here, after their replies, several in one
/// frame where they can be ([`AckWindow`]). A quick reply's request ends
/// once the reply is queued on its channel; this task looks at such
/// writes whenever it wakes, and [`CHECK_AFTER`] after the oldest at the
/// latest, rather than being woken by each ([`Writes`]). Every request
/// finished and every write ended by the time this task wakes are settled
/// before the acknowledgements go out.
async fn consume(
    mut consumer: lapin::Consumer,
    channel: Channel,
    ctx: Arc<CallContext>,
    kind: Kind,
    consuming: Arc<AtomicBool>,
    ended: mpsc::UnboundedSender<Ended>,
    tag: String,
) {
    let mut in_flight = FuturesUnordered::new();
    let mut acks = AckWindow::default();
    let mut writes = Writes::default();
    let channel = Arc::new(channel);
    let check = tokio::time::sleep(CHECK_AFTER);
    tokio::pin!(check);
    let mut armed = false;
    let mut open = true;
    loop {
        tokio::select! {
            delivery = consumer.next(), if open => match delivery {
                Some(Ok(delivery)) => {
                    let delivery_tag = delivery.delivery_tag;
                    acks.taken(delivery_tag);
                    let request = Request {
                        delivery,
                        channel: Arc::clone(&channel),
                        received: Instant::now(),
                    };
                    let handled = AssertUnwindSafe(handle(request, Arc::clone(&ctx), kind));
                    in_flight.push(async move { (delivery_tag, handled.catch_unwind().await) });
                }
                end => {
                    open = false;
                    consuming.store(false, Ordering::Release);
                    let reason = match end {
                        Some(Err(e)) => Some(e.to_string()),
                        _ => None,
                    };
                    let _ = ended.send(Ended { tag: tag.clone(), reason });
                }
            },
            Some(handled) = in_flight.next(), if !in_flight.is_empty() => {
                settle(&mut acks, &mut writes, &channel, handled, &tag);
                while let Some(handled) = ready(&mut in_flight).await {
                    settle(&mut acks, &mut writes, &channel, handled, &tag);
                }
            }
            () = &mut check, if armed => armed = false,
            else => break,
        }
        writes.over(|written| match written {
            Written::Out(delivery_tag) => acks.answered(delivery_tag),
            Written::Failed(delivery_tag, reason) => {
                if faults::note(Fault::ReplyNotPublished) {
                    warn!(consumer = %tag, %reason, "a reply on its request's own channel was not written; the request goes back to its queue for another consumer");
                }
                hand_back(&channel, delivery_tag);
                acks.handed_back(delivery_tag);
            }
        });
        send_acks(&mut acks, &channel);
        if !open && in_flight.is_empty() && writes.is_empty() {
            break;
        }
        if !armed && !writes.is_empty() {
            check
                .as_mut()
                .reset(tokio::time::Instant::now() + CHECK_AFTER);
            armed = true;
        }
    }
}

/// The next request already finished, without waiting for one.
async fn ready<F: std::future::Future>(in_flight: &mut FuturesUnordered<F>) -> Option<F::Output> {
    std::future::poll_fn(|cx| match in_flight.poll_next_unpin(cx) {
        std::task::Poll::Ready(done) => std::task::Poll::Ready(done),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

/// Records how one request ended.
fn settle(
    acks: &mut AckWindow,
    writes: &mut Writes,
    channel: &Channel,
    (delivery_tag, handled): (u64, std::thread::Result<Disposition>),
    tag: &str,
) {
    match handled {
        Ok(Disposition::Done) => acks.answered(delivery_tag),
        Ok(Disposition::Writing(writing)) => writes.push(delivery_tag, writing),
        Ok(Disposition::Requeue) => {
            hand_back(channel, delivery_tag);
            acks.handed_back(delivery_tag);
        }
        Err(_) => {
            acks.abandoned(delivery_tag);
            warn!(%tag, "a request's handler panicked; the request stays unacknowledged until this consumer's channel closes, and the broker redelivers it then");
        }
    }
}

/// Hands a request back to its queue for another consumer (`basic.nack`
/// with requeue). Its frame is queued at once, so it goes out before any
/// later acknowledgement that could cover the request.
fn hand_back(channel: &Channel, delivery_tag: u64) {
    faults::note(Fault::Requeued);
    let requeue = BasicNackOptions {
        multiple: false,
        requeue: true,
    };
    // basic_nack queues its frame when first polled.
    if let Some(Err(e)) = channel.basic_nack(delivery_tag, requeue).now_or_never() {
        debug!(error = %e, "cannot requeue request (the broker redelivers it when the channel closes)");
    }
}

/// Sends the acknowledgements due. Each frame is queued for the broker
/// without waiting for it to be written: one that never arrives (the
/// channel or connection died first) leaves its requests unacknowledged,
/// and the broker redelivers them, as for a host that stops before
/// acknowledging.
fn send_acks(acks: &mut AckWindow, channel: &Channel) {
    acks.due(|ack| {
        let options = BasicAckOptions {
            multiple: ack.multiple,
        };
        // basic_ack queues its frame when first polled.
        if let Some(Err(e)) = channel.basic_ack(ack.tag, options).now_or_never() {
            debug!(error = %e, "cannot ack request (it will be redelivered)");
        }
    });
}

/// How a request ends.
#[derive(Debug)]
enum Disposition {
    /// Answered, or dropped because it can never be answered: acknowledge.
    Done,
    /// Its reply is queued on its own channel: acknowledge once written.
    Writing(Writing),
    /// The host's own channel failed it: hand it back for another consumer.
    Requeue,
}

/// A request, the channel it came on (where it is acknowledged) and when.
struct Request {
    delivery: Delivery,
    channel: Arc<Channel>,
    /// When it was delivered: its clock (timeouts, deadlines) starts here.
    received: Instant,
}

/// Replies to calls that took longer than this keep the confirmed path
/// even when small (see `replies`): a confirm's round trip (a fraction of
/// a millisecond here) is noise beside such a call, and with it the host
/// notices a broker that stopped answering and hands the request back
/// after [`replies::BROKER_OP_TIMEOUT`] instead of leaving it to TCP.
const FAST_REPLY_WITHIN: Duration = Duration::from_millis(100);

impl Request {
    /// The channel a reply may take without a confirm: the request's own,
    /// when the call was quick (see [`FAST_REPLY_WITHIN`]).
    fn fast_channel(&self) -> Option<&Arc<Channel>> {
        (self.received.elapsed() < FAST_REPLY_WITHIN).then_some(&self.channel)
    }
}

/// Answers one request. Its acknowledgement (or, when the host's own
/// channel failed it, its hand-back) is the consumer's ([`consume`]).
async fn handle(request: Request, ctx: Arc<CallContext>, kind: Kind) -> Disposition {
    match kind {
        Kind::Calls => answer_call(&request, &ctx).await,
        Kind::Finds => answer_find(&request.delivery, &ctx).await,
    }
}

// ---- calls ---------------------------------------------------------------

/// Handles one call (v1 or v2): check it, run it, publish the reply.
async fn answer_call(request: &Request, ctx: &CallContext) -> Disposition {
    let content_type = request
        .delivery
        .properties
        .content_type()
        .as_ref()
        .map(|c| c.as_str());
    match Protocol::of(content_type) {
        Protocol::V2 => call_v2(request, ctx).await,
        Protocol::V1 => call_v1(request, ctx).await,
    }
}

async fn call_v2(request: &Request, ctx: &CallContext) -> Disposition {
    let delivery = &request.delivery;
    let props = &delivery.properties;
    let route = delivery.routing_key.as_str();
    let Some(reply_to) = props.reply_to() else {
        if faults::note(Fault::MissingReplyTo) {
            warn!(
                route,
                "v2 call without reply_to; dropped without running it (nobody could be answered)"
            );
        }
        return Disposition::Done;
    };
    let Some(correlation_id) = props.correlation_id() else {
        if faults::note(Fault::MissingCorrelationId) {
            warn!(route, %reply_to, "v2 call without correlation_id; answered 400 without running it");
        }
        let error = v2::ErrorBody::new(
            codes::BAD_ARGUMENTS,
            "v2 call without correlation_id: its reply could not be matched to it; not run",
        );
        return reply_v2(
            ctx,
            request,
            route,
            reply_to,
            &ShortString::default(),
            Err(error),
        )
        .await;
    };
    let size = delivery.data.len();
    let limit = ctx.limits.max_request_bytes;
    if size > limit {
        if faults::note(Fault::RequestTooLarge) {
            warn!(
                route,
                bytes = size,
                limit,
                "v2 call over the size limit; answered 413 without parsing it"
            );
        }
        let error = v2::ErrorBody::new(codes::TOO_LARGE, request_too_large(size, limit));
        return reply_v2(ctx, request, route, reply_to, correlation_id, Err(error)).await;
    }
    if let Err(e) = ctx.replies.usable().await {
        not_published(route, &e.to_string());
        return Disposition::Requeue;
    }
    let deadline = deadline_of(props.headers().as_ref());
    let registry = ctx.registry.borrow().clone();
    let outcome = match serde_json::from_slice::<v2::CallRequest<'_>>(&delivery.data) {
        Ok(req) => {
            let origin = Origin {
                protocol: "v2",
                correlation_id: correlation_id.as_str(),
            };
            dispatch(
                &registry,
                &req.method,
                req.args.get().to_owned(),
                request.received,
                deadline,
                origin,
            )
            .await
        }
        Err(e) => {
            if faults::note(Fault::MalformedV2Call) {
                warn!(route, error = %e, "malformed v2 call; answered 400");
            }
            Err(v2::ErrorBody::new(
                codes::BAD_ARGUMENTS,
                format!("malformed v2 call body: {e}"),
            ))
        }
    };
    reply_v2(ctx, request, route, reply_to, correlation_id, outcome).await
}

/// Publishes a v2 reply, held to the reply limit.
async fn reply_v2(
    ctx: &CallContext,
    request: &Request,
    route: &str,
    reply_to: &ShortString,
    correlation_id: &ShortString,
    outcome: Result<String, v2::ErrorBody>,
) -> Disposition {
    let (max, whose) = reply_limit(ctx);
    let body = match &outcome {
        Ok(result) if v2::encoded_result_len(result) <= max => v2::encode_result(result),
        Ok(result) => too_large_v2(route, v2::encoded_result_len(result), max, whose),
        Err(error) => {
            let body = v2::encode_error(error);
            if body.len() <= max {
                body
            } else {
                too_large_v2(route, body.len(), max, whose)
            }
        }
    };
    // Built again for the rare resend rather than cloned on every call.
    let props = || {
        BasicProperties::default()
            .with_content_type(v2::CONTENT_TYPE.into())
            .with_correlation_id(correlation_id.clone())
    };
    let default_exchange = ShortString::default();
    let sent = match ctx
        .replies
        .publish_for(
            request.fast_channel(),
            &default_exchange,
            reply_to,
            &body,
            props(),
        )
        .await
    {
        ReplyOut::Writing(writing) => return Disposition::Writing(writing),
        ReplyOut::Sent(sent) => sent,
    };
    match sent {
        Sent::Yes => Disposition::Done,
        Sent::TooLarge { broker_max } => {
            let body = too_large_v2(route, body.len(), broker_max, BROKER_LIMIT);
            resend(ctx, route, &default_exchange, reply_to, &body, props()).await
        }
        Sent::No { reason, .. } => {
            not_published(route, &reason);
            Disposition::Requeue
        }
    }
}

fn too_large_v2(route: &str, size: usize, max: usize, whose: &str) -> Vec<u8> {
    let message = reply_too_large(route, size, max, whose);
    v2::encode_error(&v2::ErrorBody::new(codes::TOO_LARGE, message))
}

async fn call_v1(request: &Request, ctx: &CallContext) -> Disposition {
    let delivery = &request.delivery;
    let route = delivery.routing_key.as_str();
    let Ok(key) = ShortString::try_new(v1::result_key(route)) else {
        if faults::note(Fault::MalformedV1Call) {
            warn!(
                route,
                "v1 call on a route too long for its `.result` reply key; dropped"
            );
        }
        return Disposition::Done;
    };
    let correlation_id = delivery.properties.correlation_id().as_ref();
    let size = delivery.data.len();
    let limit = ctx.limits.max_request_bytes;
    if size > limit {
        let log = faults::note(Fault::RequestTooLarge);
        let Some(exchange) = v1::reply_exchange_in_head(&delivery.data) else {
            if log {
                warn!(route, bytes = size, limit, "v1 call over the size limit, without a reply exchange in its first bytes; dropped without parsing it");
            }
            return Disposition::Done;
        };
        if log {
            warn!(
                route,
                bytes = size,
                limit,
                "v1 call over the size limit; answering Failure (413) without parsing it"
            );
        }
        let exchange = match usable_exchange(ctx, route, exchange, "call").await {
            Ok(exchange) => exchange,
            Err(disposition) => return disposition,
        };
        let text = format!(
            "request too large (413): {}",
            request_too_large(size, limit)
        );
        return reply_v1(
            ctx,
            request,
            route,
            &exchange,
            &key,
            correlation_id,
            v1::CallReply::Failure(text),
        )
        .await;
    }
    let req = match v1::CallRequest::parse(&delivery.data) {
        Ok(req) => req,
        Err(e) => {
            if faults::note(Fault::MalformedV1Call) {
                warn!(route, error = %e, "malformed v1 call; answering Failure on the RPC exchange");
            }
            let reply = v1::CallReply::Failure(e.to_string());
            return reply_v1(
                ctx,
                request,
                route,
                &ctx.rpc_exchange,
                &key,
                correlation_id,
                reply,
            )
            .await;
        }
    };
    let exchange = match usable_exchange(ctx, route, &req.reply_exchange, "call").await {
        Ok(exchange) => exchange,
        Err(disposition) => return disposition,
    };
    let Some(correlation_id) = correlation_id else {
        if faults::note(Fault::MissingCorrelationId) {
            warn!(route, exchange = %exchange, "v1 call without correlation_id; answering Failure without running it");
        }
        let reply = v1::CallReply::Failure(
            "v1 call without correlation_id: its reply could not be matched to it; not run".into(),
        );
        return reply_v1(ctx, request, route, &exchange, &key, None, reply).await;
    };
    if let Err(e) = ctx.replies.usable().await {
        not_published(route, &e.to_string());
        return Disposition::Requeue;
    }
    let registry = ctx.registry.borrow().clone();
    let args = v1_args(&registry, &req.method, &req.args);
    let (max, whose) = reply_limit(ctx);
    let origin = Origin {
        protocol: "v1",
        correlation_id: correlation_id.as_str(),
    };
    let reply = match dispatch(&registry, &req.method, args, request.received, None, origin).await {
        // A result that cannot fit is not decoded at all.
        Ok(json) if json.len() > max => {
            v1::CallReply::Failure(v1_too_large(route, json.len(), max, whose))
        }
        Ok(json) => match serde_json::from_str::<serde_json::Value>(&json) {
            Ok(value) => v1::CallReply::Success(v1::result_text(&value)),
            Err(_) => v1::CallReply::Success(json),
        },
        Err(e) => v1::CallReply::Failure(e.message),
    };
    reply_v1(
        ctx,
        request,
        route,
        &exchange,
        &key,
        Some(correlation_id),
        reply,
    )
    .await
}

/// A v1 call's text arguments as the JSON array the plugin gets, the way
/// the old service handed them over (`docs/protocol.md`, "v1 argument
/// conversion"): each converted by its parameter's schema; a variadic
/// method's arguments (no schema to go by) and any past the declared
/// parameters stay strings, as old callers sent them.
fn v1_args(registry: &Registry, method: &str, texts: &[String]) -> String {
    let params = registry.method(method).and_then(|entry| {
        entry
            .plugin
            .descriptor()
            .methods
            .iter()
            .find(|m| m.name == entry.name)
            .map(|m| &m.params)
    });
    let args: Vec<serde_json::Value> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| match params.and_then(|p| p.get(i)) {
            Some(param) => v1::arg_for_schema(text, &param.schema),
            None => serde_json::Value::String(text.clone()),
        })
        .collect();
    serde_json::Value::Array(args).to_string()
}

/// Whether a v1 request's reply exchange can take replies: its name for
/// publishing, or how the request ends without running.
async fn usable_exchange(
    ctx: &CallContext,
    route: &str,
    name: &str,
    what: &str,
) -> Result<ShortString, Disposition> {
    match ctx.reply_exchanges.check(name).await {
        Verdict::Usable => ShortString::try_new(name).map_err(|_| Disposition::Done),
        Verdict::Unusable(reason) => {
            if faults::note(Fault::UnknownReplyExchange) {
                warn!(route, exchange = name, %reason, "v1 {what} names a reply exchange that cannot take replies; dropped without running it (it can never be answered)");
            }
            Err(Disposition::Done)
        }
        Verdict::Unknown(reason) => {
            not_published(
                route,
                &format!("cannot check reply exchange `{name}`: {reason}"),
            );
            Err(Disposition::Requeue)
        }
    }
}

/// Publishes a v1 reply, held to the reply limit.
async fn reply_v1(
    ctx: &CallContext,
    request: &Request,
    route: &str,
    exchange: &ShortString,
    key: &ShortString,
    correlation_id: Option<&ShortString>,
    reply: v1::CallReply,
) -> Disposition {
    let (max, whose) = reply_limit(ctx);
    let reply = if reply.encoded_len() > max {
        v1::CallReply::Failure(v1_too_large(route, reply.encoded_len(), max, whose))
    } else {
        reply
    };
    let body = reply.encode();
    // Built again for the rare resend rather than cloned on every call.
    let props = || {
        BasicProperties::default().with_correlation_id(correlation_id.cloned().unwrap_or_default())
    };
    let sent = match ctx
        .replies
        .publish_for(request.fast_channel(), exchange, key, &body, props())
        .await
    {
        ReplyOut::Writing(writing) => return Disposition::Writing(writing),
        ReplyOut::Sent(sent) => sent,
    };
    match sent {
        Sent::Yes => Disposition::Done,
        Sent::TooLarge { broker_max } => {
            let text = v1_too_large(route, body.len(), broker_max, BROKER_LIMIT);
            let body = v1::CallReply::Failure(text).encode();
            resend(ctx, route, exchange, key, &body, props()).await
        }
        Sent::No {
            reason,
            refused_exchange,
        } => refused(ctx, route, exchange, &reason, refused_exchange),
    }
}

fn v1_too_large(route: &str, size: usize, max: usize, whose: &str) -> String {
    format!(
        "reply too large (413): {}",
        reply_too_large(route, size, max, whose)
    )
}

/// A reply the broker did not take: dropped if it named an exchange the
/// broker refuses (never answerable), else requeued.
fn refused(
    ctx: &CallContext,
    route: &str,
    exchange: &ShortString,
    reason: &str,
    refused_exchange: Option<String>,
) -> Disposition {
    if refused_exchange.as_deref() == Some(exchange.as_str()) {
        ctx.reply_exchanges.refused(exchange.as_str(), reason);
        if faults::note(Fault::UnknownReplyExchange) {
            warn!(route, exchange = %exchange, %reason, "the broker refused the reply exchange; request dropped (it can never be answered)");
        }
        return Disposition::Done;
    }
    not_published(route, reason);
    Disposition::Requeue
}

/// Sends the small 413 reply that replaces one the broker refused for its size.
async fn resend(
    ctx: &CallContext,
    route: &str,
    exchange: &ShortString,
    key: &ShortString,
    body: &[u8],
    props: BasicProperties,
) -> Disposition {
    match ctx.replies.publish(exchange, key, body, props).await {
        Sent::Yes => Disposition::Done,
        Sent::TooLarge { .. } => Disposition::Done,
        Sent::No {
            reason,
            refused_exchange,
        } => refused(ctx, route, exchange, &reason, refused_exchange),
    }
}

/// The reply limit now, and whose it is (for the message).
fn reply_limit(ctx: &CallContext) -> (usize, &'static str) {
    let configured = ctx.limits.max_reply_bytes;
    let max = ctx.replies.max_reply(configured);
    if max < configured {
        (max, BROKER_LIMIT)
    } else {
        (max, "this host's limit ([limits] max_reply_bytes)")
    }
}

const BROKER_LIMIT: &str = "the broker's max_message_size";

fn reply_too_large(route: &str, size: usize, max: usize, whose: &str) -> String {
    if faults::note(Fault::ReplyTooLarge) {
        warn!(
            route,
            bytes = size,
            limit = max,
            "reply over {whose}; answered 413 instead"
        );
    }
    format!("the reply of {size} bytes is larger than {whose} of {max} bytes; the method ran, its result was not sent")
}

fn request_too_large(size: usize, limit: usize) -> String {
    format!("the request of {size} bytes is larger than this host's limit of {limit} bytes ([limits] max_request_bytes); not run")
}

fn not_published(route: &str, reason: &str) {
    if faults::note(Fault::ReplyNotPublished) {
        warn!(route, %reason, "the host could not publish a reply on its own channel; the request goes back to its queue for another consumer");
    }
}

/// Reads the caller's deadline header and turns it into an `Instant`.
fn deadline_of(headers: Option<&FieldTable>) -> Option<Instant> {
    let value = headers?.inner().get(v2::DEADLINE_HEADER)?;
    let deadline_ms = match value {
        AMQPValue::LongLongInt(v) => u64::try_from(*v).ok()?,
        AMQPValue::LongInt(v) => u64::try_from(*v).ok()?,
        AMQPValue::LongUInt(v) => u64::from(*v),
        _ => return None,
    };
    let now_ms = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_millis(),
    )
    .ok()?;
    Some(Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
}

// ---- finds ---------------------------------------------------------------

const NAME_SERVICE: &str = "name-service";

/// Answers a find: v2 with a route or "not here", v1 only when the method
/// is known (as the old name service did).
async fn answer_find(delivery: &Delivery, ctx: &CallContext) -> Disposition {
    let size = delivery.data.len();
    let limit = ctx.limits.max_request_bytes;
    if size > limit {
        if faults::note(Fault::RequestTooLarge) {
            warn!(
                bytes = size,
                limit, "find over the size limit; ignored without parsing it"
            );
        }
        return Disposition::Done;
    }
    let kind = delivery.properties.kind().as_ref().map(|k| k.as_str());
    if kind == Some(v2::STATS_REQUEST_TYPE) {
        return answer_stats(delivery, ctx).await;
    }
    let content_type = delivery
        .properties
        .content_type()
        .as_ref()
        .map(|c| c.as_str());
    match Protocol::of(content_type) {
        Protocol::V2 => find_v2(delivery, ctx).await,
        Protocol::V1 => find_v1(delivery, ctx).await,
    }
}

/// Answers a stats request (`plughost stats`) with this host's per-method
/// counters ([`crate::metrics::method_stats`]).
async fn answer_stats(delivery: &Delivery, ctx: &CallContext) -> Disposition {
    let props = &delivery.properties;
    let (Some(reply_to), Some(correlation_id)) = (props.reply_to(), props.correlation_id()) else {
        if faults::note(Fault::MissingReplyTo) {
            warn!("stats request without reply_to or correlation_id; ignored");
        }
        return Disposition::Done;
    };
    let reply = v2::StatsReply {
        host: ctx.host_name.clone(),
        methods: crate::metrics::method_stats(),
    };
    answer_name_service(ctx, reply_to, correlation_id, &reply).await
}

/// True (after counting and logging it) when a find asks for a method name
/// longer than the limit.
fn method_too_long(method: &str, ctx: &CallContext) -> bool {
    let limit = ctx.limits.max_find_method_bytes;
    let long = method.len() > limit;
    if long && faults::note(Fault::FindMethodTooLong) {
        warn!(
            bytes = method.len(),
            limit,
            "find for a method name over the limit ([limits] max_find_method_bytes); ignored"
        );
    }
    long
}

async fn find_v2(delivery: &Delivery, ctx: &CallContext) -> Disposition {
    let props = &delivery.properties;
    let Some(reply_to) = props.reply_to() else {
        if faults::note(Fault::MissingReplyTo) {
            warn!("v2 find without reply_to; ignored");
        }
        return Disposition::Done;
    };
    let find = match serde_json::from_slice::<v2::FindRequest>(&delivery.data) {
        Ok(find) => find,
        Err(e) => {
            if faults::note(Fault::MalformedV2Find) {
                warn!(error = %e, "malformed v2 find; ignored");
            }
            return Disposition::Done;
        }
    };
    if method_too_long(&find.method, ctx) {
        return Disposition::Done;
    }
    let Some(correlation_id) = props.correlation_id() else {
        if faults::note(Fault::MissingCorrelationId) {
            warn!(%reply_to, "v2 find without correlation_id; ignored");
        }
        return Disposition::Done;
    };
    let registry = ctx.served.borrow().clone();
    let entry = registry.method(&find.method);
    if let (Some(claimant), Some(entry)) = (&find.claimant, entry) {
        ctx.collisions.claimed(&ctx.host_name, entry, claimant);
    }
    let reply = v2::FindReply {
        route: entry.map(|m| m.route.clone()),
        plugin: entry.map(|m| m.plugin.name().to_owned()),
        version: entry.map(|m| m.plugin.version().to_owned()),
        signature: entry.filter(|_| find.describe).map(|m| m.signature()),
        method: find.method,
        host: ctx.host_name.clone(),
    };
    answer_name_service(ctx, reply_to, correlation_id, &reply).await
}

/// Sends a name service's v2 answer (a find's or a stats request's) to
/// the asker's `reply_to`; one the host could not publish is requeued.
async fn answer_name_service(
    ctx: &CallContext,
    reply_to: &ShortString,
    correlation_id: &ShortString,
    reply: &impl serde::Serialize,
) -> Disposition {
    let body = serde_json::to_vec(reply).unwrap_or_default();
    let props = BasicProperties::default()
        .with_content_type(v2::CONTENT_TYPE.into())
        .with_correlation_id(correlation_id.clone());
    match ctx
        .replies
        .publish(&ShortString::default(), reply_to, &body, props)
        .await
    {
        Sent::Yes | Sent::TooLarge { .. } => Disposition::Done,
        Sent::No { reason, .. } => {
            not_published(NAME_SERVICE, &reason);
            Disposition::Requeue
        }
    }
}

async fn find_v1(delivery: &Delivery, ctx: &CallContext) -> Disposition {
    let find = match v1::FindRequest::parse(&delivery.data) {
        Ok(find) => find,
        Err(e) => {
            if faults::note(Fault::MalformedV1Find) {
                warn!(error = %e, "malformed v1 find; ignored (no reply address in it)");
            }
            return Disposition::Done;
        }
    };
    if method_too_long(&find.method, ctx) {
        return Disposition::Done;
    }
    let registry = ctx.served.borrow().clone();
    let Some(entry) = registry.method(&find.method) else {
        return Disposition::Done; // other name services may know it
    };
    if !ctx.collisions.answers_v1(&find.method, entry) {
        // Another host's plugin wins this ambiguous bare name for v1 finders.
        return Disposition::Done;
    }
    let Some(correlation_id) = delivery.properties.correlation_id().clone() else {
        if faults::note(Fault::MissingCorrelationId) {
            warn!(
                method = %find.method,
                "v1 find without correlation_id; ignored"
            );
        }
        return Disposition::Done;
    };
    let Ok(key) = ShortString::try_new(find.key) else {
        if faults::note(Fault::MalformedV1Find) {
            warn!(method = %find.method, "v1 find with a reply key over 255 bytes; ignored");
        }
        return Disposition::Done;
    };
    let exchange = match usable_exchange(ctx, NAME_SERVICE, &find.exchange, "find").await {
        Ok(exchange) => exchange,
        Err(disposition) => return disposition,
    };
    let body = v1::find_reply(&find.method, &entry.route);
    let props = BasicProperties::default().with_correlation_id(correlation_id);
    match ctx.replies.publish(&exchange, &key, &body, props).await {
        Sent::Yes | Sent::TooLarge { .. } => Disposition::Done,
        Sent::No {
            reason,
            refused_exchange,
        } => refused(ctx, NAME_SERVICE, &exchange, &reason, refused_exchange),
    }
}
