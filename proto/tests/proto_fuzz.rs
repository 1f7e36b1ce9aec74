//! The stable-toolchain fuzz run of the raw parser: random bytes, and valid
//! messages mutated at the byte and part level, through the same check as
//! the cargo-fuzz target (`common/fuzz_check.rs`).
//!
//! `cargo test -p plughost --test proto_fuzz` runs a short pass on every test
//! run. The long run is ignored by default:
//!
//! ```text
//! PLUGHOST_FUZZ_CASES=1000000 cargo test --release -p plughost --test proto_fuzz -- --ignored
//! ```

mod common {
    pub mod fuzz_check {
        include!("common/fuzz_check.rs");
    }
}

use std::cell::Cell;

use common::fuzz_check::check_raw_parser;
use plughost_proto::raw::RawMessage;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const MANAGER: &str = "Service Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47";
const SERVICE: &str = "Service 4711:6e3b1f9a-2c4d-4a5e-8f7b-1d2c3e4f5a6b";
const ID: &str = "5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80";

/// Valid messages of every shape the old system sends, as parts.
fn seeds() -> Vec<Vec<String>> {
    let request = "Raw Request Message : Version 1.0";
    let response = "Raw Response Message : Version 1.0";
    let listing =
        "[1] : service_name = Service 4711 : service_id = 6e3b1f9a-2c4d-4a5e-8f7b-1d2c3e4f5a6b \
                   :time_since_lastUpdate = 2.5 : last_msg_type = hello\n";
    [
        vec![request, ID, MANAGER, "", "hello"],
        vec![request, ID, SERVICE, MANAGER, "", "init"],
        vec![request, ID, SERVICE, MANAGER, "", "mgmt", "l", "", ""],
        vec![response, ID, MANAGER, SERVICE, "", "200", "Success", ""],
        vec![
            response, ID, MANAGER, SERVICE, "", "200", "Success", listing,
        ],
        vec![
            response,
            ID,
            SERVICE,
            "",
            "503",
            "Service Unavailable : Service Mgr Not Initialized",
        ],
    ]
    .into_iter()
    .map(|parts| parts.into_iter().map(str::to_owned).collect())
    .collect()
}

fn join(parts: &[String]) -> Vec<u8> {
    parts
        .iter()
        .flat_map(|part| [part.as_bytes(), b"\r\n"].concat())
        .collect()
}

/// One edit of a message's parts.
#[derive(Debug, Clone)]
enum PartEdit {
    Remove(usize),
    Duplicate(usize),
    Replace(usize, String),
    Swap(usize, usize),
    AppendEmpty(usize),
}

fn part_edit() -> impl Strategy<Value = PartEdit> {
    prop_oneof![
        any::<usize>().prop_map(PartEdit::Remove),
        any::<usize>().prop_map(PartEdit::Duplicate),
        (any::<usize>(), "(?s).{0,40}").prop_map(|(at, text)| PartEdit::Replace(at, text)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| PartEdit::Swap(a, b)),
        (0..5usize).prop_map(PartEdit::AppendEmpty),
    ]
}

fn apply(parts: &mut Vec<String>, edit: &PartEdit) {
    let len = parts.len().max(1);
    match edit {
        PartEdit::Remove(at) if !parts.is_empty() => {
            parts.remove(at % len);
        }
        PartEdit::Duplicate(at) if !parts.is_empty() => {
            let part = parts[at % len].clone();
            parts.insert(at % len, part);
        }
        PartEdit::Replace(at, text) if !parts.is_empty() => parts[at % len] = text.clone(),
        PartEdit::Swap(a, b) if !parts.is_empty() => parts.swap(a % len, b % len),
        PartEdit::AppendEmpty(count) => parts.extend(std::iter::repeat_n(String::new(), *count)),
        _ => {}
    }
}

/// One edit of a message's bytes.
#[derive(Debug, Clone)]
enum ByteEdit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, bits)| ByteEdit::Flip(at, bits)),
        (
            any::<usize>(),
            prop_oneof![
                Just(b"\r\n".to_vec()),
                Just(b":".to_vec()),
                prop::collection::vec(any::<u8>(), 0..8)
            ]
        )
            .prop_map(|(at, bytes)| ByteEdit::Insert(at, bytes)),
        (any::<usize>(), 0..16usize).prop_map(|(at, len)| ByteEdit::Delete(at, len)),
        any::<usize>().prop_map(ByteEdit::Truncate),
    ]
}

fn apply_bytes(bytes: &mut Vec<u8>, edit: &ByteEdit) {
    let len = bytes.len() + 1;
    match edit {
        ByteEdit::Flip(at, bits) if !bytes.is_empty() => {
            let at = at % bytes.len();
            bytes[at] ^= bits;
        }
        ByteEdit::Insert(at, inserted) => {
            let at = at % len;
            bytes.splice(at..at, inserted.iter().copied());
        }
        ByteEdit::Delete(at, count) => {
            let start = at % len;
            let end = (start + count).min(bytes.len());
            bytes.drain(start.min(end)..end);
        }
        ByteEdit::Truncate(at) => bytes.truncate(at % len),
        _ => {}
    }
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds();
    let mutated = (
        0..seeds.len(),
        prop::collection::vec(part_edit(), 0..4),
        prop::collection::vec(byte_edit(), 0..4),
    )
        .prop_map(move |(seed, part_edits, byte_edits)| {
            let mut parts = seeds[seed].clone();
            for edit in &part_edits {
                apply(&mut parts, edit);
            }
            let mut bytes = join(&parts);
            for edit in &byte_edits {
                apply_bytes(&mut bytes, edit);
            }
            bytes
        });
    prop_oneof![
        3 => mutated,
        1 => prop::collection::vec(any::<u8>(), 0..400),
        1 => "(?s)Raw (Request|Response) Message : Version 1\\.0\r\n.{0,200}".prop_map(String::into_bytes),
    ]
}

/// Runs `cases` inputs through the check; returns how many the raw parser
/// accepted and rejected, so a run can show it exercised both paths.
fn fuzz(cases: u32) -> (usize, usize) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let accepted = Cell::new(0);
    let rejected = Cell::new(0);
    runner
        .run(&input(), |bytes| {
            check_raw_parser(&bytes);
            let counter = if RawMessage::parse(&bytes).is_ok() {
                &accepted
            } else {
                &rejected
            };
            counter.set(counter.get() + 1);
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("fuzz check failed: {failure}"));
    (accepted.get(), rejected.get())
}

#[test]
fn the_seeds_are_valid_messages() {
    for seed in seeds() {
        let bytes = join(&seed);
        assert!(RawMessage::parse(&bytes).is_ok(), "{seed:?}");
        check_raw_parser(&bytes);
    }
}

#[test]
fn short_fuzz_run() {
    let (accepted, rejected) = fuzz(3_000);
    // Both sides of the parser are exercised, not just the error path.
    assert!(accepted > 150, "only {accepted} inputs were valid messages");
    assert!(rejected > 150, "only {rejected} inputs were rejected");
}

#[test]
#[ignore = "long fuzz run; set PLUGHOST_FUZZ_CASES and run with --ignored"]
fn long_fuzz_run() {
    let cases = std::env::var("PLUGHOST_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let (accepted, rejected) = fuzz(cases);
    eprintln!("fuzzed {cases} inputs: {accepted} accepted, {rejected} rejected");
}
