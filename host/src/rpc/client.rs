//! The RPC client: find a method's route, call it, get typed results.
//!
//! One [`Client`] holds one broker connection and one channel, and serves
//! any number of concurrent calls over it: every request carries a fresh
//! correlation id, and a single reply consumer hands each reply to the call
//! waiting for it. Replies come back on one reply address per connection
//! (RabbitMQ's direct reply-to or one exclusive queue; see [`ReplyMode`]),
//! never a queue per call.
//!
//! Calls are published `mandatory` with publisher confirms, so a call to a
//! route nobody consumes is returned by the broker before its ack and fails
//! at once with [`RpcError::NoRoute`] instead of waiting for the timeout.
//! Routes found through the name service are cached; a "no route" clears the
//! entry and the call is retried once with a fresh find.
//!
//! ```no_run
//! # async fn demo() -> Result<(), plughost::rpc::RpcError> {
//! use plughost::rpc::{Client, ClientOptions};
//!
//! let client = Client::connect(ClientOptions::new("amqp://guest:guest@127.0.0.1:5672/%2f")).await?;
//! let route = client.find("fibo").await?;
//! assert_eq!(route, "com.goffersoft.math.algo.fibo");
//! let value = client.call("fibo", &[10.into()]).await?;
//! assert_eq!(value, serde_json::json!(55));
//! # Ok(()) }
//! ```

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::StreamExt;
use lapin::{
    options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions},
    types::{AMQPValue, FieldTable},
    BasicProperties, Channel, Connection,
};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{
    connection::{connect, redact},
    topology::{declare_private_queue, Exchanges},
    wire::v2,
    RpcError,
};

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

/// How a client connects and waits.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Broker URL.
    pub url: String,
    /// Exchange names (must match the hosts').
    pub exchanges: Exchanges,
    /// Reply mechanism.
    pub reply_mode: ReplyMode,
    /// Timeout of a call (find included) when none is given.
    pub timeout: Duration,
    /// Longest wait for a find answer.
    pub find_timeout: Duration,
    /// After the first "not here" answer, how long to wait for a host that
    /// has the method before concluding nobody does.
    pub not_found_grace: Duration,
}

impl ClientOptions {
    /// Defaults for a broker URL: default exchanges, exclusive reply queue,
    /// 30 s calls, 5 s finds, 250 ms not-found grace.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            exchanges: Exchanges::default(),
            reply_mode: ReplyMode::default(),
            timeout: Duration::from_secs(30),
            find_timeout: Duration::from_secs(5),
            not_found_grace: Duration::from_millis(250),
        }
    }
}

/// The v2 call body, serialised straight from borrowed arguments.
#[derive(serde::Serialize)]
struct OutgoingCall<'a> {
    method: &'a str,
    args: &'a [Value],
}

type Pending = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Vec<u8>>>>>;

/// One connection's worth of client state.
struct Session {
    /// Always `Some` until dropped (taken to close it).
    conn: Option<Connection>,
    channel: Channel,
    reply_to: String,
    pending: Pending,
    alive: Arc<AtomicBool>,
}

/// An RPC client; cheap to share (`Arc`) across tasks.
pub struct Client {
    options: ClientOptions,
    /// The live session; read on every call, written only on (re)connect.
    current: std::sync::RwLock<Option<Arc<Session>>>,
    /// Serialises reconnects so one lost connection causes one new one.
    reconnect: tokio::sync::Mutex<()>,
    routes: Mutex<HashMap<String, String>>,
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Client {
    /// Connects (failing with [`RpcError::BrokerUnavailable`] when the broker
    /// cannot be reached).
    pub async fn connect(options: ClientOptions) -> Result<Self, RpcError> {
        let client = Self {
            options,
            current: std::sync::RwLock::new(None),
            reconnect: tokio::sync::Mutex::new(()),
            routes: Mutex::new(HashMap::new()),
        };
        client.session().await?;
        Ok(client)
    }

    /// The options it was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// The live session, reconnecting if the last one was lost.
    async fn session(&self) -> Result<Arc<Session>, RpcError> {
        if let Some(live) = self.live_session() {
            return Ok(live);
        }
        let _one_at_a_time = self.reconnect.lock().await;
        if let Some(live) = self.live_session() {
            return Ok(live);
        }
        let session = Arc::new(Session::open(&self.options).await?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&session));
        Ok(session)
    }

