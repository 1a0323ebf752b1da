//! Judging a run of the in-engine suite: the runner's result lines, and the engine
//! errors, leaks and crashes that fail a run.

use crate::process::{RunOutput, describe_exit, tail};

/// Prefix of the line `NetkitTest.expect_error()` prints (see godot_project/tests/netkit_test.gd).
const EXPECT_ERROR_MARKER: &str = "[netkit-expect-error] ";

/// Judges a run of the GDScript suite (res://tests/runner.gd) and returns
/// `(passed, failed)` only when everything is clean; otherwise an error quoting the
/// offending lines (with the test that was running when they appeared).
///
/// It is an error when:
/// - Godot timed out, crashed (signal), did not start, or exited non-zero;
/// - the final `N passed, M failed` line is missing, or disagrees with the per-test lines;
/// - zero tests ran, or any test FAILED;
/// - any line contains `SCRIPT ERROR` (GDScript runtime or parse error);
/// - any line reports a leak: `leaked at exit` (ObjectDB instances, RIDs), `Leaked instance`,
///   `resources still in use at exit`;
/// - any line reports a crash: `Program crashed`, `FATAL:`, `handle_crash`;
/// - any `ERROR:` / `USER ERROR:` line: engine errors, `push_error`, gdext's
///   `godot_error!`, and a GDExtension that fails to load (`Error loading extension`,
///   `GDExtension dynamic library not found`, `Can't open dynamic library`). Godot
///   cannot tell which are harmless, so none is presumed harmless; a test that provokes
///   one on purpose declares it with `expect_error("text")`, which tolerates ERROR lines
///   containing that text for the whole run.
///
/// Not errors: `WARNING:` / `USER WARNING:` lines (other than the leak reports above),
/// plain `printerr` output, and the `at:` / backtrace lines following an error (they are
/// quoted as context).
pub fn check_suite(out: &RunOutput) -> Result<(usize, usize), String> {
    check_suite_allowing(out, &[])
}

/// [`check_suite`] that also tolerates `ERROR:` lines containing any of `allowed_errors`,
/// for runs known to print a specific engine error, e.g. the harness self-test run before
/// the extension library is built (`"Error loading extension"`). Never tolerates
/// SCRIPT ERROR, leaks, crashes or failed tests.
pub fn check_suite_allowing(
    out: &RunOutput,
    allowed_errors: &[&str],
) -> Result<(usize, usize), String> {
    let mut problems: Vec<String> = Vec::new();
    if out.timed_out {
        problems.push(
            "Godot did not finish in time and was killed (a test or the runner hung; \
                       the last `--- run` line below names the test that was running)"
                .to_string(),
        );
    } else if out.exit_code != Some(0) {
        problems.push(format!("Godot {}", describe_exit(out)));
    }

    let combined = if out.combined.is_empty() {
        format!("{}{}", out.stdout, out.stderr)
    } else {
        out.combined.clone()
    };
    let lines: Vec<String> = combined.lines().map(strip_ansi).collect();
    let expected: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            l.find(EXPECT_ERROR_MARKER)
                .map(|i| l[i + EXPECT_ERROR_MARKER.len()..].trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .collect();

    // Per-test results and the summary.
    let (ok, failed_lines) = test_results(&lines);
    let summary = lines
        .iter()
        .filter_map(|l| parse_summary(l.trim_end()))
        .next_back();
    let mut counts = None;
    match summary {
        None => problems.push(
            "the runner's final `N passed, M failed` line is missing (Godot stopped early, or the \
             runner could not start: see SCRIPT ERROR / ERROR lines)"
                .to_string(),
        ),
        Some((passed, failed)) => {
            counts = Some((passed, failed));
            if passed + failed == 0 {
                problems.push(
                    "no tests ran (wrong --filter, or no res://tests/**/test_*.gd files)"
                        .to_string(),
                );
            }
            if passed != ok || failed != failed_lines.len() {
                problems.push(format!(
                    "summary says {passed} passed, {failed} failed but the output has {ok} `... ok` and {} \
                     `... FAILED` lines",
                    failed_lines.len()
                ));
            }
        }
    }
    if !failed_lines.is_empty() {
        problems.push(format!(
            "{} test(s) failed:\n    {}",
            failed_lines.len(),
            failed_lines.join("\n    ")
        ));
    }

    // Engine output that fails the run, placed relative to the runner's lines. The two
    // pipes are read separately, so "during" vs "after" is approximate.
    let mut place = String::new();
    let mut offending = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let text = line.strip_prefix("[stderr] ").unwrap_or(line);
        if let Some(test) = text.strip_prefix("--- run ") {
            place = format!(" (during {})", test.trim());
            continue;
        }
        if let Some(test) = text
            .strip_prefix("test ")
            .and_then(|t| t.split(" ... ").next())
        {
            place = format!(" (after {test})");
            continue;
        }
        if parse_summary(text.trim_end()).is_some() {
            place = " (at exit)".to_string();
            continue;
        }
        let Some(mut kind) = fatal_kind(text, &expected, allowed_errors) else {
            continue;
        };
        if kind == "leak" && failed_lines.iter().any(|l| l.contains("timed out after")) {
            // The runner abandons a timed-out test's coroutine; its objects stay alive.
            kind = "leak (expected after a timed-out test)";
        }
        let mut quote = text.trim().to_string();
        for next in lines.iter().skip(i + 1).take(3) {
            let next = next.strip_prefix("[stderr] ").unwrap_or(next);
            if next.starts_with([' ', '\t']) && !next.trim().is_empty() {
                quote.push_str("\n        ");
                quote.push_str(next.trim());
            } else {
                break;
            }
        }
        offending.push(format!("{kind}{place}: {quote}"));
    }
    if !offending.is_empty() {
        problems.push(format!(
            "Godot reported problems:\n    {}",
            offending.join("\n    ")
        ));
    }

    match (problems.is_empty(), counts) {
        (true, Some(counts)) => Ok(counts),
        _ => Err(format!(
            "in-engine test suite failed:\n- {}\n--- last output lines ---\n{}",
            problems.join("\n- "),
            tail(&lines.join("\n"), 25)
        )),
    }
}

