//! What a test-owned RabbitMQ node holds, through `rabbitmqctl`: the
//! connections (by the name their client gave them) and the queues with
//! their message counts, so fault tests can check that nothing leaked.

use crate::RabbitNode;

/// One queue and its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    /// Queue name.
    pub name: String,
    /// Messages waiting for a consumer.
    pub ready: u64,
    /// Messages delivered and not yet acknowledged.
    pub unacked: u64,
}

impl RabbitNode {
    /// How many connections the node holds whose client-given name
    /// (`connection_name`) contains `needle`.
    pub fn connections_named(&self, needle: &str) -> usize {
        self.ctl_ok(&["list_connections", "client_properties", "-q"])
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// Every queue of the default vhost.
    pub fn queues(&self) -> Vec<QueueDepth> {
        self.ctl_ok(&[
            "list_queues",
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "-q",
        ])
        .lines()
        .filter_map(|line| {
            let mut fields = line.rsplitn(3, '\t');
            let unacked = fields.next()?.trim().parse().ok()?;
            let ready = fields.next()?.trim().parse().ok()?;
            let name = fields.next()?.to_owned();
            Some(QueueDepth {
                name,
                ready,
                unacked,
            })
        })
        .collect()
    }
}
