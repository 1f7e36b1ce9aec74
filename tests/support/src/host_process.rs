//! `plughost run` as an operator runs it, for fault tests: the real binary
//! on a manifest of the test's own, its JSON log kept in a file the test
//! can read, its admin socket asked for `status`, killed when dropped.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{KillOnDrop, TempManifest};

/// A running `plughost run --log-format json` with its log in a file.
pub struct HostProcess {
    bin: PathBuf,
    manifest: TempManifest,
    log: PathBuf,
    child: KillOnDrop,
}

impl HostProcess {
    /// Starts `bin run` on a manifest with `text` (which must leave the
    /// admin role on: status is how the test sees the host).
    pub fn start(bin: impl AsRef<Path>, text: &str) -> Self {
        let manifest = TempManifest::new(text);
        let log = manifest.dir().join("host.log");
        let file = fs::File::create(&log).unwrap();
        let child = Command::new(bin.as_ref())
            .args(["run", "--log-format", "json", "--manifest"])
            .arg(manifest.path())
            .env_remove("RUST_LOG")
            .env_remove("PLUGHOST_LOG")
            .env_remove("PLUGHOST_AMQP_URL")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Self {
            bin: bin.as_ref().to_path_buf(),
            manifest,
            log,
            child: KillOnDrop(child),
        }
    }

    /// `plughost run` serving the math plugin, with `rabbitmq` as its
    /// `[rabbitmq]` table (url, TLS files...): the caller-side fault tests'
    /// host, reached through the same manifest (`--manifest`).
    pub fn math(bin: impl AsRef<Path>, rabbitmq: &str) -> Self {
        Self::start(
            bin,
            &format!(
                "[host]\nname = \"test-host\"\n\n[rabbitmq]\n{rabbitmq}\n\n[roles]\nmanager = false\nservices = false\n\n[[plugins]]\npath = {:?}\n",
                crate::plugin_lib("math").display().to_string()
            ),
        )
    }

    /// The manifest the host runs.
    pub fn manifest(&self) -> &Path {
        self.manifest.path()
    }

    /// The manifest as a command-line argument.
    pub fn manifest_arg(&self) -> &str {
        self.manifest.path().to_str().unwrap_or_default()
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Every JSON log record the host wrote so far.
    pub fn log_records(&self) -> Vec<Value> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The log as text (for failure messages).
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `plughost <args> --manifest M` against this host.
    pub fn plughost(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.bin)
            .args(args)
            .arg("--manifest")
            .arg(self.manifest.path())
            .output()
            .unwrap()
    }

    /// `plughost status --json`, or None while the host does not answer.
    pub fn status(&self) -> Option<Value> {
        let out = self.plughost(&["status", "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Waits until `plughost status` satisfies `done` (panics with the last
    /// status and the log after `timeout`).
    pub fn wait_status(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let status = self.status();
            if let Some(s) = &status {
                if done(s) {
                    return s.clone();
                }
            }
            assert!(
                started.elapsed() < timeout,
                "host never {what} within {timeout:?}; last status: {status:#?}\nlog:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the host says `broker: serving`.
    pub fn wait_serving(&self) -> Value {
        // Connecting and loading take a second or two; the margin covers a
        // machine busy with parallel builds.
        self.wait_status(Duration::from_secs(60), "served", |s| {
            s["broker"] == "serving"
        })
    }

    /// Rewrites the manifest.
    pub fn rewrite_manifest(&self, text: &str) {
        self.manifest.rewrite(text);
    }
}
