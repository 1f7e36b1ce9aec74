//! The RPC client: find a method's route, call it, get typed results.
//!
//! One [`Client`] holds one broker connection and one channel, and serves
//! any number of concurrent calls over it: every request carries a fresh
//! correlation id, and a single reply consumer hands each reply to the call
//! waiting for it. Replies come back on one reply address per connection
//! (RabbitMQ's direct reply-to or one exclusive queue; see [`ReplyMode`]),
//! never a queue per call.
//!
//! Calls are published `mandatory`, so a call to a route nobody consumes is
//! returned by the broker and fails at once with [`RpcError::NoRoute`]
//! instead of waiting for the timeout. With publisher confirms a request
//! the broker refuses (a nack) fails at once too; they cost the broker,
//! the shared bottleneck, work and the caller a wake-up per call, so by
//! default a client uses them only when it knows several cluster nodes
//! ([`PublisherConfirms`]). lapin keeps the returns of a channel without
//! confirms in a list it does not announce, so such a session drains that
//! list every [`RETURN_POLL`] while calls wait, and hands each return to
//! the call with its correlation id.
//! Routes found through the name service are cached; a "no route" clears the
//! entry and the call is retried once with a fresh find.
//!
//! **Names and old deployments** (`docs/protocol.md`): a method is found by
//! its bare name (`fibo`) or its qualified name (`math.fibo`). A bare name
//! resolves only when every name service that knows it names the same
//! plugin ([`RpcError::Ambiguous`], 409, otherwise), so a find waits a short
//! window after the first answer. When no v2 name service answers a find in
//! time, a v1 find goes out too, and a method only an old service has is
//! called with v1 framing ([`Found::protocol`], [`Answer::protocol`]).
//!
//! **Every step of a call counts against its deadline**: (re)connecting,
//! publishing and the reply wait all end when it
//! passes, so a stalled broker costs a caller its deadline and never more.
//! The broker's `connection.blocked` (a memory or disk alarm, during which
//! RabbitMQ stops reading from publishing connections) is followed: while it
//! lasts, a call that has not been published fails at once with
//! [`RpcError::Blocked`], which names the alarm, instead of queueing a
//! request the broker will not read; after `connection.unblocked` calls work
//! again. A call already published keeps waiting for its reply (deliveries
//! go on during an alarm) until its deadline, and then names the alarm too.
//!
//! [`Client::close`] ends the connection with AMQP `connection.close`, so a
//! short-lived caller such as the CLI leaves no "unexpectedly closed TCP
//! connection" behind in the broker's log.
//!
//! ```no_run
//! # async fn demo() -> Result<(), plughost_client::RpcError> {
//! use plughost_client::{Client, ClientOptions};
//!
//! let client = Client::connect(ClientOptions::new("amqp://guest:guest@127.0.0.1:5672/%2f")).await?;
//! let route = client.find("fibo").await?;
//! assert_eq!(route, "com.goffersoft.math.algo.fibo");
//! let n: u64 = client.call("fibo", (10,)).await?;        // typed
//! assert_eq!(n, 55);
//! let value = client.call_json("fibo", &[10.into()]).await?; // JSON in, JSON out
//! assert_eq!(value, serde_json::json!(55));
//! client.close().await;
//! # Ok(()) }
//! ```

use std::{
    collections::HashMap,
    future::Future,
    path::PathBuf,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Waker},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::{
    future::{maybe_done, MaybeDone},
    StreamExt,
};
use lapin::{
    options::{BasicConsumeOptions, BasicPublishOptions, QueueBindOptions},
    types::{AMQPValue, FieldTable},
    BasicProperties, Channel, Connection, PublisherConfirm,
};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use tokio::{
    sync::{mpsc, watch, Notify},
    task::JoinHandle,
    time::Instant,
};
use tracing::{debug, info, warn};

use plughost_proto::rpc::{v1, v2, Protocol};

use crate::{
    connection::{redact, TlsFiles, DEFAULT_CONNECT_TIMEOUT},
    local::LocalClient,
    topology::{declare_private_queue, Exchanges},
    urls::BrokerUrls,
    RpcError,
};

/// How long [`Client::close`] waits for the broker's `connection.close-ok`
/// (one round trip on a healthy link); a frozen broker costs no more.
pub const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Where replies come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    /// One exclusive, server-named queue per client connection (default:
    /// faster in `plughost bench` here, and at-least-once like any queue;
    /// see `docs/benchmarks.md`).
    #[default]
    ExclusiveQueue,
    /// RabbitMQ's pseudo-queue `amq.rabbitmq.reply-to` (at-most-once).
    DirectReplyTo,
}

/// Whether a client's calls go with publisher confirms.
///
/// With confirms the broker answers every request, so one it takes but
/// cannot deliver fails the call at once (503): in a cluster, a request
/// routed to a classic queue in the moment that queue's node goes down is
/// refused (a nack). Without them the broker drops such a request without
/// a word and its call waits out its deadline (504). That is the only
/// difference callers see: a call to a route nobody serves is returned
/// (404) either way, and a lost connection fails the calls on it (503)
/// either way. Confirms cost the broker, the shared bottleneck, a message
/// per call and the caller a wake-up: issue 15 measured a fifth of the
/// calls per second at one call in flight (`docs/benchmarks.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PublisherConfirms {
    /// On when [`ClientOptions::fallback_urls`] names other nodes (a
    /// cluster, where a node can go down under a queue while the client's
    /// own node stays up), off with a single broker URL. A client that
    /// reaches a cluster through one address (a load balancer) should say
    /// [`PublisherConfirms::On`].
    #[default]
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl PublisherConfirms {
    /// Whether a session with these options uses confirms.
    pub fn enabled(self, options: &ClientOptions) -> bool {
        match self {
            Self::Auto => !options.fallback_urls.is_empty(),
            Self::On => true,
            Self::Off => false,
        }
    }
}

/// How a client connects and waits.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Broker URL (`amqp://` or `amqps://`).
    pub url: String,
    /// Other nodes of the same RabbitMQ cluster, tried in order when `url`
    /// does not answer, including when reconnecting after a lost
    /// connection (`crate::urls`). Empty: `url` only.
    pub fallback_urls: Vec<String>,
    /// CA and client certificate files for `amqps://`.
    pub tls: TlsFiles,
    /// Exchange names (must match the hosts').
    pub exchanges: Exchanges,
    /// Reply mechanism.
    pub reply_mode: ReplyMode,
    /// Whether calls go with publisher confirms ([`PublisherConfirms`]):
    /// by default only when the client knows several broker nodes.
    pub publisher_confirms: PublisherConfirms,
    /// Timeout of a call (find included) when none is given.
    pub timeout: Duration,
    /// Longest wait for a find answer.
    pub find_timeout: Duration,
    /// After the first "not here" answer, how long to wait for a host that
    /// has the method before concluding nobody does.
    pub not_found_grace: Duration,
    /// After the first answer with a route for a bare name, how long to
    /// wait for other name services' answers (to catch a name that hosts
    /// serve from different plugins: [`RpcError::Ambiguous`]); also how
    /// long `find --all` listens after the first answer.
    pub answer_window: Duration,
    /// When no v2 name service has answered a find after this long, a v1
    /// find goes out too, so callers reach old deployments; `None` speaks
    /// v2 only.
    pub v1_fallback_after: Option<Duration>,
    /// Longest wait for a connection to be ready (TCP, TLS, the AMQP
    /// handshake and the client's channel); a call's own deadline bounds a
    /// reconnect further.
    pub connect_timeout: Duration,
    /// When to use a host's local socket instead of the broker.
    pub local: LocalMode,
}

/// When a [`Client`] talks to a host's local socket (`docs/protocol.md`,
/// "Local transport") instead of the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalMode {
    /// Only the broker.
    Never,
    /// The broker; the local socket at this path when nothing listens at
    /// the broker's address (no broker on this machine). A broker that is
    /// there but fails (frozen, alarmed, refusing TLS) is reported, never
    /// bypassed.
    Fallback(PathBuf),
    /// Only the local socket at this path (`--local`).
    Only(PathBuf),
}

impl Default for LocalMode {
    fn default() -> Self {
        Self::Fallback(crate::local::default_socket())
    }
}

/// Which transport a [`Client`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// RabbitMQ.
    Broker,
    /// A host's local socket.
    Local,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Broker => "broker",
            Self::Local => "local",
        })
    }
}