    fn live_session(&self) -> Option<Arc<Session>> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|s| s.alive.load(Ordering::Acquire))
            .cloned()
    }

    fn unavailable(&self, reason: impl Into<String>) -> RpcError {
        RpcError::BrokerUnavailable {
            url: redact(&self.options.url),
            reason: reason.into(),
        }
    }

    /// Asks the name services which route serves `method`.
    pub async fn find(&self, method: &str) -> Result<String, RpcError> {
        let reply = self.find_reply(method, self.options.find_timeout).await?;
        reply.route.ok_or_else(|| RpcError::MethodNotFound {
            method: method.to_owned(),
        })
    }

    /// Like [`Client::find`], with the whole answer (host, plugin, version).
    pub async fn find_reply(
        &self,
        method: &str,
        timeout: Duration,
    ) -> Result<v2::FindReply, RpcError> {
        let session = self.session().await?;
        let deadline = Instant::now() + timeout;
        let (id, mut replies, _guard) = session.expect_replies();
        let body = serde_json::to_vec(&v2::FindRequest {
            method: method.to_owned(),
        })
        .unwrap_or_default();
        let props = session.request_props(&id, timeout);
        let returned = session
            .publish(&self.options.exchanges.ns, "", &body, props)
            .await
            .map_err(|e| self.unavailable(e))?;
        if returned {
            return Err(RpcError::NoNameService {
                exchange: self.options.exchanges.ns.clone(),
            });
        }
        let mut give_up = deadline;
        let mut negative: Option<v2::FindReply> = None;
        loop {
            match tokio::time::timeout_at(give_up.into(), replies.recv()).await {
                Ok(Some(body)) => {
                    let reply: v2::FindReply = serde_json::from_slice(&body)
                        .map_err(|e| RpcError::BadReply(e.to_string()))?;
                    if reply.route.is_some() {
                        return Ok(reply);
                    }
                    if negative.is_none() {
                        give_up = give_up.min(Instant::now() + self.options.not_found_grace);
                        negative = Some(reply);
                    }
                }
                Ok(None) => {
                    return Err(self.unavailable("connection lost while waiting for a find answer"))
                }
                Err(_) => {
                    return match negative {
                        Some(reply) => Ok(reply),
                        None => Err(RpcError::Timeout {
                            method: format!("find {method}"),
                            timeout_ms: timeout.as_millis() as u64,
                        }),
                    }
                }
            }
        }
    }

    /// Finds (or takes from the cache) the route of `method` and calls it
    /// with the default timeout.
    pub async fn call(&self, method: &str, args: &[Value]) -> Result<Value, RpcError> {
        self.call_with_timeout(method, args, self.options.timeout)
            .await
    }

    /// [`Client::call`] with an explicit timeout (find included).
    pub async fn call_with_timeout(
        &self,
        method: &str,
        args: &[Value],
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        let deadline = Instant::now() + timeout;
        let cached = lock(&self.routes).get(method).cloned();
        let route = match cached {
            Some(route) => route,
            None => self.find_and_cache(method, deadline).await?,
        };
        match self.call_route_until(&route, method, args, deadline).await {
            Err(RpcError::NoRoute { .. }) => {
                // The route moved or its hosts left: forget it and ask again once.
                lock(&self.routes).remove(method);
                let route = self.find_and_cache(method, deadline).await?;
                self.call_route_until(&route, method, args, deadline).await
            }
            other => other,
        }
    }

    async fn find_and_cache(&self, method: &str, deadline: Instant) -> Result<String, RpcError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let reply = self
            .find_reply(method, left.min(self.options.find_timeout))
            .await?;
        let route = reply.route.ok_or_else(|| RpcError::MethodNotFound {
            method: method.to_owned(),
        })?;
        lock(&self.routes).insert(method.to_owned(), route.clone());
        Ok(route)
    }

    /// Calls `method` on a known route, skipping the name service.
    pub async fn call_route(
        &self,
        route: &str,
        method: &str,
        args: &[Value],
    ) -> Result<Value, RpcError> {
        self.call_route_until(route, method, args, Instant::now() + self.options.timeout)
            .await
    }

    async fn call_route_until(
        &self,
        route: &str,
        method: &str,
        args: &[Value],
        deadline: Instant,
    ) -> Result<Value, RpcError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let timed_out = || RpcError::Timeout {
            method: method.to_owned(),
            timeout_ms: timeout.as_millis() as u64,
        };
        if timeout.is_zero() {
            return Err(timed_out());
        }
        let session = self.session().await?;
        let (id, mut replies, _guard) = session.expect_replies();
        let body = serde_json::to_vec(&OutgoingCall { method, args })
            .map_err(|e| RpcError::BadReply(format!("arguments do not encode: {e}")))?;
        let props = session.request_props(&id, timeout);
        let returned = session
            .publish(&self.options.exchanges.rpc, route, &body, props)
            .await
            .map_err(|e| self.unavailable(e))?;
        if returned {
            return Err(RpcError::NoRoute {
                route: route.to_owned(),
            });
        }
        let body = match tokio::time::timeout_at(deadline.into(), replies.recv()).await {
            Ok(Some(body)) => body,
            Ok(None) => return Err(self.unavailable("connection lost while waiting for the reply")),
            Err(_) => return Err(timed_out()),
        };
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
}

