//! The host's RPC roles over RabbitMQ: the name service and the RPC service.
//!
//! [`serve`] owns the broker connection. It connects (with backoff), declares
//! the topology, starts the name-service consumer and one consumer per
//! served route, and then watches three things: the connection (on loss it
//! rebuilds everything from scratch: lapin's own recovery is opt-in and not
//! trusted here), the registry (on change it starts and stops route
//! consumers), and the shutdown signal (on which it stops consuming, lets
//! in-flight calls finish and closes the connection).
//!
//! Requests are acknowledged only after their reply is published, so a
//! request held by a host that dies is redelivered to another host.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::StreamExt;
use lapin::{
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions,
        BasicQosOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
    BasicProperties, Channel, Connection,
};
use tokio::{sync::watch, task::JoinSet};
use tracing::{debug, info, warn};

use super::{
    connection::{connect, redact, Backoff, TlsFiles, DEFAULT_CONNECT_TIMEOUT},
    dispatch::dispatch,
    topology::{declare_exchanges, declare_private_queue, declare_route_queue, Exchanges},
    wire::{v1, v2, Protocol},
};
use crate::{plugins::Registry, shutdown::Shutdown};

/// What the RPC roles need to know.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// Broker URL.
    pub url: String,
    /// CA and client certificate files for `amqps://`.
    pub tls: TlsFiles,
    /// Exchange names.
    pub exchanges: Exchanges,
    /// This host's name (in v2 find replies and the connection name).
    pub host_name: String,
    /// Unacknowledged requests per route consumer.
    pub prefetch: u16,
    /// Answer finds.
    pub name_service: bool,
    /// Consume route queues.
    pub rpc: bool,
}

/// Connection state of the RPC roles, for status and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerState {
    /// Not connected (starting, or reconnecting after a loss).
    Disconnected,
    /// Connected, topology declared, consumers running.
    Serving,
}

/// Runs the RPC roles until `shutdown`, reconnecting whenever the broker
/// connection is lost. `registry` is the host's current plugin set;
/// `served` is set to each registry once its routes are consumed, so the
/// name service never hands out a route before its queue is bound (and a
/// reload can wait for its change to be live).
pub async fn serve(
    config: RpcConfig,
    registry: watch::Receiver<Arc<Registry>>,
    served: watch::Sender<Arc<Registry>>,
    state: watch::Sender<BrokerState>,
    mut shutdown: Shutdown,
) {
    let served = Arc::new(served);
    let mut backoff = Backoff::default();
    let url = redact(&config.url);
    while !shutdown.is_fired() {
        let conn_name = format!(
            "plughost host {} ({})",
            config.host_name,
            std::process::id()
        );
        let session = match connect(
            &config.url,
            &config.tls,
            &conn_name,
            DEFAULT_CONNECT_TIMEOUT,
        )
        .await
        {
            Ok(conn) => Session::start(conn, &config, registry.clone(), Arc::clone(&served)).await,
            Err(e) => Err(e.to_string()),
        };
        let mut session = match session {
            Ok(s) => s,
            Err(reason) => {
                let delay = backoff.next_delay();
                warn!(broker = %url, %reason, retry_in_ms = delay.as_millis() as u64, "RPC roles cannot reach the broker; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => continue,
                    _ = shutdown.wait() => break,
                }
            }
        };
        backoff.reset();
        info!(broker = %url, routes = session.routes.len(), "RPC roles serving");
        let _ = state.send(BrokerState::Serving);
        let lost = session.run(registry.clone(), shutdown.clone()).await;
        let _ = state.send(BrokerState::Disconnected);
        match lost {
            Some(reason) => warn!(broker = %url, %reason, "broker connection lost; reconnecting"),
            None => break,
        }
    }
    info!("RPC roles stopped");
}

/// Everything built on one connection.
struct Session {
    conn: Connection,
    ctx: Arc<CallContext>,
    config: RpcConfig,
    routes: HashMap<String, RouteConsumer>,
    ns: Option<tokio::task::JoinHandle<()>>,
}