impl ClientOptions {
    /// Defaults for a broker URL: no TLS files, default exchanges, exclusive
    /// reply queue, 30 s calls, 5 s finds, 250 ms not-found grace and
    /// answer window, v1 fallback after 500 ms, 10 s connects.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            fallback_urls: Vec::new(),
            tls: TlsFiles::default(),
            exchanges: Exchanges::default(),
            reply_mode: ReplyMode::default(),
            publisher_confirms: PublisherConfirms::Auto,
            timeout: Duration::from_secs(30),
            find_timeout: Duration::from_secs(5),
            not_found_grace: Duration::from_millis(250),
            answer_window: Duration::from_millis(250),
            v1_fallback_after: Some(Duration::from_millis(500)),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            local: LocalMode::default(),
        }
    }
}

/// The v2 call body, serialised straight from borrowed arguments.
#[derive(serde::Serialize)]
struct OutgoingCall<'a> {
    method: &'a str,
    args: Args<'a>,
}

/// What reaches a waiting request, by its correlation id.
#[derive(Debug)]
enum Incoming {
    /// A reply.
    Reply(Vec<u8>),
    /// The request itself, returned by the broker: no queue took it.
    Returned,
}

/// The requests waiting on a session, by correlation id.
type Pending = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Incoming>>>>;

/// How long a call waits for its reply before the session checks that the
/// broker still answers (at most half the call's timeout), so that a
/// timeout names a broker that went quiet rather than the host.
pub const PROBE_AFTER: Duration = Duration::from_secs(1);

/// How often a session looks for returned requests while any wait (the
/// longest a call to a route nobody consumes waits for its
/// [`RpcError::NoRoute`], beyond the broker's round trip).
pub const RETURN_POLL: Duration = Duration::from_millis(10);

/// What the broker last said about a session's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Link {
    /// Open for publishing.
    Open,
    /// `connection.blocked`, with the broker's reason.
    Blocked(String),
    /// The connection or its reply consumer is gone (never left again).
    Lost(String),
}

/// Why a step of a call ended before it finished.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stall {
    /// The broker blocks publishing (the reason names the alarm).
    Blocked(String),
    /// The connection is gone.
    Lost(String),
    /// The broker refused the message (a publisher nack).
    Nack,
    /// The deadline passed; `blocked` holds the alarm if the broker was
    /// blocking publishers at that moment (the likely cause).
    Deadline {
        /// The broker's blocking reason, if it was blocking.
        blocked: Option<String>,
    },
}

/// Runs `work` until it finishes, the link is lost, the broker blocks
/// publishing (only when `fail_on_block`) or `deadline` passes, whichever
/// comes first. The link is looked at before `work` is first polled, so on
/// a link that is already blocked a publish is never even queued.
async fn bounded<T>(
    work: impl Future<Output = T>,
    link: &watch::Receiver<Link>,
    deadline: Instant,
    fail_on_block: bool,
) -> Result<T, Stall> {
    bounded_unless(work, link, deadline, || fail_on_block).await
}

/// [`bounded`], with `fail_on_block` asked, each time the broker blocks
/// publishing, whether that block fails the work (a call fails on a block
/// only while its request is not yet written, [`Sending`]).
async fn bounded_unless<T>(
    work: impl Future<Output = T>,
    link: &watch::Receiver<Link>,
    deadline: Instant,
    mut fail_on_block: impl FnMut() -> bool,
) -> Result<T, Stall> {
    let mut watching = link.clone();
    let trouble = async {
        loop {
            match &*watching.borrow_and_update() {
                Link::Lost(reason) => return Stall::Lost(reason.clone()),
                Link::Blocked(reason) if fail_on_block() => return Stall::Blocked(reason.clone()),
                _ => {}
            }
            if watching.changed().await.is_err() {
                return Stall::Lost("the session ended".into());
            }
        }
    };
    tokio::select! {
        biased;
        stall = trouble => Err(stall),
        value = work => Ok(value),
        () = tokio::time::sleep_until(deadline) => {
            let blocked = match &*link.borrow() {
                Link::Blocked(reason) => Some(reason.clone()),
                _ => None,
            };
            Err(Stall::Deadline { blocked })
        }
    }
}

/// The tasks of a session, stopped when it is dropped.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// One connection's worth of client state.
struct Session {
    /// Always `Some` until dropped (taken to close it).
    conn: Option<Connection>,
    channel: Channel,
    reply_to: String,
    pending: Pending,
    /// Told when a request starts waiting (wakes the returns follower).
    waiting: Arc<Notify>,
    /// The channel is in confirm mode ([`ClientOptions::publisher_confirms`]).
    confirms: bool,
    link: Arc<watch::Sender<Link>>,
    /// The queue v1 answers arrive on, made the first time an old
    /// deployment is talked to.
    v1: tokio::sync::OnceCell<V1Queue>,
    _tasks: Tasks,
}

/// A session's v1 reply queue: exclusive, server-named, bound to the RPC
/// exchange under the keys old services answer to (`<queue>.RpcNameServiceClient`
/// for finds, `<route>.result` for calls); its replies are handed out by
/// correlation id like v2 replies.
struct V1Queue {
    name: String,
    /// Routing keys already bound.
    bound: Mutex<std::collections::HashSet<String>>,
    _reader: Tasks,
}

/// An RPC client; cheap to share (`Arc`) across tasks.
pub struct Client {
    options: ClientOptions,
    /// The live session; read on every call, written only on (re)connect.
    current: std::sync::RwLock<Option<Arc<Session>>>,
    /// Serialises reconnects so one lost connection causes one new one.
    reconnect: tokio::sync::Mutex<()>,
    /// Found routes by method name, with the protocol that answered.
    routes: Mutex<HashMap<String, (String, Protocol)>>,
    /// Set when the client talks to a local socket instead of the broker.
    local: Option<LocalClient>,
}

/// Removes a pending entry when the call ends, however it ends.
struct PendingGuard<'a> {
    pending: &'a Pending,
    id: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.id);
    }
}

