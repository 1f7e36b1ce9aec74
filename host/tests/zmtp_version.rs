//! The ZMTP version plughost reports is the one a real libzmq socket sends
//! in its greeting (bytes 10 and 11), so a libzmq that greets otherwise fails here.

#![allow(clippy::unwrap_used)]

use std::{io::Read, time::Duration};

use plughost_proto::zmtp::zmq_version;

#[test]
fn a_libzmq_socket_greets_with_the_reported_version() {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::PUB).unwrap();
    socket.bind("tcp://127.0.0.1:0").unwrap();
    let endpoint = socket.get_last_endpoint().unwrap().unwrap();
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // libzmq sends the signature first and the rest once it has seen ours.
    std::io::Write::write_all(&mut stream, &[0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 1]).unwrap();
    let mut greeting = [0u8; 12];
    stream.read_exact(&mut greeting).unwrap();
    // ZMTP 3 signature: 0xFF, 8 padding bytes, 0x7F; then major, minor.
    assert_eq!((greeting[0], greeting[9]), (0xff, 0x7f), "{greeting:?}");
    let version = zmq_version();
    assert_eq!((greeting[10], greeting[11]), (version.major, version.minor));
}
