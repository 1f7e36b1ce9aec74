//! A real `plughost run` child with its log kept, for fault tests that must
//! see what the host said and whether it survived.
//!
//! The host's stderr goes to a file the test reads; [`PlughostRun::wait_for_log`]
//! waits on an event (a line appearing), never a fixed sleep. The child is
//! killed when the value is dropped, so a failing test leaves no host behind.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use crate::KillOnDrop;

/// `plughost run --manifest <manifest>` with stderr kept in `log`.
pub struct PlughostRun {
    child: KillOnDrop,
    /// The file the host's stderr goes to.
    pub log: PathBuf,
}

impl PlughostRun {
    /// Starts `bin run --manifest manifest` with extra environment `env`.
    pub fn start(bin: impl AsRef<Path>, manifest: &Path, env: &[(&str, &Path)]) -> Self {
        let log = manifest.with_extension("log");
        let stderr = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(bin.as_ref());
        cmd.args(["run", "--manifest"])
            .arg(manifest)
            .stdout(Stdio::null())
            .stderr(stderr)
            // Info level: reloads applied and cache pruning are logged there.
            .env("RUST_LOG", "info,lapin=warn");
        for (key, value) in env {
            cmd.env(key, value);
        }
        Self {
            child: KillOnDrop(cmd.spawn().unwrap()),
            log,
        }
    }

    /// Everything the host has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How much has been logged so far: pass it to [`Self::wait_for_log`]
    /// to wait for a line logged after this point.
    pub fn log_mark(&self) -> usize {
        self.log_text().len()
    }

    /// Waits (up to `timeout`) for a line after `mark` that contains every
    /// one of `needles`, and returns it. Panics with the log if none comes
    /// or the host exits first.
    pub fn wait_for_log(&mut self, mark: usize, needles: &[&str], timeout: Duration) -> String {
        let started = Instant::now();
        loop {
            let text = self.log_text();
            if let Some(line) = text
                .get(mark..)
                .unwrap_or_default()
                .lines()
                .find(|line| needles.iter().all(|n| line.contains(n)))
            {
                return line.to_owned();
            }
            if let Some(status) = self.exited() {
                panic!("the host exited ({status}) before logging {needles:?}; its log:\n{text}");
            }
            assert!(
                started.elapsed() < timeout,
                "no log line with {needles:?} within {timeout:?}; the host's log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The host's process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Kills the host (SIGKILL) and waits for it: what a crash leaves behind.
    pub fn kill(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
    }

    /// The exit status, if the host has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.0.try_wait().unwrap()
    }

    /// Waits (up to `timeout`) for the host to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                started.elapsed() < timeout,
                "the host did not exit within {timeout:?}; its log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
