//! Builds the Asset-Library zip of `addons/netkit`: the addon's own files plus the built
//! libraries the caller hands in, nothing else. Kept free of anything specific to the
//! `package` command (which profile, which platform) so that rust/tools/tests/package_zip.rs can
//! build the same zip around the debug library and install it into a scratch project.
//!
//! Uses only std, the `zip` crate and `addon.rs`, because the test includes this file with
//! `#[path]`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::addon::{self, ADDON_PREFIX, Library};

/// What went into a zip, for the command's summary and the test's assertions.
#[derive(Clone, Debug)]
pub struct ZipSummary {
    /// Every entry name in the order written (directories end with `/`).
    pub entries: Vec<String>,
    /// Size of the finished zip file in bytes.
    pub bytes: u64,
}

/// The zip's file name for a version, e.g. `godot-netkit-0.1.0.zip`: one name shared by
/// the command, the docs and the test.
pub fn zip_file_name(version: &str) -> String {
    format!("godot-netkit-{version}.zip")
}

/// Writes `output` (through a temporary file, so a failed run never leaves a half zip
/// that looks finished) holding `addon_dir`'s shipped files (see
/// [`addon::shipped_files`]) under [`ADDON_PREFIX`] and `libraries` in `bin/`. Entries
/// are sorted and dated 1980-01-01, so the same inputs give the same bytes.
pub fn build_addon_zip(
    addon_dir: &Path,
    libraries: &[Library],
    output: &Path,
) -> Result<ZipSummary, String> {
    let files = addon::shipped_files(addon_dir, libraries)?;

    if let Some(parent) = output.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let partial = output.with_extension("zip.partial");
    let written = write_zip(addon_dir, &files, libraries, &partial);
    let entries = match written {
        Ok(entries) => entries,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
    };
    fs::rename(&partial, output)
        .map_err(|e| format!("cannot move the zip to {}: {e}", output.display()))?;
    let bytes = fs::metadata(output)
        .map_err(|e| format!("cannot stat {}: {e}", output.display()))?
        .len();
    Ok(ZipSummary { entries, bytes })
}

/// Names of every entry in a zip, so the command can show what it wrote and refuse a
/// zip that cannot be read back.
pub fn list_zip(path: &Path) -> Result<Vec<String>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let archive =
        ZipArchive::new(file).map_err(|e| format!("{} is not a zip: {e}", path.display()))?;
    Ok(archive.file_names().map(String::from).collect())
}

fn write_zip(
    addon_dir: &Path,
    files: &[PathBuf],
    libraries: &[Library],
    output: &Path,
) -> Result<Vec<String>, String> {
    let file =
        File::create(output).map_err(|e| format!("cannot create {}: {e}", output.display()))?;
    let mut zip = ZipWriter::new(io::BufWriter::new(file));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default());
    let regular = options.unix_permissions(0o644);
    // Shared libraries keep the executable bit, as a linker-produced file has.
    let executable = options.unix_permissions(0o755);
    let directory = options.unix_permissions(0o755);
    let zip_err = |what: &str, e: zip::result::ZipError| format!("{what}: {e}");

    // Explicit directory entries: some unzip tools (and Godot's asset installer tree)
    // show a cleaner tree with them.
    let mut dirs: Vec<String> = vec!["addons/".into(), format!("{ADDON_PREFIX}/")];
    for rel in files {
        let mut parent = rel.parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.push(format!("{ADDON_PREFIX}/{}/", zip_path(p)));
            parent = p.parent();
        }
    }
    if !libraries.is_empty() {
        dirs.push(format!("{ADDON_PREFIX}/bin/"));
    }
    dirs.sort();
    dirs.dedup();

    let mut entries = Vec::new();
    for dir in dirs {
        zip.add_directory(dir.as_str(), directory)
            .map_err(|e| zip_err(&dir, e))?;
        entries.push(dir);
    }
    for rel in files {
        let name = format!("{ADDON_PREFIX}/{}", zip_path(rel));
        let data = fs::read(addon_dir.join(rel))
            .map_err(|e| format!("cannot read {}: {e}", addon_dir.join(rel).display()))?;
        zip.start_file(name.as_str(), regular)
            .map_err(|e| zip_err(&name, e))?;
        zip.write_all(&data)
            .map_err(|e| format!("cannot write {name}: {e}"))?;
        entries.push(name);
    }
    let mut libraries = libraries.to_vec();
    libraries.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    for library in &libraries {
        let name = format!("{ADDON_PREFIX}/bin/{}", library.file_name);
        let data = fs::read(&library.source)
            .map_err(|e| format!("cannot read {}: {e}", library.source.display()))?;
        zip.start_file(name.as_str(), executable)
            .map_err(|e| zip_err(&name, e))?;
        zip.write_all(&data)
            .map_err(|e| format!("cannot write {name}: {e}"))?;
        entries.push(name);
    }
    let mut writer = zip.finish().map_err(|e| zip_err("finishing the zip", e))?;
    writer
        .flush()
        .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    Ok(entries)
}

/// A relative path with `/` separators, as zip entry names require on every platform.
fn zip_path(relative: &Path) -> String {
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
