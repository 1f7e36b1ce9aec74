//! The broker objects plughost and the old tools share, declared exactly as
//! the old tools declare them (docs/wire.md §1): a re-declaration with different
//! attributes is refused by RabbitMQ (406), which would stop whichever side
//! starts second.
//!
//! Route queues are the exception: they are plughost's own, declared as
//! [`RouteQueueKind`] says (durable classic by default, quorum for
//! replication on a cluster; see docs/deploying.md).
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
pub const ROUTE_QUEUE_EXPIRES_MS: i64 = 10 * 60 * 1000;

/// How a route's shared queue is declared (`[rabbitmq] route_queues`).
///
/// Every host of a deployment must declare a route's queue the same way:
/// RabbitMQ refuses a declaration whose attributes differ from the
/// queue's (406 PRECONDITION_FAILED).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RouteQueueKind {
    /// A durable classic queue with `x-expires` (the default). Accepted by
    /// RabbitMQ 3.x and 4.x alike (4.3 refuses transient non-exclusive
    /// queues by default); on a cluster it lives on one node, the one the
    /// first declaring host was connected to, and is unavailable while that
    /// node is down.
    #[default]
    Classic,
    /// A quorum queue (`x-queue-type = quorum`, durable, with `x-expires`):
    /// replicated on every node of the cluster, so it keeps serving while a
    /// minority of nodes is down. Costs a Raft write per call on a majority
    /// of nodes.
    Quorum,
    /// What plughost declared before: a transient (non-durable) classic
    /// queue with `x-expires`. Only for deployments that still run older
    /// hosts declaring it so; deprecated in RabbitMQ 4 and refused by
    /// default from 4.3.
    Transient,
}

impl RouteQueueKind {
    /// Every kind, in the order the manifest's documentation lists them.
    pub const ALL: [RouteQueueKind; 3] = [Self::Classic, Self::Quorum, Self::Transient];

    /// Its name in the manifest (`route_queues = "classic"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Quorum => "quorum",
            Self::Transient => "transient",
        }
    }

    /// The kind a manifest name stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Whether the queue survives a broker restart (AMQP `durable`).
    pub fn durable(self) -> bool {
        !matches!(self, Self::Transient)
    }

    /// The declaration's arguments: `x-expires` always, `x-queue-type` for
    /// quorum queues.
    pub fn arguments(self) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert(
            "x-expires".into(),
            AMQPValue::LongLongInt(ROUTE_QUEUE_EXPIRES_MS),
        );
        if self == Self::Quorum {
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        args
    }

    /// Whether the broker takes `queue.delete` with `if-unused`/`if-empty`
    /// for this kind: quorum queues answer it with `not_implemented`, a
    /// connection error that would cost the host its whole session, so
    /// their unused queues are left to `x-expires`.
    pub fn conditional_delete(self) -> bool {
        self != Self::Quorum
    }
}

impl std::fmt::Display for RouteQueueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Declares a route's shared queue as `kind` says and binds it to the RPC
/// exchange. Every host declares it with the same arguments, so the
/// declarations agree.
pub async fn declare_route_queue(
    channel: &Channel,
    exchanges: &Exchanges,
    route: &str,
    kind: RouteQueueKind,
) -> lapin::Result<String> {
    let name = route_queue_name(&exchanges.rpc, route);
    channel
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions {
                durable: kind.durable(),
                exclusive: false,
                auto_delete: false,
                ..Default::default()
            },
            kind.arguments(),
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
