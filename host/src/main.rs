//! The `plughost` command line: a thin shell over the `plughost` library.
//! Argument parsing and printing live in `cli/`; everything else is library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