/// What a request handler needs: where to reply and which plugins to use.
struct CallContext {
    replies: Channel,
    exchanges: Exchanges,
    host_name: String,
    /// The newest plugin set: calls run on it.
    registry: watch::Receiver<Arc<Registry>>,
    /// The newest plugin set whose routes are consumed: finds answer from it.
    served: Arc<watch::Sender<Arc<Registry>>>,
}

/// A consumer on one route's shared queue.
struct RouteConsumer {
    channel: Channel,
    queue: String,
    tag: String,
    task: tokio::task::JoinHandle<()>,
}

impl Session {
    async fn start(
        conn: Connection,
        config: &RpcConfig,
        registry: watch::Receiver<Arc<Registry>>,
        served: Arc<watch::Sender<Arc<Registry>>>,
    ) -> Result<Self, String> {
        let err = |what: &str, e: lapin::Error| format!("{what}: {e}");
        let setup = conn
            .create_channel()
            .await
            .map_err(|e| err("create channel", e))?;
        declare_exchanges(&setup, &config.exchanges)
            .await
            .map_err(|e| err("declare exchanges", e))?;
        let replies = conn
            .create_channel()
            .await
            .map_err(|e| err("create reply channel", e))?;
        let ctx = Arc::new(CallContext {
            replies,
            exchanges: config.exchanges.clone(),
            host_name: config.host_name.clone(),
            registry: registry.clone(),
            served,
        });
        let mut session = Self {
            conn,
            ctx,
            config: config.clone(),
            routes: HashMap::new(),
            ns: None,
        };
        if config.name_service {
            let channel = session
                .conn
                .create_channel()
                .await
                .map_err(|e| err("create name-service channel", e))?;
            let queue = declare_private_queue(&channel)
                .await
                .map_err(|e| err("declare name-service queue", e))?;
            channel
                .queue_bind(
                    queue.as_str().into(),
                    config.exchanges.ns.as_str().into(),
                    "".into(),
                    Default::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| err("bind name-service queue", e))?;
            let consumer = channel
                .basic_consume(
                    queue.as_str().into(),
                    "plughost-ns".into(),
                    BasicConsumeOptions {
                        no_ack: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|e| err("consume name-service queue", e))?;
            session.ns = Some(tokio::spawn(name_service(
                consumer,
                Arc::clone(&session.ctx),
                channel,
            )));
        }
        let current = registry.borrow().clone();
        session.sync_routes(&current).await?;
        Ok(session)
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
            tokio::select! {
                event = events.next() => match event {
                    Some(lapin::Event::Error(e)) => return Some(e.to_string()),
                    Some(_) => {}
                    None => return Some("connection event stream ended".into()),
                },
                _ = check.tick() => {
                    if !self.conn.status().connected() {
                        return Some("connection closed".into());
                    }
                    if let Some(route) = self.routes.iter().find(|(_, c)| c.task.is_finished()).map(|(r, _)| r.clone()) {
                        return Some(format!("consumer of route {route} stopped"));
                    }
                }
                changed = registry.changed() => {
                    if changed.is_err() {
                        self.stop().await;
                        return None;
                    }
                    let current = registry.borrow_and_update().clone();
                    if let Err(e) = self.sync_routes(&current).await {
                        return Some(e);
                    }
                }
                _ = shutdown.wait() => {
                    self.stop().await;
                    return None;
                }
            }
        }
    }

    /// Starts consumers for routes the registry serves and stops the others.
    async fn sync_routes(&mut self, registry: &Arc<Registry>) -> Result<(), String> {
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
            if !self.routes.contains_key(route) {
                let consumer =
                    RouteConsumer::start(&self.conn, &self.config, route, Arc::clone(&self.ctx))
                        .await?;
                debug!(%route, queue = %consumer.queue, "serving route");
                self.routes.insert(route.clone(), consumer);
            }
        }
        self.ctx.served.send_replace(Arc::clone(registry));
        let gone: Vec<String> = self
            .routes
            .keys()
            .filter(|r| !wanted.contains(r))
            .cloned()
            .collect();
        for route in gone {
            if let Some(consumer) = self.routes.remove(&route) {
                consumer.stop(true).await;
                info!(%route, "stopped serving route");
            }
        }
        Ok(())
    }

    /// Stops consuming, lets in-flight calls finish, closes the connection.
    async fn stop(&mut self) {
        for (_, consumer) in self.routes.drain() {
            consumer.stop(true).await;
        }
        if let Some(ns) = self.ns.take() {
            ns.abort();
        }
        let _ = self
            .conn
            .close(200, "plughost host shutting down".into())
            .await;
    }
}

