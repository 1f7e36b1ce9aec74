//! The real `plughost` binary: `plughost proto parse` and `plughost proto codes`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_plughost");
const ID: &str = "5f0c6a3e-9b2d-4c1e-a7f8-3d4b5c6e7f80";
const MANAGER: &str = "Service Manager:0d7a5c2e-4b1f-4e8a-9c3d-2f6b8a1e5d47";
const SERVICE: &str = "Service 4711:6e3b1f9a-2c4d-4a5e-8f7b-1d2c3e4f5a6b";

fn plughost(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("PLUGHOST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the plughost binary runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin)
        .expect("plughost reads its stdin");
    child.wait_with_output().expect("plughost exits")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

fn parse_json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "stderr: {}", stderr(output));
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

#[test]
fn parse_prints_a_beacon_as_json() {
    let message =
        format!("Raw Request Message : Version 1.0\r\n{ID}\r\n{MANAGER}\r\n\r\nhello\r\n");
    let output = plughost(&["proto", "parse"], message.as_bytes());
    let json = parse_json(&output);
    assert_eq!(
        json,
        serde_json::json!({
            "protocol": "raw",
            "kind": "request",
            "id": ID,
            "from": MANAGER,
            "to": null,
            "message_type": "hello",
            "body": ["hello"],
        })
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn parse_prints_a_response_with_code_and_reason() {
    let message = format!(
        "Raw Response Message : Version 1.0\r\n{ID}\r\n{MANAGER}\r\n{SERVICE}\r\n\r\n403\r\nForbidden\r\nno token\r\n"
    );
    let output = plughost(&["proto", "parse", "--compact"], message.as_bytes());
    assert_eq!(stdout(&output).lines().count(), 1);
    let json = parse_json(&output);
    assert_eq!(json["kind"], "response");
    assert_eq!(json["to"], SERVICE);
    assert_eq!(json["code"], 403);
    assert_eq!(json["reason"], "Forbidden");
    assert_eq!(json["body"], serde_json::json!(["no token"]));
}

#[test]
fn parse_recognises_generic_messages_too() {
    let output = plughost(
        &["proto", "parse"],
        b"Generic Request Message : Version 1.0\r\n17\r\nX-Header\r\n\r\nline\r\n",
    );
    let json = parse_json(&output);
    assert_eq!(json["protocol"], "generic");
    assert_eq!(json["headers"], serde_json::json!(["X-Header"]));
}

#[test]
fn parse_names_the_bad_from_field_and_fails() {
    let message =
        format!("Raw Request Message : Version 1.0\r\n{ID}\r\nService Manager\r\n\r\nhello\r\n");
    let output = plughost(&["proto", "parse"], message.as_bytes());
    assert!(!output.status.success());
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert!(err.contains("bad From address"), "{err}");
    assert!(err.contains("\"Service Manager\""), "{err}");
}

#[test]
fn parse_rejects_unknown_and_binary_input() {
    let output = plughost(&["proto", "parse"], b"\xff\xfe\x00garbage");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no registered protocol recognises"),
        "{}",
        stderr(&output)
    );
    let output = plughost(&["proto", "parse"], b"");
    assert!(!output.status.success());
}

#[test]
fn codes_sip_486_is_busy_here_with_its_class() {
    let output = plughost(&["proto", "codes", "sip", "486"], b"");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "486 Busy Here (4xx request failure)\n");
}

#[test]
fn codes_sip_class_6xx_lists_the_global_failures() {
    let output = plughost(&["proto", "codes", "sip", "--class", "6xx"], b"");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let codes: Vec<&str> = text.lines().map(|line| &line[..3]).collect();
    assert_eq!(codes, ["600", "603", "604", "606", "607", "608"]);
    assert!(text.contains("603 Decline (6xx global failure)"));
}

#[test]
fn codes_http_418_comes_from_the_http_crate() {
    let output = plughost(&["proto", "codes", "http", "418"], b"");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "418 I'm a teapot (4xx client error)\n");
}

#[test]
fn codes_raw_lists_the_old_reasons() {
    let output = plughost(&["proto", "codes", "raw"], b"");
    assert_eq!(
        stdout(&output),
        "200 Success (2xx success)\n403 Forbidden (4xx client error)\n404 Not Found (4xx client error)\n\
         500 Failure : Internal Server Error (5xx server error)\n503 Service Unavailable (5xx server error)\n"
    );
}

#[test]
fn codes_unknown_code_or_class_fails_with_a_reason() {
    let output = plughost(&["proto", "codes", "sip", "499"], b"");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("not an assigned SIP response code"),
        "{}",
        stderr(&output)
    );
    let output = plughost(&["proto", "codes", "http", "--class", "6xx"], b"");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("6xx is not a class"),
        "{}",
        stderr(&output)
    );
    let output = plughost(&["proto", "codes", "sip", "--class", "four"], b"");
    assert!(!output.status.success());
    assert!(stderr(&output).contains("Nxx"), "{}", stderr(&output));
}

#[test]
fn a_missing_logging_config_warns_once_on_stderr_and_the_command_still_works() {
    let output = Command::new(BIN)
        .args(["proto", "codes", "sip", "100"])
        .env_remove("RUST_LOG")
        .env("PLUGHOST_LOG", "/nonexistent/plughost-logging.toml")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "100 Trying (1xx provisional)\n");
    let err = stderr(&output);
    assert_eq!(err.matches("WARN").count(), 1, "{err}");
    assert!(err.contains("/nonexistent/plughost-logging.toml"), "{err}");
}

#[test]
fn json_log_format_writes_json_lines_to_stderr() {
    let output = Command::new(BIN)
        .args([
            "--log-format",
            "json",
            "--log-config",
            "/nonexistent.toml",
            "proto",
            "codes",
            "raw",
            "200",
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(output.status.success());
    let err = stderr(&output);
    let line: serde_json::Value = serde_json::from_str(err.lines().next().unwrap()).unwrap();
    assert_eq!(line["level"], "WARN");
    assert_eq!(stdout(&output), "200 Success (2xx success)\n");
}