/// Whole milliseconds, rounded: a 3 s deadline measured a few microseconds
/// after it was set still reads "3000 ms".
fn millis(d: Duration) -> u64 {
    u64::try_from((d.as_micros() + 500) / 1000).unwrap_or(u64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Client {
    /// Connects within `options.connect_timeout` (failing with
    /// [`RpcError::BrokerUnavailable`] when the broker cannot be reached or
    /// does not answer in time, [`RpcError::BrokerConfig`] when the URL or
    /// TLS files cannot be honoured, [`RpcError::Tls`] when the TLS
    /// handshake fails).
    pub async fn connect(options: ClientOptions) -> Result<Self, RpcError> {
        let deadline = Instant::now() + options.connect_timeout;
        let mut client = Self {
            options,
            current: std::sync::RwLock::new(None),
            reconnect: tokio::sync::Mutex::new(()),
            routes: Mutex::new(HashMap::new()),
            local: None,
        };
        match client.options.local.clone() {
            LocalMode::Only(socket) => {
                client.local = Some(LocalClient::connect(&socket, deadline).await?);
            }
            LocalMode::Never => {
                client.session(deadline).await?;
            }
            LocalMode::Fallback(socket) => match client.session(deadline).await {
                Ok(_) => {}
                Err(no_broker @ RpcError::NoBroker { .. }) => {
                    match LocalClient::connect(&socket, deadline).await {
                        Ok(local) => {
                            info!(socket = %socket.display(), "no broker: calling the host on this machine's local socket");
                            client.local = Some(local);
                        }
                        // Neither: the broker is what the caller configured.
                        Err(_) => return Err(no_broker),
                    }
                }
                Err(e) => return Err(e),
            },
        }
        Ok(client)
    }

    /// The transport this client uses: the broker, or a host's local socket.
    pub fn transport(&self) -> Transport {
        if self.local.is_some() {
            Transport::Local
        } else {
            Transport::Broker
        }
    }

    /// The options it was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Closes the connection with AMQP `connection.close`, waiting at most
    /// [`CLOSE_GRACE`] for the broker's answer (none is tried while the
    /// broker blocks the connection: it reads nothing then). A later call
    /// opens a new connection.
    pub async fn close(&self) {
        let session = self
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(session) = session {
            session.close().await;
        }
    }

    /// The live session, reconnecting if the last one was lost; connecting
    /// ends at `deadline` or after the connect timeout, whichever is first.
    async fn session(&self, deadline: Instant) -> Result<Arc<Session>, RpcError> {
        if let Some(live) = self.live_session() {
            return Ok(live);
        }
        let started = Instant::now();
        let bound = deadline.min(started + self.options.connect_timeout);
        let opened = tokio::time::timeout_at(bound, async {
            let _one_at_a_time = self.reconnect.lock().await;
            if let Some(live) = self.live_session() {
                return Ok(live);
            }
            let left = bound.saturating_duration_since(Instant::now());
            let session = Arc::new(Session::open(&self.options, left, bound).await?);
            *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&session));
            Ok(session)
        })
        .await;
        opened.unwrap_or_else(|_| {
            Err(self.unavailable(format!(
                "no answer within {} ms while connecting (is the broker frozen or overloaded?)",
                millis(bound.saturating_duration_since(started))
            )))
        })
    }

    fn live_session(&self) -> Option<Arc<Session>> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|s| !matches!(*s.link.borrow(), Link::Lost(_)))
            .cloned()
    }

    fn unavailable(&self, reason: impl Into<String>) -> RpcError {
        RpcError::BrokerUnavailable {
            url: redact(&self.options.url),
            reason: reason.into(),
        }
    }

    /// The error for a step that ended early; `method`, `timeout` and
    /// `waiting_for` describe a deadline that passed.
    fn stalled(
        &self,
        stall: Stall,
        method: &str,
        timeout: Duration,
        waiting_for: &'static str,
    ) -> RpcError {
        match stall {
            Stall::Blocked(reason)
            | Stall::Deadline {
                blocked: Some(reason),
            } => RpcError::Blocked {
                url: redact(&self.options.url),
                reason,
            },
            Stall::Lost(reason) => self.unavailable(reason),
            Stall::Nack => self.unavailable("the broker refused the request (nack)"),
            Stall::Deadline { blocked: None } => RpcError::Timeout {
                method: method.to_owned(),
                timeout_ms: millis(timeout),
                waiting_for,
            },
        }
    }

    /// Asks the name services which route serves `method` (a bare name
    /// such as `fibo` or a qualified one such as `math.fibo`).
    pub async fn find(&self, method: &str) -> Result<String, RpcError> {
        let reply = self.find_reply(method, self.options.find_timeout).await?;
        reply.route.ok_or_else(|| RpcError::MethodNotFound {
            method: method.to_owned(),
        })
    }

    /// Like [`Client::find`], with the whole answer (host, plugin, version);
    /// a "not here" answer (`route: None`) when nobody has the method.
    /// `timeout` covers a reconnect too.
    pub async fn find_reply(
        &self,
        method: &str,
        timeout: Duration,
    ) -> Result<v2::FindReply, RpcError> {
        self.resolve(method, timeout).await.map(|found| found.reply)
    }

    /// Resolves `method` to one route, by the rules of `docs/protocol.md`
    /// ("Qualified names", "Ambiguity"): a qualified name takes the first
    /// answer with a route; a bare name waits [`ClientOptions::answer_window`]
    /// after the first answer with a route for the other name services and
    /// fails with [`RpcError::Ambiguous`] when they point at different
    /// plugins. When no v2 name service answers within
    /// [`ClientOptions::v1_fallback_after`], a v1 find goes out as well and
    /// v1 answers count ([`Found::protocol`] says which answered). Returns a
    /// "not here" answer (`route: None`) when only such answers came.
    pub async fn resolve(&self, method: &str, timeout: Duration) -> Result<Found, RpcError> {
        let answers = self.find_answers(method, timeout, false).await?;
        if answers.iter().all(|f| f.reply.route.is_none()) {
            // Only "not here" answers (find_answers never returns none).
            return answers
                .into_iter()
                .next()
                .ok_or_else(|| RpcError::MethodNotFound {
                    method: method.to_owned(),
                });
        }
        pick(method, answers)
    }

    /// Every name service's answer for `method` (`plughost find --all`):
    /// waits [`ClientOptions::answer_window`] after the first answer
    /// (falling back to v1 as [`Client::resolve`] does).
    pub async fn find_all(&self, method: &str, timeout: Duration) -> Result<Vec<Found>, RpcError> {
        self.find_answers(method, timeout, true).await
    }

    /// Every host's per-method counters (`plughost stats`): publishes a
    /// stats request on the name-service fanout and gathers the answers
    /// that come within `window`. Over the broker only: the local socket
    /// reaches one host, whose `/metrics` says more.
    pub async fn stats(&self, window: Duration) -> Result<Vec<v2::StatsReply>, RpcError> {
        if self.local.is_some() {
            return Err(self.unavailable(
                "stats are asked of every host over the broker; this client uses the local socket",
            ));
        }
        let deadline = Instant::now() + window;
        let what = "stats";
        let session = self.session(deadline).await?;
        let (id, mut replies, _guard) = session.expect_replies();
        // A find for no method: hosts that predate stats answer "not here".
        let body = serde_json::to_vec(&v2::FindRequest::new("")).unwrap_or_default();
        let props = session
            .request_props(&id, window)
            .with_type(v2::STATS_REQUEST_TYPE.into());
        session
            .publish(&self.options.exchanges.ns, "", &body, props, deadline)
            .await
            .map_err(|s| self.stalled(s, what, window, "the broker to take the stats request"))?;
        let link = session.link.subscribe();
        let mut answers = Vec::new();
        loop {
            match bounded(replies.recv(), &link, deadline, false).await {
                Ok(Some(Incoming::Returned)) => {
                    return Err(RpcError::NoNameService {
                        exchange: self.options.exchanges.ns.clone(),
                    })
                }
                Ok(Some(Incoming::Reply(body))) => {
                    // Answers of hosts without stats are find replies: skipped.
                    if let Ok(reply) = serde_json::from_slice::<v2::StatsReply>(&body) {
                        answers.push(reply);
                    }
                }
                Ok(None) => return Err(self.unavailable("connection lost while waiting for stats")),
                Err(Stall::Deadline { .. }) => break,
                Err(stall) => return Err(self.stalled(stall, what, window, "stats answers")),
            }
        }
        answers.sort_by(|a, b| a.host.cmp(&b.host));
        Ok(answers)
    }

    /// `describe`: the signature of `method` (parameter names, JSON Schema
    /// types, which are optional, and the result's schema), from the name
    /// service of a host that serves it, with the same ambiguity rule as a
    /// find. Only v2 hosts describe methods.
    pub async fn describe(&self, method: &str, timeout: Duration) -> Result<Found, RpcError> {
        let request = v2::FindRequest {
            method: method.to_owned(),
            describe: true,
            claimant: None,
        };
        let answers = self.gather(request, timeout, false).await?;
        let found = pick(method, answers)?;
        match found.reply.signature {
            Some(_) => Ok(found),
            None => Err(RpcError::MethodNotFound {
                method: method.to_owned(),
            }),
        }
    }

    /// The v2 answers to a find that carries `request` (with a claimant:
    /// a host's collision check), waiting the answer window after the
    /// first; no v1 fallback.
    pub async fn find_as(
        &self,
        request: v2::FindRequest,
        timeout: Duration,
    ) -> Result<Vec<Found>, RpcError> {
        self.gather(request, timeout, true).await
    }

    async fn find_answers(
        &self,
        method: &str,
        timeout: Duration,
        all: bool,
    ) -> Result<Vec<Found>, RpcError> {
        self.gather(v2::FindRequest::new(method), timeout, all)
            .await
    }

    /// Publishes a v2 find (and, when no v2 answer comes in time, a v1
    /// find) and gathers the answers: until the deadline, or a short window
    /// after the first answer. With `all` false a qualified name ends at its
    /// first answer with a route. Fails when no answer came at all.
    async fn gather(
        &self,
        request: v2::FindRequest,
        timeout: Duration,
        all: bool,
    ) -> Result<Vec<Found>, RpcError> {
        let method = request.method.clone();
        let deadline = Instant::now() + timeout;
        if let Some(local) = &self.local {
            // One host answers: its answer is the only one.
            let reply = local.find(&request, deadline).await?;
            return Ok(vec![Found {
                reply,
                protocol: Protocol::V2,
            }]);
        }
        let what = format!("find {method}");
        let session = self.session(deadline).await?;
        let (id, mut replies, _guard) = session.expect_replies();
        let body = serde_json::to_vec(&request).unwrap_or_default();
        let props = session.request_props(&id, timeout);
        session
            .publish(&self.options.exchanges.ns, "", &body, props, deadline)
            .await
            .map_err(|s| self.stalled(s, &what, timeout, "the broker to take the find"))?;
        let link = session.link.subscribe();
        let mut give_up = deadline;
        // v1 name services never describe nor check claims.
        let mut v1_at = match self.options.v1_fallback_after {
            Some(after) if !request.describe && request.claimant.is_none() => {
                Some(Instant::now() + after)
            }
            _ => None,
        };
        let mut v1: Option<(mpsc::UnboundedReceiver<Incoming>, PendingGuard<'_>)> = None;
        let mut v2_answers: Vec<Found> = Vec::new();
        let mut v1_answers: Vec<Found> = Vec::new();
        loop {
            let wake = v1_at.map_or(give_up, |at| at.min(give_up));
            let next = async {
                match v1.as_mut() {
                    Some((v1_rx, _)) => tokio::select! {
                        body = replies.recv() => (Protocol::V2, body),
                        body = v1_rx.recv() => (Protocol::V1, body),
                    },
                    None => (Protocol::V2, replies.recv().await),
                }
            };
            match bounded(next, &link, wake, false).await {
                Ok((_, None)) => {
                    return Err(self.unavailable("connection lost while waiting for a find answer"))
                }
                Ok((Protocol::V2, Some(Incoming::Returned))) => {
                    // No name service's queue is bound to the exchange.
                    return Err(RpcError::NoNameService {
                        exchange: self.options.exchanges.ns.clone(),
                    });
                }
                // A v1 find nobody took: old name services are not there.
                Ok((Protocol::V1, Some(Incoming::Returned))) => v1 = None,
                Ok((Protocol::V2, Some(Incoming::Reply(body)))) => {
                    let reply: v2::FindReply = serde_json::from_slice(&body)
                        .map_err(|e| RpcError::BadReply(e.to_string()))?;
                    // A v2 name service answered: this is a v2 deployment.
                    v1_at = None;
                    v1 = None;
                    let found = reply.route.is_some();
                    v2_answers.push(Found {
                        reply,
                        protocol: Protocol::V2,
                    });
                    if found && !all && is_qualified(&method) {
                        return Ok(v2_answers);
                    }
                    let window = if found {
                        self.options.answer_window
                    } else {
                        self.options.not_found_grace
                    };
                    if v2_answers.len() == 1 || found {
                        give_up = give_up.min(Instant::now() + window);
                    }
                }
                Ok((Protocol::V1, Some(Incoming::Reply(body)))) => {
                    let Some(route) = v1::parse_find_reply(&body) else {
                        continue;
                    };
                    v1_answers.push(Found {
                        reply: v2::FindReply {
                            method: method.clone(),
                            route: Some(route),
                            host: V1_NAME_SERVICE.to_owned(),
                            plugin: None,
                            version: None,
                            signature: None,
                        },
                        protocol: Protocol::V1,
                    });
                    give_up = give_up.min(Instant::now() + self.options.answer_window);
                }
                Err(Stall::Deadline { .. }) if v1_at.is_some_and(|at| Instant::now() >= at) => {
                    v1_at = None;
                    match self.send_v1_find(&session, &method, deadline).await {
                        Ok(expecting) => v1 = Some(expecting),
                        // The old tools may not be there at all: keep waiting for v2.
                        Err(e) => debug!(error = %e, "v1 find not sent"),
                    }
                }
                Err(Stall::Deadline { .. }) if !v2_answers.is_empty() => return Ok(v2_answers),
                Err(Stall::Deadline { .. }) if !v1_answers.is_empty() => return Ok(v1_answers),
                Err(stall) => return Err(self.stalled(stall, &what, timeout, "a find answer")),
            }
        }
    }

    /// Publishes a v1 find (`docs/wire.md` §1) for `method`; its answers
    /// arrive on the session's v1 queue under the returned id.
    async fn send_v1_find<'s>(
        &self,
        session: &'s Session,
        method: &str,
        deadline: Instant,
    ) -> Result<(mpsc::UnboundedReceiver<Incoming>, PendingGuard<'s>), RpcError> {
        let what = format!("v1 find {method}");
        let timeout = deadline.saturating_duration_since(Instant::now());
        let rpc = &self.options.exchanges.rpc;
        let queue = session
            .v1_queue(deadline)
            .await
            .map_err(|s| self.stalled(s, &what, timeout, "the v1 reply queue"))?;
        let key = format!("{}.RpcNameServiceClient", queue.name);
        session
            .v1_bind(queue, rpc, &key, deadline)
            .await
            .map_err(|s| self.stalled(s, &what, timeout, "the v1 reply binding"))?;
        let (id, rx, guard) = session.expect_replies();
        let body = v1::FindRequest {
            method: method.to_owned(),
            exchange: rpc.clone(),
            key,
        }
        .encode();
        let props = BasicProperties::default().with_correlation_id(id.as_str().into());
        session
            .publish(&self.options.exchanges.ns, "", &body, props, deadline)
            .await
            .map_err(|s| self.stalled(s, &what, timeout, "the broker to take the v1 find"))?;
        Ok((rx, guard))
    }

    /// Calls `method` with typed arguments and returns its result decoded
    /// as `T`, with the default timeout (find included).
    ///
    /// `args` is anything serde turns into a JSON array (positional
    /// arguments: a tuple, a `Vec`, a slice) or object (named arguments: a
    /// struct or map). Use `T = serde_json::Value` to take the result as it
    /// came.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), plughost_client::RpcError> {
    /// use plughost_client::{Client, ClientOptions};
    ///
    /// let client = Client::connect(ClientOptions::new("amqp://guest:guest@127.0.0.1:5672/%2f")).await?;
    /// let n: u64 = client.call("fibo", (10,)).await?;
    /// assert_eq!(n, 55);
    /// client.close().await;
    /// # Ok(()) }
    /// ```
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        args: impl Serialize,
    ) -> Result<T, RpcError> {
        let args = encode_args(method, &args)?;
        let args = match &args {
            Value::Object(named) => Args::Named(named),
            Value::Array(positional) => Args::Positional(positional),
            _ => Args::Positional(&[]),
        };
        let deadline = Instant::now() + self.options.timeout;
        let answer = self.call_answer(method, args, deadline).await?;
        decode_result(method, answer.value)
    }

    /// Calls `method` with JSON arguments and returns the JSON result, with
    /// the default timeout (find included).
    pub async fn call_json(&self, method: &str, args: &[Value]) -> Result<Value, RpcError> {
        self.call_with_timeout(method, args, self.options.timeout)
            .await
    }

    /// [`Client::call_json`] with an explicit timeout (find and any reconnect
    /// included).
    pub async fn call_with_timeout(
        &self,
        method: &str,
        args: &[Value],
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        self.call_until(method, args, Instant::now() + timeout)
            .await
    }

    /// [`Client::call`] ending at `deadline`, for a caller whose deadline
    /// also covered earlier steps (the CLI's `--timeout` covers its connect).
    pub async fn call_until(
        &self,
        method: &str,
        args: &[Value],
        deadline: Instant,
    ) -> Result<Value, RpcError> {
        self.call_answer(method, Args::Positional(args), deadline)
            .await
            .map(|answer| answer.value)
    }

    /// Calls `method` (bare or qualified) with positional or named
    /// arguments, ending at `deadline`: the find (when the route is not
    /// cached) counts against the same deadline as the call itself. The
    /// answer says which protocol served it (v1 when only old services
    /// have the method).
    pub async fn call_answer(
        &self,
        method: &str,
        args: Args<'_>,
        deadline: Instant,
    ) -> Result<Answer, RpcError> {
        let cached = lock(&self.routes).get(method).cloned();
        let target = match cached {
            Some(target) => target,
            None => self.find_and_cache(method, deadline).await?,
        };
        let (route, protocol) = target;
        let (route, protocol, value) = match self
            .call_target((&route, protocol), method, args, deadline)
            .await
        {
            Err(RpcError::NoRoute { .. }) => {
                // The route moved or its hosts left: forget it and ask again once.
                lock(&self.routes).remove(method);
                let (route, protocol) = self.find_and_cache(method, deadline).await?;
                let value = self
                    .call_target((&route, protocol), method, args, deadline)
                    .await;
                (route, protocol, value)
            }
            value => (route, protocol, value),
        };
        Ok(Answer {
            value: value?,
            protocol,
            route,
        })
    }

    async fn call_target(
        &self,
        (route, protocol): (&str, Protocol),
        method: &str,
        args: Args<'_>,
        deadline: Instant,
    ) -> Result<Value, RpcError> {
        match protocol {
            Protocol::V2 => self.call_route_until(route, method, args, deadline).await,
            Protocol::V1 => self.call_route_v1(route, method, args, deadline).await,
        }
    }

    async fn find_and_cache(
        &self,
        method: &str,
        deadline: Instant,
    ) -> Result<(String, Protocol), RpcError> {
        // The call's deadline bounds the find, not the find timeout: one
        // deadline for the whole call.
        let left = deadline.saturating_duration_since(Instant::now());
        let found = self.resolve(method, left).await?;
        let route = found.reply.route.ok_or_else(|| RpcError::MethodNotFound {
            method: method.to_owned(),
        })?;
        let target = (route, found.protocol);
        lock(&self.routes).insert(method.to_owned(), target.clone());
        Ok(target)
    }

    /// Calls `method` on a known route, skipping the name service.
    pub async fn call_route(
        &self,
        route: &str,
        method: &str,
        args: &[Value],
    ) -> Result<Value, RpcError> {
        self.call_route_until(
            route,
            method,
            Args::Positional(args),
            Instant::now() + self.options.timeout,
        )
        .await
    }

    /// Calls `method` on a known route with the protocol a find answered
    /// with ([`Found::protocol`]): `plughost bench` against old services.
    pub async fn call_found(&self, found: &Found, args: &[Value]) -> Result<Value, RpcError> {
        let method = found.reply.method.as_str();
        let Some(route) = found.reply.route.as_deref() else {
            return Err(RpcError::MethodNotFound {
                method: method.to_owned(),
            });
        };
        let deadline = Instant::now() + self.options.timeout;
        self.call_target(
            (route, found.protocol),
            method,
            Args::Positional(args),
            deadline,
        )
        .await
    }

    async fn call_route_until(
        &self,
        route: &str,
        method: &str,
        args: Args<'_>,
        deadline: Instant,
    ) -> Result<Value, RpcError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        if timeout.is_zero() {
            return Err(self.stalled(
                Stall::Deadline { blocked: None },
                method,
                timeout,
                "a route",
            ));
        }
        if let Some(local) = &self.local {
            // One host: the route names nothing to choose between.
            return local.call(method, &args, deadline).await;
        }
        let session = self.session(deadline).await?;
        let (id, mut replies, _guard) = session.expect_replies();
        let body = serde_json::to_vec(&OutgoingCall { method, args }).map_err(|e| {
            RpcError::Arguments {
                method: method.to_owned(),
                reason: format!("they do not encode as JSON: {e}"),
            }
        })?;
        let props = session.request_props(&id, timeout);
        let target = (self.options.exchanges.rpc.as_str(), route);
        let body = self
            .request_reply(
                &session,
                &mut replies,
                target,
                &body,
                props,
                method,
                (timeout, deadline),
            )
            .await?;
        match serde_json::from_slice::<v2::CallReply>(&body) {
            Ok(v2::CallReply::Result(value)) => Ok(value),
            Ok(v2::CallReply::Error(e)) => Err(RpcError::Remote {
                code: e.code,
                message: e.message,
                help: e.help,
            }),
            Err(e) => Err(RpcError::BadReply(e.to_string())),
        }
    }

    /// Publishes a call to `(exchange, route)` and waits for its reply
    /// body, both by the deadline (`timeout` is the whole budget, for the
    /// error); a call the broker returns is [`RpcError::NoRoute`].
    #[allow(clippy::too_many_arguments)]
    async fn request_reply(
        &self,
        session: &Session,
        replies: &mut mpsc::UnboundedReceiver<Incoming>,
        (exchange, route): (&str, &str),
        body: &[u8],
        props: BasicProperties,
        method: &str,
        (timeout, deadline): (Duration, Instant),
    ) -> Result<Vec<u8>, RpcError> {
        let to_confirm = "the broker to confirm the request";
        let link = session.link.subscribe();
        // With confirms, the confirm is waited for. Without, the request's
        // frames are only queued: the call goes on to wait for its reply
        // and looks at the write when it needs to know ([`Sending`]).
        let mut sending = if session.confirms {
            session
                .publish(exchange, route, body, props, deadline)
                .await
                .map_err(|s| self.stalled(s, method, timeout, to_confirm))?;
            None
        } else {
            let start = async { session.start_publish(exchange, route, body, props) };
            let sending = bounded(start, &link, deadline, true)
                .await
                .and_then(|sending| sending)
                .map_err(|s| self.stalled(s, method, timeout, to_confirm))?;
            Some(sending)
        };
        let (outcome, broker_answered) = {
            // The broker blocking publishers fails the call only while its
            // request is not written (as when the write is waited for).
            let unwritten = || {
                sending
                    .as_mut()
                    .is_some_and(|s| matches!(s.look(), Ok(false)))
            };
            let wait = bounded_unless(replies.recv(), &link, deadline, unwritten);
            tokio::pin!(wait);
            // Without confirms, a reply slow in coming makes the session ask
            // the broker for a sign of life, so a timeout can say whether the
            // broker or the host went quiet (with confirms, the broker's
            // confirm said it already).
            let probe_at = Instant::now() + (timeout / 2).min(PROBE_AFTER);
            if session.confirms {
                (wait.await, true)
            } else {
                tokio::select! {
                    outcome = &mut wait => (outcome, true),
                    () = tokio::time::sleep_until(probe_at) => {
                        let probe = session.probe();
                        tokio::pin!(probe);
                        let mut answered = false;
                        loop {
                            tokio::select! {
                                outcome = &mut wait => break (outcome, answered),
                                () = &mut probe, if !answered => answered = true,
                            }
                        }
                    }
                }
            }
        };
        match outcome {
            Ok(Some(Incoming::Reply(body))) => Ok(body),
            Ok(Some(Incoming::Returned)) => Err(RpcError::NoRoute {
                route: route.to_owned(),
            }),
            Ok(None) => Err(self.unavailable("connection lost while waiting for the reply")),
            Err(stall @ Stall::Deadline { blocked: None }) => {
                let waiting_for = match sending.as_mut().map_or(Ok(true), Sending::look) {
                    Err(reason) => {
                        return Err(self.stalled(session.lose(reason), method, timeout, to_confirm))
                    }
                    // The broker never took the request off the connection.
                    Ok(false) => to_confirm,
                    Ok(true) if !broker_answered => {
                        "the broker to confirm the request (it answered nothing after taking it)"
                    }
                    Ok(true) => "the reply",
                };
                Err(self.stalled(stall, method, timeout, waiting_for))
            }
            Err(stall) => Err(self.stalled(stall, method, timeout, "the reply")),
        }
    }

    /// A v1 call (`docs/wire.md` §1) to an old service: text arguments
    /// (strings bare, anything else as JSON text), the answer on
    /// `<route>.result`. A `Success` text is read as JSON when it parses,
    /// else as a string; a `Failure` is a 500 with the old service's text.
    async fn call_route_v1(
        &self,
        route: &str,
        method: &str,
        args: Args<'_>,
        deadline: Instant,
    ) -> Result<Value, RpcError> {
        let Args::Positional(args) = args else {
            return Err(RpcError::V1NamedArguments {
                method: method.to_owned(),
            });
        };
        let timeout = deadline.saturating_duration_since(Instant::now());
        let session = self.session(deadline).await?;
        let rpc = &self.options.exchanges.rpc;
        let queue = session
            .v1_queue(deadline)
            .await
            .map_err(|s| self.stalled(s, method, timeout, "the v1 reply queue"))?;
        session
            .v1_bind(queue, rpc, &v1::result_key(route), deadline)
            .await
            .map_err(|s| self.stalled(s, method, timeout, "the v1 reply binding"))?;
        let (id, mut replies, _guard) = session.expect_replies();
        // A v1 method name is bare: the old services know nothing else.
        let bare = method.split_once('.').map_or(method, |(_, m)| m);
        let body = v1::CallRequest {
            method: bare.to_owned(),
            reply_exchange: rpc.clone(),
            args: args.iter().map(v1::result_text).collect(),
        }
        .encode();
        let props = BasicProperties::default()
            .with_correlation_id(id.as_str().into())
            .with_expiration(timeout.as_millis().max(1).to_string().into());
        let body = self
            .request_reply(
                &session,
                &mut replies,
                (rpc, route),
                &body,
                props,
                method,
                (timeout, deadline),
            )
            .await?;
        match v1::CallReply::parse(&body) {
            Some(v1::CallReply::Success(text)) => Ok(v1::arg_value(&text)),
            Some(v1::CallReply::Failure(message)) => Err(RpcError::Remote {
                code: v2::codes::FAILED,
                message,
                help: None,
            }),
            None => Err(RpcError::BadReply(format!(
                "v1 reply is neither Success nor Failure: {:?}",
                String::from_utf8_lossy(&body)
            ))),
        }
    }
}

