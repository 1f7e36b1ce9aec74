//! Golden tests: literal bytes of the old system's conversation, parsed and
//! rebuilt; and one test per parse error.

use super::*;
use crate::address::AddressError;
use crate::codes::raw::RawCode;
use crate::message::LineSeparator;

const MANAGER: &str = "Service Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47";
const SERVICE: &str = "Service 4711:6e3b1f9a-2c4d-4a5e-8f7b-1d2c3e4f5a6b";
const COMMANDS: &str = "Command Processor:a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
const ID: &str = "5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80";

fn address(text: &str) -> RawAddress {
    RawAddress::parse(text).unwrap()
}

fn id() -> Uid {
    Uid::parse(ID).unwrap()
}

fn request(bytes: &[u8]) -> RawRequest {
    let parsed = RawRequest::parse(bytes).unwrap();
    assert_eq!(
        parsed.serialize(),
        bytes,
        "serialize(parse(bytes)) must give the bytes back"
    );
    assert_eq!(
        RawMessage::parse(bytes).unwrap(),
        RawMessage::Request(parsed.clone())
    );
    parsed
}

fn response(bytes: &[u8]) -> RawResponse {
    let parsed = RawResponse::parse(bytes).unwrap();
    assert_eq!(
        parsed.serialize(),
        bytes,
        "serialize(parse(bytes)) must give the bytes back"
    );
    assert_eq!(
        RawMessage::parse(bytes).unwrap(),
        RawMessage::Response(parsed.clone())
    );
    parsed
}

#[test]
fn golden_beacon() {
    let bytes = b"Raw Request Message : Version 1.0\r\n\
        5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n\
        Service Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47\r\n\
        \r\n\
        hello\r\n";
    let beacon = request(bytes);
    assert_eq!(beacon.id(), id());
    assert_eq!(beacon.from(), &address(MANAGER));
    assert_eq!(beacon.to(), None);
    assert_eq!(beacon.body(), ["hello"]);
    assert_eq!(beacon.message_type(), Some(RawMessageType::Hello));
    let built = RawRequest::with_id(id(), address(MANAGER), None, ["hello"]);
    assert_eq!(built.serialize(), bytes);
    let made = RawRequest::beacon(address(MANAGER));
    assert_eq!(
        RawRequest::with_id(id(), made.from().clone(), None, made.body()),
        built
    );
}

#[test]
fn golden_init() {
    let bytes = b"Raw Request Message : Version 1.0\r\n\
        5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n\
        Service 4711:6e3b1f9a-2c4d-4a5e-8f7b-1d2c3e4f5a6b\r\n\
        Service Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47\r\n\
        \r\n\
        init\r\n";
    let init = request(bytes);
    assert_eq!(init.from(), &address(SERVICE));
    assert_eq!(init.to(), Some(&address(MANAGER)));
    assert_eq!(init.message_type(), Some(RawMessageType::Init));
    assert_eq!(init.mgmt_command(), None);
    assert_eq!(
        RawRequest::with_id(id(), address(SERVICE), Some(address(MANAGER)), ["init"]).serialize(),
        bytes
    );
    let typed = RawRequest::of_type(address(SERVICE), address(MANAGER), RawMessageType::Init);
    assert_eq!(typed.body(), init.body());
}

#[test]
fn golden_init_answer_with_empty_registry() {
    // The old manager computed the listing before adding the new service, so
    // the first INIT is answered with an empty listing: one empty body line.
    let bytes = b"Raw Response Message : Version 1.0\r\n\
        5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n\
        Service Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47\r\n\
        Service 4711:6e3b1f9a-2c4d-4a5e-8f7b-1d2c3e4f5a6b\r\n\
        \r\n\
        200\r\n\
        Success\r\n\
        \r\n";
    let answer = response(bytes);
    assert_eq!(answer.id(), id());
    assert_eq!((answer.code(), answer.reason()), (200, "Success"));
    assert_eq!(answer.raw_code(), Some(RawCode::Success));
    assert!(answer.is_success());
    assert_eq!(answer.body(), [""]);
    assert_eq!(answer.trimmed_body(), Vec::<String>::new());
    assert_eq!(answer.listing().unwrap(), []);
    let init = RawRequest::with_id(id(), address(SERVICE), Some(address(MANAGER)), ["init"]);
    assert_eq!(
        init.answer(address(MANAGER), RawCode::Success, [format_listing([])])
            .serialize(),
        bytes
    );
}

