// The property every fuzz run checks, shared word for word by the stable
// fuzz run (`host/tests/proto_fuzz.rs`) and the cargo-fuzz target
// (`fuzz/fuzz_targets/raw_parse.rs`, which `include!`s this file).
//
// For any input bytes, none of the parsers panics, and whatever the raw
// parser accepts serializes to bytes that parse back to the same message.

use plughost_proto::address::RawAddress;
use plughost_proto::known;
use plughost_proto::message::{LineSeparator, Message, MessageKind};
use plughost_proto::raw::{parse_listing, MgmtCommand, RawMessage, RawRequest, RawResponse};
use plughost_proto::uid::Uid;

/// Checks one input; panics (which the fuzzer reports) if a property fails.
pub fn check_raw_parser(bytes: &[u8]) {
    let parsed = RawMessage::parse(bytes);
    if let Ok(message) = &parsed {
        let serialized = message.serialize();
        let again = RawMessage::parse(&serialized)
            .unwrap_or_else(|err| panic!("re-parse of {serialized:?} failed: {err}"));
        assert_eq!(&again, message, "round trip changed the message");
        assert_eq!(again.serialize(), serialized, "serialization is not stable");
    }
    // The typed parsers agree with the dispatching one.
    match &parsed {
        Ok(RawMessage::Request(request)) => assert_eq!(RawRequest::parse(bytes).as_ref(), Ok(request)),
        Ok(RawMessage::Response(response)) => assert_eq!(RawResponse::parse(bytes).as_ref(), Ok(response)),
        Err(_) => {
            assert!(RawRequest::parse(bytes).is_err());
            assert!(RawResponse::parse(bytes).is_err());
        }
    }
    // The factory recognises exactly what the raw parser would be asked about.
    let factory = known::factory();
    if let Ok(found) = factory.parse(bytes) {
        assert!(found.protocol == "raw" || found.protocol == "generic");
    }
    let _ = RawMessage::parse_frames(bytes.chunks(7));
    let _ = Message::split(MessageKind::Request, bytes, &LineSeparator::CRLF);
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = parse_listing(text);
        let _ = RawAddress::parse(text);
        let _ = Uid::parse(text);
        let _ = MgmtCommand::parse(text);
    }
}
