//! The one tokio runtime a host runs on, with the limits the host relies
//! on set here rather than by each program that embeds a host.
//!
//! Plugin code runs on its plugin's own bounded pool (`[host]
//! max_plugin_threads`, the loader's bulkheads), except methods their
//! authors declared non-blocking, which run inline on these threads under a
//! watchdog ([`crate::rpc::inline`]).
//! What does use tokio's blocking pool (building the next registry during
//! a reload, file checks, DNS) is bounded by [`MAX_BLOCKING_THREADS`], so a
//! burst of reloads or lookups cannot grow threads without end.

use tokio::runtime::{Builder, Runtime};

/// Threads tokio may start for blocking work (its default is 512). Joining
/// the threads of tracked services and tracker sockets at shutdown waits
/// here too, one thread each, so the bound leaves room for many services.
pub const MAX_BLOCKING_THREADS: usize = 256;

/// A multi-threaded runtime with I/O and timers, [`MAX_BLOCKING_THREADS`]
/// and threads named `plughost`: what `plughost run` and every other
/// command of the CLI run on, and what an embedding program should use.
///
/// ```
/// let runtime = plughost::runtime::build()?;
/// assert_eq!(runtime.block_on(async { 6 * 7 }), 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn build() -> std::io::Result<Runtime> {
    builder().build()
}

/// The builder behind [`build`], for a program that adds settings of its
/// own (worker threads, say) on top of the host's limits.
pub fn builder() -> Builder {
    let mut builder = Builder::new_multi_thread();
    builder
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_name("plughost");
    builder
}
