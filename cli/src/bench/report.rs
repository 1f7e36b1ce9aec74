//! What a benchmark run measured.

use std::{collections::BTreeMap, fmt, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies (microseconds, 3 significant figures) and error counts.
#[derive(Debug, Clone)]
pub struct BenchReport {
    latencies: Histogram<u64>,
    /// Failed calls by code.
    pub errors: BTreeMap<u16, u64>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// CPU the serving process spent per call, in microseconds, when the
    /// run could read it (`bench call --host-pid`, the pair's server).
    pub server_cpu_us_per_call: Option<f64>,
}

/// The figures of a report, for JSON output and docs.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Calls completed (successful or not).
    pub calls: u64,
    /// Completed calls per second.
    pub calls_per_sec: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Worst latency, ms.
    pub max_ms: f64,
    /// Failed calls by code.
    pub errors: BTreeMap<u16, u64>,
    /// CPU the serving process spent per call, µs (when measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_call: Option<f64>,
}

impl BenchReport {
    /// A report with nothing recorded.
    pub fn empty() -> Self {
        Self {
            latencies: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("1 µs to 1 h at 3 significant figures are valid histogram bounds"),
            errors: BTreeMap::new(),
            elapsed: Duration::ZERO,
            server_cpu_us_per_call: None,
        }
    }

    /// Records one call.
    pub fn record(&mut self, latency: Duration, error: Option<u16>) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latencies.saturating_record(micros);
        if let Some(code) = error {
            *self.errors.entry(code).or_default() += 1;
        }
    }

    /// Adds another worker's measurements.
    pub fn merge(&mut self, other: &Self) {
        let _ = self.latencies.add(&other.latencies);
        for (code, n) in &other.errors {
            *self.errors.entry(*code).or_default() += n;
        }
    }

    /// Calls completed.
    pub fn calls(&self) -> u64 {
        self.latencies.len()
    }

    /// The headline figures.
    pub fn summary(&self) -> Summary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let secs = self.elapsed.as_secs_f64();
        Summary {
            calls: self.calls(),
            calls_per_sec: if secs > 0.0 {
                self.calls() as f64 / secs
            } else {
                0.0
            },
            p50_ms: ms(self.latencies.value_at_quantile(0.50)),
            p99_ms: ms(self.latencies.value_at_quantile(0.99)),
            max_ms: ms(self.latencies.max()),
            errors: self.errors.clone(),
            server_cpu_us_per_call: self.server_cpu_us_per_call,
        }
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.summary();
        writeln!(
            f,
            "calls:   {} in {:.1} s = {:.0} calls/s",
            s.calls,
            self.elapsed.as_secs_f64(),
            s.calls_per_sec
        )?;
        writeln!(
            f,
            "latency: p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            s.p50_ms, s.p99_ms, s.max_ms
        )?;
        if let Some(cpu) = s.server_cpu_us_per_call {
            writeln!(f, "server:  {cpu:.1} µs CPU per call")?;
        }
        if s.errors.is_empty() {
            write!(f, "errors:  none")
        } else {
            let list: Vec<String> = s.errors.iter().map(|(c, n)| format!("{c}: {n}")).collect();
            write!(f, "errors:  {}", list.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_and_quantiles() {
        let mut r = BenchReport::empty();
        for ms in 1..=100 {
            r.record(
                Duration::from_millis(ms),
                if ms > 98 { Some(504) } else { None },
            );
        }
        r.elapsed = Duration::from_secs(2);
        let s = r.summary();
        assert_eq!(s.calls, 100);
        assert!((s.calls_per_sec - 50.0).abs() < 1e-9);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{}", s.p50_ms);
        assert!((s.max_ms - 100.0).abs() < 0.1, "{}", s.max_ms);
        assert_eq!(s.errors.get(&504), Some(&2));
        let mut other = BenchReport::empty();
        other.record(Duration::from_millis(1), Some(500));
        r.merge(&other);
        assert_eq!(r.calls(), 101);
        assert!(r.to_string().contains("500: 1") && r.to_string().contains("504: 2"));
    }
}
