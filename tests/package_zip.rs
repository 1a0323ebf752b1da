//! The Asset-Library zip works as a user gets it: build it with the same code as
//! `cargo run --release --bin package` (rust/bin/package/zipper.rs), unzip it into an
//! empty Godot project that has never seen netkit, import that project, and run a scene
//! that makes a real HTTPPool request to the loopback test server.
//!
//! The zip here carries the debug library this `cargo test` built, under the debug name
//! (`linux.debug.x86_64`), because the headless editor binary that runs the project
//! loads debug libraries; the command itself ships the release one. Everything else in
//! the zip (file selection, `.gdextension`, layout) is exactly what users receive.

mod support;

#[allow(dead_code)]
#[path = "../rust/bin/package/zipper.rs"]
mod zipper;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::godot::{check_suite, godot_command, run_project};

/// The scene written into the scratch project. It prints the runner's line format
/// (`test NAME ... ok`, `N passed, M failed`) so `check_suite` judges the run with all
/// its checks (SCRIPT ERROR, engine errors, leaks, crashes, exit code).
const MAIN_GD: &str = r#"extends Node
## Scratch project of tests/package_zip.rs: one GET through the unzipped addon.

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
		print("test packaged_addon_request ... ok")
		print("1 passed, 0 failed")
	else:
		print("test packaged_addon_request ... FAILED: " + why)
		print("0 passed, 1 failed")
	get_tree().quit(0 if ok else 1)
"#;

const MAIN_TSCN: &str = r#"[gd_scene load_steps=2 format=3]

[ext_resource type="Script" path="res://main.gd" id="1_main"]

[node name="Main" type="Node"]
script = ExtResource("1_main")
"#;

const PROJECT_GODOT: &str = r#"; Scratch project made by tests/package_zip.rs.
config_version=5

[application]

config/name="netkit package check"
run/main_scene="res://main.tscn"
run/flush_stdout_on_print=true
"#;

#[test]
fn packaged_zip_installs_into_a_fresh_project_and_works() {
    let started = Instant::now();
    let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
    let debug_library = support::extension::built_library().unwrap_or_else(|e| panic!("{e}"));
    let work = scratch_dir("package_zip");
    let zip_path = work.join(zipper::zip_file_name("test"));

    let library = zipper::Library {
        source: debug_library,
        file_name: "libnetkit.linux.x86_64.debug.so".to_string(),
    };
    let addon = support::godot::repo_dir().join("addons/netkit");
    let summary = zipper::build_addon_zip(&addon, &[library], &zip_path)
        .unwrap_or_else(|e| panic!("building the zip failed: {e}"));
    check_entries(&summary.entries);
    assert_eq!(
        zipper::list_zip(&zip_path).unwrap_or_else(|e| panic!("{e}")),
        summary.entries,
        "the zip reads back differently from what was written"
    );

    // An empty project that has never seen netkit, then the zip unpacked into it.
    let project = work.join("project");
    fs::create_dir_all(&project).unwrap();
    fs::write(project.join("project.godot"), PROJECT_GODOT).unwrap();
    fs::write(project.join("main.gd"), MAIN_GD).unwrap();
    fs::write(project.join("main.tscn"), MAIN_TSCN).unwrap();
    let mut archive = zip::ZipArchive::new(File::open(&zip_path).unwrap()).unwrap();
    archive
        .extract(&project)
        .unwrap_or_else(|e| panic!("cannot unzip {}: {e}", zip_path.display()));

    let server = support::http_server::start_blocking();
    let url = format!("--url={}/json", server.http_url);
    // Import first (`--import`), as opening the project in the editor would, so the
    // extension is registered before the scene runs; a failure here is reported whole.
    support::godot::ensure_imported(&godot, &project)
        .unwrap_or_else(|e| panic!("importing the fresh project with the addon failed:\n{e}"));
    let out = run_project(
        &godot,
        &project,
        &[url.as_str()],
        &[],
        Duration::from_secs(180),
    );
    match check_suite(&out) {
        Ok((1, 0)) => {}
        Ok(counts) => panic!("unexpected result counts {counts:?}"),
        Err(why) => panic!("the unzipped addon did not work in a fresh project:\n{why}"),
    }
    println!(
        "zip of {} entries ({} bytes) installed and answered a request in {:.1?}",
        summary.entries.len(),
        summary.bytes,
        started.elapsed()
    );
}

/// What a user must find in the zip, and what must never be in it.
fn check_entries(entries: &[String]) {
    for required in [
        "addons/netkit/LICENSE",
        "addons/netkit/README.md",
        "addons/netkit/netkit.gdextension",
        "addons/netkit/bin/libnetkit.linux.x86_64.debug.so",
        "addons/netkit/icons/http_pool.svg",
        "addons/netkit/icons/dtls_peer.svg",
    ] {
        assert!(
            entries.iter().any(|e| e == required),
            "{required} is missing from the zip: {entries:#?}"
        );
    }
    for entry in entries {
        assert!(
            entry.starts_with("addons/netkit/") || entry == "addons/",
            "{entry} is outside addons/netkit"
        );
        let name = entry.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        assert!(
            !name.ends_with(".uid") && !name.ends_with(".import") && !name.starts_with('.'),
            "{entry} is generated or hidden and must not ship"
        );
    }
    let libraries: Vec<&String> = entries
        .iter()
        .filter(|e| e.starts_with("addons/netkit/bin/") && !e.ends_with('/'))
        .collect();
    assert_eq!(
        libraries.len(),
        1,
        "only the library handed to the builder may ship, found {libraries:?}"
    );
}

/// A fresh folder under Cargo's per-target scratch space, emptied first so an earlier
/// run cannot make this one pass.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("cannot clear {}: {e}", dir.display()));
    }
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}
