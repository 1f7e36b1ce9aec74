//! The three faces of a [`Report`]: a table for people, JSON for tools, and
//! JUnit XML for CI systems (which all understand
//! `testsuites/testsuite/testcase` with `failure` and `skipped` children).
//!
//! Renderers are pure functions of the report, so the CLI and the library's
//! assertion print exactly the same thing.

use std::fmt::Write as _;

use super::report::{Outcome, Report};

/// The readable table: one line per check, the findings indented below
/// failed and skipped checks, and a closing count.
///
/// ```text
/// plughost conformance: math 0.1.0 (plugin-api 0.1.0)
/// file: target/release/libplugin_math.so
///
///   PASS  load           loads with a compatible ABI      plugin-api 0.1.0 (host 0.1.0)
///   ...
/// 10 checks: 9 passed, 0 failed, 1 skipped
/// ```
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let api = report
        .plugin
        .as_ref()
        .map(|p| format!(" (plugin-api {})", p.api_version))
        .unwrap_or_default();
    let _ = writeln!(out, "plughost conformance: {}{api}", report.plugin_label());
    let _ = writeln!(out, "file: {}", report.file.display());
    out.push('\n');
    let id_width = report
        .checks
        .iter()
        .map(|c| c.check.id().len())
        .max()
        .unwrap_or(0);
    let title_width = report
        .checks
        .iter()
        .map(|c| c.check.title().len())
        .max()
        .unwrap_or(0);
    for c in &report.checks {
        let _ = writeln!(
            out,
            "  {}  {:<id_width$}  {:<title_width$}  {}",
            c.outcome.label(),
            c.check.id(),
            c.check.title(),
            c.summary
        );
        if c.outcome != Outcome::Pass || c.details.len() <= 3 {
            for d in &c.details {
                let _ = writeln!(out, "        - {d}");
            }
        } else {
            let _ = writeln!(
                out,
                "        ({} findings; see --json for all)",
                c.details.len()
            );
        }
    }
    out.push('\n');
    let _ = write!(
        out,
        "{} checks: {} passed, {} failed, {} skipped",
        report.checks.len(),
        report.count(Outcome::Pass),
        report.count(Outcome::Fail),
        report.count(Outcome::Skip)
    );
    let failed: Vec<&str> = report.failed().map(|c| c.check.id()).collect();
    if !failed.is_empty() {
        let _ = write!(out, " (failed: {})", failed.join(", "));
    }
    out.push('\n');
    out
}

/// The report as pretty JSON (the `--json` output): `file`, `plugin`,
/// `passed`, `counts` and `checks` with `check`, `outcome`, `summary`,
/// `details` and `duration_ms`.
pub fn json(report: &Report) -> String {
    let value = serde_json::json!({
        "file": report.file,
        "plugin": report.plugin,
        "passed": report.passed(),
        "counts": {
            "passed": report.count(Outcome::Pass),
            "failed": report.count(Outcome::Fail),
            "skipped": report.count(Outcome::Skip),
        },
        "log_records": report.log_records,
        "checks": report.checks,
    });
    serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The report as JUnit XML: one `testsuite` named after the plugin, one
/// `testcase` per check (`classname` = `conformance.<plugin>`, `name` = the
/// check id), with a `failure` element for failed checks and a `skipped`
/// element for skipped ones. All text is escaped, and characters XML 1.0
/// cannot carry are replaced, so plugin output quoted in a finding never
/// breaks the file.
pub fn junit(report: &Report) -> String {
    let suite = report.plugin_label();
    let class = format!(
        "conformance.{}",
        report
            .plugin
            .as_ref()
            .map(|p| p.name.as_str())
            .unwrap_or("plugin")
    );
    let tests = report.checks.len();
    let failures = report.count(Outcome::Fail);
    let skipped = report.count(Outcome::Skip);
    let time = report.duration().as_secs_f64();
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"plughost conformance\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        escape(&suite)
    );
    let _ = writeln!(out, "    <properties>");
    let _ = writeln!(
        out,
        "      <property name=\"file\" value=\"{}\"/>",
        escape(&report.file.display().to_string())
    );
    if let Some(p) = &report.plugin {
        let _ = writeln!(
            out,
            "      <property name=\"plugin-api\" value=\"{}\"/>",
            escape(&p.api_version)
        );
    }
    let _ = writeln!(out, "    </properties>");
    for c in &report.checks {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(&class),
            escape(c.check.id()),
            c.duration.as_secs_f64()
        );
        let body = std::iter::once(format!("{}: {}", c.check.title(), c.summary))
            .chain(c.details.iter().map(|d| format!("- {d}")))
            .collect::<Vec<_>>()
            .join("\n");
        match c.outcome {
            Outcome::Pass => {
                let _ = writeln!(
                    out,
                    ">\n      <system-out>{}</system-out>\n    </testcase>",
                    escape(&body)
                );
            }
            Outcome::Fail => {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                    escape(&c.summary),
                    escape(c.check.id()),
                    escape(&body)
                );
            }
            Outcome::Skip => {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    escape(&c.summary)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Escapes text for XML attribute values and element content, replacing
/// characters XML 1.0 forbids (most C0 controls) with U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::report::{Check, CheckResult, PluginSummary};

    fn sample() -> Report {
        Report {
            file: "/tmp/lib<x>.so".into(),
            plugin: Some(PluginSummary {
                name: "p&q".into(),
                version: "1.0.0".into(),
                api_version: "0.1.0".into(),
            }),
            log_records: 0,
            checks: vec![
                CheckResult::pass(Check::Load, "ok"),
                CheckResult::fail(Check::Quiet, "printed \"hi\" <b>")
                    .with_details(vec!["stdout: \u{1b}[31mred\u{0}".into()]),
                CheckResult {
                    duration: Duration::from_millis(5),
                    ..CheckResult::skip(Check::Services, "none")
                },
            ],
        }
    }

    #[test]
    fn escape_handles_markup_quotes_and_control_characters() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("x\u{1b}y\u{0}z\n"), "x\u{FFFD}y\u{FFFD}z\n");
    }

    #[test]
    fn junit_counts_and_marks_each_outcome() {
        let xml = junit(&sample());
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("<testcase classname=\"conformance.p&amp;q\" name=\"quiet\""),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"printed &quot;hi&quot; &lt;b&gt;\" type=\"quiet\">"),
            "{xml}"
        );
        assert!(xml.contains("<skipped message=\"none\"/>"), "{xml}");
        assert!(!xml.contains('\u{1b}') && !xml.contains('\u{0}'), "{xml}");
    }

    #[test]
    fn table_names_failed_checks_in_the_last_line() {
        let text = table(&sample());
        assert!(text.contains("  FAIL  quiet"), "{text}");
        assert!(
            text.ends_with("3 checks: 1 passed, 1 failed, 1 skipped (failed: quiet)\n"),
            "{text}"
        );
    }

    #[test]
    fn json_carries_outcomes_and_counts() {
        let v: serde_json::Value = serde_json::from_str(&json(&sample())).unwrap();
        assert_eq!(v["passed"], false);
        assert_eq!(v["counts"]["failed"], 1);
        assert_eq!(v["checks"][1]["check"], "quiet");
        assert_eq!(v["checks"][1]["outcome"], "fail");
        assert_eq!(v["checks"][2]["duration_ms"], 5.0);
    }
}
