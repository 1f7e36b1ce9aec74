//! The kit's stand-ins for the host around a plugin: a [`HostApi`] that
//! collects log records instead of writing them, a [`ServiceHost`] with a
//! stop flag and a condition variable, and calls that run on a thread of
//! their own so that a method that never returns cannot hang the kit.
//!
//! Why collect log records rather than pass them to `tracing`: the quiet
//! check watches file descriptors 1 and 2 while plugin code runs, and a log
//! writer on stderr would make a plugin that logs properly look like one
//! that prints. Records are forwarded to `tracing` between capture windows.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc, Arc, Condvar, Mutex,
    },
    time::{Duration, Instant},
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RResult, RStr, RString},
};
use plughost_plugin_api::{
    codes,
    ffi::{HostApi, HostApiBox, HostApi_TO, ServiceHost, ServiceHostBox, ServiceHost_TO},
    LogLevel, PluginError,
};
use serde_json::Value;

use plughost_loader::{host_api::emit, HostCall, PluginHandle};

/// Records kept for forwarding; further ones are only counted.
const MAX_KEPT_RECORDS: usize = 10_000;

/// Log records a plugin sent through the host during a conformance run.
#[derive(Debug, Default)]
pub(crate) struct LogSink {
    pending: Mutex<Vec<(LogLevel, String)>>,
    total: AtomicUsize,
}

impl LogSink {
    fn push(&self, level: LogLevel, message: &str) {
        let n = self.total.fetch_add(1, Ordering::Relaxed);
        if n < MAX_KEPT_RECORDS {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.push((level, message.to_owned()));
        }
    }

    /// How many records arrived in all.
    pub(crate) fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Writes the pending records to `tracing` (call only outside capture windows).
    pub(crate) fn forward(&self, plugin: &str) {
        let records = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        for (level, message) in records {
            emit(plugin, level, &message);
        }
    }
}

/// The host callbacks handed to every instance the kit creates.
struct KitHost {
    sink: Arc<LogSink>,
}

impl HostApi for KitHost {
    fn log(&self, level: LogLevel, message: RStr<'_>) {
        self.sink.push(level, message.as_str());
    }
}

/// A [`HostApiBox`] whose log records go to `sink`.
pub(crate) fn host_api(sink: &Arc<LogSink>) -> HostApiBox {
    HostApi_TO::from_value(
        KitHost {
            sink: Arc::clone(sink),
        },
        TD_Opaque,
    )
}

/// The stop signal of one service run: a flag behind a mutex, and a
/// condition variable that wakes `wait_stop` the moment it is set.
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    stop: Mutex<bool>,
    changed: Condvar,
    polled: AtomicBool,
}

impl StopSignal {
    /// Tells the service to stop.
    pub(crate) fn request_stop(&self) {
        *self.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.changed.notify_all();
    }

    /// True once the service asked whether it should stop.
    pub(crate) fn was_polled(&self) -> bool {
        self.polled.load(Ordering::Relaxed)
    }

    fn is_stopped(&self) -> bool {
        self.polled.store(true, Ordering::Relaxed);
        *self.stop.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait(&self, timeout: Duration) -> bool {
        self.polled.store(true, Ordering::Relaxed);
        let stop = self.stop.lock().unwrap_or_else(|p| p.into_inner());
        let (stop, _) = self
            .changed
            .wait_timeout_while(stop, timeout, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        *stop
    }
}

/// The service host the kit hands to a tracked service.
struct KitServiceHost {
    signal: Arc<StopSignal>,
    sink: Arc<LogSink>,
    id: String,
}

impl ServiceHost for KitServiceHost {
    fn should_stop(&self) -> bool {
        self.signal.is_stopped()
    }

    fn wait_stop(&self, timeout_ms: u64) -> bool {
        // Cap absurd timeouts: a day is "forever" for a check that lasts seconds.
        self.signal
            .wait(Duration::from_millis(timeout_ms.min(86_400_000)))
    }

    fn service_id(&self) -> RString {
        RString::from(self.id.as_str())
    }

    fn ask_manager(&self, _command: RStr<'_>) -> RResult<RString, PluginError> {
        RResult::RErr(
            PluginError::new(
                codes::UNAVAILABLE,
                "no service manager during a conformance run",
            )
            .with_help("a service should treat an unreachable manager as a temporary condition"),
        )
    }

    fn log(&self, level: LogLevel, message: RStr<'_>) {
        self.sink.push(level, message.as_str());
    }
}

/// A [`ServiceHostBox`] driven by `signal`, logging into `sink`.
pub(crate) fn service_host(signal: &Arc<StopSignal>, sink: &Arc<LogSink>) -> ServiceHostBox {
    let host = KitServiceHost {
        signal: Arc::clone(signal),
        sink: Arc::clone(sink),
        id: service_id(),
    };
    ServiceHost_TO::from_value(host, TD_Opaque)
}

/// A service id in the tracker's uuid text form, unique in this process
/// (the kit has no manager to hand out ids, and needs no randomness: no
/// `uuid` crate in plugin authors' dependency graphs).
fn service_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = u64::from(std::process::id());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        pid & 0xffff_ffff,
        (n >> 48) & 0xffff,
        (n >> 36) & 0xfff,
        (n >> 24) & 0xfff,
        n & 0xff_ffff
    )
}