/// The host name a v1 find answer is shown with: the old name service does
/// not say who it is.
pub const V1_NAME_SERVICE: &str = "(v1 name service)";

/// The answer a call goes to: the first with a route, unless `method` is
/// bare and the answers name different plugins (the ambiguity rule).
fn pick(method: &str, answers: Vec<Found>) -> Result<Found, RpcError> {
    let mut positives: Vec<Found> = answers
        .into_iter()
        .filter(|f| f.reply.route.is_some())
        .collect();
    if positives.is_empty() {
        return Err(RpcError::MethodNotFound {
            method: method.to_owned(),
        });
    }
    if !is_qualified(method) {
        let mut owners: Vec<&str> = positives.iter().map(Found::owner).collect();
        owners.sort_unstable();
        owners.dedup();
        if owners.len() > 1 {
            let mut candidates: Vec<String> = positives
                .iter()
                .map(|f| match f.reply.qualified() {
                    Some(q) => format!("{q} on host {}", f.reply.host),
                    None => format!("route {} of a v1 service", f.owner()),
                })
                .collect();
            candidates.sort();
            candidates.dedup();
            return Err(RpcError::Ambiguous {
                method: method.to_owned(),
                candidates,
            });
        }
    }
    Ok(positives.swap_remove(0))
}

