//! Versions of plughost and the libraries it speaks through, as reported by
//! `plughost version` (an operator's first question when two hosts disagree).

use serde::Serialize;

/// What this build is made of.
#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    /// plughost itself.
    pub plughost: &'static str,
    /// The plugin ABI crate it loads plugins against.
    pub plugin_api: &'static str,
    /// The abi_stable crate behind that ABI.
    pub abi_stable: &'static str,
    /// The AMQP client (RPC over RabbitMQ).
    pub lapin: &'static str,
    /// The ZeroMQ implementation (service tracker).
    pub zeromq: &'static str,
    /// The ZMTP wire version that ZeroMQ implementation speaks (`ZMTP 3.0`).
    pub zmtp: String,
}

/// The versions of this build.
pub fn versions() -> Versions {
    Versions {
        plughost: env!("CARGO_PKG_VERSION"),
        plugin_api: plughost_loader::host_api_version(),
        abi_stable: env!("PLUGHOST_ABI_STABLE_VERSION"),
        lapin: env!("PLUGHOST_LAPIN_VERSION"),
        zeromq: env!("PLUGHOST_ZEROMQ_VERSION"),
        zmtp: plughost_proto::zmq_version().to_string(),
    }
}
