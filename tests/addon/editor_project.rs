//! A scratch Godot project for headless editor sessions: the addon (linked from the
//! repository, with the library `stage_once` put there), the files a test adds, and the
//! extension registered as `install.gd` would, so the first editor session loads it
//! (godotengine/godot#123511).

use std::path::{Path, PathBuf};
use std::time::Duration;

use godot_runner::{godot_command, repo_dir, run_captured};

/// A project under the temp directory named for `name` and this process; `files` are
/// (path inside the project, text); `plugins` are `plugin.cfg` paths to enable.
pub fn create(name: &str, files: &[(&str, &str)], plugins: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netkit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("addons")).expect("create the project");
    std::fs::create_dir_all(dir.join(".godot")).expect("create .godot");
    std::os::unix::fs::symlink(repo_dir().join("addons/netkit"), dir.join("addons/netkit"))
        .expect("link the addon");
    let mut project = format!("config_version=5\n\n[application]\n\nconfig/name=\"{name}\"\n");
    if !plugins.is_empty() {
        let list: Vec<String> = plugins.iter().map(|p| format!("\"{p}\"")).collect();
        project += &format!(
            "\n[editor_plugins]\n\nenabled=PackedStringArray({})\n",
            list.join(", ")
        );
    }
    std::fs::write(dir.join("project.godot"), project).expect("write project.godot");
    std::fs::write(
        dir.join(".godot/extension_list.cfg"),
        "res://addons/netkit/netkit.gdextension\n",
    )
    .expect("write extension_list.cfg");
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a file in a folder"))
            .expect("create the file's folder");
        std::fs::write(path, text).expect("write a project file");
    }
    dir
}

/// Runs one headless editor session on `project` with `args` after `--path`, and returns
/// its output; panics unless it exits with 0 and prints no warning or error.
pub fn run_clean(project: &Path, args: &[&str], session: &str) -> String {
    let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = godot.command();
    cmd.args(["--headless", "--editor", "--path"])
        .arg(project)
        .args(args);
    let out = run_captured(cmd, Duration::from_secs(300), false).expect("start Godot");
    assert_eq!(
        out.exit_code,
        Some(0),
        "{session} session:\n{}",
        out.combined
    );
    let noisy: Vec<&str> = out
        .combined
        .lines()
        .filter(|l| l.contains("WARNING") || l.contains("ERROR"))
        .collect();
    assert!(
        noisy.is_empty(),
        "{session} session printed {noisy:?}\n{}",
        out.combined
    );
    out.combined
}
