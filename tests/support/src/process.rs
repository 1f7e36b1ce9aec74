//! Child processes and ports for tests that run the real binary.

use std::{
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// Runs `bin` with `args` to completion and returns what it printed.
pub fn output(bin: impl AsRef<Path>, args: &[&str]) -> Output {
    Command::new(bin.as_ref()).args(args).output().unwrap()
}

/// Runs `bin` with `args` and waits for it to end, at most `limit`: returns
/// what it printed and how long it took. A command still running at the
/// limit is killed and the test fails saying it hung, so a test of "returns
/// within N s" never hangs itself. The wait is on the process's exit (a
/// thread blocked in `wait`), not on polling.
pub fn output_within(bin: impl AsRef<Path>, args: &[&str], limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let child = Command::new(bin.as_ref())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => (output.unwrap(), started.elapsed()),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            let output = rx.recv().map(|o| o.unwrap());
            panic!(
                "{} {args:?} still ran after {limit:?} (killed); stderr:\n{}",
                bin.as_ref().display(),
                output.as_ref().map(stderr).unwrap_or_default()
            );
        }
    }
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
///
/// The kernel may hand the same free port to two tests of one binary while
/// neither has bound it yet; a port is therefore never handed out twice in
/// one process. Other processes can still take it: whoever binds it must
/// check that the bind was its own.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}
