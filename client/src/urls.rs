//! Several broker addresses: the nodes of one RabbitMQ cluster.
//!
//! A deployment that outgrows one machine runs RabbitMQ as a cluster, and
//! every node of it serves every queue and exchange (a classic queue's
//! messages live on one node, but any node routes to it). So a host or a
//! caller given several URLs connects to whichever answers first, trying
//! them in order, and after losing a connection starts from the URL after
//! the lost one: the node that just went away is tried last.
//!
//! Hosts spread over the nodes by starting at a place in the list of their
//! own ([`BrokerUrls::spread`], from the host's name), so a hundred hosts
//! given the same list do not all land on its first node. Callers start
//! at the first URL: a caller's connection is short-lived and cheap to move.
//!
//! One connect bound covers the whole walk: each attempt gets an equal
//! share of what is left, so a frozen node (TCP accepted, AMQP never
//! answered) costs its share, and the next node is still tried in time.

use std::time::Duration;

use lapin::Connection;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::{
    connection::{connect, redact, TlsFiles},
    RpcError,
};

/// The broker URLs of one deployment, in the order they are tried, with
/// the place the next walk starts at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrls {
    urls: Vec<String>,
    next: usize,
}

impl BrokerUrls {
    /// `first`, then `others` (another node each), tried in this order.
    pub fn new(first: impl Into<String>, others: &[String]) -> Self {
        let mut urls = vec![first.into()];
        urls.extend(others.iter().filter(|u| !u.is_empty()).cloned());
        Self { urls, next: 0 }
    }

    /// Starts the walk at a place derived from `key` (a host's name), so
    /// hosts given the same list spread over its nodes. The hash is FNV-1a,
    /// spelled out here so the place stays the same across builds and Rust
    /// versions (std's hashers promise no stable output).
    pub fn spread(mut self, key: &str) -> Self {
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        self.next = usize::try_from(hash % self.urls.len() as u64).unwrap_or(0);
        self
    }

    /// The URLs in the order the next walk tries them.
    pub fn order(&self) -> impl Iterator<Item = (usize, &str)> {
        let n = self.urls.len();
        (0..n).map(move |i| {
            let at = (self.next + i) % n;
            (at, self.urls[at].as_str())
        })
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// Never true: there is always a first URL.
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// The URL at `index` (from [`BrokerUrls::connect`]).
    pub fn get(&self, index: usize) -> &str {
        &self.urls[index % self.urls.len()]
    }

    /// Every URL without its password, for messages.
    pub fn redacted(&self) -> String {
        self.urls
            .iter()
            .map(|u| redact(u))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// After losing the connection to the URL at `index`: the next walk
    /// starts after it, so the node that went away is tried last.
    pub fn lost(&mut self, index: usize) {
        self.next = (index + 1) % self.urls.len();
    }

    /// Connects to the first URL that answers, in [`BrokerUrls::order`],
    /// within `timeout` in all; returns the connection and its URL's index.
    ///
    /// A refused TLS handshake or an unusable URL ends the walk at once:
    /// those are configuration errors another node will not fix. When every
    /// node refused the TCP connection the error is [`RpcError::NoBroker`]
    /// (nothing listens anywhere), else [`RpcError::BrokerUnavailable`],
    /// naming each URL and why it failed.
    pub async fn connect(
        &self,
        tls: &TlsFiles,
        name: &str,
        timeout: Duration,
    ) -> Result<(Connection, usize), RpcError> {
        if self.urls.len() == 1 {
            return connect(&self.urls[0], tls, name, timeout)
                .await
                .map(|conn| (conn, 0));
        }
        let deadline = Instant::now() + timeout;
        let mut failures = Vec::new();
        let mut all_refused = true;
        let total = self.urls.len();
        for (tried, (index, url)) in self.order().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                all_refused = false;
                failures.push(format!("{}: not tried (no time left)", redact(url)));
                continue;
            }
            let share = left / u32::try_from(total - tried).unwrap_or(1);
            match connect(url, tls, name, share).await {
                Ok(conn) => {
                    if tried > 0 {
                        warn!(broker = %redact(url), skipped = %failures.join("; "), "connected to another broker node");
                    } else {
                        debug!(broker = %redact(url), "connected");
                    }
                    return Ok((conn, index));
                }
                Err(e @ (RpcError::BrokerConfig { .. } | RpcError::Tls { .. })) => return Err(e),
                Err(RpcError::NoBroker { reason, .. }) => {
                    failures.push(format!("{}: {reason}", redact(url)));
                }
                Err(other) => {
                    all_refused = false;
                    failures.push(format!("{}: {}", redact(url), reason_of(&other)));
                }
            }
        }
        let reason = format!("no node answered ({})", failures.join("; "));
        let url = self.redacted();
        Err(if all_refused {
            RpcError::NoBroker { url, reason }
        } else {
            RpcError::BrokerUnavailable { url, reason }
        })
    }
}

/// The reason part of a connect error (its URL is named separately).
fn reason_of(e: &RpcError) -> String {
    match e {
        RpcError::BrokerUnavailable { reason, .. } | RpcError::NoBroker { reason, .. } => {
            reason.clone()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(n: usize) -> BrokerUrls {
        let others: Vec<String> = (1..n).map(|i| format!("amqp://n{i}")).collect();
        BrokerUrls::new("amqp://n0", &others)
    }

    fn order(u: &BrokerUrls) -> Vec<usize> {
        u.order().map(|(i, _)| i).collect()
    }

    #[test]
    fn the_walk_starts_at_the_first_and_after_a_loss_tries_the_lost_node_last() {
        let mut u = urls(3);
        assert_eq!(order(&u), [0, 1, 2]);
        u.lost(0);
        assert_eq!(order(&u), [1, 2, 0]);
        u.lost(2);
        assert_eq!(order(&u), [0, 1, 2]);
        assert_eq!(u.get(1), "amqp://n1");
    }

    #[test]
    fn hosts_with_different_names_start_on_different_nodes() {
        let starts: std::collections::HashSet<usize> = (0..30)
            .map(|i| order(&urls(3).spread(&format!("host-{i}")))[0])
            .collect();
        assert_eq!(starts.len(), 3, "30 hosts over 3 nodes use every node");
        // The same key always starts at the same place.
        assert_eq!(order(&urls(3).spread("a")), order(&urls(3).spread("a")));
        assert_eq!(order(&urls(1).spread("a")), [0]);
    }

    #[tokio::test]
    async fn with_no_node_listening_the_error_names_every_url_and_is_no_broker() {
        let ports: Vec<u16> = (0..2)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            })
            .collect();
        let u = BrokerUrls::new(
            format!("amqp://guest:secret@127.0.0.1:{}", ports[0]),
            &[format!("amqp://127.0.0.1:{}", ports[1])],
        );
        let err = u
            .connect(&TlsFiles::default(), "test", Duration::from_secs(5))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, RpcError::NoBroker { .. }), "{text}");
        for port in &ports {
            assert!(text.contains(&port.to_string()), "{text}");
        }
        assert!(!text.contains("secret"), "{text}");
    }
}
