//! Records the versions of the libraries plughost speaks through (from the
//! workspace's Cargo.lock) for `plughost version`.

fn main() {
    let lock_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock_path.display());
    let lock = std::fs::read_to_string(&lock_path).unwrap_or_default();
    for (krate, var) in [
        ("lapin", "PLUGHOST_LAPIN_VERSION"),
        ("zmq", "PLUGHOST_ZMQ_VERSION"),
        ("abi_stable", "PLUGHOST_ABI_STABLE_VERSION"),
    ] {
        println!("cargo:rustc-env={var}={}", locked_version(&lock, krate));
    }
}

/// The version of `krate` in a Cargo.lock, or "unknown".
fn locked_version(lock: &str, krate: &str) -> String {
    let needle = format!("name = \"{krate}\"\nversion = \"");
    lock.find(&needle)
        .and_then(|at| lock[at + needle.len()..].split('"').next())
        .unwrap_or("unknown")
        .to_owned()
}
