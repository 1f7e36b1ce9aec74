//! A private corner of the shared RabbitMQ for one test: unique exchange
//! names (so tests run in parallel and never disturb other users of the
//! broker), removed again when the test ends.

use std::process::Command;

/// The broker every test talks to.
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Unique RPC and name-service exchange names, deleted on drop.
pub struct TestExchanges {
    /// The topic exchange for calls.
    pub rpc: String,
    /// The fanout exchange for finds.
    pub ns: String,
}

impl TestExchanges {
    /// Fresh names for a test called `label`.
    pub fn new(label: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            rpc: format!("test.{label}.{}.rpc", &id[..12]),
            ns: format!("test.{label}.{}.ns", &id[..12]),
        }
    }

    /// A `[rabbitmq]` table naming these exchanges.
    pub fn rabbitmq_toml(&self) -> String {
        format!(
            "[rabbitmq]\nurl = {AMQP_URL:?}\nrpc_exchange = {:?}\nns_exchange = {:?}\nprefetch = 16\n",
            self.rpc, self.ns
        )
    }
}

impl TestExchanges {
    /// Declares both exchanges as the old tools do (topic and fanout, not
    /// durable), for a test that needs them to exist with nobody behind
    /// them (a caller with no host anywhere).
    pub fn declare(&self) {
        let names = [
            (self.rpc.clone(), lapin::ExchangeKind::Topic),
            (self.ns.clone(), lapin::ExchangeKind::Fanout),
        ];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let conn = lapin::Connection::connect(AMQP_URL, Default::default())
                .await
                .unwrap();
            let ch = conn.create_channel().await.unwrap();
            for (name, kind) in names {
                ch.exchange_declare(
                    name.as_str().into(),
                    kind,
                    Default::default(),
                    Default::default(),
                )
                .await
                .unwrap();
            }
            let _ = conn.close(200, "test set-up".into()).await;
        });
    }
}

impl Drop for TestExchanges {
    fn drop(&mut self) {
        let names = [self.rpc.clone(), self.ns.clone()];
        // Drop may run inside a runtime; clean up on a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(conn) = lapin::Connection::connect(AMQP_URL, Default::default()).await
                else {
                    return;
                };
                if let Ok(ch) = conn.create_channel().await {
                    for name in names {
                        let _ = ch
                            .exchange_delete(name.as_str().into(), Default::default())
                            .await;
                    }
                }
                let _ = conn.close(200, "test cleanup".into()).await;
            });
        })
        .join();
    }
}

/// Closes the broker connection whose `connection_name` contains `name`,
/// as an operator would with `rabbitmqctl close_connection`; returns how
/// many connections it closed.
pub fn close_broker_connection(name: &str) -> usize {
    let out = Command::new("rabbitmqctl")
        .args(["list_connections", "pid", "client_properties", "-q"])
        .output()
        .expect("rabbitmqctl must be installed for this test");
    let listing = String::from_utf8_lossy(&out.stdout);
    let pids: Vec<String> = listing
        .lines()
        .filter(|line| line.contains(name))
        .filter_map(|line| line.split('\t').next().map(str::to_owned))
        .collect();
    for pid in &pids {
        let status = Command::new("rabbitmqctl")
            .args(["close_connection", pid, "closed by a plughost test"])
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "rabbitmqctl close_connection failed: {status:?}"
        );
    }
    pids.len()
}
