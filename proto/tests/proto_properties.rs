//! Property tests of the protocol toolkit: serialize then parse gives back
//! the same value for random valid messages, addresses, uids and listings;
//! parsing arbitrary bytes never panics (see also `proto_fuzz.rs`).

use proptest::prelude::*;

use plughost_proto::address::{Address, RawAddress};
use plughost_proto::codes::raw::RawCode;
use plughost_proto::known;
use plughost_proto::message::{LineSeparator, Message, MessageKind};
use plughost_proto::raw::{
    format_listing, parse_listing, ListingEntry, RawMessage, RawMessageType, RawRequest,
    RawResponse,
};
use plughost_proto::uid::Uid;

fn uid() -> impl Strategy<Value = Uid> {
    any::<[u8; 16]>().prop_map(|bytes| {
        Uid::try_from(uuid::Builder::from_random_bytes(bytes).into_uuid())
            .expect("random bytes make a v4 uuid")
    })
}

/// Names as the old system allows them: anything but `:` and line breaks.
fn name() -> impl Strategy<Value = String> {
    "[^:\r\n]{0,24}"
}

fn raw_address() -> impl Strategy<Value = RawAddress> {
    (name(), uid()).prop_map(|(name, uid)| {
        RawAddress::new(name, uid).expect("the name strategy excludes ':' and line breaks")
    })
}

/// Body strings, including CRLFs (which constructors split into lines),
/// lone CRs and LFs, and empty lines.
fn body() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("(?s)[a-z \r\n:=\\[\\]é]{0,16}", 0..6)
}

fn raw_request() -> impl Strategy<Value = RawRequest> {
    (
        uid(),
        raw_address(),
        prop::option::of(raw_address()),
        body(),
    )
        .prop_map(|(id, from, to, body)| RawRequest::with_id(id, from, to, body))
}

fn raw_response() -> impl Strategy<Value = RawResponse> {
    (
        uid(),
        raw_address(),
        prop::option::of(raw_address()),
        prop::sample::select(RawCode::ALL.to_vec()),
        prop::option::of("(?s).{0,30}"),
        body(),
    )
        .prop_map(|(id, from, to, code, reason, body)| {
            let response = RawResponse::new(id, from, to, code, body);
            match reason {
                Some(reason) => response.with_reason(reason),
                None => response,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn raw_requests_round_trip(request in raw_request()) {
        let bytes = request.serialize();
        prop_assert_eq!(RawRequest::parse(&bytes), Ok(request.clone()));
        prop_assert_eq!(RawMessage::parse(&bytes), Ok(RawMessage::Request(request.clone())));
        let generic = Message::from(&RawMessage::Request(request));
        prop_assert_eq!(generic.join(&LineSeparator::CRLF), bytes);
    }

    #[test]
    fn raw_responses_round_trip(response in raw_response()) {
        let bytes = response.serialize();
        prop_assert_eq!(RawResponse::parse(&bytes), Ok(response.clone()));
        let found = known::factory().parse(&bytes).map(|found| (found.protocol, found.kind)).ok();
        prop_assert_eq!(found, Some(("raw", MessageKind::Response)));
    }

    #[test]
    fn frames_split_anywhere_parse_like_the_whole(request in raw_request(), cut in any::<prop::sample::Index>()) {
        let bytes = request.serialize();
        let (a, b) = bytes.split_at(cut.index(bytes.len() + 1));
        prop_assert_eq!(RawRequest::parse_frames([a, b]), Ok(request));
    }

    #[test]
    fn raw_addresses_round_trip(address in raw_address()) {
        let text = address.to_string();
        prop_assert_eq!(RawAddress::parse(&text), Ok(address.clone()));
        prop_assert_eq!(RawAddress::try_from(&Address::parse(&text)), Ok(address));
    }

    #[test]
    fn generic_addresses_round_trip(
        separator in "[:;|/<>-]{1,3}",
        fields in prop::collection::vec("[a-z0-9 ]{0,8}", 1..5),
    ) {
        let address = Address::with_separator(fields.clone(), separator.clone()).unwrap();
        prop_assert_eq!(address.fields(), fields.as_slice());
        prop_assert_eq!(Address::parse_with(&address.to_string(), &separator), Ok(address));
    }

    #[test]
    fn uids_round_trip_and_only_canonical_text_is_valid(uid in uid()) {
        let text = uid.to_string();
        prop_assert_eq!(Uid::parse(&text), Ok(uid));
        prop_assert!(!Uid::is_valid(&text.to_uppercase()));
        prop_assert!(!Uid::is_valid(&text.replace('-', "")));
    }

    #[test]
    fn generic_messages_round_trip(
        start_line in "[A-Za-z :.0-9]{1,40}",
        id in "[a-z0-9-]{0,36}",
        headers in prop::collection::vec("[^\r\n]{1,20}", 0..4),
        body in prop::collection::vec("[^\r\n]{0,20}", 0..4),
    ) {
        let message = Message { kind: MessageKind::Response, start_line, id, headers, body };
        let bytes = message.join(&LineSeparator::CRLF);
        prop_assert_eq!(Message::split(MessageKind::Response, &bytes, &LineSeparator::CRLF), Ok(message));
    }

    #[test]
    fn line_splitting_inverts_joining(
        separator in "(\r\n|\n|;;|<EOL>)",
        lines in prop::collection::vec("[a-z\r ]{0,10}", 0..8),
    ) {
        let separator = LineSeparator::new(separator).unwrap();
        prop_assume!(lines.iter().all(|line| !line.contains(separator.as_str())));
        let joined = separator.join(&lines);
        let split: Vec<&[u8]> = separator.split(&joined).collect();
        let expected: Vec<&[u8]> = lines.iter().map(|line| line.as_bytes()).collect();
        prop_assert_eq!(split, expected);
    }

    #[test]
    fn listings_round_trip(
        entries in prop::collection::vec(
            (raw_address(), any::<f64>().prop_filter("finite", |s| s.is_finite()),
             prop::sample::select(vec![RawMessageType::Init, RawMessageType::Hello])),
            0..5,
        ),
    ) {
        let entries: Vec<ListingEntry> = entries
            .into_iter()
            .enumerate()
            .map(|(index, (service, seconds, kind))| ListingEntry::new(index + 1, service, seconds, kind))
            .collect();
        let text = format_listing(&entries);
        prop_assert_eq!(parse_listing(&text), Ok(entries));
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = RawMessage::parse(&bytes);
        let _ = RawRequest::parse(&bytes);
        let _ = RawResponse::parse(&bytes);
        let _ = known::factory().parse(&bytes);
        let _ = Message::split(MessageKind::Request, &bytes, &LineSeparator::CRLF);
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_listing(&text);
        let _ = RawAddress::parse(&text);
    }

    #[test]
    fn parsing_a_message_with_a_raw_start_line_never_panics(rest in "(?s).{0,300}") {
        for start in ["Raw Request Message : Version 1.0\r\n", "Raw Response Message : Version 1.0\r\n"] {
            let bytes = format!("{start}{rest}");
            if let Ok(message) = RawMessage::parse(bytes.as_bytes()) {
                prop_assert_eq!(RawMessage::parse(&message.serialize()), Ok(message));
            }
        }
    }
}
