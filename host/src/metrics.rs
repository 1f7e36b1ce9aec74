//! What a host counts for Prometheus: calls, latencies, reloads, broker
//! reconnects, tracker registrations and expiries; per-method totals
//! (requests, errors, last error, time) for the deployment-wide stats
//! request, kept beside the Prometheus families because those cannot be
//! read back; and the last reloads, with their results and reasons, for
//! the status page.
//!
//! Like the fault counters ([`crate::faults`]) these are per process
//! ([`global`]): a host is one process in production, and the per-call path
//! ([`crate::rpc::dispatch`], shared by the broker and the local socket)
//! counts without a handle to its host. Counting is a lookup in a
//! prometheus-client family and an atomic add.
//!
//! What a host *is* at the moment of a scrape (plugin instances by state,
//! broker state, registry size, service restarts, faults, the shadow
//! cache) is not counted here but read when `/metrics` is asked, by
//! [`render`], so it can never drift from `plughost status`.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

use crate::{plugins::Changes, status::HostStatus};

/// The labels of one call: which plugin and method, over which protocol,
/// with which result code (200 for a result, else the error's code).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    plugin: String,
    method: String,
    protocol: String,
    code: String,
}

/// A method of a plugin.
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct MethodLabels {
    plugin: String,
    method: String,
}

/// Bucket bounds of [`MethodTotals`]: 100 µs doubling (the same as the
/// Prometheus histogram's), the last one open.
const BUCKETS: usize = 21;

/// One method's counters for the deployment-wide stats request (the
/// Prometheus families cannot be read back): atomics, and one lock for the
/// last error, taken only when a call fails.
#[derive(Debug, Default)]
struct MethodTotals {
    requests: AtomicU64,
    errors: AtomicU64,
    micros: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
    last_error: Mutex<Option<String>>,
}

impl MethodTotals {
    fn record(&self, took: std::time::Duration, error: Option<String>) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.micros.fetch_add(micros, Ordering::Relaxed);
        self.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        if let Some(error) = error {
            self.errors.fetch_add(1, Ordering::Relaxed);
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
        }
    }

    /// The 99th percentile in milliseconds, interpolated in its bucket.
    fn p99_ms(&self) -> f64 {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        quantile_ms(0.99, &counts)
    }
}

/// The upper bound of bucket `i` in microseconds (the last: open).
fn bucket_bound(i: usize) -> f64 {
    100.0 * f64::from(1u32 << i.min(30))
}

fn bucket_of(micros: u64) -> usize {
    (0..BUCKETS - 1)
        .find(|&i| (micros as f64) <= bucket_bound(i))
        .unwrap_or(BUCKETS - 1)
}

/// A quantile of bucket `counts`, in milliseconds.
fn quantile_ms(q: f64, counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, &count) in counts.iter().enumerate() {
        if (below + count) as f64 >= rank && count > 0 {
            let lower = if i == 0 { 0.0 } else { bucket_bound(i - 1) };
            if i == counts.len() - 1 {
                return lower / 1000.0;
            }
            let upper = bucket_bound(i);
            let at = lower + (upper - lower) * (rank - below as f64) / count as f64;
            return at / 1000.0;
        }
        below += count;
    }
    0.0
}

type Totals = std::sync::RwLock<std::collections::BTreeMap<MethodLabels, Arc<MethodTotals>>>;

fn totals() -> &'static Totals {
    static TOTALS: OnceLock<Totals> = OnceLock::new();
    TOTALS.get_or_init(Totals::default)
}

fn totals_of(labels: &MethodLabels) -> Arc<MethodTotals> {
    if let Some(t) = totals()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(labels)
    {
        return Arc::clone(t);
    }
    let mut all = totals().write().unwrap_or_else(|p| p.into_inner());
    Arc::clone(all.entry(labels.clone()).or_default())
}

/// Every called method's counters, for a stats request (sorted by plugin
/// and method).
pub fn method_stats() -> Vec<plughost_proto::rpc::v2::MethodStats> {
    let all = totals().read().unwrap_or_else(|p| p.into_inner());
    all.iter()
        .map(|(labels, t)| {
            let requests = t.requests.load(Ordering::Relaxed);
            let micros = t.micros.load(Ordering::Relaxed);
            plughost_proto::rpc::v2::MethodStats {
                plugin: labels.plugin.clone(),
                method: labels.method.clone(),
                requests,
                errors: t.errors.load(Ordering::Relaxed),
                last_error: t
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
                avg_ms: if requests == 0 {
                    0.0
                } else {
                    micros as f64 / requests as f64 / 1000.0
                },
                p99_ms: t.p99_ms(),
            }
        })
        .collect()
}

/// A reload's outcome: `applied` or `refused`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

/// A plugin instance's or the broker connection's state.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