#[test]
fn golden_hello_answer_with_a_listing() {
    let bytes = b"Raw Response Message : Version 1.0\r\n\
        5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n\
        Service Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47\r\n\
        Service 4711:6e3b1f9a-2c4d-4a5e-8f7b-1d2c3e4f5a6b\r\n\
        \r\n\
        200\r\n\
        Success\r\n\
        [1] : service_name = Service 4711 : service_id = 6e3b1f9a-2c4d-4a5e-8f7b-1d2c3e4f5a6b :time_since_lastUpdate = 10.00123405456543 : last_msg_type = init\n\r\n";
    let answer = response(bytes);
    let listing = answer.listing().unwrap();
    assert_eq!(
        listing,
        [ListingEntry::new(
            1,
            address(SERVICE),
            10.00123405456543,
            RawMessageType::Init
        )]
    );
    let built = RawResponse::new(
        id(),
        address(MANAGER),
        Some(address(SERVICE)),
        RawCode::Success,
        [format_listing(&listing)],
    );
    assert_eq!(built.serialize(), bytes);
}

#[test]
fn golden_bye() {
    let bytes = b"Raw Request Message : Version 1.0\r\n\
        5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n\
        Service 4711:6e3b1f9a-2c4d-4a5e-8f7b-1d2c3e4f5a6b\r\n\
        Service Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47\r\n\
        \r\n\
        bye\r\n";
    let bye = request(bytes);
    assert_eq!(bye.message_type(), Some(RawMessageType::Bye));
    assert_eq!(
        RawRequest::with_id(id(), address(SERVICE), Some(address(MANAGER)), ["bye"]).serialize(),
        bytes
    );
}

#[test]
fn golden_mgmt_list_and_its_answer() {
    let bytes = b"Raw Request Message : Version 1.0\r\n\
        5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n\
        Command Processor:a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d\r\n\
        Service Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47\r\n\
        \r\n\
        mgmt\r\n\
        l\r\n";
    let list = request(bytes);
    assert_eq!(list.message_type(), Some(RawMessageType::Mgmt));
    assert_eq!(list.mgmt_command(), Some(MgmtCommand::List));
    // The old command processor built the body as the one string "mgmt\r\nl".
    let old_style = RawRequest::with_id(
        id(),
        address(COMMANDS),
        Some(address(MANAGER)),
        ["mgmt\r\nl"],
    );
    assert_eq!(old_style.serialize(), bytes);
    assert_eq!(old_style, list);

    let answer_bytes = b"Raw Response Message : Version 1.0\r\n\
        5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n\
        Service Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47\r\n\
        Command Processor:a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d\r\n\
        \r\n\
        200\r\n\
        Success\r\n\
        [1] : service_name = Service 4711 : service_id = 6e3b1f9a-2c4d-4a5e-8f7b-1d2c3e4f5a6b :time_since_lastUpdate = 2.5 : last_msg_type = hello\n\
        [2] : service_name = Command Processor : service_id = a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d :time_since_lastUpdate = 0.0001 : last_msg_type = init\n\r\n";
    let answer = response(answer_bytes);
    let listing = answer.listing().unwrap();
    assert_eq!(listing.len(), 2);
    assert_eq!(listing[1].service, address(COMMANDS));
    assert_eq!(listing[1].seconds_since_update, 0.0001);
    let built = list.answer(
        address(MANAGER),
        RawCode::Success,
        [format_listing(&listing)],
    );
    assert_eq!(built.serialize(), answer_bytes);
}

