//! Preparing a Godot project for headless runs: the import and the seeding of
//! `.godot/extension_list.cfg`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::Path;
use std::time::Duration;

use crate::locate::GodotCmd;
use crate::process::{describe_exit, run_captured, tail};

/// Upper bound for `godot --import`.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `godot --headless --path <project> --import` when the project's `.godot/` cache
/// is missing or stale, because a project run (not the editor) only loads GDExtensions
/// listed in `.godot/extension_list.cfg` and only knows `class_name`s (like `NetkitTest`)
/// from `.godot/global_script_class_cache.cfg`, and only an import writes those.
/// Stale means: a `.gdextension` file (following the addon symlink) not listed, a listed
/// one that is gone, or a `class_name` in a `.gd` file not in the class cache.
/// Serialized between processes with a lock file. Godot 4.4+ also writes `*.uid` files
/// next to the scripts during the import.
pub fn ensure_imported(godot: &GodotCmd, project: &Path) -> Result<(), String> {
    let dot_godot = project.join(".godot");
    fs::create_dir_all(&dot_godot)
        .map_err(|e| format!("cannot create {}: {e}", dot_godot.display()))?;
    let lock_path = dot_godot.join("netkit-import.lock");
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    let Some(reason) = import_needed(project) else {
        return Ok(());
    };
    eprintln!("importing {} ({reason})", project.display());
    seed_extension_list(project)?;
    let mut cmd = godot.command();
    cmd.arg("--headless")
        .arg("--path")
        .arg(project)
        .arg("--import");
    let shown = format!("{cmd:?}");
    let out = run_captured(cmd, IMPORT_TIMEOUT, false)
        .map_err(|e| format!("could not start the Godot import: {shown}: {e}"))?;
    if out.exit_code != Some(0) || out.timed_out {
        return Err(format!(
            "`godot --import` of {} failed ({}).\nCommand: {shown}\nOutput (last lines):\n{}",
            project.display(),
            describe_exit(&out),
            tail(&out.combined, 40)
        ));
    }
    if let Some(still) = import_needed(project) {
        return Err(format!(
            "`godot --import` of {} succeeded but the project cache is still stale ({still}).\n\
             Output (last lines):\n{}",
            project.display(),
            tail(&out.combined, 40)
        ));
    }
    Ok(())
}

/// Writes `.godot/extension_list.cfg` listing every `.gdextension` of the project before
/// an import. Without it Godot discovers the extension during the import's first scan and
/// loads it mid-session; the Debian 4.6.3 build then aborts at exit (SIGABRT after the
/// import finished), so a fresh checkout's first import would fail. Listed up front, the
/// extension loads at startup like in every later run, and the import exits 0.
fn seed_extension_list(project: &Path) -> Result<(), String> {
    let mut extensions = BTreeSet::new();
    let mut class_names = BTreeSet::new();
    scan_project(project, project, &mut extensions, &mut class_names, 0);
    let path = project.join(".godot").join("extension_list.cfg");
    let text: String = extensions.iter().map(|e| format!("{e}\n")).collect();
    fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn import_needed(project: &Path) -> Option<String> {
    let dot_godot = project.join(".godot");
    let class_cache = fs::read_to_string(dot_godot.join("global_script_class_cache.cfg")).ok();
    let listed: BTreeSet<String> = fs::read_to_string(dot_godot.join("extension_list.cfg"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let mut extensions = BTreeSet::new();
    let mut class_names = BTreeSet::new();
    scan_project(project, project, &mut extensions, &mut class_names, 0);
    if let Some(missing) = extensions.difference(&listed).next() {
        return Some(format!("{missing} not in .godot/extension_list.cfg"));
    }
    if let Some(gone) = listed.difference(&extensions).next() {
        return Some(format!(
            ".godot/extension_list.cfg lists {gone}, which no longer exists"
        ));
    }
    let cached: BTreeSet<String> = class_cache
        .as_deref()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("\"class\": &\""))
        .filter_map(|rest| rest.split('"').next())
        .map(String::from)
        .collect();
    if class_cache.is_none() && !class_names.is_empty() {
        return Some(".godot/global_script_class_cache.cfg is missing".to_string());
    }
    if let Some(name) = class_names.difference(&cached).next() {
        return Some(format!(
            "class_name {name} not in .godot/global_script_class_cache.cfg"
        ));
    }
    // A stale entry (script deleted or renamed) would make Godot look for a missing file.
    cached.difference(&class_names).next().map(|name| {
        format!("class {name} in .godot/global_script_class_cache.cfg no longer exists")
    })
}

fn scan_project(
    project: &Path,
    dir: &Path,
    extensions: &mut BTreeSet<String>,
    class_names: &mut BTreeSet<String>,
    depth: usize,
) {
    // Depth cap: the addon symlink must be followed, but a symlink loop must not hang.
    if depth > 12 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            // Godot skips folders holding a .gdignore file.
            if !path.join(".gdignore").exists() {
                scan_project(project, &path, extensions, class_names, depth + 1);
            }
        } else if name.ends_with(".gdextension") {
            if let Ok(rel) = path.strip_prefix(project) {
                extensions.insert(format!("res://{}", rel.to_string_lossy()));
            }
        } else if name.ends_with(".gd") {
            let text = fs::read_to_string(&path).unwrap_or_default();
            for line in text.lines() {
                let rest = line
                    .strip_prefix("class_name")
                    .filter(|r| r.starts_with([' ', '\t']));
                if let Some(class) = rest.and_then(|r| r.split_whitespace().next()) {
                    class_names.insert(class.to_string());
                }
            }
        }
    }
}
