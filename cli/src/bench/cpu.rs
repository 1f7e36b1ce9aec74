//! CPU time of another process, from `/proc/<pid>/stat`: how a benchmark
//! reports a host's (or the pair's server's) CPU per call without any help
//! from that process.

use std::time::Duration;

/// Clock ticks per second of `/proc`'s `utime`/`stime` fields.
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// User plus system CPU time `pid` has used so far, or `None` when it is
/// gone or `/proc` is not there.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields we want come after its last ')'. utime and stime are fields
    // 14 and 15, i.e. the 12th and 13th after it.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_micros(
        (utime + stime) * 1_000_000 / ticks_per_second(),
    ))
}

/// A process's CPU clock, started at one point in a run.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock {
    pid: u32,
    start: Duration,
}

impl CpuClock {
    /// Starts reading `pid`'s CPU time now (`None` when it cannot be read).
    pub fn of(pid: u32) -> Option<Self> {
        Some(Self {
            pid,
            start: cpu_time(pid)?,
        })
    }

    /// CPU microseconds per call spent since the start, over `calls` calls.
    pub fn micros_per(&self, calls: u64) -> Option<f64> {
        let spent = cpu_time(self.pid)?.saturating_sub(self.start);
        (calls > 0).then(|| spent.as_secs_f64() * 1e6 / calls as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_process_shows_cpu_time_and_a_gone_one_none() {
        let me = std::process::id();
        let clock = CpuClock::of(me).expect("our own /proc entry");
        let spin_until = std::time::Instant::now() + Duration::from_millis(100);
        let mut x = 0u64;
        while std::time::Instant::now() < spin_until {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let per_call = clock.micros_per(1).expect("still running");
        assert!(
            per_call >= 50_000.0,
            "100 ms of spinning showed {per_call} µs"
        );
        assert_eq!(clock.micros_per(0), None);
        assert!(cpu_time(u32::MAX).is_none());
    }
}
