//! The `plughost` command line: a thin shell over the `plughost` library.
fn main() {}
