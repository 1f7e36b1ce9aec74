//! A Rust program calling a plughost method: `fibo(n)` on whatever host
//! serves it. Start a host first, then:
//!
//! ```sh
//! target/release/plughost run --manifest examples/plughost.toml &
//! cargo run -p plughost-client --example fibo -- 10      # fibo(10) = 55
//! ```
//!
//! The broker and exchanges come from `PLUGHOST_AMQP_URL`,
//! `PLUGHOST_RPC_EXCHANGE` and `PLUGHOST_NS_EXCHANGE` when set.

use std::process::ExitCode;

use plughost_client::{Client, ClientOptions, RpcError};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let n: u32 = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 10,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("usage: fibo [N]: {e}");
            return ExitCode::from(2);
        }
    };
    let url = std::env::var("PLUGHOST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let mut options = ClientOptions::new(url);
    if let Ok(rpc) = std::env::var("PLUGHOST_RPC_EXCHANGE") {
        options.exchanges.rpc = rpc;
    }
    if let Ok(ns) = std::env::var("PLUGHOST_NS_EXCHANGE") {
        options.exchanges.ns = ns;
    }

    let client = match Client::connect(options).await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // Arguments are a tuple (positional); the result is decoded as a u64.
    let outcome = client.call::<u64>("fibo", (n,)).await;
    client.close().await;
    match outcome {
        Ok(f) => {
            println!("fibo({n}) = {f}");
            ExitCode::SUCCESS
        }
        // The method ran and said no: its message, and what to do about it.
        Err(RpcError::Remote {
            code,
            message,
            help,
        }) => {
            eprintln!("fibo refused ({code}): {message}");
            if let Some(help) = help {
                eprintln!("help: {help}");
            }
            ExitCode::FAILURE
        }
        // Nobody serves it: a deployment problem, not the method's.
        Err(e @ (RpcError::MethodNotFound { .. } | RpcError::NoNameService { .. })) => {
            eprintln!("{e}: is a host serving the math plugin running?");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