impl RouteConsumer {
    async fn start(
        conn: &Connection,
        config: &RpcConfig,
        route: &str,
        ctx: Arc<CallContext>,
    ) -> Result<Self, String> {
        let err = |what: &str, e: lapin::Error| format!("route {route}: {what}: {e}");
        let channel = conn
            .create_channel()
            .await
            .map_err(|e| err("create channel", e))?;
        channel
            .basic_qos(config.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| err("set prefetch", e))?;
        let queue = declare_route_queue(&channel, &config.exchanges, route)
            .await
            .map_err(|e| err("declare queue", e))?;
        let tag = format!("plughost-{}-{}", config.host_name, uuid::Uuid::new_v4());
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| err("consume", e))?;
        let task = tokio::spawn(consume_route(consumer, ctx));
        Ok(Self {
            channel,
            queue,
            tag,
            task,
        })
    }

    /// Cancels the consumer and waits for its in-flight calls; when the
    /// route is no longer served here, removes its queue if nobody else
    /// consumes it and it is empty (so callers get "no route" at once).
    async fn stop(self, delete_if_unused: bool) {
        let _ = self
            .channel
            .basic_cancel(self.tag.as_str().into(), BasicCancelOptions::default())
            .await;
        let _ = self.task.await;
        if delete_if_unused {
            // A refused delete closes the channel, which we are done with anyway.
            let _ = self
                .channel
                .queue_delete(
                    self.queue.as_str().into(),
                    QueueDeleteOptions {
                        if_unused: true,
                        if_empty: true,
                        nowait: false,
                    },
                )
                .await;
        }
        let _ = self
            .channel
            .close(200, "route no longer served".into())
            .await;
    }
}

