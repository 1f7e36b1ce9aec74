//! Faults an operator must be able to see: counted always, logged with a
//! rate limit.
//!
//! Every refusal of bad input (a malformed or oversized message, an unknown
//! reply exchange), every plugin panic, every refused reload and every reply
//! that could not be published is a [`Fault`]. Each kind has a counter (an
//! atomic: counting costs nothing on the per-call path) that `plughost
//! status` shows, and a log window: the first [`BURST`] faults of a kind in
//! a [`WINDOW`] are logged in full by the code that saw them (it knows the
//! details: plugin, method, reason), the rest only counted, and once the
//! window is over one line says how many were left out ("9995 more plugin
//! panics in the last 10s"). So a flood of 10,000 bad messages costs a
//! handful of log lines, and a single fault is never hidden.
//!
//! The counters are per process ([`global`]): a host is one process in
//! production; tests that run several hosts in one process see their sum.
//! [`report_suppressed`] is the task that writes the "N more" lines when no
//! new fault comes to close a window.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use plughost_plugin_api::PluginError;
use tracing::{error, warn};

use crate::shutdown::Shutdown;

/// How many faults of one kind are logged in full per window.
pub const BURST: u32 = 5;
/// How long a log window lasts.
pub const WINDOW: Duration = Duration::from_secs(10);

/// A kind of fault. The names ([`Fault::name`]) are the keys of
/// `plughost status --json`'s `faults` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// A v1 call body that does not parse (answered `Failure`).
    MalformedV1Call,
    /// A v1 find body that does not parse (dropped: it names no reply address).
    MalformedV1Find,
    /// A v2 call whose body is not a call (answered 400).
    MalformedV2Call,
    /// A v2 find whose body is not a find (dropped).
    MalformedV2Find,
    /// A v2 request without `reply_to` (dropped, not run: nobody can be answered).
    MissingReplyTo,
    /// A request without `correlation_id` (answered with an error, not run).
    MissingCorrelationId,
    /// A v1 request naming a reply exchange that does not exist or cannot
    /// take replies (dropped, not run: it can never be answered).
    UnknownReplyExchange,
    /// A request larger than `[limits] max_request_bytes` (answered 413 where
    /// it has a reply address, else dropped).
    RequestTooLarge,
    /// A reply larger than `[limits] max_reply_bytes` or the broker's
    /// `max_message_size` (replaced by a 413 error).
    ReplyTooLarge,
    /// A find for a method name longer than `[limits] max_find_method_bytes` (ignored).
    FindMethodTooLong,
    /// A reload that was refused (the previous plugin set stays).
    ReloadRefused,
    /// A plugin panicked in a call (the caller got a 500).
    PluginPanic,
    /// A reply the host could not publish on its own channel (the request is requeued).
    ReplyNotPublished,
    /// A request handed back to the broker for another consumer.
    Requeued,
    /// A channel the broker closed (or a consumer it cancelled), repaired on its own.
    ChannelRepaired,
    /// A local-socket frame that is not a request (answered 400 when it
    /// names a correlation id, else dropped).
    MalformedLocalRequest,
    /// A call of a method declared non-blocking that ran past its inline
    /// budget (the method moves to its plugin's threads).
    InlineOverrun,
}

impl Fault {
    /// Every kind, in the order `plughost status` prints them.
    pub const ALL: [Fault; 17] = [
        Fault::MalformedV1Call,
        Fault::MalformedV1Find,
        Fault::MalformedV2Call,
        Fault::MalformedV2Find,
        Fault::MissingReplyTo,
        Fault::MissingCorrelationId,
        Fault::UnknownReplyExchange,
        Fault::RequestTooLarge,
        Fault::ReplyTooLarge,
        Fault::FindMethodTooLong,
        Fault::ReloadRefused,
        Fault::PluginPanic,
        Fault::ReplyNotPublished,
        Fault::Requeued,
        Fault::ChannelRepaired,
        Fault::MalformedLocalRequest,
        Fault::InlineOverrun,
    ];

