//! The demo's dedicated server as a child process: started headless, its log relayed as it
//! happens, stopped with SIGTERM like an operator or orchestrator would.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use godot_runner::{GodotCmd, project_dir};

/// A running dedicated server.
pub struct ServerProcess {
    child: Child,
    errors: Arc<Mutex<Vec<String>>>,
}

/// Starts `res://demo/server.tscn` headless against the backend, its durable outbox in
/// the file `outbox`.
pub fn start(
    godot: &GodotCmd,
    backend_url: &str,
    server_key: &str,
    outbox: &std::path::Path,
) -> Result<ServerProcess, String> {
    let mut child = godot
        .command()
        .arg("--headless")
        .arg("--path")
        .arg(project_dir())
        .args(std::env::var_os("NETKIT_DEMO_VERBOSE").map(|_| "--verbose"))
        .arg("res://demo/server.tscn")
        .arg("--")
        .arg(format!("--backend-url={backend_url}"))
        .arg(format!("--server-key={server_key}"))
        .arg(format!("--outbox={}", outbox.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the dedicated server: {e}"))?;
    let errors = Arc::new(Mutex::new(Vec::new()));
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.starts_with("[server]")
                    || line.starts_with("[netkit]")
                    || line.contains("eaked")
                    || line.contains("Orphan")
                {
                    println!("  {line}");
                }
            }
        });
    }
    if let Some(err) = child.stderr.take() {
        let errors = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if std::env::var_os("NETKIT_DEMO_VERBOSE").is_some() {
                    eprintln!("  [server stderr] {line}");
                }
                if line.contains("ERROR") || line.contains("leaked") {
                    errors.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            }
        });
    }
    Ok(ServerProcess { child, errors })
}

impl ServerProcess {
    /// Sends SIGTERM and waits up to `limit` for the exit; returns the exit code (None when
    /// killed by a signal).
    pub fn terminate(&mut self, limit: Duration) -> Result<Option<i32>, String> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !sent.success() {
            return Err("kill -TERM failed".into());
        }
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status.code());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(format!(
                    "the dedicated server did not quit within {limit:?} of SIGTERM"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server outright (used when the demo fails early).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Error lines the server printed, if any.
    pub fn problems(&self) -> Option<String> {
        let errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        (!errors.is_empty()).then(|| errors.join("\n"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}
