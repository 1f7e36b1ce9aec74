//! `plughost version` reports the libzmq the tracker runs on.

#[test]
fn plughost_version_reports_libzmq() {
    let v = plughost_cli::versions::versions();
    let (major, minor, patch) = zmq::version();
    assert_eq!(v.libzmq, format!("{major}.{minor}.{patch}"));
    assert!(v.libzmq.starts_with("4."), "{v:?}");
    assert!(v.zmq_crate.starts_with("0.9."), "{v:?}");
    assert!(
        v.curve,
        "Debian's libzmq3-dev is built with libsodium: {v:?}"
    );
}
