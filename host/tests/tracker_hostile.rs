//! A defect of the `zeromq` crate (0.7.0) that plughost cannot work around:
//! its decoder reserves memory for a frame as soon as it reads the frame's
//! length, with no upper limit, so one header announcing a 1 TiB frame makes
//! the allocation fail and aborts the whole process. This runs the real
//! binary as a manager and shows the abort, so that docs/operations.md
//! ("the tracker's ports must only be reachable by trusted peers") stays
//! true; it fails once the crate limits frame sizes, which is the signal to
//! update that doc and this test. (Found by a teammate while testing the
//! tracker; no upstream issue yet.)

#![allow(clippy::unwrap_used)]

use std::{
    os::unix::process::ExitStatusExt,
    process::{Command, Stdio},
    time::Duration,
};

use plughost_test_support::{free_port, TempManifest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_hostile_frame_length_aborts_the_manager_process() {
    let (disc, mgmt) = (free_port(), free_port());
    let manifest = TempManifest::new(&format!(
        "[host]\nname = \"victim\"\n[zeromq]\ndiscovery = \"tcp://127.0.0.1:{disc}\"\nmanagement = \"tcp://127.0.0.1:{mgmt}\"\n\
         [roles]\nname_service = false\nrpc = false\nservices = false\nadmin = false\n"
    ));
    // No core dump from the abort; the shell execs the binary, keeping its pid.
    let mut child = Command::new("sh")
        .args(["-c", "ulimit -c 0; exec \"$0\" \"$@\""])
        .arg(plughost_test_support::plughost_bin())
        .args(["run", "--manifest"])
        .arg(manifest.path())
        .current_dir(manifest.dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stream = None;
    for _ in 0..100 {
        if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", mgmt)).await {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut stream = zmtp_handshake(stream.expect("manager listening"), b"attacker").await;
    let mut header = vec![0x02u8]; // a long frame, the last one
    header.extend((1u64 << 40).to_be_bytes());
    let _ = stream.write_all(&header).await;
    let _ = stream.write_all(&[0u8; 64]).await;

    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the manager survived a 1 TiB frame header: the crate limits frame sizes now; update docs/operations.md and this test");
    };
    assert_eq!(status.signal(), Some(6), "expected SIGABRT, got {status:?}");
}

/// The ZMTP 3.0 greeting (NULL mechanism) and a READY command for a DEALER
/// with `identity`, written by hand.
async fn zmtp_handshake(
    mut stream: tokio::net::TcpStream,
    identity: &[u8],
) -> tokio::net::TcpStream {
    let mut greeting = vec![0xffu8, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0];
    let mut mechanism = b"NULL".to_vec();
    mechanism.resize(20, 0);
    greeting.extend(mechanism);
    greeting.resize(64, 0);
    stream.write_all(&greeting).await.unwrap();
    let mut theirs = [0u8; 64];
    stream.read_exact(&mut theirs).await.unwrap();
    let mut ready = vec![5u8];
    ready.extend(b"READY");
    for (name, value) in [
        (&b"Socket-Type"[..], &b"DEALER"[..]),
        (b"Identity", identity),
    ] {
        ready.push(name.len() as u8);
        ready.extend(name);
        ready.extend((value.len() as u32).to_be_bytes());
        ready.extend(value);
    }
    let mut command = vec![0x04u8, ready.len() as u8];
    command.extend(ready);
    stream.write_all(&command).await.unwrap();
    stream
}