/// `plugin.method` rather than a bare `method`.
fn is_qualified(method: &str) -> bool {
    method.contains('.')
}

/// One name service's answer to a find.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The answer (a v1 answer has only the method and its route; its
    /// host is [`V1_NAME_SERVICE`]).
    pub reply: v2::FindReply,
    /// Which protocol the name service spoke.
    pub protocol: Protocol,
}

impl Found {
    /// What the ambiguity rule compares: the plugin, or for a v1 answer
    /// (which names none) its route.
    fn owner(&self) -> &str {
        self.reply
            .plugin
            .as_deref()
            .or(self.reply.route.as_deref())
            .unwrap_or_default()
    }
}

/// A call's arguments: positional (a JSON array) or named (a JSON object,
/// matched to the method's parameter names; trailing optionals may be left
/// out either way).
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(untagged)]
pub enum Args<'a> {
    /// `[10]`
    Positional(&'a [Value]),
    /// `{"n": 10}`
    Named(&'a serde_json::Map<String, Value>),
}

/// A call's result and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The method's result.
    pub value: Value,
    /// Which protocol served it.
    pub protocol: Protocol,
    /// The route it was served on.
    pub route: String,
}

/// Typed arguments as the JSON the wire carries: an array (positional)
/// or an object (named); anything else is refused before a message is sent.
fn encode_args(method: &str, args: &impl Serialize) -> Result<Value, RpcError> {
    let refuse = |reason: String| RpcError::Arguments {
        method: method.to_owned(),
        reason,
    };
    match serde_json::to_value(args) {
        Ok(value @ (Value::Array(_) | Value::Object(_))) => Ok(value),
        Ok(Value::Null) => Ok(Value::Array(Vec::new())),
        Ok(other) => Err(refuse(format!(
            "they must be a JSON array (positional: a tuple such as `(10,)`) or object (named), not `{other}`"
        ))),
        Err(e) => Err(refuse(format!("they do not encode as JSON: {e}"))),
    }
}