/// How a reply went out (see [`reply_sent`]).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabel {
    path: String,
}

/// A fault kind ([`crate::faults::Fault::name`]).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// A tracked service of a plugin.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    plugin: String,
    service: String,
}

/// The name a call to a method this host does not serve is counted under:
/// callers choose method names, so they must not choose label values.
pub const UNKNOWN_METHOD: &str = "(unknown)";

/// The process's counters.
struct Metrics {
    calls: Family<CallLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    in_flight: Family<MethodLabels, Gauge>,
    limit_waits: Family<MethodLabels, Counter>,
    reloads_applied: Counter,
    reloads_refused: Counter,
    reconnects: Counter,
    /// Replies sent on the request's own channel without a confirm.
    replies_unconfirmed: Counter,
    /// Replies sent on the reply channel with a confirm.
    replies_confirmed: Counter,
    registrations: Counter,
    expiries: Counter,
    /// -1 while no manager role runs in this process.
    registry_size: AtomicI64,
}

/// Latency buckets: 100 µs to about 52 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        calls: Family::default(),
        latency: Family::new_with_constructor(latency_histogram),
        in_flight: Family::default(),
        limit_waits: Family::default(),
        reloads_applied: Counter::default(),
        reloads_refused: Counter::default(),
        reconnects: Counter::default(),
        replies_unconfirmed: Counter::default(),
        replies_confirmed: Counter::default(),
        registrations: Counter::default(),
        expiries: Counter::default(),
        registry_size: AtomicI64::new(-1),
    })
}

/// The protocols a call can arrive by, in [`MethodMeter::results`] order.
const PROTOCOLS: [&str; 3] = ["v1", "v2", "local"];

/// One method's Prometheus handles and stats totals, looked up in their
/// families once and then kept, so counting a call is atomic adds and one
/// histogram observation: no label strings built, no family lock taken.
/// The registry holds one per method ([`crate::plugins::MethodEntry`]).
#[derive(Debug)]
pub struct MethodMeter {
    labels: MethodLabels,
    in_flight: Gauge,
    latency: Histogram,
    limit_waits: Counter,
    totals: Arc<MethodTotals>,
    /// Calls answered with a result (code 200), by protocol, from the
    /// first such call on (a protocol never used shows no series).
    results: [OnceLock<Counter>; PROTOCOLS.len()],
}

impl MethodMeter {
    /// The handles of `method` of `plugin` (as the registry names them).
    pub fn new(plugin: &str, method: &str) -> Self {
        let labels = MethodLabels {
            plugin: plugin.to_owned(),
            method: method.to_owned(),
        };
        let m = metrics();
        Self {
            in_flight: m.in_flight.get_or_create(&labels).clone(),
            latency: m.latency.get_or_create(&labels).clone(),
            limit_waits: m.limit_waits.get_or_create(&labels).clone(),
            totals: totals_of(&labels),
            results: Default::default(),
            labels,
        }
    }

    /// The meter calls to methods this host does not serve count under
    /// ([`UNKNOWN_METHOD`], no plugin).
    pub fn unknown() -> Arc<Self> {
        static UNKNOWN: OnceLock<Arc<MethodMeter>> = OnceLock::new();
        Arc::clone(UNKNOWN.get_or_init(|| Arc::new(Self::new("", UNKNOWN_METHOD))))
    }

    /// Counts one call ending with `code` (200: a result).
    fn count(&self, protocol: &str, code: &str) {
        if code == "200" {
            if let Some(i) = PROTOCOLS.iter().position(|p| *p == protocol) {
                self.results[i]
                    .get_or_init(|| {
                        metrics()
                            .calls
                            .get_or_create(&call_labels(&self.labels, protocol, code))
                            .clone()
                    })
                    .inc();
                return;
            }
        }
        metrics()
            .calls
            .get_or_create(&call_labels(&self.labels, protocol, code))
            .inc();
    }
}

fn call_labels(method: &MethodLabels, protocol: &str, code: &str) -> CallLabels {
    CallLabels {
        plugin: method.plugin.clone(),
        method: method.method.clone(),
        protocol: protocol.to_owned(),
        code: code.to_owned(),
    }
}

/// One call being dispatched: in flight until [`CallTimer::finish`] (or
/// until dropped, for a call whose caller went away).
#[derive(Debug)]
pub struct CallTimer {
    meter: Arc<MethodMeter>,
    protocol: &'static str,
    started: std::time::Instant,
    done: bool,
}

impl CallTimer {
    /// A call counted by `meter` starts.
    pub fn start(meter: Arc<MethodMeter>, protocol: &'static str) -> Self {
        meter.in_flight.inc();
        Self {
            meter,
            protocol,
            started: std::time::Instant::now(),
            done: false,
        }
    }

    /// The call had to wait for its method's concurrency limit.
    pub fn waited_for_limit(&self) {
        self.meter.limit_waits.inc();
    }