/// Consumes one route queue, handling requests concurrently (up to the
/// channel's prefetch); returns after the consumer is cancelled and every
/// request it took has been answered and acknowledged.
async fn consume_route(mut consumer: lapin::Consumer, ctx: Arc<CallContext>) {
    let mut in_flight = JoinSet::new();
    loop {
        tokio::select! {
            delivery = consumer.next() => match delivery {
                Some(Ok(delivery)) => {
                    in_flight.spawn(handle_call(delivery, Instant::now(), Arc::clone(&ctx)));
                }
                Some(Err(e)) => {
                    warn!(error = %e, "route consumer error");
                    break;
                }
                None => break,
            },
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// Handles one call (v1 or v2): run it, publish the reply, then ack.
async fn handle_call(delivery: Delivery, received: Instant, ctx: Arc<CallContext>) {
    let props = &delivery.properties;
    let correlation_id = props.correlation_id().clone();
    let content_type = props.content_type().as_ref().map(|c| c.as_str());
    match Protocol::of(content_type) {
        Protocol::V2 => {
            let deadline = deadline_of(props.headers().as_ref());
            let registry = ctx.registry.borrow().clone();
            let outcome = match serde_json::from_slice::<v2::CallRequest<'_>>(&delivery.data) {
                Ok(req) => {
                    dispatch(
                        &registry,
                        &req.method,
                        req.args.get().to_owned(),
                        received,
                        deadline,
                    )
                    .await
                }
                Err(e) => Err(v2::ErrorBody::new(
                    400,
                    format!("malformed v2 call body: {e}"),
                )),
            };
            let body = match &outcome {
                Ok(result) => v2::encode_result(result),
                Err(error) => v2::encode_error(error),
            };
            match props.reply_to() {
                Some(reply_to) => {
                    let reply_props = BasicProperties::default()
                        .with_content_type(v2::CONTENT_TYPE.into())
                        .with_correlation_id(correlation_id.unwrap_or_default());
                    publish(&ctx.replies, "", reply_to.as_str(), &body, reply_props).await;
                }
                None => {
                    warn!(route = %delivery.routing_key, "v2 call without reply_to; result dropped")
                }
            }
        }
        Protocol::V1 => {
            let route = delivery.routing_key.as_str();
            let (exchange, reply) = match v1::CallRequest::parse(&delivery.data) {
                Ok(req) => {
                    let args: Vec<serde_json::Value> =
                        req.args.iter().map(|a| v1::arg_value(a)).collect();
                    let args = serde_json::Value::Array(args).to_string();
                    let registry = ctx.registry.borrow().clone();
                    let reply = match dispatch(&registry, &req.method, args, received, None).await {
                        Ok(json) => match serde_json::from_str::<serde_json::Value>(&json) {
                            Ok(value) => v1::CallReply::Success(v1::result_text(&value)),
                            Err(_) => v1::CallReply::Success(json),
                        },
                        Err(e) => v1::CallReply::Failure(e.message),
                    };
                    (req.reply_exchange, reply)
                }
                Err(e) => {
                    warn!(%route, error = %e, "malformed v1 call; answering Failure");
                    (
                        ctx.exchanges.rpc.clone(),
                        v1::CallReply::Failure(e.to_string()),
                    )
                }
            };
            let props =
                BasicProperties::default().with_correlation_id(correlation_id.unwrap_or_default());
            publish(
                &ctx.replies,
                &exchange,
                &v1::result_key(route),
                &reply.encode(),
                props,
            )
            .await;
        }
    }
    if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
        warn!(error = %e, "cannot ack request (it will be redelivered)");
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

async fn publish(
    channel: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    let result = channel
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            props,
        )
        .await;
    if let Err(e) = result {
        warn!(exchange, key, error = %e, "cannot publish reply");
    }
}

/// Answers finds: v2 with a route or "not here", v1 only when the method
/// is known (as the old name service did).
async fn name_service(mut consumer: lapin::Consumer, ctx: Arc<CallContext>, _channel: Channel) {
    while let Some(delivery) = consumer.next().await {
        let Ok(delivery) = delivery else { break };
        let registry = ctx.served.borrow().clone();
        let props = &delivery.properties;
        let correlation_id: ShortString = props.correlation_id().clone().unwrap_or_default();
        match Protocol::of(props.content_type().as_ref().map(|c| c.as_str())) {
            Protocol::V2 => {
                let Some(reply_to) = props.reply_to() else {
                    warn!("v2 find without reply_to; ignored");
                    continue;
                };
                let reply = match serde_json::from_slice::<v2::FindRequest>(&delivery.data) {
                    Ok(find) => {
                        let entry = registry.method(&find.method);
                        v2::FindReply {
                            route: entry.map(|m| m.route.clone()),
                            plugin: entry.map(|m| m.plugin.name().to_owned()),
                            version: entry.map(|m| m.plugin.version().to_owned()),
                            method: find.method,
                            host: ctx.host_name.clone(),
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "malformed v2 find; ignored");
                        continue;
                    }
                };
                let body = serde_json::to_vec(&reply).unwrap_or_default();
                let props = BasicProperties::default()
                    .with_content_type(v2::CONTENT_TYPE.into())
                    .with_correlation_id(correlation_id);
                publish(&ctx.replies, "", reply_to.as_str(), &body, props).await;
            }
            Protocol::V1 => match v1::FindRequest::parse(&delivery.data) {
                Ok(find) => {
                    if let Some(entry) = registry.method(&find.method) {
                        let props = BasicProperties::default().with_correlation_id(correlation_id);
                        publish(
                            &ctx.replies,
                            &find.exchange,
                            &find.key,
                            &v1::find_reply(&find.method, &entry.route),
                            props,
                        )
                        .await;
                    }
                }
                Err(e) => warn!(error = %e, "malformed v1 find; ignored (no reply address in it)"),
            },
        }
    }
}
