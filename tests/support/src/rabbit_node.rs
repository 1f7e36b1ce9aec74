//! A RabbitMQ node of the test's own, for tests that stop, freeze or alarm a
//! broker, or need broker settings the shared one does not have (a small
//! `max_message_size`, a TLS listener). The shared broker on 5672 is never
//! touched.
//!
//! Each node gets its own node name, AMQP and distribution ports, data and
//! log folders, Erlang cookie (through its own `HOME`) and config file. The
//! system config pins the listener to 5672 (`listeners.tcp.local`), so the
//! node reads only our `rabbitmq.conf` (`RABBITMQ_CONFIG_FILE`), which sets
//! `listeners.tcp.default`; an `enabled_plugins` file holding `[].` keeps the
//! management plugin (and its fixed port) off. The node runs in the
//! foreground as our child, straight from `/usr/lib/rabbitmq/bin` (Debian's
//! `/usr/sbin` wrapper switches user through `su`, which drops the
//! environment), and is killed when the handle drops.

use std::{
    fs,
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use crate::process::free_port;

/// Where Debian installs the server's own scripts.
const RABBIT_BIN: &str = "/usr/lib/rabbitmq/bin";

/// How long a node may take to open its AMQP listener (about 5 s here; the
/// margin covers a machine busy with parallel test builds).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Extra settings for a node.
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    /// Lines appended to the node's `rabbitmq.conf`, e.g.
    /// `max_message_size = 1048576` or `listeners.ssl.default = 127.0.0.1:PORT`.
    pub conf_lines: Vec<String>,
}

impl NodeConfig {
    /// Adds one `rabbitmq.conf` line.
    pub fn line(mut self, line: impl Into<String>) -> Self {
        self.conf_lines.push(line.into());
        self
    }
}