/// The runner's per-test lines in a run's output: how many passed, and each `... FAILED`
/// line. Counted from the lines themselves, so a run that died before the runner's
/// summary still reports what it got through.
pub fn test_results<S: AsRef<str>>(lines: &[S]) -> (usize, Vec<String>) {
    let mut ok = 0usize;
    let mut failed = Vec::new();
    for line in lines {
        let l = line.as_ref().trim_end();
        if l.starts_with("test ") && l.ends_with(" ... ok") {
            ok += 1;
        } else if l.starts_with("test ") && l.contains(" ... FAILED") {
            failed.push(l.to_string());
        }
    }
    (ok, failed)
}

/// A runner result line: `test NAME ... ok` or `test NAME ... FAILED: why`.
pub(crate) fn is_test_line(line: &str) -> bool {
    line.starts_with("test ") && (line.ends_with(" ... ok") || line.contains(" ... FAILED"))
}

fn parse_summary(line: &str) -> Option<(usize, usize)> {
    let (passed, rest) = line.split_once(" passed, ")?;
    let failed = rest.strip_suffix(" failed")?;
    Some((passed.parse().ok()?, failed.parse().ok()?))
}

fn fatal_kind(text: &str, expected: &[String], allowed: &[&str]) -> Option<&'static str> {
    // A test may declare an error it provokes on purpose (NetkitTest.expect_error), such
    // as Godot refusing to free an object inside its own signal's emission.
    let declared = |text: &str| expected.iter().any(|e| text.contains(e.as_str()));
    if text.contains("SCRIPT ERROR") && !declared(text) {
        return Some("script error");
    }
    if [
        "leaked at exit",
        "Leaked instance",
        "resources still in use at exit",
    ]
    .iter()
    .any(|p| text.contains(p))
    {
        return Some("leak");
    }
    if ["Program crashed", "FATAL:", "handle_crash"]
        .iter()
        .any(|p| text.contains(p))
    {
        return Some("crash");
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with("ERROR:") || trimmed.starts_with("USER ERROR:") {
        let tolerated = declared(text) || allowed.iter().any(|a| !a.is_empty() && text.contains(a));
        if !tolerated {
            return Some("engine error");
        }
    }
    None
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Skip parameters up to the final byte of the escape sequence.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