/// A result decoded as the type the caller asked for.
fn decode_result<T: DeserializeOwned>(method: &str, value: Value) -> Result<T, RpcError> {
    serde_json::from_value(value.clone()).map_err(|e| RpcError::UnexpectedResult {
        method: method.to_owned(),
        expected: std::any::type_name::<T>(),
        result: value.to_string().chars().take(200).collect(),
        reason: e.to_string(),
    })
}

/// Consumes a reply queue without acks: a reply is read once or lost with
/// its connection, never redelivered to another caller.
async fn consume_replies(
    channel: &Channel,
    queue: &str,
    tag: &str,
) -> lapin::Result<lapin::Consumer> {
    channel
        .basic_consume(
            queue.into(),
            tag.into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
}

impl Session {
    /// Connects within `timeout` and sets up the channel and
    /// the reply consumer by `bound`.
    async fn open(
        options: &ClientOptions,
        timeout: Duration,
        bound: Instant,
    ) -> Result<Self, RpcError> {
        let name = format!("plughost client ({})", std::process::id());
        let urls = BrokerUrls::new(options.url.as_str(), &options.fallback_urls);
        let (conn, index) = urls.connect(&options.tls, &name, timeout).await?;
        let url = redact(urls.get(index));
        let link = Arc::new(watch::Sender::new(Link::Open));
        let mut tasks = Tasks(vec![tokio::spawn(follow_events(
            conn.events_listener(),
            Arc::clone(&link),
            url.clone(),
        ))]);
        if conn.status().blocked() {
            // Blocked before our listener existed: the reason was not kept.
            link.send_replace(Link::Blocked(
                "connection.blocked (a memory or disk alarm)".into(),
            ));
        }
        let fail = |what: &str, e: lapin::Error| RpcError::BrokerUnavailable {
            url: url.clone(),
            reason: format!("{what}: {e}"),
        };
        let confirms = options.publisher_confirms.enabled(options);
        let setup = async {
            let channel = conn
                .create_channel()
                .await
                .map_err(|e| fail("create channel", e))?;
            if confirms {
                channel
                    .confirm_select(lapin::options::ConfirmSelectOptions::default())
                    .await
                    .map_err(|e| fail("enable confirms", e))?;
            }
            let reply_to = match options.reply_mode {
                ReplyMode::DirectReplyTo => "amq.rabbitmq.reply-to".to_owned(),
                ReplyMode::ExclusiveQueue => declare_private_queue(&channel)
                    .await
                    .map_err(|e| fail("declare reply queue", e))?,
            };
            let consumer = consume_replies(&channel, &reply_to, "plughost-replies")
                .await
                .map_err(|e| fail("consume replies", e))?;
            Ok::<_, RpcError>((channel, reply_to, consumer))
        };
        let (channel, reply_to, consumer) = match bounded(setup, &link.subscribe(), bound, true)
            .await
        {
            Ok(ready) => ready?,
            Err(Stall::Blocked(reason)) => return Err(RpcError::Blocked { url, reason }),
            Err(Stall::Lost(reason)) => return Err(fail_text(&url, "set up the channel", reason)),
            Err(_) => {
                return Err(fail_text(
                    &url,
                    "set up the channel",
                    "no answer in time (is the broker frozen or overloaded?)".into(),
                ))
            }
        };
        let pending: Pending = Arc::default();
        let waiting = Arc::new(Notify::new());
        tasks.0.push(tokio::spawn(read_replies(
            consumer,
            Arc::clone(&pending),
            Arc::clone(&link),
        )));
        if !confirms {
            tasks.0.push(tokio::spawn(follow_returns(
                channel.clone(),
                Arc::clone(&pending),
                Arc::clone(&waiting),
            )));
        }
        Ok(Self {
            conn: Some(conn),
            channel,
            reply_to,
            pending,
            waiting,
            confirms,
            link,
            v1: tokio::sync::OnceCell::new(),
            _tasks: tasks,
        })
    }

    /// The v1 reply queue, declared and consumed on first use, by `deadline`.
    async fn v1_queue(&self, deadline: Instant) -> Result<&V1Queue, Stall> {
        let make = async {
            let name = declare_private_queue(&self.channel).await?;
            let consumer = consume_replies(&self.channel, &name, "plughost-v1-replies").await?;
            let reader = tokio::spawn(read_replies(
                consumer,
                Arc::clone(&self.pending),
                Arc::clone(&self.link),
            ));
            Ok::<_, lapin::Error>(V1Queue {
                name,
                bound: Mutex::new(std::collections::HashSet::new()),
                _reader: Tasks(vec![reader]),
            })
        };
        match bounded(
            self.v1.get_or_try_init(|| make),
            &self.link.subscribe(),
            deadline,
            true,
        )
        .await?
        {
            Ok(queue) => Ok(queue),
            Err(e) => Err(self.lose(format!("cannot set up the v1 reply queue: {e}"))),
        }
    }

    /// Binds the v1 queue to `exchange` under `key`, once per key.
    async fn v1_bind(
        &self,
        queue: &V1Queue,
        exchange: &str,
        key: &str,
        deadline: Instant,
    ) -> Result<(), Stall> {
        if lock(&queue.bound).contains(key) {
            return Ok(());
        }
        let bind = self.channel.queue_bind(
            queue.name.as_str().into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        );
        match bounded(bind, &self.link.subscribe(), deadline, true).await? {
            Ok(()) => {
                lock(&queue.bound).insert(key.to_owned());
                Ok(())
            }
            Err(e) => Err(self.lose(format!("cannot bind the v1 reply queue: {e}"))),
        }
    }

    /// A channel error ends the session: the next call opens a new one.
    fn lose(&self, reason: String) -> Stall {
        self.link.send_replace(Link::Lost(reason.clone()));
        Stall::Lost(reason)
    }

    /// Registers a fresh correlation id and returns where its replies arrive.
    fn expect_replies(&self) -> (String, mpsc::UnboundedReceiver<Incoming>, PendingGuard<'_>) {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.pending).insert(id.clone(), tx);
        if !self.confirms {
            // Only a session without confirms follows returns.
            self.waiting.notify_one();
        }
        let guard = PendingGuard {
            pending: &self.pending,
            id: id.clone(),
        };
        (id, rx, guard)
    }

    fn request_props(&self, id: &str, timeout: Duration) -> BasicProperties {
        let timeout_ms = timeout.as_millis().max(1);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let mut headers = FieldTable::default();
        headers.insert(
            v2::DEADLINE_HEADER.into(),
            AMQPValue::LongLongInt(i64::try_from(now_ms + timeout_ms).unwrap_or(i64::MAX)),
        );
        BasicProperties::default()
            .with_content_type(v2::CONTENT_TYPE.into())
            .with_correlation_id(id.into())
            .with_reply_to(self.reply_to.as_str().into())
            .with_expiration(timeout_ms.to_string().into())
            .with_headers(headers)
    }

    /// A round trip to the broker on the session's channel (a `basic.qos`
    /// that changes nothing: the reply consumer takes no acks, so no
    /// prefetch applies): it finishes once the broker has answered, and
    /// never if the broker is stalled. Errors count as answers; the
    /// session's link reports a lost connection.
    async fn probe(&self) {
        let _ = self
            .channel
            .basic_qos(0, lapin::options::BasicQosOptions::default())
            .await;
    }

    /// Queues a request's frames (published mandatory) for lapin's I/O
    /// thread without waiting for them to be written: a session without
    /// confirms learns the outcome from the reply, or from [`Sending::look`].
    fn start_publish<'a>(
        &'a self,
        exchange: &str,
        key: &str,
        body: &'a [u8],
        props: BasicProperties,
    ) -> Result<Sending<'a>, Stall> {
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let write = self
            .channel
            .basic_publish(exchange.into(), key.into(), options, body, props);
        let mut sending = Sending(maybe_done(Box::pin(write)));
        match sending.look() {
            Err(reason) => Err(self.lose(reason)),
            Ok(_) => Ok(sending),
        }
    }

    /// Publishes mandatory, by `deadline`; with confirms, waits for the
    /// broker's (a nack is [`Stall::Nack`]). A message the broker returns
    /// reaches its waiting request as [`Incoming::Returned`]: with
    /// confirms from the confirm itself, without from [`follow_returns`].
    async fn publish(
        &self,
        exchange: &str,
        key: &str,
        body: &[u8],
        props: BasicProperties,
        deadline: Instant,
    ) -> Result<(), Stall> {
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let confirms = self.confirms;
        let send = async {
            let confirm = self
                .channel
                .basic_publish(exchange.into(), key.into(), options, body, props)
                .await?;
            if confirms {
                confirm.await
            } else {
                Ok(lapin::Confirmation::NotRequested)
            }
        };
        match bounded(send, &self.link.subscribe(), deadline, true).await? {
            Ok(lapin::Confirmation::Nack(_)) => Err(Stall::Nack),
            Ok(confirmation) => {
                if let Some(returned) = confirmation.take_message() {
                    hand_back(&self.pending, &returned);
                }
                Ok(())
            }
            Err(e) => {
                // A closed channel (e.g. a missing exchange) ends the session: the next call opens a new one.
                let reason = format!("cannot publish: {e}");
                self.link.send_replace(Link::Lost(reason.clone()));
                Err(Stall::Lost(reason))
            }
        }
    }

    /// Sends `connection.close` and waits up to [`CLOSE_GRACE`] for its
    /// answer, unless the connection is gone or the broker blocks it (it
    /// reads nothing then, and lapin writes nothing).
    async fn close(&self) {
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        let blocked = matches!(*self.link.borrow(), Link::Blocked(_));
        if blocked {
            debug!("the broker blocks the connection; dropping it without connection.close");
        } else if conn.status().connected() {
            match tokio::time::timeout(CLOSE_GRACE, conn.close(200, "client closed".into())).await {
                Ok(Ok(())) => debug!("client connection closed"),
                Ok(Err(e)) => debug!(error = %e, "client connection already closed"),
                Err(_) => warn!(
                    grace_ms = CLOSE_GRACE.as_millis() as u64,
                    "the broker did not answer connection.close in time; dropping the connection"
                ),
            }
        }
        self.link
            .send_replace(Link::Lost("the client closed the connection".into()));
    }
}

