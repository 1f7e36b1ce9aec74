//! `plughost run` as a child process against a broker of the test's own
//! choosing (a test-owned node, a TLS listener), serving the math plugin.
//! The CLI reaches it through the same manifest (`--manifest`), so the
//! broker URL and TLS files are written once.

use std::{
    fs::File,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{build::plugin_lib, process::KillOnDrop, TempManifest};

/// How long a host may take to serve after it starts: about a second
/// here; the margin covers a machine busy with parallel test builds.
const SERVE_TIMEOUT: Duration = Duration::from_secs(60);

/// A `plughost run` child, killed on drop; its stderr goes to a file.
pub struct MathHost {
    manifest: TempManifest,
    _child: KillOnDrop,
}

impl MathHost {
    /// Runs `bin run` on a manifest serving the math plugin, with
    /// `rabbitmq` as its `[rabbitmq]` table (url, TLS files...).
    pub fn math(bin: &str, rabbitmq: &str) -> Self {
        let manifest = TempManifest::new(&format!(
            "[host]\nname = \"test-host\"\n\n[rabbitmq]\n{rabbitmq}\n\n[roles]\nmanager = false\nservices = false\nadmin = false\n\n[[plugins]]\npath = {:?}\n",
            plugin_lib("math").display().to_string()
        ));
        let log = File::create(manifest.dir().join("host.log")).unwrap();
        let child = Command::new(bin)
            .args(["run", "--manifest"])
            .arg(manifest.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self {
            manifest,
            _child: KillOnDrop(child),
        }
    }

    /// The manifest, for `plughost call --manifest`.
    pub fn manifest(&self) -> &str {
        self.manifest.path().to_str().unwrap()
    }

    /// What the host logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.manifest.dir().join("host.log")).unwrap_or_default()
    }

    /// Waits until `bin find fibo --manifest` answers: the host is connected
    /// and its routes are consumed.
    pub fn wait_serving(&self, bin: &str) {
        let started = Instant::now();
        loop {
            let out = Command::new(bin)
                .args([
                    "find",
                    "fibo",
                    "--timeout",
                    "2",
                    "--manifest",
                    self.manifest(),
                ])
                .output()
                .unwrap();
            if out.status.success() {
                return;
            }
            assert!(
                started.elapsed() < SERVE_TIMEOUT,
                "host did not serve within {SERVE_TIMEOUT:?}; last find: {}\nhost log:\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The manifest's folder (for extra files).
    pub fn dir(&self) -> &Path {
        self.manifest.dir()
    }
}
