//! Test helpers shared by plughost's integration tests, in one place so each
//! test reads like a story: "build the math plugin, write a manifest, load it".
//!
//! Plugins are built with the real `cargo` and loaded by the real loader;
//! nothing here fakes a library.

#![allow(clippy::unwrap_used, missing_docs)]

pub mod broker;
pub mod build;
pub mod host_process;
pub mod inspect;
pub mod manifest;
pub mod plughost_run;
pub mod process;
pub mod pyzmq;
pub mod rabbit_cluster;
pub mod rabbit_node;
pub mod tls;

pub use broker::{close_broker_connection, TestExchanges, AMQP_URL};
pub use build::{
    plughost_bin, plugin_lib, run_example, variant_lib, SourcePatch, Variant, CONFORMANCE_FIXTURES,
};
pub use host_process::HostProcess;
pub use inspect::QueueDepth;
pub use manifest::TempManifest;
pub use plughost_run::PlughostRun;
pub use process::{free_port, KillOnDrop};
pub use rabbit_cluster::{NodeStopped, RabbitCluster, SharedCluster};
pub use rabbit_node::{NodeConfig, RabbitNode};
pub use tls::TestCa;