#[test]
fn forwarded_messages_with_trailing_empty_parts_are_accepted_and_kept() {
    // The old command-processor service re-sent the parsed body, which had
    // gained a CRLF per part, so a forwarded `mgmt l` ends in extra empty parts.
    let bytes = b"Raw Request Message : Version 1.0\r\n\
        5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n\
        Command Processor:a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d\r\n\
        Service Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47\r\n\
        \r\n\
        mgmt\r\n\
        l\r\n\
        \r\n\
        \r\n";
    let forwarded = request(bytes);
    assert_eq!(forwarded.body(), ["mgmt", "l", "", ""]);
    assert_eq!(forwarded.trimmed_body(), ["mgmt", "l"]);
    assert_eq!(forwarded.mgmt_command(), Some(MgmtCommand::List));

    let beacon = request(
        b"Raw Request Message : Version 1.0\r\n\
        5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n\
        Service Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47\r\n\
        \r\n\
        hello\r\n\r\n\r\n\r\n",
    );
    assert_eq!(beacon.message_type(), Some(RawMessageType::Hello));
    assert_eq!(beacon.trimmed_body(), ["hello"]);

    let answer = response(
        b"Raw Response Message : Version 1.0\r\n\
        5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n\
        Service 4711:6e3b1f9a-2c4d-4a5e-8f7b-1d2c3e4f5a6b\r\n\
        Command Processor:a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d\r\n\
        \r\n\
        200\r\n\
        Success\r\n\
        [1] : service_name = Service 4711 : service_id = 6e3b1f9a-2c4d-4a5e-8f7b-1d2c3e4f5a6b :time_since_lastUpdate = 2.5 : last_msg_type = hello\n\r\n\r\n\r\n",
    );
    assert_eq!(answer.body().len(), 3);
    assert_eq!(answer.listing().unwrap().len(), 1);
}

#[test]
fn golden_service_unavailable_with_the_old_extended_reason() {
    let bytes = b"Raw Response Message : Version 1.0\r\n\
        5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n\
        Command Processor:a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d\r\n\
        Command Processor:a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d\r\n\
        \r\n\
        503\r\n\
        Service Unavailable : Service Mgr Not Initialized\r\n";
    let answer = response(bytes);
    assert_eq!(answer.raw_code(), Some(RawCode::ServiceUnavailable));
    assert!(answer.body().is_empty());
    let built = RawResponse::new(
        id(),
        address(COMMANDS),
        Some(address(COMMANDS)),
        RawCode::ServiceUnavailable,
        Vec::<String>::new(),
    )
    .with_reason("Service Unavailable : Service Mgr Not Initialized");
    assert_eq!(built.serialize(), bytes);
    assert_eq!(built.clone().with_reason("a\r\nb").reason(), "a b");
}

#[test]
fn frames_are_joined_like_the_old_router_did() {
    let whole: &[u8] = b"Raw Request Message : Version 1.0\r\n\
        5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n\
        Service Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47\r\n\
        \r\n\
        hello\r\n";
    let expected = RawMessage::parse(whole).unwrap();
    assert_eq!(RawMessage::parse_frames([whole]).unwrap(), expected);
    let (a, rest) = whole.split_at(10);
    let (b, c) = rest.split_at(50);
    assert_eq!(RawMessage::parse_frames([a, b, c]).unwrap(), expected);
    assert_eq!(
        RawRequest::parse_frames(vec![a.to_vec(), rest.to_vec()]).unwrap(),
        RawRequest::parse(whole).unwrap()
    );
    assert_eq!(
        RawMessage::parse_frames(Vec::<Vec<u8>>::new()),
        Err(RawParseError::TooFewParts { found: 0 })
    );
}

#[test]
fn the_generic_view_joins_to_the_same_bytes() {
    let list = RawRequest::mgmt(address(COMMANDS), address(MANAGER), &MgmtCommand::List);
    let answer = list.answer(address(MANAGER), RawCode::Forbidden, ["no"]);
    for message in [RawMessage::Request(list), RawMessage::Response(answer)] {
        let generic = Message::from(&message);
        assert_eq!(generic.join(&LineSeparator::CRLF), message.serialize());
        assert_eq!(generic.kind, message.kind());
    }
}

#[test]
fn messages_without_separator_or_body_parse_like_the_old_parser() {
    let from_only = request(b"Raw Request Message : Version 1.0\r\n5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\nService Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47\r\n\r\n");
    assert!(from_only.body().is_empty());
    // No empty part at all, and no final CRLF: still accepted, as the old parser did.
    let bare = RawRequest::parse(
        b"Raw Request Message : Version 1.0\r\n5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\nService Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47\r\nService 4711:6e3b1f9a-2c4d-4a5e-8f7b-1d2c3e4f5a6b",
    )
    .unwrap();
    assert_eq!(bare.to(), Some(&address(SERVICE)));
    assert!(bare.body().is_empty());
}

fn parse_error(bytes: &[u8]) -> RawParseError {
    RawMessage::parse(bytes).unwrap_err()
}