    /// The counter's name in `plughost status`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::MalformedV1Call => "malformed_v1_call",
            Fault::MalformedV1Find => "malformed_v1_find",
            Fault::MalformedV2Call => "malformed_v2_call",
            Fault::MalformedV2Find => "malformed_v2_find",
            Fault::MissingReplyTo => "missing_reply_to",
            Fault::MissingCorrelationId => "missing_correlation_id",
            Fault::UnknownReplyExchange => "unknown_reply_exchange",
            Fault::RequestTooLarge => "request_too_large",
            Fault::ReplyTooLarge => "reply_too_large",
            Fault::FindMethodTooLong => "find_method_too_long",
            Fault::MalformedLocalRequest => "malformed_local_request",
            Fault::ReloadRefused => "reload_refused",
            Fault::PluginPanic => "plugin_panic",
            Fault::ReplyNotPublished => "reply_not_published",
            Fault::Requeued => "requeued",
            Fault::ChannelRepaired => "channel_repaired",
            Fault::InlineOverrun => "inline_overrun",
        }
    }

    /// Plural words for the "N more ..." line.
    fn plural(self) -> &'static str {
        match self {
            Fault::MalformedV1Call => "malformed v1 calls",
            Fault::MalformedV1Find => "malformed v1 finds",
            Fault::MalformedV2Call => "malformed v2 calls",
            Fault::MalformedV2Find => "malformed v2 finds",
            Fault::MissingReplyTo => "requests without reply_to",
            Fault::MissingCorrelationId => "requests without correlation_id",
            Fault::UnknownReplyExchange => "requests naming an unusable reply exchange",
            Fault::RequestTooLarge => "requests over the size limit",
            Fault::ReplyTooLarge => "replies over the size limit",
            Fault::FindMethodTooLong => "finds with an over-long method name",
            Fault::ReloadRefused => "refused reloads",
            Fault::PluginPanic => "plugin panics",
            Fault::ReplyNotPublished => "replies that could not be published",
            Fault::Requeued => "requeued requests",
            Fault::ChannelRepaired => "channel repairs",
            Fault::MalformedLocalRequest => "malformed local requests",
            Fault::InlineOverrun => "inline overruns",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The log window of one kind.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// When its first fault came (None: no fault since the last report).
    started: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl Window {
    const EMPTY: Self = Self {
        started: None,
        logged: 0,
        suppressed: 0,
    };
}

/// A "N more ..." line owed for a closed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Suppressed {
    kind: Fault,
    count: u64,
    over: Duration,
}

impl Suppressed {
    fn log(self) {
        let secs = self.over.as_secs().max(1);
        warn!(
            fault = self.kind.name(),
            suppressed = self.count,
            "{} more {} in the last {secs}s",
            self.count,
            self.kind.plural()
        );
    }
}

/// Fault counters and log windows, one of each per [`Fault`] kind.
#[derive(Debug)]
pub struct Faults {
    counts: [AtomicU64; Fault::ALL.len()],
    windows: [Mutex<Window>; Fault::ALL.len()],
}

impl Default for Faults {
    fn default() -> Self {
        Self::new()
    }
}

impl Faults {
    /// All counters at zero.
    pub const fn new() -> Self {
        Self {
            counts: [const { AtomicU64::new(0) }; Fault::ALL.len()],
            windows: [const { Mutex::new(Window::EMPTY) }; Fault::ALL.len()],
        }
    }

    /// Counts one fault; true when the caller should log it in full (the
    /// first [`BURST`] of its window).
    pub fn note(&self, kind: Fault) -> bool {
        let (log, owed) = self.note_at(kind, Instant::now());
        if let Some(owed) = owed {
            owed.log();
        }
        log
    }

    fn note_at(&self, kind: Fault, now: Instant) -> (bool, Option<Suppressed>) {
        self.counts[kind.index()].fetch_add(1, Ordering::Relaxed);
        let mut window = self.window(kind);
        let mut owed = None;
        match window.started {
            Some(started) if now.saturating_duration_since(started) >= WINDOW => {
                owed = close(kind, &mut window, now);
                window.started = Some(now);
            }
            Some(_) => {}
            None => window.started = Some(now),
        }
        let log = window.logged < BURST;
        if log {
            window.logged += 1;
        } else {
            window.suppressed += 1;
        }
        (log, owed)
    }

    /// How many faults of `kind` there were.
    pub fn count(&self, kind: Fault) -> u64 {
        self.counts[kind.index()].load(Ordering::Relaxed)
    }

    /// Every counter by name (zeros included, so operators see every kind).
    pub fn counts(&self) -> BTreeMap<String, u64> {
        Fault::ALL
            .iter()
            .map(|k| (k.name().to_owned(), self.count(*k)))
            .collect()
    }

    /// Closes the windows that are over (all of them with `force`) and
    /// returns the "N more" lines they owe.
    fn close_windows(&self, now: Instant, force: bool) -> Vec<Suppressed> {
        Fault::ALL
            .iter()
            .filter_map(|kind| {
                let mut window = self.window(*kind);
                let started = window.started?;
                if force || now.saturating_duration_since(started) >= WINDOW {
                    let owed = close(*kind, &mut window, now);
                    *window = Window::EMPTY;
                    owed
                } else {
                    None
                }
            })
            .collect()
    }

