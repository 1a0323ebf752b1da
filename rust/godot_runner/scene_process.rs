//! A headless Godot running one scene as a separate process, whose stdout lines a test
//! waits for as they come (a dedicated server, a client, a fleet server under SIGTERM).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::GodotCmd;

/// The command that runs `scene` of `project` headless with user arguments `args`
/// (after `--`); add environment variables to it before [`SceneProcess::spawn`].
pub fn scene_command(godot: &GodotCmd, project: &Path, scene: &str, args: &[String]) -> Command {
    let mut cmd = godot.command();
    cmd.arg("--headless")
        .arg("--path")
        .arg(project)
        .arg(scene)
        .arg("--")
        .args(args);
    cmd
}

/// A running Godot process. Its stdout is echoed as `godot| ...` and handed over line by
/// line; its stderr is collected in the background so a full pipe never blocks it. A
/// process still running when this is dropped is killed.
pub struct SceneProcess {
    /// The process, for signals (`kill -TERM`), `kill()` and `wait()`.
    pub child: Child,
    /// Every stdout line read so far by [`SceneProcess::wait_for`], for failure messages.
    pub seen: Vec<String>,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl SceneProcess {
    /// Starts `cmd` with piped output (see [`scene_command`]).
    pub fn spawn(mut cmd: Command) -> std::io::Result<SceneProcess> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("godot| {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Ok(SceneProcess {
            child,
            seen: Vec::new(),
            lines,
            stderr: Some(stderr),
        })
    }

    /// Waits up to `limit` for a stdout line starting with `prefix` and returns it; the
    /// lines before it are kept in `seen`.
    pub fn wait_for(&mut self, prefix: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            self.seen.push(line.clone());
            if line.starts_with(prefix) {
                return Some(line);
            }
        }
    }

    /// Everything the process wrote to stderr; call it once the process has exited.
    pub fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for SceneProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