fn fail_text(url: &str, what: &str, reason: String) -> RpcError {
    RpcError::BrokerUnavailable {
        url: url.to_owned(),
        reason: format!("{what}: {reason}"),
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.link.send_replace(Link::Lost("session dropped".into()));
        let Some(conn) = self.conn.take() else { return };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = conn.close(200, "client closed".into()).await;
            });
        }
    }
}

/// Follows the connection's events: `connection.blocked` and `unblocked`
/// move the link between open and blocked; an error loses it for good.
async fn follow_events(
    mut events: impl futures_util::Stream<Item = lapin::Event> + Unpin,
    link: Arc<watch::Sender<Link>>,
    url: String,
) {
    while let Some(event) = events.next().await {
        match event {
            lapin::Event::ConnectionBlocked(reason) => {
                warn!(broker = %url, %reason, "the broker blocks publishing on this connection; calls fail with 503 until it unblocks");
                link.send_if_modified(|l| match l {
                    Link::Lost(_) => false,
                    _ => {
                        *l = Link::Blocked(reason);
                        true
                    }
                });
            }
            lapin::Event::ConnectionUnblocked => {
                info!(broker = %url, "the broker unblocked this connection");
                link.send_if_modified(|l| match l {
                    Link::Blocked(_) => {
                        *l = Link::Open;
                        true
                    }
                    _ => false,
                });
            }
            lapin::Event::Error(e) => {
                link.send_replace(Link::Lost(format!("connection lost: {e}")));
                return;
            }
            _ => {}
        }
    }
    link.send_replace(Link::Lost("the connection's event stream ended".into()));
}

/// A request's frames queued on its session's channel, looked at without
/// asking to be woken when lapin's I/O thread has written them.
///
/// Awaiting the write would cost every call a thread wake-up (lapin's I/O
/// thread waking the caller's task) while the call waits for its reply
/// anyway, and a reply proves the write. So a session without confirms
/// looks only when it must: when the broker blocks publishing (a call
/// fails on a block only while its request is unwritten, as when the write
/// was awaited) and at the deadline, to say what it waited for. This cut
/// the client's CPU per call by 14-30% and gave `plughost bench call`
/// about 7% more calls/s at 64 in flight (`docs/benchmarks.md`).
struct Sending<'a>(
    MaybeDone<Pin<Box<dyn Future<Output = lapin::Result<PublisherConfirm>> + Send + 'a>>>,
);

impl Sending<'_> {
    /// Whether the frames are written (`Ok(true)`) or still queued
    /// (`Ok(false)`); `Err` says why they never will be.
    fn look(&mut self) -> Result<bool, String> {
        let mut sending = Pin::new(&mut self.0);
        let _ = sending
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        match sending.output_mut() {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(format!("cannot publish: {e}")),
        }
    }
}

/// Tells the request a returned message belongs to (by its correlation
/// id) that no queue took it.
fn hand_back(pending: &Pending, returned: &lapin::message::BasicReturnMessage) {
    let Some(id) = returned.properties.correlation_id() else {
        return;
    };
    if let Some(tx) = lock(pending).get(id.as_str()) {
        let _ = tx.send(Incoming::Returned);
    }
}

