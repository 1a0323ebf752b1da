//! Runs the GDScript benchmark scene (godot_project/bench/http_bench.tscn) in a headless
//! Godot and reads back its one `BENCH {json}` line.
//!
//! The scene runs from a throwaway project under `target/bench/project`, not from
//! godot_project itself: a Godot editor binary run headless uses the `debug` feature tag,
//! so it would load `libnetkit.linux.x86_64.debug.so`, the debug build the test suite
//! stages there. The throwaway project's `.gdextension` maps both the debug and release
//! tags to the release library instead, which measures the build a game ships and leaves
//! the test suite's library alone. The scene reports the library file it found mapped in
//! /proc/self/maps, and the driver checks it.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use godot_runner::GodotCmd;
use godot_runner::extension::stage_extension;
use serde_json::Value;

/// Upper bound for one Godot run (import excluded); the scene has its own timeout below this.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Seconds the scene may take before it reports a timeout itself.
const SCENE_TIMEOUT_SECS: u64 = 240;

/// A Godot ready to run the benchmark scene against the staged release library.
pub struct GodotBench {
    godot: GodotCmd,
    project: PathBuf,
    library: PathBuf,
}

/// The figures one scene run reports (see the comment at the top of http_bench.gd for
/// how each is measured).
#[derive(Clone, Debug)]
pub struct SceneResult {
    /// Successful responses per second, first request to last response.
    pub requests_per_sec: f64,
    /// Main-thread process time per response, µs.
    pub main_usec_per_response: f64,
    /// Time inside the completion handlers alone per response, µs.
    pub handler_usec_per_response: f64,
    /// The longest single frame's process step during the run, ms.
    pub max_frame_ms: f64,
    /// The first frame (which issues the requests) as a whole, ms.
    pub submit_ms: f64,
    /// Peak resident set size of the Godot process (VmHWM), MiB.
    pub peak_rss_mib: f64,
}

impl GodotBench {
    /// Finds Godot, builds the throwaway project and stages the library next to it.
    pub fn prepare(repo: &Path) -> Result<GodotBench, String> {
        let godot = godot_runner::godot_command()?;
        let project = repo.join("target/bench/project");
        fs::create_dir_all(project.join("bench"))
            .map_err(|e| format!("cannot create {}: {e}", project.display()))?;
        // The scene's sources live in the real project; copy them fresh each time.
        let sources = repo.join("godot_project/bench");
        for entry in fs::read_dir(&sources)
            .map_err(|e| format!("cannot read {}: {e}", sources.display()))?
            .flatten()
        {
            let name = entry.file_name();
            let keep = [".gd", ".tscn", ".uid"]
                .iter()
                .any(|ext| name.to_string_lossy().ends_with(ext));
            if keep {
                let to = project.join("bench").join(&name);
                fs::copy(entry.path(), &to)
                    .map_err(|e| format!("cannot copy to {}: {e}", to.display()))?;
            }
        }
        write_if_changed(&project.join("project.godot"), PROJECT_GODOT)?;
        let library = stage_extension(&project)?;
        let file_name = library
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("the staged library has no file name")?
            .to_string();
        if !file_name.contains("release") {
            eprintln!(
                "warning: {file_name} is a debug build; run `cargo run --release --bin bench` \
                 for meaningful figures"
            );
        }
        let gdextension = gdextension_text(repo, &file_name)?;
        write_if_changed(
            &project.join("addons/netkit/netkit.gdextension"),
            &gdextension,
        )?;
        Ok(GodotBench {
            godot,
            project,
            library,
        })
    }

    /// `godot --version`'s first line.
    pub fn version(&self) -> String {
        self.godot.version()
    }

    /// Runs the scene once for `client` and returns its figures, or why it failed.
    pub fn run(
        &self,
        client: &str,
        url: &str,
        requests: usize,
        concurrency: usize,
    ) -> Result<SceneResult, String> {
        let args = [
            format!("--client={client}"),
            format!("--url={url}"),
            format!("--requests={requests}"),
            format!("--concurrency={concurrency}"),
            format!("--timeout={SCENE_TIMEOUT_SECS}"),
        ];
        let v = self
            .run_scene("res://bench/http_bench.tscn", &args, RUN_TIMEOUT)
            .map_err(|e| format!("{client}: {e}"))?;
        if v["failed"].as_i64() != Some(0) {
            return Err(format!(
                "{client}: {} failed responses, first: {}",
                v["failed"], v["first_error"]
            ));
        }
        let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        Ok(SceneResult {
            requests_per_sec: num("requests_per_sec"),
            main_usec_per_response: num("main_usec_per_response"),
            handler_usec_per_response: num("handler_usec_per_response"),
            max_frame_ms: num("max_frame_usec") / 1000.0,
            submit_ms: num("issue_frame_usec") / 1000.0,
            peak_rss_mib: num("vm_hwm_kb") / 1024.0,
        })
    }
}

