//! Child processes and ports for tests that run the real binary.

use std::{
    path::Path,
    process::{Child, Command, Output, Stdio},
};

/// Runs `bin` with `args` to completion and returns what it printed.
pub fn output(bin: impl AsRef<Path>, args: &[&str]) -> Output {
    Command::new(bin.as_ref()).args(args).output().unwrap()
}

/// What a finished command printed on stdout, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a finished command printed on stderr, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A long-running child (`plughost run`), killed when dropped so a failing
/// test never leaves a host behind.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// Starts `bin` with `args`, its output discarded.
    pub fn spawn(bin: impl AsRef<Path>, args: &[&str]) -> Self {
        Self(
            Command::new(bin.as_ref())
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP port that was free a moment ago (for endpoints a manifest must
/// name before the process binds them).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
