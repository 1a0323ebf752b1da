//! A project's `.godot/extension_list.cfg`: the GDExtensions Godot loads at startup.
//!
//! Why netkit writes it: a headless editor session (`godot --headless --import`) that
//! discovers a GDExtension with registered classes for the first time aborts at shutdown
//! with exit code 134 after finishing its work (Godot bug godotengine/godot#123511). An
//! extension already listed here is loaded at startup instead, and the import exits 0.
//!
//! The file is one `res://` path per line; Godot trims each line and skips empty ones
//! (`GDExtensionManager::load_extensions`). Other extensions' lines are the user's and
//! are kept byte for byte.
//!
//! Std only, because tests include this file with `#[path]`.

use std::fs;
use std::path::{Path, PathBuf};

/// The file's name inside the project data folder.
const FILE_NAME: &str = "extension_list.cfg";

/// What [`register`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    /// The line was added (the file may have been created).
    Added,
    /// The line was already there; the file was not touched.
    AlreadyListed,
}

/// The project data folder: `.godot/`, or `godot/` when the project turned
/// `application/config/use_hidden_project_data_directory` off (Godot reads the list from
/// there in that case).
pub fn data_dir(project: &Path) -> PathBuf {
    let settings = fs::read_to_string(project.join("project.godot")).unwrap_or_default();
    let mut section = "";
    let mut hidden = true;
    for line in settings.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[application]"
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "config/use_hidden_project_data_directory"
        {
            hidden = value.trim() != "false";
        }
    }
    project.join(if hidden { ".godot" } else { "godot" })
}

/// The list file of `project`.
pub fn path(project: &Path) -> PathBuf {
    data_dir(project).join(FILE_NAME)
}

/// The entries listed in `project`'s file, trimmed, as Godot reads them (empty when the
/// file does not exist).
pub fn entries(project: &Path) -> Result<Vec<String>, String> {
    let file = path(project);
    match fs::read_to_string(&file) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read {}: {e}", file.display())),
    }
}

/// Adds `entry` (a `res://` path to a `.gdextension`) to `project`'s list unless it is
/// already there, keeping every other line as it was. Writes through a temporary file
/// and a rename, so an interrupted run never leaves a half-written list.
pub fn register(project: &Path, entry: &str) -> Result<Registered, String> {
    let file = path(project);
    let current = match fs::read(&file) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| format!("{} is not UTF-8 text; fix or delete it", file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let Some(merged) = merge(&current, entry) else {
        return Ok(Registered::AlreadyListed);
    };
    let dir = data_dir(project);
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let partial = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    fs::write(&partial, merged)
        .and_then(|()| fs::rename(&partial, &file))
        .map_err(|e| {
            let _ = fs::remove_file(&partial);
            format!("cannot write {}: {e}", file.display())
        })?;
    Ok(Registered::Added)
}

/// The list's text with `entry` appended, or `None` when it is already listed. A last
/// line without a newline gets one first, so the entry never joins it.
fn merge(current: &str, entry: &str) -> Option<String> {
    if parse(current).iter().any(|listed| listed == entry) {
        return None;
    }
    let mut merged = current.to_string();
    if !merged.is_empty() && !merged.ends_with('\n') {
        merged.push('\n');
    }
    merged.push_str(entry);
    merged.push('\n');
    Some(merged)
}

fn parse(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::merge;

    const NETKIT: &str = "res://addons/netkit/netkit.gdextension";

    #[test]
    fn merge_keeps_other_lines_and_adds_once() {
        assert_eq!(
            merge("", NETKIT).as_deref(),
            Some(format!("{NETKIT}\n").as_str())
        );
        let other = "res://addons/other/other.gdextension";
        // No newline after the last line, Windows line ends, blank lines: kept as they are.
        let current = format!("{other}\r\n\r\nres://x.gdextension");
        let merged = merge(&current, NETKIT).expect("not listed yet");
        assert_eq!(merged, format!("{current}\n{NETKIT}\n"));
        assert_eq!(
            merge(&merged, NETKIT),
            None,
            "a second install adds nothing"
        );
        // Godot trims lines, so an indented or CRLF entry is the same entry.
        assert_eq!(merge(&format!("  {NETKIT}\r\n"), NETKIT), None);
    }
}
