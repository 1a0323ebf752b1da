//! What the addon folder ships, shared by the zip (`zipper.rs`) and the install into a
//! project (`install.rs`), so both deliver exactly the same files.
//!
//! Std only, because tests include this file with `#[path]`.

use std::fs;
use std::path::{Path, PathBuf};

/// Folder the addon lives in inside a project (and inside the zip), so that it ends up
/// at `res://addons/netkit`.
pub const ADDON_PREFIX: &str = "addons/netkit";

/// The `.gdextension` file inside the addon; its library paths must be relative to it.
pub const GDEXTENSION_FILE: &str = "netkit.gdextension";

/// Files a user-facing addon must carry: the licence has to travel with the binary, the
/// README is what the Asset Library and a curious user open first, and `install.gd`
/// registers the extension for users who unzip by hand (see the README).
const REQUIRED_FILES: [&str; 4] = [GDEXTENSION_FILE, "LICENSE", "README.md", "install.gd"];

/// One built library to ship in the addon's `bin/`.
#[derive(Clone, Debug)]
pub struct Library {
    /// Where Cargo (or cargo-ndk) put the built file.
    pub source: PathBuf,
    /// Its name inside `bin/`, exactly as the `.gdextension` lists it (e.g.
    /// `libnetkit.linux.x86_64.release.so`); checked, so a typo cannot ship an addon
    /// whose library Godot never loads.
    pub file_name: String,
}

/// Checks that `addon_dir` is a complete addon folder and that its `.gdextension` lists
/// every one of `libraries` (which must exist), then returns the addon's own files to
/// ship, relative to `addon_dir` and sorted. Left out: the addon's `bin/` contents
/// (stale or debug builds; only `libraries` ship), Godot's generated `*.uid` and
/// `*.import` files, hidden files and editor backups.
pub fn shipped_files(addon_dir: &Path, libraries: &[Library]) -> Result<Vec<PathBuf>, String> {
    for name in REQUIRED_FILES {
        if !addon_dir.join(name).is_file() {
            return Err(format!(
                "{} has no {name}; it is not a complete addon folder",
                addon_dir.display()
            ));
        }
    }
    let gdextension = fs::read_to_string(addon_dir.join(GDEXTENSION_FILE))
        .map_err(|e| format!("cannot read {GDEXTENSION_FILE}: {e}"))?;
    check_gdextension(&gdextension, libraries)?;
    let mut files = Vec::new();
    collect_files(addon_dir, Path::new(""), &mut files)?;
    files.sort();
    Ok(files)
}

/// Refuses libraries the `.gdextension` does not list, and a `.gdextension` whose paths
/// are project-absolute (`res://`), which would break as soon as a game puts the addon
/// anywhere but the one folder it was written for.
fn check_gdextension(text: &str, libraries: &[Library]) -> Result<(), String> {
    if text.contains("res://") {
        return Err(format!(
            "{GDEXTENSION_FILE} contains a res:// path; library and icon paths must be relative \
             to the addon folder"
        ));
    }
    for library in libraries {
        let listed = format!("\"bin/{}\"", library.file_name);
        if !text.contains(&listed) {
            return Err(format!(
                "{GDEXTENSION_FILE} does not list bin/{}, so Godot would never load it; \
                 check the name against [package.metadata.gdextension.libraries]",
                library.file_name
            ));
        }
        if !library.source.is_file() {
            return Err(format!(
                "the library {} does not exist (was it built?)",
                library.source.display()
            ));
        }
    }
    Ok(())
}

/// Whether a file of the addon folder ships (see [`shipped_files`]).
fn ships(relative: &Path) -> bool {
    let name = relative
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let in_bin = relative.components().next().map(|c| c.as_os_str()) == Some("bin".as_ref());
    !(in_bin
        || name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".uid")
        || name.ends_with(".import")
        || name.ends_with(".tmp"))
}

/// Lists the files under `dir` (following symlinks, as the project links the addon in)
/// relative to the addon root, keeping those [`ships`] accepts.
fn collect_files(root: &Path, relative: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let dir = root.join(relative);
    let entries = fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let rel = relative.join(entry.file_name());
        let path = entry.path();
        if path.is_dir() {
            let name = entry.file_name();
            // bin/ is rebuilt from the libraries handed in; hidden folders are tool state.
            if name != "bin" && !name.to_string_lossy().starts_with('.') {
                collect_files(root, &rel, out)?;
            }
        } else if ships(&rel) {
            out.push(rel);
        }
    }
    Ok(())
}
