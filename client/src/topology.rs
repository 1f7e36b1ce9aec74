//! The broker objects plughost and the old tools share, declared exactly as
//! the old tools declare them (docs/wire.md §1): a re-declaration with different
//! attributes is refused by RabbitMQ (406), which would stop whichever side
//! starts second.
//!
//! Every declaration here is idempotent, so a host repairs a consumer whose
//! queue an operator deleted by declaring it again, and [`exchange_exists`]
//! checks a reply exchange without creating it.

use lapin::{
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
    Channel, ExchangeKind,
};

/// Names of the two exchanges (configurable for tests and shared brokers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchanges {
    /// Topic exchange calls go through (`rpc_exchange`).
    pub rpc: String,
    /// Fanout exchange finds go through (`rpc_ns_exchange`).
    pub ns: String,
}

impl Default for Exchanges {
    fn default() -> Self {
        Self {
            rpc: "rpc_exchange".into(),
            ns: "rpc_ns_exchange".into(),
        }
    }
}

/// durable=false, auto_delete=false, internal=false, no arguments.
fn old_system_exchange_options() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        passive: false,
        durable: false,
        auto_delete: false,
        internal: false,
        nowait: false,
    }
}

/// Declares both exchanges with the old system's attributes.
pub async fn declare_exchanges(channel: &Channel, exchanges: &Exchanges) -> lapin::Result<()> {
    channel
        .exchange_declare(
            exchanges.rpc.as_str().into(),
            ExchangeKind::Topic,
            old_system_exchange_options(),
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            exchanges.ns.as_str().into(),
            ExchangeKind::Fanout,
            old_system_exchange_options(),
            FieldTable::default(),
        )
        .await
}

/// The shared queue of a route: every host serving the route consumes it.
pub fn route_queue_name(exchange: &str, route: &str) -> String {
    format!("plughost.{exchange}.route.{route}")
}

/// How long a route queue nobody consumes survives (RabbitMQ `x-expires`),
/// so routes that every host stopped serving do not linger forever.
const ROUTE_QUEUE_EXPIRES_MS: i64 = 10 * 60 * 1000;

/// Declares a route's shared queue and binds it to the RPC exchange. Every
/// host declares it with the same arguments, so the declarations agree.
pub async fn declare_route_queue(
    channel: &Channel,
    exchanges: &Exchanges,
    route: &str,
) -> lapin::Result<String> {
    let name = route_queue_name(&exchanges.rpc, route);
    let mut args = FieldTable::default();
    args.insert(
        "x-expires".into(),
        AMQPValue::LongLongInt(ROUTE_QUEUE_EXPIRES_MS),
    );
    channel
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions {
                durable: false,
                exclusive: false,
                auto_delete: false,
                ..Default::default()
            },
            args,
        )
        .await?;
    channel
        .queue_bind(
            name.as_str().into(),
            exchanges.rpc.as_str().into(),
            route.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(name)
}

/// The name-service queue of one host session: exclusive (gone with the
/// connection), named by the host so that a name-service consumer the broker
/// cancelled can declare and consume the same queue again.
pub fn name_service_queue_name(host_name: &str, session: &uuid::Uuid) -> String {
    let host: String = host_name.chars().take(64).collect();
    format!("plughost.ns.{host}.{}", session.simple())
}

/// Declares a host's name-service queue (exclusive, kept while its
/// connection lives, so finds wait in it across a consumer repair) and binds
/// it to the name-service exchange.
pub async fn declare_name_service_queue(
    channel: &Channel,
    exchanges: &Exchanges,
    name: &str,
) -> lapin::Result<()> {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: false,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            name.into(),
            exchanges.ns.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// The broker's answer to [`exchange_exists`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeLookup {
    /// The exchange exists.
    Exists,
    /// It does not (or the broker refused to say): the broker's reason.
    Refused(String),
}

/// Whether exchange `name` exists: a passive declare, which the broker
/// answers by closing the channel when it does not, so call it only on a
/// channel of its own. `Err` is a failure to ask.
pub async fn exchange_exists(
    channel: &Channel,
    name: &ShortString,
) -> lapin::Result<ExchangeLookup> {
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..old_system_exchange_options()
    };
    match channel
        .exchange_declare(
            name.clone(),
            ExchangeKind::Topic,
            passive,
            FieldTable::default(),
        )
        .await
    {
        Ok(()) => Ok(ExchangeLookup::Exists),
        Err(e) => match e.kind() {
            lapin::ErrorKind::ProtocolError(amqp) if e.is_amqp_soft_error() => {
                Ok(ExchangeLookup::Refused(amqp.get_message().to_string()))
            }
            _ => Err(e),
        },
    }
}

/// Declares an exclusive, server-named queue (deleted with its connection).
pub async fn declare_private_queue(channel: &Channel) -> lapin::Result<String> {
    let q = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(q.name().to_string())
}