impl Session {
    async fn open(options: &ClientOptions) -> Result<Self, RpcError> {
        let name = format!("plughost client ({})", std::process::id());
        let conn = connect(&options.url, &name).await?;
        let fail = |what: &str, e: lapin::Error| RpcError::BrokerUnavailable {
            url: redact(&options.url),
            reason: format!("{what}: {e}"),
        };
        let channel = conn
            .create_channel()
            .await
            .map_err(|e| fail("create channel", e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| fail("enable confirms", e))?;
        let reply_to = match options.reply_mode {
            ReplyMode::DirectReplyTo => "amq.rabbitmq.reply-to".to_owned(),
            ReplyMode::ExclusiveQueue => declare_private_queue(&channel)
                .await
                .map_err(|e| fail("declare reply queue", e))?,
        };
        let consumer = channel
            .basic_consume(
                reply_to.as_str().into(),
                "plughost-replies".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| fail("consume replies", e))?;
        let pending: Pending = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        tokio::spawn(read_replies(
            consumer,
            conn.events_listener(),
            Arc::clone(&pending),
            Arc::clone(&alive),
        ));
        Ok(Self {
            conn: Some(conn),
            channel,
            reply_to,
            pending,
            alive,
        })
    }

    /// Registers a fresh correlation id and returns where its replies arrive.
    fn expect_replies(&self) -> (String, mpsc::UnboundedReceiver<Vec<u8>>, PendingGuard<'_>) {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.pending).insert(id.clone(), tx);
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

    /// Publishes mandatory and waits for the confirm; `Ok(true)` when the
    /// broker returned the message as unroutable.
    async fn publish(
        &self,
        exchange: &str,
        key: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<bool, String> {
        let fail = |e: lapin::Error| {
            self.alive.store(false, Ordering::Release);
            e.to_string()
        };
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let confirm = self
            .channel
            .basic_publish(exchange.into(), key.into(), options, body, props)
            .await
            .map_err(fail)?;
        let confirmation = confirm.await.map_err(fail)?;
        if let lapin::Confirmation::Nack(_) = confirmation {
            return Err("the broker refused the message (nack)".into());
        }
        Ok(confirmation.take_message().is_some())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Release);
        let Some(conn) = self.conn.take() else { return };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = conn.close(200, "client closed".into()).await;
            });
        }
    }
}

/// Hands each reply to the call waiting for its correlation id; on
/// connection loss, fails every waiting call at once.
async fn read_replies(
    mut consumer: lapin::Consumer,
    mut events: impl futures_util::Stream<Item = lapin::Event> + Unpin,
    pending: Pending,
    alive: Arc<AtomicBool>,
) {
    loop {
        tokio::select! {
            delivery = consumer.next() => match delivery {
                Some(Ok(delivery)) => {
                    let Some(id) = delivery.properties.correlation_id() else { continue };
                    if let Some(tx) = lock(&pending).get(id.as_str()) {
                        let _ = tx.send(delivery.data);
                    }
                }
                _ => break,
            },
            event = events.next() => match event {
                Some(lapin::Event::Error(_)) | None => break,
                Some(_) => {}
            },
        }
    }
    alive.store(false, Ordering::Release);
    lock(&pending).clear();
}
