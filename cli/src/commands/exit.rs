//! Exit codes, so scripts can tell what went wrong without parsing text.
//! The table is printed by `plughost --help` ([`HELP`]) and documented in
//! `docs/operations.md`.

use std::process::ExitCode;

use plughost_client::RpcError;

/// The command did what was asked.
pub const OK: u8 = 0;
/// Any other failure: bad input, a refused reload, a failed check.
pub const FAILED: u8 = 1;
/// The command line itself was wrong (clap's own code).
pub const USAGE: u8 = 2;
/// The method, route or service does not exist (404).
pub const NOT_FOUND: u8 = 3;
/// The method ran and returned an error (its code is printed).
pub const REMOTE_ERROR: u8 = 4;
/// The deadline passed (504), seen by the caller or answered by the host.
pub const TIMEOUT: u8 = 5;
/// The broker (or the name services) could not be reached, or refuses work (503).
pub const UNAVAILABLE: u8 = 6;
/// A bare method name that several plugins serve (409): call it by one of
/// the qualified names the message lists.
pub const AMBIGUOUS: u8 = 7;

/// The exit-code table for `--help`.
pub const HELP: &str = "\
Exit codes:
  0  done
  1  failed (bad input, refused reload, failed check, ...)
  2  usage error
  3  not found: no such method, no host serving its route, no such service
  4  the method returned an error (its code and help are printed)
  5  timed out (the call's deadline passed, at the caller or the host)
  6  unavailable: broker or name services unreachable, blocked or refusing
  7  ambiguous: several plugins serve that bare name; use plugin.method";

/// The exit code for an RPC failure.
pub fn for_rpc(error: &RpcError) -> ExitCode {
    ExitCode::from(match error {
        RpcError::MethodNotFound { .. } | RpcError::NoRoute { .. } => NOT_FOUND,
        // The host's own "did not finish within" is a timeout too.
        RpcError::Remote { code: 504, .. } | RpcError::Timeout { .. } => TIMEOUT,
        RpcError::Remote { .. } => REMOTE_ERROR,
        RpcError::BrokerUnavailable { .. }
        | RpcError::NoBroker { .. }
        | RpcError::LocalUnavailable { .. }
        | RpcError::Tls { .. }
        | RpcError::Blocked { .. }
        | RpcError::NoNameService { .. } => UNAVAILABLE,
        RpcError::Ambiguous { .. } => AMBIGUOUS,
        RpcError::BrokerConfig { .. }
        | RpcError::Arguments { .. }
        | RpcError::V1NamedArguments { .. }
        | RpcError::BadReply(_)
        | RpcError::UnexpectedResult { .. } => FAILED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_rpc_failure_has_its_own_code() {
        let code = |e: RpcError| for_rpc(&e);
        let remote = code(RpcError::Remote {
            code: 404,
            message: "key not found".into(),
            help: None,
        });
        // A method's own 404 is a remote error, not "no such method".
        assert_eq!(remote, ExitCode::from(REMOTE_ERROR));
        assert_eq!(
            code(RpcError::MethodNotFound { method: "m".into() }),
            ExitCode::from(NOT_FOUND)
        );
        assert_eq!(
            code(RpcError::Timeout {
                method: "m".into(),
                timeout_ms: 1,
                waiting_for: "a reply"
            }),
            ExitCode::from(TIMEOUT)
        );
        assert_eq!(
            code(RpcError::NoNameService {
                exchange: "x".into()
            }),
            ExitCode::from(UNAVAILABLE)
        );
        let codes = [
            OK,
            FAILED,
            USAGE,
            NOT_FOUND,
            REMOTE_ERROR,
            TIMEOUT,
            UNAVAILABLE,
        ];
        for (i, c) in codes.iter().enumerate() {
            assert!(HELP.contains(&format!("  {c}  ")), "{c} missing from HELP");
            assert!(!codes[..i].contains(c), "{c} used twice");
        }
    }
}