    fn window(&self, kind: Fault) -> MutexGuard<'_, Window> {
        self.windows[kind.index()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// Ends a window: the line it owes (if it left anything out), counters reset.
fn close(kind: Fault, window: &mut Window, now: Instant) -> Option<Suppressed> {
    let owed = (window.suppressed > 0).then(|| Suppressed {
        kind,
        count: window.suppressed,
        over: window
            .started
            .map_or(WINDOW, |s| now.saturating_duration_since(s)),
    });
    window.logged = 0;
    window.suppressed = 0;
    owed
}

static FAULTS: Faults = Faults::new();

/// This process's fault counters.
pub fn global() -> &'static Faults {
    &FAULTS
}

/// Counts one fault in [`global`]; true when the caller should log it.
pub fn note(kind: Fault) -> bool {
    FAULTS.note(kind)
}

/// The hook every dispatched call's error passes: a plugin panic is counted
/// and logged (plugin, method, where it panicked); other errors are the
/// method's own business.
pub fn plugin_error(plugin: &str, method: &str, error: &PluginError) {
    let Some(panic) = error.panic_report() else {
        return;
    };
    if note(Fault::PluginPanic) {
        error!(
            plugin,
            method,
            location = panic.location.unwrap_or("unknown"),
            panic = panic.message,
            "plugin panicked (the caller got a 500; the host keeps serving)"
        );
    }
}

/// Writes the "N more ..." lines of windows no new fault closed, once a
/// second, until `shutdown` (then the rest at once).
pub async fn report_suppressed(mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                for owed in FAULTS.close_windows(Instant::now(), false) {
                    owed.log();
                }
            }
            _ = shutdown.wait() => break,
        }
    }
    for owed in FAULTS.close_windows(Instant::now(), true) {
        owed.log();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_logs_a_burst_then_one_count_per_window() {
        let faults = Faults::new();
        let t0 = Instant::now();
        let logged = (0..10_000)
            .filter(|i| {
                let (log, owed) =
                    faults.note_at(Fault::PluginPanic, t0 + Duration::from_micros(*i));
                assert!(owed.is_none(), "the window is still open");
                log
            })
            .count();
        assert_eq!(logged, BURST as usize);
        assert_eq!(faults.count(Fault::PluginPanic), 10_000);
        assert!(faults
            .close_windows(t0 + Duration::from_secs(9), false)
            .is_empty());
        let owed = faults.close_windows(t0 + WINDOW, false);
        assert_eq!(
            owed,
            [Suppressed {
                kind: Fault::PluginPanic,
                count: 10_000 - u64::from(BURST),
                over: WINDOW,
            }]
        );
        // The next fault opens a new window and is logged again.
        let (log, owed) = faults.note_at(Fault::PluginPanic, t0 + WINDOW * 2);
        assert!(log && owed.is_none());
    }

    #[test]
    fn a_fault_after_the_window_closes_it_itself() {
        let faults = Faults::new();
        let t0 = Instant::now();
        for _ in 0..BURST + 3 {
            faults.note_at(Fault::RequestTooLarge, t0);
        }
        let (log, owed) = faults.note_at(Fault::RequestTooLarge, t0 + WINDOW);
        assert!(log, "first of a new window");
        assert_eq!(owed.map(|o| o.count), Some(3));
        assert!(
            faults.close_windows(t0 + WINDOW, true).is_empty(),
            "nothing left out since"
        );
    }

    #[test]
    fn kinds_are_counted_apart_and_all_listed() {
        let faults = Faults::new();
        faults.note_at(Fault::MalformedV1Call, Instant::now());
        faults.note_at(Fault::MalformedV1Call, Instant::now());
        faults.note_at(Fault::ReloadRefused, Instant::now());
        let counts = faults.counts();
        assert_eq!(counts.len(), Fault::ALL.len());
        assert_eq!(counts["malformed_v1_call"], 2);
        assert_eq!(counts["reload_refused"], 1);
        assert_eq!(counts["plugin_panic"], 0);
        for (i, kind) in Fault::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i, "ALL is in declaration order");
        }
    }

    #[test]
    fn a_few_faults_owe_no_summary() {
        let faults = Faults::new();
        let t0 = Instant::now();
        for _ in 0..BURST {
            assert!(faults.note_at(Fault::ReplyTooLarge, t0).0);
        }
        assert!(faults.close_windows(t0 + WINDOW, false).is_empty());
    }
}
