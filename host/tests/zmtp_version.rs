//! The ZMTP version plughost reports is the one a real `zeromq` socket sends
//! in its greeting (bytes 10 and 11), so a crate upgrade that changes it fails here.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use zeromq::{Endpoint, Socket};

use plughost_proto::zmtp::zmq_version;

#[tokio::test]
async fn a_zeromq_socket_greets_with_the_reported_version() {
    let mut socket = zeromq::PubSocket::new();
    let endpoint = socket.bind("tcp://127.0.0.1:0").await.unwrap();
    let Endpoint::Tcp(_, port) = endpoint else {
        panic!("expected a TCP endpoint, got {endpoint}");
    };
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut greeting = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut greeting))
        .await
        .expect("the socket sends its greeting at once")
        .unwrap();
    // ZMTP 3 signature: 0xFF, 8 padding bytes, 0x7F; then major, minor.
    assert_eq!((greeting[0], greeting[9]), (0xff, 0x7f), "{greeting:?}");
    let version = zmq_version();
    assert_eq!((greeting[10], greeting[11]), (version.major, version.minor));
}