/// A running RabbitMQ node owned by one test.
pub struct RabbitNode {
    name: String,
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl RabbitNode {
    /// Starts a node with default settings and waits until it takes AMQP connections.
    pub fn start() -> Self {
        Self::start_with(NodeConfig::default())
    }

    /// Starts a node with extra settings.
    pub fn start_with(config: NodeConfig) -> Self {
        assert!(
            Path::new(RABBIT_BIN).join("rabbitmq-server").exists(),
            "this test runs its own RabbitMQ node and needs rabbitmq-server installed \
             (apt-get install rabbitmq-server; .ci/run installs it)"
        );
        // A port taken between free_port() and the node's bind fails the start: retry.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(&config, free_port(), free_port()) {
                Ok(node) => return node,
                Err(e) => last_error = e,
            }
        }
        panic!("test RabbitMQ node did not start: {last_error}");
    }

    fn try_start(config: &NodeConfig, port: u16, dist_port: u16) -> Result<Self, String> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "plughost-test-{}-{}@localhost",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        for sub in ["mnesia", "log", "home"] {
            fs::create_dir_all(dir.path().join(sub)).map_err(|e| e.to_string())?;
        }
        let mut conf = format!("listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n");
        for line in &config.conf_lines {
            conf.push_str(line);
            conf.push('\n');
        }
        fs::write(dir.path().join("rabbitmq.conf"), conf).map_err(|e| e.to_string())?;
        fs::write(dir.path().join("enabled_plugins"), "[].\n").map_err(|e| e.to_string())?;
        fs::write(dir.path().join("rabbitmq-env.conf"), "").map_err(|e| e.to_string())?;
        let cookie = dir.path().join("home/.erlang.cookie");
        fs::write(&cookie, format!("plughosttestcookie{}", std::process::id()))
            .map_err(|e| e.to_string())?;
        set_mode(&cookie, 0o400);
        let log = fs::File::create(dir.path().join("server.out")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(Path::new(RABBIT_BIN).join("rabbitmq-server"));
        node_env(&mut cmd, dir.path(), &name);
        let child = cmd
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.path().join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.path().join("log"))
            .env("RABBITMQ_CONFIG_FILE", dir.path().join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                dir.path().join("enabled_plugins"),
            )
            .env("RABBITMQ_PID_FILE", dir.path().join("pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run rabbitmq-server: {e}"))?;
        let mut node = Self {
            name,
            port,
            dir,
            child,
        };
        let started = Instant::now();
        loop {
            // Something answering on the port is not proof enough: another
            // test's node may hold it while ours fails to bind it.
            if node.listener_starts() > 0 && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(node);
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                return Err(format!(
                    "rabbitmq-server exited ({status}):\n{}",
                    node.server_output()
                ));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "no AMQP listener on port {port} after {START_TIMEOUT:?}:\n{}",
                    node.server_output()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The node's Erlang name (`plughost-test-<pid>-<n>@localhost`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its AMQP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// An AMQP URL for it (guest/guest, default vhost).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Its folder (config, data, logs), for tests that add files such as TLS keys.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `rabbitmqctl -n <node> args...` against this node.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(Path::new(RABBIT_BIN).join("rabbitmqctl"));
        node_env(&mut cmd, self.dir.path(), &self.name);
        cmd.arg("-n").arg(&self.name).args(args);
        cmd.output().expect("rabbitmqctl runs")
    }

    /// Like [`RabbitNode::ctl`], panicking with its output when it fails.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        ctl_stdout(args, &self.ctl(args))
    }

    /// Raises a memory alarm: the broker blocks every publishing connection.
    pub fn set_memory_alarm(&self) {
        self.ctl_ok(&["set_vm_memory_high_watermark", "0.00001"]);
    }

    /// Clears the memory alarm.
    pub fn clear_memory_alarm(&self) {
        self.ctl_ok(&["set_vm_memory_high_watermark", "0.4"]);
    }

    /// Freezes the node (SIGSTOP): TCP connections stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen node run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// Stops the RabbitMQ application (the Erlang node stays up); connections drop.
    pub fn stop_app(&self) {
        self.ctl_ok(&["stop_app"]);
    }

    /// Starts the RabbitMQ application again and waits until this node's
    /// own AMQP listener is back (while it was down, another test's node
    /// may have bound the port).
    pub fn start_app(&self) {
        let before = self.listener_starts();
        self.ctl_ok(&["start_app"]);
        let started = Instant::now();
        while self.listener_starts() <= before
            || TcpStream::connect(("127.0.0.1", self.port)).is_err()
        {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "node {} is not listening on {}:\n{}",
                self.name,
                self.port,
                fs::read_to_string(self.log_file()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// How many times this node's log says it opened its AMQP listener:
    /// the proof that the listener on [`RabbitNode::port`] is this node's.
    fn listener_starts(&self) -> usize {
        let line = format!("started TCP listener on 127.0.0.1:{}", self.port);
        fs::read_to_string(self.log_file())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&line))
            .count()
    }

    /// The Erlang VM's OS process id (from the node's pid file; the
    /// script we started may not be the VM itself).
    pub fn os_pid(&self) -> u32 {
        fs::read_to_string(self.dir.path().join("pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| self.child.id())
    }

    fn signal(&self, signal: &str) {
        let pid = self.os_pid();
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// What the server printed (for failure messages).
    pub fn server_output(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.out")).unwrap_or_default()
    }

    /// The node's log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir
            .path()
            .join("log")
            .join(format!("{}.log", self.name))
    }
}

/// The environment every command for one node needs: its name, its own
/// `HOME` (so its Erlang cookie is private to it) and no system env file.
fn node_env(cmd: &mut Command, dir: &Path, name: &str) {
    cmd.env("HOME", dir.join("home"))
        .env("RABBITMQ_NODENAME", name)
        .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"));
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        // SIGKILL works on a frozen node too; its data folder goes with `dir`.
        let vm = self.os_pid();
        if vm != self.child.id() {
            // A node that failed to start is already gone: say nothing.
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(vm.to_string())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The VM is not our child: wait until it is gone (or a zombie of init's).
        let started = Instant::now();
        while process_alive(vm) && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// True while `pid` runs (a zombie no longer does).
fn process_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// The stdout of `rabbitmqctl <args>`, panicking with its output when it
/// failed (for a node's or a cluster's `ctl_ok`).
pub(crate) fn ctl_stdout(args: &[&str], out: &Output) -> String {
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_of_our_own_starts_answers_rabbitmqctl_and_goes_away() {
        let node = RabbitNode::start_with(NodeConfig::default().line("max_message_size = 65536"));
        assert_ne!(node.port(), 5672);
        let status = node.ctl_ok(&["status"]);
        assert!(status.contains(&node.port().to_string()), "{status}");
        let env = node.ctl_ok(&["environment"]);
        assert!(env.contains("65536"), "our config is the one in force");
        node.set_memory_alarm();
        node.clear_memory_alarm();
        node.freeze();
        let vm = fs::read_to_string(format!("/proc/{}/stat", node.os_pid())).unwrap();
        assert!(vm.contains(") T "), "frozen: {vm}");
        node.thaw();
        node.stop_app();
        assert!(TcpStream::connect(("127.0.0.1", node.port())).is_err());
        node.start_app();
        let pid = node.os_pid();
        drop(node);
        assert!(!process_alive(pid), "the node process is gone");
    }

    #[test]
    fn a_node_that_cannot_bind_its_port_does_not_pass_for_started() {
        // Another listener holds the port, as another test's node may: it
        // answers connections, but it is not our node.
        let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = squatter.local_addr().unwrap().port();
        let started = Instant::now();
        let result = RabbitNode::try_start(&NodeConfig::default(), port, free_port());
        let error = result
            .err()
            .expect("a node that could not bind its port is no node");
        assert!(error.contains("exited"), "{error}");
        assert!(started.elapsed() < START_TIMEOUT, "it failed by its exit");
    }
}
