//! Running a Godot project (or any command) with both streams captured, a timeout, and
//! an optional live echo.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::locate::GodotCmd;
use crate::project::ensure_imported;
use crate::suite::is_test_line;

/// What one Godot run produced. `combined` interleaves both streams in arrival order
/// (stderr lines prefixed with `[stderr] `), so an engine error can be placed next to
/// the test that was running.
#[derive(Clone, Debug, Default)]
pub struct RunOutput {
    /// Exit code; `None` when killed by a signal (crash or timeout) or never started.
    pub exit_code: Option<i32>,
    /// The signal that ended the process, if one did (e.g. 11 for a segfault).
    pub signal: Option<i32>,
    /// Everything Godot printed to stdout (the runner's result lines go here).
    pub stdout: String,
    /// Everything Godot printed to stderr (engine errors, SCRIPT ERROR, leak reports).
    pub stderr: String,
    /// Both streams, line by line in arrival order; stderr lines start with `[stderr] `.
    pub combined: String,
    /// True when the run was killed because it exceeded its timeout.
    pub timed_out: bool,
}

/// Runs the test project: `godot --headless --path <project> [engine args] -- [user args]`,
/// with extra environment variables, killing Godot after `timeout`. Output is captured
/// (and echoed to the test's output, prefixed `godot| `) without pipe deadlocks.
///
/// `args` are user arguments for the tests (`--filter=...`, `--http-url=...`), passed
/// after a `--` this function inserts. To pass engine options too, put them first and
/// separate them with an explicit `"--"`: `&["--verbose", "--", "--filter=x"]`.
///
/// Before the first run the project is imported when needed (see [`ensure_imported`]);
/// if that fails, the returned output describes the failure and [`check_suite`] reports it.
pub fn run_project(
    godot: &GodotCmd,
    project: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> RunOutput {
    run_project_echo(godot, project, args, env, timeout, true)
}

/// [`run_project`] with the live echo of Godot's output switched on or off (the demo
/// prints its own, cleaner log instead).
pub fn run_project_echo(
    godot: &GodotCmd,
    project: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
    echo: bool,
) -> RunOutput {
    if let Err(e) = ensure_imported(godot, project) {
        return RunOutput {
            stderr: e.clone(),
            combined: format!("[stderr] {e}\n"),
            ..RunOutput::default()
        };
    }
    let (engine_args, user_args) = match args.iter().position(|a| *a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (&[][..], args),
    };
    let mut cmd = godot.command();
    cmd.arg("--headless")
        .arg("--path")
        .arg(project)
        .args(engine_args)
        .arg("--")
        .args(user_args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let shown = format!("{cmd:?}");
    match run_captured(cmd, timeout, echo) {
        Ok(out) => out,
        Err(e) => {
            let msg = format!("could not start Godot ({}): {shown}: {e}", godot.origin());
            RunOutput {
                stderr: msg.clone(),
                combined: format!("[stderr] {msg}\n"),
                ..RunOutput::default()
            }
        }
    }
}

/// Runs any command (a Godot, an exported game, a packaging tool) with both streams
/// captured without pipe deadlocks and a kill after `timeout`; `echo` mirrors the output
/// live into the test's output. Public so tests that run exported binaries get the same
/// crash and hang handling as Godot runs.
pub fn run_captured(mut cmd: Command, timeout: Duration, echo: bool) -> std::io::Result<RunOutput> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let combined = Arc::new(Mutex::new(String::new()));
    // Each reader sends its stream's text when it reaches EOF. Sent, not returned from
    // the thread: a thread that has sent is not yet `is_finished()`, so joining only
    // finished threads lost a stream's text now and then.
    let (done_tx, done_rx) = mpsc::channel::<(usize, String)>();
    let readers = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .zip([false, true])
    .enumerate()
    .map(|(index, (stream, is_err))| {
        let combined = Arc::clone(&combined);
        let done_tx = done_tx.clone();
        thread::spawn(move || {
            let mut own = String::new();
            if let Some(stream) = stream {
                let mut reader = BufReader::new(stream);
                let mut buf = Vec::new();
                while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']);
                    if echo {
                        // The runner's per-test lines read like libtest's, as they are;
                        // its `--- run` lines only repeat them (check_suite still reads
                        // them); everything else Godot prints is marked as Godot's.
                        if !is_err && is_test_line(line) {
                            println!("{line}");
                        } else if is_err || !line.starts_with("--- run ") {
                            println!("godot{} {line}", if is_err { "!" } else { "|" });
                        }
                    }
                    own.push_str(line);
                    own.push('\n');
                    if let Ok(mut all) = combined.lock() {
                        all.push_str(if is_err { "[stderr] " } else { "" });
                        all.push_str(line);
                        all.push('\n');
                    }
                    buf.clear();
                }
            }
            let _ = done_tx.send((index, own));
        })
    })
    .collect::<Vec<_>>();
    drop(done_tx);

    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status: Option<ExitStatus> = loop {
        match child.try_wait()? {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    // Readers end at EOF. Should a grandchild keep a pipe open, give up after a grace
    // period instead of hanging the test; that reader's text is still in `combined`.
    let grace = Instant::now() + Duration::from_secs(5);
    let mut texts = vec![String::new(); readers.len()];
    for _ in 0..readers.len() {
        let left = grace.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok((index, text)) => texts[index] = text,
            Err(_) => break,
        }
    }
    drop(readers); // detached: a reader still blocked on an open pipe ends with it
    let combined = combined.lock().map(|s| s.clone()).unwrap_or_default();
    let (exit_code, signal) = match status {
        Some(status) => (status.code(), exit_signal(&status)),
        None => (None, None),
    };
    Ok(RunOutput {
        exit_code,
        signal,
        stderr: texts.pop().unwrap_or_default(),
        stdout: texts.pop().unwrap_or_default(),
        combined,
        timed_out,
    })
}

#[cfg(unix)]
fn exit_signal(status: &ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn exit_signal(_status: &ExitStatus) -> Option<i32> {
    None
}

pub(crate) fn describe_exit(out: &RunOutput) -> String {
    if out.timed_out {
        "timed out and was killed".to_string()
    } else if let Some(code) = out.exit_code {
        format!("exit code {code}")
    } else if let Some(signal) = out.signal {
        format!(
            "killed by signal {signal}{}",
            if signal == 11 { " (segfault)" } else { "" }
        )
    } else {
        "did not run".to_string()
    }
}

pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
