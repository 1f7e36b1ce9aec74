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
    /// The libzmq the tracker runs on, as the loaded library reports it
    /// (`zmq_version`), e.g. `4.3.4`.
    pub libzmq: String,
    /// The `zmq` crate (the Rust binding) this build links libzmq through.
    pub zmq_crate: &'static str,
    /// Whether that libzmq can do CURVE (built with libsodium).
    pub curve: bool,
    /// The ZMTP wire version libzmq speaks (`ZMTP 3.1`).
    pub zmtp: String,
}

/// The versions of this build.
pub fn versions() -> Versions {
    let (major, minor, patch) = zmq::version();
    Versions {
        plughost: env!("CARGO_PKG_VERSION"),
        plugin_api: plughost_loader::host_api_version(),
        abi_stable: env!("PLUGHOST_ABI_STABLE_VERSION"),
        lapin: env!("PLUGHOST_LAPIN_VERSION"),
        libzmq: format!("{major}.{minor}.{patch}"),
        zmq_crate: env!("PLUGHOST_ZMQ_VERSION"),
        curve: zmq::has("curve").unwrap_or(false),
        zmtp: plughost_proto::zmq_version().to_string(),
    }
}
