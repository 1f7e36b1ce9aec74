//! Inline calls: a method its author declared non-blocking
//! (`Method::non_blocking`) runs on the async thread that received the
//! call, not on its plugin's pool.
//!
//! The hand-off to a pool thread and back costs two thread wake-ups per
//! call, the largest per-call cost of a fast method (`docs/benchmarks.md`,
//! issue 15). Running on an async thread is safe only while the method
//! keeps its promise, so the host holds it to [`INLINE_BUDGET`]:
//!
//! - a call that returns past the budget moves its method back to the
//!   pool for the rest of the instance's life;
//! - a watchdog thread looks at the calls running inline every
//!   [`WATCH_EVERY`] and does the same for one still running past the
//!   budget (a method that blocks for good), so later calls are not stuck
//!   behind it. The thread it holds is lost to the runtime until it
//!   returns; the runtime's other threads go on serving.
//!
//! Each move is logged once, naming the plugin and method, and counted as
//! the `inline_overrun` fault.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, Once, OnceLock,
    },
    time::{Duration, Instant},
};

use plughost_loader::{Admission, HostCall, PluginHandle};
use plughost_plugin_api::PluginError;
use tracing::warn;

use crate::faults::{self, Fault};

/// How long one inline call may run before its method moves to the pool:
/// the budget authors are told ([`plughost_plugin_api::NON_BLOCKING_BUDGET`]).
pub const INLINE_BUDGET: Duration = plughost_plugin_api::NON_BLOCKING_BUDGET;

/// How often the watchdog looks at the running inline calls.
const WATCH_EVERY: Duration = Duration::from_millis(10);

/// One call running inline.
struct Running {
    started: Instant,
    plugin: Arc<PluginHandle>,
    method: String,
}

fn running() -> &'static Mutex<HashMap<u64, Running>> {
    static RUNNING: OnceLock<Mutex<HashMap<u64, Running>>> = OnceLock::new();
    RUNNING.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<u64, Running>> {
    running().lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs one call of a non-blocking method on this thread, held to
/// [`INLINE_BUDGET`].
pub fn call(
    admission: &Admission,
    method: &str,
    args_json: &str,
    context: &HostCall,
) -> Result<String, PluginError> {
    static WATCHDOG: Once = Once::new();
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    WATCHDOG.call_once(start_watchdog);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    lock().insert(
        id,
        Running {
            started,
            plugin: Arc::clone(admission.plugin()),
            method: method.to_owned(),
        },
    );
    let result = admission.call_json(method, args_json, context);
    lock().remove(&id);
    let took = started.elapsed();
    if took > INLINE_BUDGET {
        overran(admission.plugin(), method, took, "returned after");
    }
    result
}

/// Moves `method` to its plugin's pool (once) and says so.
fn overran(plugin: &PluginHandle, method: &str, took: Duration, how: &str) {
    if plugin.stop_inline(method) {
        faults::note(Fault::InlineOverrun);
        warn!(
            plugin = plugin.name(),
            method,
            took_ms = took.as_millis() as u64,
            budget_ms = INLINE_BUDGET.as_millis() as u64,
            "method declared non-blocking {how} {} ms on the host's async threads \
             (budget {} ms); its calls run on the plugin's own threads from now on. \
             Drop .non_blocking() from this method if it can wait or take long",
            took.as_millis(),
            INLINE_BUDGET.as_millis(),
        );
    }
}

fn start_watchdog() {
    let spawned = std::thread::Builder::new()
        .name("inline-watchdog".into())
        .spawn(|| loop {
            std::thread::sleep(WATCH_EVERY);
            let late: Vec<(Arc<PluginHandle>, String, Duration)> = lock()
                .values()
                .filter(|r| r.started.elapsed() > INLINE_BUDGET)
                .map(|r| (Arc::clone(&r.plugin), r.method.clone(), r.started.elapsed()))
                .collect();
            for (plugin, method, took) in late {
                overran(&plugin, &method, took, "is still running after");
            }
        });
    if let Err(e) = spawned {
        // Without a watchdog a stuck inline call is still caught when it
        // returns; say why the stricter check is missing.
        warn!(error = %e, "cannot start the inline-call watchdog thread");
    }
}
