//! pyzmq (Python bindings to libzmq, the reference ZeroMQ) for interop
//! tests: installed on first use into `target/pyzmq` from PyPI, so the tests
//! need nothing but python3 and pip on the machine.

use std::{
    path::PathBuf,
    process::{Command, Output},
    sync::Mutex,
};

use crate::build::workspace_root;

/// The folder to put on `PYTHONPATH` so that `import zmq` works.
pub fn pyzmq_path() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let target = workspace_root().join("target/pyzmq");
    if target.join("zmq").exists() {
        return target;
    }
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&target)
        .arg("pyzmq")
        .output()
        .expect("python3 must be installed for the libzmq interop tests");
    assert!(
        out.status.success(),
        "pip install pyzmq failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target
}

/// Runs a Python script with pyzmq importable, with arguments.
pub fn run_python(script: &str, args: &[&str]) -> Output {
    Command::new("python3")
        .env("PYTHONPATH", pyzmq_path())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs")
}
