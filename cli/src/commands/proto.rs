//! `plughost proto`: the protocol toolkit on the command line, for
//! debugging wire traffic. It parses arguments, calls `plughost_proto` and
//! prints; the JSON shape of a parsed message is defined here because it is
//! this command's output format, not a property of the wire types.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use plughost_proto::address::RawAddress;
use plughost_proto::codes::class_digit;
use plughost_proto::codes::http::{self as http_codes, HttpClass};
use plughost_proto::codes::raw::RawCode;
use plughost_proto::codes::sip::{SipClass, SipStatus};
use plughost_proto::known::{self, KnownMessage};
use plughost_proto::message::MessageKind;
use plughost_proto::raw::RawMessage;
use plughost_proto::uid::Uid;

/// The `plughost proto` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProtoCommand {
    /// Read one message from stdin, recognise its protocol and print it as JSON.
    Parse(ParseArgs),
    /// Print status codes with reason phrase and class: one code, a class, or the whole table.
    Codes(CodesArgs),
}

/// Arguments of `plughost proto parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Print the JSON on one line instead of indented.
    #[arg(long)]
    pub compact: bool,
}

/// Arguments of `plughost proto codes`.
#[derive(Debug, Args)]
pub struct CodesArgs {
    /// Which code table.
    #[arg(value_enum)]
    pub table: CodeTable,
    /// The code to look up; without it, the whole table (or one class of it).
    #[arg(conflicts_with = "class")]
    pub code: Option<u16>,
    /// Only the codes of this class, written Nxx (e.g. 4xx).
    #[arg(long, value_name = "Nxx")]
    pub class: Option<String>,
}

/// The code tables `plughost proto codes` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CodeTable {
    /// The raw protocol's four codes, with the old system's reasons.
    Raw,
    /// HTTP status codes (from the `http` crate).
    Http,
    /// SIP response codes (the IANA registry).
    Sip,
}

/// Runs a `plughost proto` subcommand.
pub fn run(command: ProtoCommand) -> anyhow::Result<ExitCode> {
    match command {
        ProtoCommand::Parse(args) => parse(&args),
        ProtoCommand::Codes(args) => codes(&args),
    }
}

fn parse(args: &ParseArgs) -> anyhow::Result<ExitCode> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("reading the message from stdin")?;
    let factory = known::factory();
    let found = factory
        .parse(&bytes)
        .map_err(|err| anyhow!("{err}"))
        .context("stdin does not hold a message plughost can parse")?;
    let text = match &found.message {
        KnownMessage::Raw(RawMessage::Request(request)) => render(
            args.compact,
            &RawRequestView {
                protocol: found.protocol,
                kind: found.kind,
                id: request.id(),
                from: request.from(),
                to: request.to(),
                message_type: request.message_type().map(|kind| kind.as_str()),
                body: request.body(),
            },
        ),
        KnownMessage::Raw(RawMessage::Response(response)) => render(
            args.compact,
            &RawResponseView {
                protocol: found.protocol,
                kind: found.kind,
                id: response.id(),
                from: response.from(),
                to: response.to(),
                code: response.code(),
                reason: response.reason(),
                body: response.body(),
            },
        ),
        KnownMessage::Generic(message) => render(
            args.compact,
            &GenericView {
                protocol: found.protocol,
                kind: found.kind,
                start_line: &message.start_line,
                id: &message.id,
                headers: &message.headers,
                body: &message.body,
            },
        ),
        other => bail!("no JSON view for {other:?}"),
    }?;
    crate::outln!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn render<T: Serialize>(compact: bool, view: &T) -> serde_json::Result<String> {
    if compact {
        serde_json::to_string(view)
    } else {
        serde_json::to_string_pretty(view)
    }
}

/// A raw request as `plughost proto parse` prints it (fields in wire order).
#[derive(Serialize)]
struct RawRequestView<'a> {
    protocol: &'a str,
    kind: MessageKind,
    id: Uid,
    from: &'a RawAddress,
    to: Option<&'a RawAddress>,
    /// The first body line read as init/hello/bye/mgmt; null if it is none of them.
    message_type: Option<&'a str>,
    body: &'a [String],
}

/// A raw response as `plughost proto parse` prints it.
#[derive(Serialize)]
struct RawResponseView<'a> {
    protocol: &'a str,
    kind: MessageKind,
    id: Uid,
    from: &'a RawAddress,
    to: Option<&'a RawAddress>,
    code: u16,
    reason: &'a str,
    body: &'a [String],
}

