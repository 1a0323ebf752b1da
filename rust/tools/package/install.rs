//! Installs the addon into a Godot project: copies the addon's files and the built
//! libraries to `<project>/addons/netkit/` and registers the extension in the project's
//! `.godot/extension_list.cfg` (see `extension_list.rs` for why), so that the project's
//! first headless import exits 0.
//!
//! Std only (plus `addon.rs` and `extension_list.rs`), because tests include this file
//! with `#[path]`.
//!
//! Every other line of the extension list is kept as it was and netkit's is never added
//! twice. Refused: a folder without `project.godot`, a destination that is the source addon
//! (copying a file onto itself empties it), and a project holding netkit in another folder.
//! `addons/netkit/install.gd` does the same from Godot for users who unzip.

use std::fs;
use std::path::{Path, PathBuf};

use super::addon::{self, ADDON_PREFIX, GDEXTENSION_FILE, Library};
use super::extension_list::{self, Registered};

/// What [`install_addon`] did, for the command's summary and the tests.
#[derive(Clone, Debug)]
pub struct Installed {
    /// `<project>/addons/netkit`.
    pub addon_dir: PathBuf,
    /// Files written, relative to `addon_dir` (libraries as `bin/<name>`).
    pub files: Vec<PathBuf>,
    /// The `res://` path registered in the extension list.
    pub entry: String,
    /// Whether the list gained the entry or already had it.
    pub registered: Registered,
    /// The extension list file.
    pub list: PathBuf,
}

/// The `res://` path of netkit's `.gdextension` once installed.
pub fn gdextension_entry() -> String {
    format!("res://{ADDON_PREFIX}/{GDEXTENSION_FILE}")
}

/// Copies `source_addon`'s shipped files and `libraries` (into `bin/`) to
/// `<project>/addons/netkit/`, then adds netkit to the project's extension list, keeping
/// every extension already listed. Running it again refreshes the files and adds no
/// second line.
///
/// Refused, before anything is written: a folder without `project.godot`; a project
/// whose `addons/netkit` is the source addon itself (through a symlink, as in this
/// repository's test project), since copying a file onto itself empties it; a project
/// that already has netkit's `.gdextension` somewhere else, since two copies register
/// the same classes twice.
///
/// Every file is written under a temporary name and renamed into place, so an editor
/// that has the old library mapped keeps running on it rather than crashing.
pub fn install_addon(
    source_addon: &Path,
    libraries: &[Library],
    project: &Path,
) -> Result<Installed, String> {
    if !project.join("project.godot").is_file() {
        return Err(format!(
            "{} is not a Godot project (it has no project.godot)",
            project.display()
        ));
    }
    let files = addon::shipped_files(source_addon, libraries)?;
    let addon_dir = project.join(ADDON_PREFIX);
    if let (Ok(dest), Ok(src)) = (addon_dir.canonicalize(), source_addon.canonicalize())
        && dest == src
    {
        return Err(format!(
            "{} is the addon source folder itself; install into a project that has its own copy",
            addon_dir.display()
        ));
    }
    let entry = gdextension_entry();
    if let Some(other) = other_netkit_copy(project, &entry) {
        return Err(format!(
            "{} already has netkit at {other}; remove that copy (and its line in {}) first, \
             or Godot would register netkit's classes twice",
            project.display(),
            extension_list::path(project).display()
        ));
    }

    let mut written = Vec::new();
    for rel in &files {
        copy_into_place(&source_addon.join(rel), &addon_dir.join(rel))?;
        written.push(rel.clone());
    }
    for library in libraries {
        let rel = Path::new("bin").join(&library.file_name);
        copy_into_place(&library.source, &addon_dir.join(&rel))?;
        written.push(rel);
    }
    let registered = extension_list::register(project, &entry)?;
    Ok(Installed {
        addon_dir,
        files: written,
        entry,
        registered,
        list: extension_list::path(project),
    })
}

/// Another `.gdextension` in the project that loads netkit (its entry symbol), i.e. the
/// addon already installed in another folder, as a `res://` path. Looks through the
/// project's folders the way Godot's scan does (hidden folders and folders holding a
/// `.gdignore` are skipped), to a bounded depth so a symlink loop cannot hang it.
fn other_netkit_copy(project: &Path, entry: &str) -> Option<String> {
    let mut found = Vec::new();
    find_gdextensions(project, Path::new(""), 0, &mut found);
    found
        .into_iter()
        .map(|rel| format!("res://{}", rel.to_string_lossy().replace('\\', "/")))
        .filter(|res| res != entry)
        .find(|res| {
            let file = project.join(&res["res://".len()..]);
            fs::read_to_string(file).is_ok_and(|text| text.contains("\"netkit_init\""))
        })
}

fn find_gdextensions(project: &Path, rel: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    const MAX_DEPTH: usize = 8;
    let dir = project.join(rel);
    if depth > MAX_DEPTH || dir.join(".gdignore").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let child = rel.join(&name);
        if entry.path().is_dir() {
            find_gdextensions(project, &child, depth + 1, out);
        } else if name.to_string_lossy().ends_with(".gdextension") {
            out.push(child);
        }
    }
}

/// Copies `from` to `to` through a temporary file in `to`'s folder and a rename, keeping
/// the source's permissions (libraries stay executable).
fn copy_into_place(from: &Path, to: &Path) -> Result<(), String> {
    let dir = to
        .parent()
        .ok_or_else(|| format!("{} has no parent folder", to.display()))?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = to.file_name().unwrap_or_default().to_string_lossy();
    let partial = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    fs::copy(from, &partial)
        .and_then(|_| fs::rename(&partial, to))
        .map_err(|e| {
            let _ = fs::remove_file(&partial);
            format!("cannot copy {} to {}: {e}", from.display(), to.display())
        })?;
    Ok(())
}