    /// The call ended with `code` (200: a result); `error` is the error's
    /// message when it failed.
    pub fn finish(mut self, code: u16, error: Option<&str>) {
        let elapsed = self.started.elapsed();
        self.meter
            .totals
            .record(elapsed, error.map(|e| format!("{code}: {e}")));
        if code == 200 {
            self.meter.count(self.protocol, "200");
        } else {
            self.meter.count(self.protocol, &code.to_string());
        }
        self.meter.latency.observe(elapsed.as_secs_f64());
        self.done = true;
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        self.meter.in_flight.dec();
        if !self.done {
            // The future was dropped: its caller is gone (a closed local
            // connection, a shut-down role). Counted as cancelled.
            self.meter.count(self.protocol, "cancelled");
        }
    }
}

/// How many reloads the status page remembers.
const KEEP_RELOADS: usize = 20;

/// One reload as the status page shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReloadRecord {
    /// When it ended, Unix seconds.
    pub at: u64,
    /// What asked for it: `file change`, `SIGHUP`, `plughost reload`.
    pub trigger: String,
    /// `applied` or `refused`.
    pub result: String,
    /// What changed, or why it was refused.
    pub detail: String,
}

fn reload_log() -> &'static Mutex<VecDeque<ReloadRecord>> {
    static LOG: Mutex<VecDeque<ReloadRecord>> = Mutex::new(VecDeque::new());
    &LOG
}

/// A reload that changed the plugin set was applied (`Ok`: what changed),
/// or one was refused (`Err`: why); counted, and kept for the status page.
pub fn reload(trigger: &str, outcome: Result<&Changes, &dyn std::fmt::Display>) {
    let m = metrics();
    let (result, detail) = match outcome {
        Ok(changes) => {
            m.reloads_applied.inc();
            let mut parts = Vec::new();
            for (word, names) in [
                ("added", &changes.added),
                ("removed", &changes.removed),
                ("replaced", &changes.replaced),
            ] {
                if !names.is_empty() {
                    parts.push(format!("{word} {}", names.join(", ")));
                }
            }
            ("applied", parts.join("; "))
        }
        Err(why) => {
            m.reloads_refused.inc();
            ("refused", why.to_string())
        }
    };
    let record = ReloadRecord {
        at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        trigger: trigger.to_owned(),
        result: result.to_owned(),
        detail,
    };
    let mut log = reload_log().lock().unwrap_or_else(|p| p.into_inner());
    if log.len() == KEEP_RELOADS {
        log.pop_front();
    }
    log.push_back(record);
}

/// The last reloads, newest first.
pub fn recent_reloads() -> Vec<ReloadRecord> {
    let log = reload_log().lock().unwrap_or_else(|p| p.into_inner());
    log.iter().rev().cloned().collect()
}

/// The RPC roles lost their broker connection and reconnect.
pub fn broker_reconnect() {
    metrics().reconnects.inc();
}

/// A reply went out: on the request's own channel without a confirm
/// (`confirmed` false), or on the reply channel with one.
pub fn reply_sent(confirmed: bool) {
    let m = metrics();
    if confirmed {
        m.replies_confirmed.inc();
    } else {
        m.replies_unconfirmed.inc();
    }
}

/// The service manager registered a new service.
pub fn tracker_registration() {
    metrics().registrations.inc();
}

/// The service manager expired `n` services (silent past their TTL).
pub fn tracker_expiries(n: usize) {
    metrics().expiries.inc_by(n as u64);
}

/// The service manager's registry holds `n` services now.
pub fn tracker_registry_size(n: usize) {
    metrics()
        .registry_size
        .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
}

/// The services in this process's service manager registry (None: no
/// manager role runs here).
pub fn tracker_services() -> Option<u64> {
    u64::try_from(metrics().registry_size.load(Ordering::Relaxed)).ok()
}

/// The shadow cache's size, read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheSize {
    /// Copies in the cache.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Everything `/metrics` shows, as OpenMetrics text: the process's
