//! Fresh Godot projects that have never seen netkit, as a game developer starts with,
//! for the tests that install the addon the ways users do (rust/tools/tests/package_zip.rs,
//! rust/tools/tests/install.rs).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use godot_runner::{GodotCmd, RunOutput, check_suite, run_captured, run_project};

/// What the other extension (tests/fixtures/other_extension.rs) prints when Godot
/// initializes it, and where [`add_other_extension`] puts its `.gdextension`.
pub const OTHER_LOADED: &str = "other_extension: initialized";
pub const OTHER_ENTRY: &str = "res://addons/other/other.gdextension";

/// Upper bound for a headless `--import` or `--script` run of a scratch project.
const GODOT_STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// The main scene's script: one GET through the installed addon. It prints the runner's
/// line format (`test NAME ... ok`, `N passed, M failed`) so `check_suite` judges the run
/// with all its checks (SCRIPT ERROR, engine errors, leaks, crashes, exit code).
const MAIN_GD: &str = r#"extends Node
## Scratch project of the install tests: one GET through the installed addon.

func _ready() -> void:
	var url := ""
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--url="):
			url = arg.substr(6)
	get_tree().create_timer(20.0).timeout.connect(_report.bind(false, "no answer within 20 s"))
	var pool := HTTPPool.new()
	add_child(pool)
	var res: HTTPResponse = await pool.fetch(url).completed
	if res.ok and res.json is Dictionary and res.json.get("int") == 42:
		_report(true, "")
	else:
		_report(false, "status %d %s %s" % [res.status, res.get_error_name(), res.error_message])


var _reported := false


func _report(ok: bool, why: String) -> void:
	if _reported:
		return
	_reported = true
	if ok:
		print("test installed_addon_request ... ok")
		print("1 passed, 0 failed")
	else:
		print("test installed_addon_request ... FAILED: " + why)
		print("0 passed, 1 failed")
	get_tree().quit(0 if ok else 1)
"#;

const MAIN_TSCN: &str = r#"[gd_scene load_steps=2 format=3]

[ext_resource type="Script" path="res://main.gd" id="1_main"]

[node name="Main" type="Node"]
script = ExtResource("1_main")
"#;

const PROJECT_GODOT: &str = r#"; Scratch project made by netkit's install tests.
config_version=5

[application]

config/name="netkit install check"
run/main_scene="res://main.tscn"
run/flush_stdout_on_print=true
"#;

/// A fresh folder under Cargo's per-target scratch space, emptied first so an earlier
/// run cannot make this one pass.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("cannot clear {}: {e}", dir.display()));
    }
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Writes a project (no `.godot/` yet) whose main scene makes one request through
/// `HTTPPool` to the URL given as `--url=`.
pub fn write_request_project(project: &Path) {
    fs::create_dir_all(project).unwrap();
    fs::write(project.join("project.godot"), PROJECT_GODOT).unwrap();
    fs::write(project.join("main.gd"), MAIN_GD).unwrap();
    fs::write(project.join("main.tscn"), MAIN_TSCN).unwrap();
}

/// Runs `godot --headless --path <project> <args>` once, as a user's CI would (no
/// preparation of the project, unlike `godot::ensure_imported`).
pub fn run_headless(godot: &GodotCmd, project: &Path, args: &[&str]) -> RunOutput {
    let mut cmd = godot.command();
    cmd.arg("--headless").arg("--path").arg(project).args(args);
    let shown = format!("{cmd:?}");
    run_captured(cmd, GODOT_STEP_TIMEOUT, false)
        .unwrap_or_else(|e| panic!("cannot run Godot: {shown}: {e}"))
}

/// Panics with Godot's output unless the run exited 0 on its own.
pub fn assert_exit_0(out: &RunOutput, what: &str) {
    if out.exit_code != Some(0) || out.timed_out {
        panic!(
            "{what} failed: exit code {:?}, signal {:?}, timed out {}.\nOutput:\n{}",
            out.exit_code, out.signal, out.timed_out, out.combined
        );
    }
}

/// Runs the project's main scene against `url` and checks that the request through
/// the installed addon succeeded, with a clean run (see `check_suite`).
pub fn assert_request_works(godot: &GodotCmd, project: &Path, url: &str) -> RunOutput {
    let arg = format!("--url={url}");
    let out = run_project(
        godot,
        project,
        &[arg.as_str()],
        &[],
        Duration::from_secs(180),
    );
    match check_suite(&out) {
        Ok((1, 0)) => out,
        Ok(counts) => panic!("unexpected result counts {counts:?}"),
        Err(why) => panic!("the installed addon did not work in the project:\n{why}"),
    }
}

/// Builds tests/fixtures/other_extension.rs with `rustc` and puts it in the project at
/// `res://addons/other/` with its `.gdextension`.
pub fn add_other_extension(work: &Path, project: &Path) {
    let dir = project.join("addons/other");
    fs::create_dir_all(&dir).unwrap();
    let library = dir.join("libother_extension.so");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "cdylib",
            "-C",
            "opt-level=1",
        ])
        .arg("--out-dir")
        .arg(work)
        .arg(godot_runner::repo_dir().join("tests/fixtures/other_extension.rs"))
        .status()
        .unwrap_or_else(|e| panic!("cannot run rustc: {e}"));
    assert!(status.success(), "building the other extension failed");
    fs::copy(work.join("libother_extension.so"), &library).unwrap();
    fs::write(
        dir.join("other.gdextension"),
        "[configuration]\nentry_symbol = \"other_extension_init\"\n\
         compatibility_minimum = \"4.3\"\n\n[libraries]\nlinux = \"libother_extension.so\"\n",
    )
    .unwrap();
}
