//! Times and ages as people read them in tables: `plughost status` shows
//! when a plugin was loaded and how long ago, `services list` how long
//! since a service was last heard from. JSON output keeps raw numbers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An age rounded to what matters at its size: `850ms`, `4.2s`, `3m 12s`,
/// `2h 5m`, `3d 4h`.
pub fn age(age: Duration) -> String {
    let secs = age.as_secs();
    if age < Duration::from_secs(1) {
        format!("{}ms", age.as_millis())
    } else if secs < 60 {
        format!("{:.1}s", age.as_secs_f64())
    } else {
        // Keep the two largest units: "3m 12s", "2h 5m", "3d 4h".
        let rounded = match secs {
            s if s < 3600 => s,
            s if s < 86_400 => s - s % 60,
            s => s - s % 3600,
        };
        humantime::format_duration(Duration::from_secs(rounded)).to_string()
    }
}

/// A Unix time in seconds as `2026-12-06 05:10:12Z (3m 12s ago)`, relative
/// to `now`.
pub fn time_ago(unix_secs: u64, now: SystemTime) -> String {
    let then = UNIX_EPOCH + Duration::from_secs(unix_secs);
    let stamp = humantime::format_rfc3339_seconds(then)
        .to_string()
        .replacen('T', " ", 1);
    match now.duration_since(then) {
        Ok(ago) => format!("{stamp} ({} ago)", age(ago)),
        Err(_) => stamp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_keep_the_units_that_matter() {
        assert_eq!(age(Duration::from_millis(850)), "850ms");
        assert_eq!(age(Duration::from_millis(4200)), "4.2s");
        assert_eq!(age(Duration::from_secs(192)), "3m 12s");
        assert_eq!(age(Duration::from_secs(2 * 3600 + 5 * 60 + 7)), "2h 5m");
        assert_eq!(
            age(Duration::from_secs(3 * 86_400 + 4 * 3600 + 59)),
            "3days 4h"
        );
    }

    #[test]
    fn times_are_utc_with_their_age() {
        let loaded = 1_796_534_412; // 2026-12-06 05:20:12Z
        let now = UNIX_EPOCH + Duration::from_secs(loaded + 192);
        assert_eq!(time_ago(loaded, now), "2026-12-06 05:20:12Z (3m 12s ago)");
        // A clock that went back shows the time alone.
        assert_eq!(
            time_ago(loaded, UNIX_EPOCH + Duration::from_secs(loaded - 5)),
            "2026-12-06 05:20:12Z"
        );
    }
}