/// counters and the host's state now (`status`, `cache`).
pub fn render(status: &HostStatus, cache: Option<CacheSize>) -> String {
    let m = metrics();
    let mut r = Registry::default();
    r.register(
        "plughost_calls",
        "Calls dispatched, by plugin, method, protocol (v1, v2, local) and result code (200: a result; cancelled: the caller went away)",
        m.calls.clone(),
    );
    r.register_with_unit(
        "plughost_call_duration",
        "Time from a call's dispatch to its answer, by method",
        prometheus_client::registry::Unit::Seconds,
        m.latency.clone(),
    );
    r.register(
        "plughost_calls_in_flight",
        "Calls being dispatched now, by method",
        m.in_flight.clone(),
    );
    r.register(
        "plughost_concurrency_limit_waits",
        "Calls that waited for their method's concurrency limit",
        m.limit_waits.clone(),
    );
    let reloads: Family<ResultLabel, Counter> = Family::default();
    for (result, counter) in [
        ("applied", &m.reloads_applied),
        ("refused", &m.reloads_refused),
    ] {
        reloads
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc_by(counter.get());
    }
    r.register(
        "plughost_reloads",
        "Reloads of the manifest, by result (applied or refused)",
        reloads,
    );

    let states: Family<StateLabel, Gauge> = Family::default();
    for state in ["loaded", "serving", "draining", "retired"] {
        let _ = states.get_or_create(&StateLabel {
            state: state.into(),
        });
    }
    for plugin in &status.plugins {
        states
            .get_or_create(&StateLabel {
                state: plugin.state.to_string(),
            })
            .inc();
    }
    r.register(
        "plughost_plugin_instances",
        "Plugin instances by state (retired: the last few kept in memory)",
        states,
    );

    let broker: Family<StateLabel, Gauge> = Family::default();
    for state in ["serving", "degraded", "disconnected"] {
        broker
            .get_or_create(&StateLabel {
                state: state.into(),
            })
            .set(i64::from(status.broker == state));
    }
    r.register(
        "plughost_broker_state",
        "The RPC roles' broker connection: 1 for the state it is in (serving, degraded, disconnected)",
        broker,
    );
    r.register(
        "plughost_broker_reconnects",
        "Broker connections lost and reconnected since the process started",
        m.reconnects.clone(),
    );
    let replies: Family<PathLabel, Counter> = Family::default();
    for (path, counter) in [
        ("request_channel", &m.replies_unconfirmed),
        ("confirmed", &m.replies_confirmed),
    ] {
        replies
            .get_or_create(&PathLabel { path: path.into() })
            .inc_by(counter.get());
    }
    r.register(
        "plughost_replies",
        "Replies published, by path: request_channel (small, quick calls: on the request's own channel, no confirm) or confirmed (the reply channel, with a publisher confirm)",
        replies,
    );

    let faults: Family<KindLabel, Counter> = Family::default();
    for (kind, count) in &status.faults {
        faults
            .get_or_create(&KindLabel { kind: kind.clone() })
            .inc_by(*count);
    }
    r.register(
        "plughost_faults",
        "Refused, oversized and failed messages, plugin panics and repairs, by kind (as `plughost status` names them)",
        faults,
    );

    let size = m.registry_size.load(Ordering::Relaxed);
    if size >= 0 {
        let gauge: Gauge = Gauge::default();
        gauge.set(size);
        r.register(
            "plughost_tracker_services",
            "Services in the service manager's registry now",
            gauge,
        );
        r.register(
            "plughost_tracker_registrations",
            "Services the manager registered",
            m.registrations.clone(),
        );
        r.register(
            "plughost_tracker_expiries",
            "Services the manager dropped because they fell silent past their TTL",
            m.expiries.clone(),
        );
    }

    let restarts: Family<ServiceLabels, Counter> = Family::default();
    for service in &status.services {
        restarts
            .get_or_create(&ServiceLabels {
                plugin: service.plugin.clone(),
                service: service.service.clone(),
            })
            .inc_by(u64::from(service.restarts));
    }
    r.register(
        "plughost_service_restarts",
        "Restarts of each tracked service this host runs",
        restarts,
    );

    if let Some(cache) = cache {
        let files: Gauge = Gauge::default();
        files.set(i64::try_from(cache.files).unwrap_or(i64::MAX));
        let bytes: Gauge = Gauge::default();
        bytes.set(i64::try_from(cache.bytes).unwrap_or(i64::MAX));
        r.register(
            "plughost_shadow_cache_files",
            "Plugin copies in the shadow cache",
            files,
        );
        r.register_with_unit(
            "plughost_shadow_cache_size",
            "Bytes of the plugin copies in the shadow cache",
            prometheus_client::registry::Unit::Bytes,
            bytes,
        );
    }

    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut text, &r);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_double_from_a_tenth_of_a_millisecond() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(100), 0);
        assert_eq!(bucket_of(101), 1);
        assert_eq!(bucket_of(200), 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn the_p99_lies_in_the_bucket_of_the_slowest_percent() {
        let mut counts = [0u64; BUCKETS];
        counts[bucket_of(150)] = 99; // 0.1-0.2 ms
        counts[bucket_of(50_000)] = 1; // 25.6-51.2 ms
        let p99 = quantile_ms(0.99, &counts);
        assert!(p99 > 0.1 && p99 <= 0.2, "{p99}");
        let p999 = quantile_ms(0.999, &counts);
        assert!(p999 > 25.6 && p999 <= 51.2, "{p999}");
        assert_eq!(quantile_ms(0.99, &[0; BUCKETS]), 0.0);
    }
}
