//! Writing command output to stdout when the reader may go away.
//!
//! `println!` panics when stdout is a pipe whose reader has exited
//! (`plughost status | head`). Rust ignores SIGPIPE, so the write fails
//! with `BrokenPipe` instead of ending the process as it would for a C
//! program. Restoring SIGPIPE is no fix here: the same process writes to
//! broker and ZeroMQ sockets. So every line of command output goes through
//! [`write_out`], which ends the process quietly (exit 0, as `head` users
//! expect of `yes`-like tools) when the reader is gone, and reports any
//! other write error once on stderr.

use std::io::{self, Write};

/// Writes formatted output to stdout (the [`outln!`](crate::outln) and
/// [`out!`](crate::out) macros call it).
pub fn write_out(args: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// `println!` for command output that survives a closed pipe.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for command output that survives a closed pipe.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*))
    };
}
