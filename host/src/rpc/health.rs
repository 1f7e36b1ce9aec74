//! What `plughost status` says about the broker: the truth about each
//! channel of the RPC roles, read at the moment it is asked.
//!
//! The session registers every channel it opens (the reply channel, the
//! name-service consumer, one consumer per route) with lapin's own view of
//! that channel's state and, for consumers, a flag their task clears when
//! the broker stops delivering (channel closed, `basic.cancel` after an
//! operator deleted the queue). A report reads those live, so a channel the
//! broker has just closed shows as closed even before the session repaired
//! it, and the host says `serving` only while every channel serves.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use serde::{Deserialize, Serialize};

/// One channel of the RPC roles as `plughost status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelReport {
    /// `replies`, `name-service` or `route <route>`.
    pub channel: String,
    /// `open` (the reply channel), `consuming`, `closed`, `not consuming`
    /// (open, but the broker cancelled the consumer) or `broken` (the
    /// session could not repair it yet; `problem` says why).
    pub state: String,
    /// Why it is not serving, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl ChannelReport {
    /// True when the channel does its job.
    pub fn serving(&self) -> bool {
        self.state == "open" || self.state == "consuming"
    }
}

/// One registered channel.
struct Watched {
    channel: Option<lapin::ChannelStatus>,
    /// For consumers: true while the broker delivers to it.
    consuming: Option<Arc<AtomicBool>>,
    problem: Option<String>,
}

#[derive(Default)]
struct Inner {
    connection: Option<lapin::ConnectionStatus>,
    channels: BTreeMap<String, Watched>,
}

/// The channels of the RPC roles, shared by the session (which registers
/// them) and the host (which reports them).
#[derive(Default)]
pub struct RpcHealth {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for RpcHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcHealth")
            .field("channels", &self.report())
            .finish()
    }
}

impl RpcHealth {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session's connection (forgets the old session's channels).
    pub(crate) fn connected(&self, connection: lapin::ConnectionStatus) {
        let mut inner = self.lock();
        inner.connection = Some(connection);
        inner.channels.clear();
    }

    /// The session is gone.
    pub(crate) fn disconnected(&self) {
        let mut inner = self.lock();
        inner.connection = None;
        inner.channels.clear();
    }

    /// A channel (re)opened: `consuming` for consumers.
    pub(crate) fn watch(
        &self,
        name: &str,
        channel: &lapin::Channel,
        consuming: Option<Arc<AtomicBool>>,
    ) {
        self.lock().channels.insert(
            name.to_owned(),
            Watched {
                channel: Some(channel.status().clone()),
                consuming,
                problem: None,
            },
        );
    }

    /// A channel the session could not (re)open yet, and why.
    pub(crate) fn broken(&self, name: &str, problem: String) {
        self.lock().channels.insert(
            name.to_owned(),
            Watched {
                channel: None,
                consuming: None,
                problem: Some(problem),
            },
        );
    }

    /// A channel that is no longer wanted (a route no longer served).
    pub(crate) fn forget(&self, name: &str) {
        self.lock().channels.remove(name);
    }

    /// Every channel and its state now.
    pub fn report(&self) -> Vec<ChannelReport> {
        self.lock()
            .channels
            .iter()
            .map(|(name, w)| {
                let (state, problem) = match (&w.problem, &w.channel, &w.consuming) {
                    (Some(problem), _, _) => ("broken", Some(problem.clone())),
                    (None, Some(ch), _) if !ch.connected() => {
                        ("closed", Some("the broker closed the channel".to_owned()))
                    }
                    (None, _, Some(c)) if !c.load(Ordering::Acquire) => (
                        "not consuming",
                        Some("the broker cancelled the consumer".to_owned()),
                    ),
                    (None, _, Some(_)) => ("consuming", None),
                    (None, _, None) => ("open", None),
                };
                ChannelReport {
                    channel: name.clone(),
                    state: state.to_owned(),
                    problem,
                }
            })
            .collect()
    }

    /// True while connected and every channel serves.
    pub fn all_serving(&self) -> bool {
        let connected = self
            .lock()
            .connection
            .as_ref()
            .is_some_and(|c| c.connected());
        connected && self.report().iter().all(ChannelReport::serving)
    }
}