/// A generic message as `plughost proto parse` prints it.
#[derive(Serialize)]
struct GenericView<'a> {
    protocol: &'a str,
    kind: MessageKind,
    start_line: &'a str,
    id: &'a str,
    headers: &'a [String],
    body: &'a [String],
}

fn codes(args: &CodesArgs) -> anyhow::Result<ExitCode> {
    let digit = args.class.as_deref().map(class_digit).transpose()?;
    let lines = match args.table {
        CodeTable::Raw => raw_codes(args.code, digit)?,
        CodeTable::Http => http_code_lines(args.code, digit)?,
        CodeTable::Sip => sip_codes(args.code, digit)?,
    };
    for line in lines {
        crate::outln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn raw_codes(code: Option<u16>, digit: Option<u8>) -> anyhow::Result<Vec<String>> {
    let line = |raw: RawCode| format!("{raw} ({})", raw.class());
    if let Some(code) = code {
        let raw = RawCode::from_u16(code).ok_or_else(|| {
            anyhow!("{code} is not a raw protocol code (they are 200, 403, 500 and 503)")
        })?;
        return Ok(vec![line(raw)]);
    }
    let class = digit.map(|digit| {
        HttpClass::from_digit(digit).ok_or_else(|| no_class(digit, "raw", "1xx to 5xx"))
    });
    let class = class.transpose()?;
    Ok(RawCode::ALL
        .into_iter()
        .filter(|raw| class.is_none_or(|class| raw.class() == class))
        .map(line)
        .collect())
}

fn http_code_lines(code: Option<u16>, digit: Option<u8>) -> anyhow::Result<Vec<String>> {
    let line = |status: http_codes::StatusCode| {
        let class =
            HttpClass::of(status).map_or_else(|| "no class".to_owned(), |class| class.to_string());
        format!(
            "{} {} ({class})",
            status.as_u16(),
            status.canonical_reason().unwrap_or("(no reason phrase)")
        )
    };
    if let Some(code) = code {
        let status = http_codes::lookup(code).ok_or_else(|| {
            anyhow!("{code} is not a registered HTTP status code; `plughost proto codes http` lists them")
        })?;
        return Ok(vec![line(status)]);
    }
    let lines = match digit {
        Some(digit) => HttpClass::from_digit(digit)
            .ok_or_else(|| no_class(digit, "HTTP", "1xx to 5xx"))?
            .codes()
            .map(line)
            .collect(),
        None => http_codes::known_codes().map(line).collect(),
    };
    Ok(lines)
}

fn sip_codes(code: Option<u16>, digit: Option<u8>) -> anyhow::Result<Vec<String>> {
    let line = |status: SipStatus| format!("{status} ({})", status.class());
    if let Some(code) = code {
        let Some(status) = SipStatus::from_u16(code) else {
            match SipClass::of(code) {
                Some(class) => bail!(
                    "{code} is not an assigned SIP response code; treat it as {}00 ({class})",
                    class.digit()
                ),
                None => bail!("{code} is not a SIP response code (they run from 100 to 699)"),
            }
        };
        return Ok(vec![line(status)]);
    }
    let lines = match digit {
        Some(digit) => SipClass::from_digit(digit)
            .ok_or_else(|| no_class(digit, "SIP", "1xx to 6xx"))?
            .codes()
            .map(line)
            .collect(),
        None => SipStatus::all().iter().copied().map(line).collect(),
    };
    Ok(lines)
}

fn no_class(digit: u8, table: &str, classes: &str) -> anyhow::Error {
    anyhow!("{digit}xx is not a class of the {table} table (its classes are {classes})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_lines() {
        assert_eq!(
            sip_codes(Some(486), None).unwrap(),
            ["486 Busy Here (4xx request failure)"]
        );
        let global: Vec<String> = sip_codes(None, Some(6)).unwrap();
        assert_eq!(global.len(), 6);
        assert!(sip_codes(Some(499), None)
            .unwrap_err()
            .to_string()
            .contains("treat it as 400"));
        assert!(sip_codes(None, Some(7)).is_err());
    }

    #[test]
    fn http_and_raw_lines() {
        assert_eq!(
            http_code_lines(Some(418), None).unwrap(),
            ["418 I'm a teapot (4xx client error)"]
        );
        assert!(http_code_lines(Some(299), None).is_err());
        assert_eq!(
            raw_codes(None, Some(5)).unwrap(),
            [
                "500 Failure : Internal Server Error (5xx server error)",
                "503 Service Unavailable (5xx server error)"
            ]
        );
        assert!(raw_codes(Some(404), None).is_ok());
        assert!(raw_codes(Some(418), None).is_err());
    }
}