impl GodotBench {
    /// Runs `scene` (e.g. `res://bench/dtls_bench.tscn`) once with these user arguments
    /// and returns its `BENCH {json}` line, failing on a reported error, a SCRIPT ERROR
    /// or a library other than the staged one.
    pub fn run_scene(
        &self,
        scene: &str,
        user_args: &[String],
        timeout: Duration,
    ) -> Result<Value, String> {
        let mut args = vec![scene, "--"];
        args.extend(user_args.iter().map(String::as_str));
        let out =
            godot_runner::run_project_echo(&self.godot, &self.project, &args, &[], timeout, false);
        let text = if out.combined.is_empty() {
            format!("{}{}", out.stdout, out.stderr)
        } else {
            out.combined.clone()
        };
        self.check_output(&text)
    }

    /// Starts `scene` in the background, for runs whose clients come from this process.
    pub fn spawn_scene(&self, scene: &str, user_args: &[String]) -> Result<LiveScene, String> {
        godot_runner::ensure_imported(&self.godot, &self.project)?;
        let mut cmd = self.godot.command();
        cmd.arg("--headless")
            .arg("--path")
            .arg(&self.project)
            .arg(scene)
            .arg("--")
            .args(user_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("could not start Godot: {e}"))?;
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().ok_or("no stdout")?;
        let err = child.stderr.take().ok_or("no stderr")?;
        for reader in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err) as Box<dyn std::io::Read + Send>,
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(reader).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(LiveScene {
            child,
            lines: rx,
            seen: String::new(),
        })
    }

    /// Parses the BENCH line out of a scene's output and checks it.
    pub fn check_output(&self, text: &str) -> Result<Value, String> {
        let tail = || {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(15)..].join("\n")
        };
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("BENCH "))
            .ok_or_else(|| format!("the scene printed no BENCH line:\n{}", tail()))?;
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("unreadable BENCH line ({e}): {line}"))?;
        let error = v["error"].as_str().unwrap_or("");
        if !error.is_empty() {
            return Err(format!("{}: {error}", v["mode"]));
        }
        if text.contains("SCRIPT ERROR") {
            return Err(format!("the scene raised a SCRIPT ERROR:\n{}", tail()));
        }
        let mapped = v["netkit_library"].as_str().unwrap_or("");
        let expected = self
            .library
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        if !mapped.ends_with(expected) {
            return Err(format!(
                "Godot loaded {mapped:?}, not the staged {expected}; the figures would be for another build"
            ));
        }
        Ok(v)
    }
}

/// A Godot scene running in the background; killed when dropped.
pub struct LiveScene {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: String,
}

impl LiveScene {
    /// Waits for a line starting with `prefix` and returns the rest of it.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> Result<String, String> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return Ok(rest.to_string());
                    }
                }
                Err(_) => {
                    let lines: Vec<&str> = self.seen.lines().collect();
                    return Err(format!(
                        "no `{prefix}` line from Godot within {timeout:?}:\n{}",
                        lines[lines.len().saturating_sub(15)..].join("\n")
                    ));
                }
            }
        }
    }

    /// Everything Godot printed so far.
    pub fn output(&self) -> &str {
        &self.seen
    }
}

impl Drop for LiveScene {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Keeps the main scene the benchmark; everything else is Godot's default.
const PROJECT_GODOT: &str = "; Generated by `cargo run --release --bin bench`; do not edit.\n\
config_version=5\n\n[application]\n\nconfig/name=\"netkit bench\"\n\
run/main_scene=\"res://bench/http_bench.tscn\"\nrun/flush_stdout_on_print=true\n";

/// The repository's `.gdextension` with its `[libraries]` table replaced by one that
/// maps Linux x86_64 in both debug and release to `library` (and without the icon table,
/// whose files this project does not carry).
fn gdextension_text(repo: &Path, library: &str) -> Result<String, String> {
    let source = repo.join("addons/netkit/netkit.gdextension");
    let text = fs::read_to_string(&source)
        .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    let configuration = text
        .split("[libraries]")
        .next()
        .filter(|c| c.contains("entry_symbol"))
        .ok_or_else(|| format!("{} has no [configuration] entry_symbol", source.display()))?;
    Ok(format!(
        "{}[libraries]\nlinux.debug.x86_64 = \"bin/{library}\"\nlinux.release.x86_64 = \"bin/{library}\"\n",
        configuration.trim_end().to_string() + "\n\n"
    ))
}

/// Writes only on change, so Godot's import cache stays valid between runs.
fn write_if_changed(path: &Path, text: &str) -> Result<(), String> {
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
