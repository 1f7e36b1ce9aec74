//! The `plughost` binary: everything is in the `plughost_cli` library.

fn main() -> std::process::ExitCode {
    plughost_cli::commands::main()
}
