//! Python peers for interop tests: pyzmq (Python bindings to libzmq, the
//! reference ZeroMQ) and pika (the AMQP client the old RPC tools used),
//! installed on first use into `target/pyzmq` and `target/pika` from PyPI,
//! so the tests need nothing but python3 and pip on the machine.

use std::{
    path::PathBuf,
    process::{Command, Output},
    sync::Mutex,
};

use crate::build::workspace_root;

/// Installs `package` (whose import folder is `module`) into
/// `target/<folder>` unless it is there, and returns that folder.
fn pip_target(folder: &str, package: &str, module: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let target = workspace_root().join("target").join(folder);
    if target.join(module).exists() {
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
        .arg(package)
        .output()
        .expect("python3 must be installed for the Python interop tests");
    assert!(
        out.status.success(),
        "pip install {package} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target
}

/// The folder to put on `PYTHONPATH` so that `import zmq` works.
pub fn pyzmq_path() -> PathBuf {
    pip_target("pyzmq", "pyzmq", "zmq")
}

/// The folder to put on `PYTHONPATH` so that `import pika` works (pika 1.x,
/// for v1 RPC peers that behave like the old Python tools).
pub fn pika_path() -> PathBuf {
    pip_target("pika", "pika", "pika")
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