/// Hands each message the broker returned (mandatory, and no queue took
/// it) to the request with its correlation id. lapin keeps a channel's
/// returns in a list that only `wait_for_confirms` drains (at once, on a
/// channel without confirms), and announces nothing, so this drains it
/// every [`RETURN_POLL`] while requests wait, and sleeps otherwise.
async fn follow_returns(channel: Channel, pending: Pending, waiting: Arc<Notify>) {
    loop {
        if lock(&pending).is_empty() {
            waiting.notified().await;
            continue;
        }
        tokio::time::sleep(RETURN_POLL).await;
        let Ok(returned) = channel.wait_for_confirms().await else {
            return; // the channel is gone; the session ends with it
        };
        for message in returned {
            hand_back(&pending, &message);
        }
    }
}

/// Hands each reply to the call waiting for its correlation id; when the
/// consumer ends, loses the link and fails every waiting call at once.
async fn read_replies(
    mut consumer: lapin::Consumer,
    pending: Pending,
    link: Arc<watch::Sender<Link>>,
) {
    while let Some(Ok(delivery)) = consumer.next().await {
        let Some(id) = delivery.properties.correlation_id() else {
            continue;
        };
        if let Some(tx) = lock(&pending).get(id.as_str()) {
            let _ = tx.send(Incoming::Reply(delivery.data));
        }
    }
    link.send_if_modified(|l| match l {
        Link::Lost(_) => false,
        _ => {
            *l = Link::Lost("the reply consumer ended (connection lost)".into());
            true
        }
    });
    lock(&pending).clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirms_by_default_only_when_the_client_knows_several_nodes() {
        let mut options = ClientOptions::new("amqp://a");
        assert_eq!(options.publisher_confirms, PublisherConfirms::Auto);
        assert!(!options.publisher_confirms.enabled(&options), "one URL");
        options.fallback_urls = vec!["amqp://b".into()];
        assert!(options.publisher_confirms.enabled(&options), "a cluster");
        assert!(!PublisherConfirms::Off.enabled(&options));
        options.fallback_urls.clear();
        assert!(PublisherConfirms::On.enabled(&options));
    }

    fn answer(method: &str, host: &str, plugin: Option<&str>, route: Option<&str>) -> Found {
        Found {
            reply: v2::FindReply {
                method: method.into(),
                route: route.map(Into::into),
                host: host.into(),
                plugin: plugin.map(Into::into),
                version: plugin.map(|_| "0.1.0".into()),
                signature: None,
            },
            protocol: Protocol::V2,
        }
    }

    #[test]
    fn a_bare_name_resolves_only_when_every_answer_names_one_plugin() {
        let a = answer("greet", "a", Some("echo"), Some("r.echo"));
        let b = answer("greet", "b", Some("hello"), Some("r.hello"));
        let a2 = answer("greet", "c", Some("echo"), Some("r.echo"));
        let not_here = answer("greet", "d", None, None);

        let same = pick("greet", vec![not_here.clone(), a.clone(), a2]).unwrap();
        assert_eq!(same.reply.host, "a");

        let err = pick("greet", vec![a.clone(), not_here.clone(), b.clone()]).unwrap_err();
        assert_eq!(err.code(), 409);
        assert_eq!(
            err.to_string(),
            "method `greet` is ambiguous: it is served by echo.greet on host a, hello.greet on host b; call one of them by its qualified name"
        );

        // A qualified name takes its answer whatever else answered.
        let q = answer("hello.greet", "b", Some("hello"), Some("r.hello"));
        assert_eq!(pick("hello.greet", vec![q]).unwrap().reply.host, "b");
        assert_eq!(
            pick("greet", vec![not_here]).unwrap_err().code(),
            404,
            "only \"not here\" answers"
        );
    }

    /// The deadline and link rules of a call step, on tokio's paused clock:
    /// no broker, no real waiting.
    async fn elapsed_and<T>(
        f: impl Future<Output = Result<T, Stall>>,
    ) -> (Duration, Result<T, Stall>) {
        let started = Instant::now();
        let outcome = f.await;
        (started.elapsed(), outcome)
    }

    /// A link that is open, then blocked for `reason` from `after` on.
    fn blocked_after(after: Duration, reason: &'static str) -> watch::Receiver<Link> {
        let (tx, link) = watch::channel(Link::Open);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            tx.send_replace(Link::Blocked(reason.into()));
            std::future::pending::<()>().await;
        });
        link
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_that_never_finishes_ends_at_the_deadline() {
        let (_tx, link) = watch::channel(Link::Open);
        let deadline = Instant::now() + Duration::from_secs(3);
        let (took, outcome) =
            elapsed_and(bounded(std::future::pending::<()>(), &link, deadline, true)).await;
        assert_eq!(outcome, Err(Stall::Deadline { blocked: None }));
        assert_eq!(took, Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_blocked_link_fails_a_publish_before_it_is_started() {
        let (_tx, link) = watch::channel(Link::Blocked("low on memory".into()));
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let work = {
            let started = Arc::clone(&started);
            async move { started.store(true, std::sync::atomic::Ordering::SeqCst) }
        };
        let deadline = Instant::now() + Duration::from_secs(3);
        let (took, outcome) = elapsed_and(bounded(work, &link, deadline, true)).await;
        assert_eq!(outcome, Err(Stall::Blocked("low on memory".into())));
        assert_eq!(took, Duration::ZERO);
        assert!(
            !started.load(std::sync::atomic::Ordering::SeqCst),
            "nothing was queued"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_block_during_a_publish_fails_it_at_once() {
        let link = blocked_after(Duration::from_secs(1), "low on disk");
        let deadline = Instant::now() + Duration::from_secs(3);
        let (took, outcome) =
            elapsed_and(bounded(std::future::pending::<()>(), &link, deadline, true)).await;
        assert_eq!(outcome, Err(Stall::Blocked("low on disk".into())));
        assert_eq!(took, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_wait_survives_a_block_and_names_it_at_the_deadline() {
        let link = blocked_after(Duration::from_secs(1), "low on memory");
        let deadline = Instant::now() + Duration::from_secs(3);
        let (took, outcome) = elapsed_and(bounded(
            std::future::pending::<()>(),
            &link,
            deadline,
            false,
        ))
        .await;
        assert_eq!(
            outcome,
            Err(Stall::Deadline {
                blocked: Some("low on memory".into())
            })
        );
        assert_eq!(took, Duration::from_secs(3));
    }

    /// A call without confirms does not wait for its request's write: a
    /// block fails it at once only while the request is still unwritten.
    #[tokio::test(start_paused = true)]
    async fn a_block_fails_a_reply_wait_only_while_its_request_is_unwritten() {
        for written in [false, true] {
            let link = blocked_after(Duration::from_secs(1), "low on memory");
            let looked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let unwritten = {
                let looked = Arc::clone(&looked);
                move || {
                    looked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    !written
                }
            };
            let deadline = Instant::now() + Duration::from_secs(3);
            let (took, outcome) = elapsed_and(bounded_unless(
                std::future::pending::<()>(),
                &link,
                deadline,
                unwritten,
            ))
            .await;
            assert_eq!(
                looked.load(std::sync::atomic::Ordering::SeqCst),
                1,
                "the write is looked at when the block comes, and only then"
            );
            if written {
                assert_eq!(
                    outcome,
                    Err(Stall::Deadline {
                        blocked: Some("low on memory".into())
                    })
                );
                assert_eq!(took, Duration::from_secs(3));
            } else {
                assert_eq!(outcome, Err(Stall::Blocked("low on memory".into())));
                assert_eq!(took, Duration::from_secs(1));
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unblocking_lets_a_step_finish_and_a_lost_link_ends_it() {
        let (tx, link) = watch::channel(Link::Blocked("low on memory".into()));
        tx.send_replace(Link::Open);
        let work = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            7
        };
        let deadline = Instant::now() + Duration::from_secs(3);
        assert_eq!(bounded(work, &link, deadline, true).await, Ok(7));

        tx.send_replace(Link::Lost("connection reset".into()));
        let outcome = bounded(std::future::pending::<()>(), &link, deadline, false).await;
        assert_eq!(outcome, Err(Stall::Lost("connection reset".into())));

        let (tx, link) = watch::channel(Link::Open);
        drop(tx);
        let ended = bounded(std::future::pending::<()>(), &link, deadline, false).await;
        assert_eq!(ended, Err(Stall::Lost("the session ended".into())));
    }
}
