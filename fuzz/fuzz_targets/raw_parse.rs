//! libFuzzer target for the raw protocol parser: no input may make a parser
//! panic, and every accepted message must survive serialize -> parse.
//! The property is `proto/tests/common/fuzz_check.rs`, shared word for word
//! with the stable fuzz run (`cargo test -p plughost-proto --test proto_fuzz`).
#![no_main]

mod check {
    include!("../../proto/tests/common/fuzz_check.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check_raw_parser(data);
});