/// What one call answered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// A JSON result.
    Value(Value),
    /// A typed error.
    Error(PluginError),
    /// No answer before the deadline; the call's thread was left running.
    TimedOut,
}

impl Answer {
    /// True for the error plugin-api's glue makes of a panic.
    pub(crate) fn is_panic(&self) -> bool {
        matches!(self, Answer::Error(e) if is_panic(e))
    }

    /// A short description for findings.
    pub(crate) fn describe(&self) -> String {
        match self {
            Answer::Value(v) => format!("returned {}", excerpt(&v.to_string(), 120)),
            Answer::Error(e) => format!("failed with {} {}", e.code, excerpt(&e.message, 200)),
            Answer::TimedOut => "did not answer before the deadline".to_owned(),
        }
    }
}

/// True for the error plugin-api's export glue makes of a caught panic
/// (`500 "<what> panicked: <message> (at <file>:<line>)"`).
pub(crate) fn is_panic(err: &PluginError) -> bool {
    err.code == codes::FAILED && err.message.contains(" panicked: ")
}

/// One call and how long the plugin took to answer it.
#[derive(Debug, Clone)]
pub(crate) struct Timed {
    pub(crate) answer: Answer,
    pub(crate) elapsed: Duration,
}

/// Calls `method` with `args_json` on a thread of its own and waits at most
/// `deadline`; a call that does not return is left running (detached).
pub(crate) fn call_with_deadline(
    plugin: &Arc<PluginHandle>,
    method: &str,
    args_json: &str,
    deadline: Duration,
) -> Timed {
    let (tx, rx) = mpsc::channel();
    let (plugin, method_name, args) = (Arc::clone(plugin), method.to_owned(), args_json.to_owned());
    let spawned = std::thread::Builder::new()
        .name(format!("conformance-call-{method}"))
        .spawn(move || {
            let _ = tx.send(call_now(&plugin, &method_name, &args));
        });
    if let Err(e) = spawned {
        return Timed {
            answer: Answer::Error(PluginError::failed(format!(
                "the kit could not start a call thread: {e}"
            ))),
            elapsed: Duration::ZERO,
        };
    }
    rx.recv_timeout(deadline).unwrap_or(Timed {
        answer: Answer::TimedOut,
        elapsed: deadline,
    })
}

/// Calls a method on this thread.
pub(crate) fn call_now(plugin: &PluginHandle, method: &str, args_json: &str) -> Timed {
    let started = Instant::now();
    let call = HostCall::new(plugin.name(), method, "in-process");
    let result = plugin.call_json(method, args_json, &call);
    let elapsed = started.elapsed();
    let answer = match result {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(value) => Answer::Value(value),
            Err(e) => Answer::Error(PluginError::failed(format!(
                "the plugin returned text that is not JSON ({e}): {}",
                excerpt(&text, 80)
            ))),
        },
        Err(err) => Answer::Error(err),
    };
    Timed { answer, elapsed }
}

/// At most `max` characters of `text`, with an ellipsis when cut.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signal_wakes_a_waiter_at_once() {
        let signal = Arc::new(StopSignal::default());
        assert!(!signal.wait(Duration::from_millis(1)));
        let waiter = {
            let signal = Arc::clone(&signal);
            std::thread::spawn(move || {
                let started = Instant::now();
                (signal.wait(Duration::from_secs(30)), started.elapsed())
            })
        };
        while !signal.was_polled() {
            std::thread::yield_now();
        }
        signal.request_stop();
        let (stopped, waited) = waiter.join().unwrap();
        assert!(stopped);
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert!(signal.is_stopped());
    }

    #[test]
    fn panic_errors_are_recognised() {
        assert!(is_panic(&PluginError::failed(
            "method x panicked: boom (at src/lib.rs:3)"
        )));
        assert!(!is_panic(&PluginError::failed("plain failure")));
        assert!(!is_panic(&PluginError::bad_arguments(
            "x panicked: but a 400"
        )));
    }

    #[test]
    fn excerpt_cuts_on_characters() {
        assert_eq!(excerpt("héllo", 2), "hé...");
        assert_eq!(excerpt("hi", 2), "hi");
    }
}