#[test]
fn errors_name_what_is_wrong() {
    let head = "Raw Request Message : Version 1.0\r\n5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n";
    let rhead = "Raw Response Message : Version 1.0\r\n5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n";

    assert_eq!(parse_error(b""), RawParseError::TooFewParts { found: 0 });
    assert_eq!(
        parse_error(head.as_bytes()),
        RawParseError::TooFewParts { found: 2 }
    );
    assert!(matches!(
        parse_error(b"Raw Request Message : Version 2.0\r\nx\r\ny\r\n"),
        RawParseError::BadStartLine { .. }
    ));
    assert!(matches!(
        parse_error(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        RawParseError::BadStartLine { .. }
    ));
    assert!(matches!(
        RawRequest::parse(format!("{rhead}{MANAGER}\r\n\r\n200\r\nSuccess\r\n").as_bytes()),
        Err(RawParseError::BadStartLine {
            expected: REQUEST_LINE,
            ..
        })
    ));
    assert!(matches!(
        parse_error(format!("{head}Service Manager\r\n\r\nhello\r\n").as_bytes()),
        RawParseError::BadFrom {
            reason: AddressError::WrongFieldCount { found: 1, .. },
            ..
        }
    ));
    assert!(matches!(
        parse_error(format!("{head}\r\nhello\r\n").as_bytes()),
        RawParseError::BadFrom { .. }
    ));
    assert!(matches!(
        parse_error(format!("{head}{SERVICE}\r\nService Manager:1234\r\n\r\ninit\r\n").as_bytes()),
        RawParseError::BadTo {
            reason: AddressError::BadUid { .. },
            ..
        }
    ));
    assert!(matches!(
        parse_error(format!("{head}{SERVICE}\r\n{MANAGER}\r\ninit\r\n").as_bytes()),
        RawParseError::MissingSeparatorAfterTo { .. }
    ));
    assert!(matches!(
        parse_error(
            format!("Raw Request Message : Version 1.0\r\n42\r\n{MANAGER}\r\n\r\nhello\r\n")
                .as_bytes()
        ),
        RawParseError::BadId { .. }
    ));
    let mut invalid = format!("{head}{MANAGER}\r\n\r\nhel").into_bytes();
    invalid.extend_from_slice(b"\xfflo\r\n");
    assert_eq!(
        parse_error(&invalid),
        RawParseError::NotUtf8 {
            part: 4,
            valid_up_to: 3
        }
    );

    assert_eq!(
        parse_error(format!("{rhead}{MANAGER}\r\n\r\n").as_bytes()),
        RawParseError::MissingCode
    );
    assert_eq!(
        parse_error(format!("{rhead}{MANAGER}\r\n\r\n200\r\n").as_bytes()),
        RawParseError::MissingReason
    );
    for code in ["20", "2000", "099", "abc", " 200", "+20", ""] {
        assert!(
            matches!(
                parse_error(format!("{rhead}{MANAGER}\r\n\r\n{code}\r\nSuccess\r\n").as_bytes()),
                RawParseError::BadCode { .. }
            ),
            "{code:?}"
        );
    }
}

#[test]
fn error_messages_name_the_field_for_people() {
    let head = "Raw Request Message : Version 1.0\r\n5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80\r\n";
    let message = parse_error(format!("{head}nobody\r\n\r\nhello\r\n").as_bytes()).to_string();
    assert!(
        message.starts_with("bad From address (part 2) \"nobody\""),
        "{message}"
    );
    let message =
        parse_error(format!("{head}{SERVICE}\r\n{MANAGER}\r\ninit\r\n").as_bytes()).to_string();
    assert!(message.contains("missing separator after To"), "{message}");
    let long = "x".repeat(500);
    let message = parse_error(format!("{head}{long}\r\n\r\n").as_bytes()).to_string();
    assert!(message.len() < 400, "quotes are shortened: {message}");
}

#[test]
fn registered_in_a_factory_it_recognises_both_kinds() {
    let mut factory = MessageFactory::<RawMessage>::new();
    register(&mut factory).unwrap();
    let beacon = RawRequest::beacon(address(MANAGER));
    let found = factory.parse(&beacon.serialize()).unwrap();
    assert_eq!((found.protocol, found.kind), ("raw", MessageKind::Request));
    assert_eq!(found.message, RawMessage::Request(beacon.clone()));
    let answer = beacon.answer(address(SERVICE), RawCode::Forbidden, ["no"]);
    let found = factory.parse(&answer.serialize()).unwrap();
    assert_eq!((found.protocol, found.kind), ("raw", MessageKind::Response));
    // Registering twice clashes.
    assert!(register(&mut factory).is_err());
}
