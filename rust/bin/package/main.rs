//! `cargo run --release --bin package`: writes `dist/godot-netkit-<version>.zip`, the
//! Asset-Library-ready zip of `addons/netkit` with the release library of this host in
//! `bin/`.
//!
//! One command on purpose: building this binary under `--release` also builds the
//! crate's cdylib with the release profile (the bin depends on the lib, and Cargo builds
//! every crate type of it), so the library found next to this executable is the fresh
//! release build, and `build.rs` has just regenerated `netkit.gdextension`.

mod zipper;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The file name Cargo gives the cdylib on Linux; the platforms this command packages.
const BUILT_NAME: &str = "libnetkit.so";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("package: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let version = env!("CARGO_PKG_VERSION");
    let built = release_library()?;
    // The editor (and debug exports) load the `debug` entry of netkit.gdextension: it gets
    // the optimized build with the editor docs. Release exports load the `release` entry:
    // it gets the same build without the docs (`--no-default-features`), which a shipped
    // game never shows. A user who unzips the addon can open the editor and export
    // without building anything.
    let without_docs = release_library_without_docs(&repo)?;
    let release_name = host_library_name()?;
    let libraries = [
        zipper::Library {
            source: built.clone(),
            file_name: release_name.replace(".release.", ".debug."),
        },
        zipper::Library {
            source: without_docs,
            file_name: release_name,
        },
    ];
    let output = repo.join("dist").join(zipper::zip_file_name(version));
    for library in &libraries {
        println!("package: {} -> bin/{}", built.display(), library.file_name);
    }
    let summary = zipper::build_addon_zip(&repo.join("addons/netkit"), &libraries, &output)?;
    // Read it back: a zip that does not open is worse than no zip.
    let listed = zipper::list_zip(&output)?;
    if listed != summary.entries {
        return Err(format!(
            "{} reads back differently from what was written",
            output.display()
        ));
    }
    for entry in &listed {
        println!("  {entry}");
    }
    println!(
        "package: wrote {} ({} entries, {:.1} MiB)",
        output.display(),
        listed.len(),
        summary.bytes as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}

/// The release cdylib next to this executable. A debug run is refused rather than
/// shipping a debug library under a release name, which would be slow and confusing.
fn release_library() -> Result<PathBuf, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot locate the running executable: {e}"))?;
    let dir = exe
        .parent()
        .ok_or_else(|| format!("{} has no parent folder", exe.display()))?;
    if dir.file_name().is_none_or(|n| n != "release") {
        return Err(format!(
            "this build is not the release profile ({}); the package ships the release \
             library, so run `cargo run --release --bin package`",
            dir.display()
        ));
    }
    let built = dir.join(BUILT_NAME);
    if !built.is_file() {
        return Err(format!(
            "{} is missing; `cargo run --release --bin package` builds it",
            built.display()
        ));
    }
    Ok(built)
}

/// Builds the release library without the `editor-docs` feature into its own target
/// folder (so it does not replace the one this command runs from) and returns it.
fn release_library_without_docs(repo: &Path) -> Result<PathBuf, String> {
    let target = repo.join("target").join("package-nodocs");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("package: building the release library without editor docs (for release exports)");
    let status = std::process::Command::new(cargo)
        .current_dir(repo)
        .args([
            "build",
            "--release",
            "--lib",
            "--no-default-features",
            "--target-dir",
        ])
        .arg(&target)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the release library without docs failed ({status})"
        ));
    }
    let built = target.join("release").join(BUILT_NAME);
    if built.is_file() {
        Ok(built)
    } else {
        Err(format!("{} is missing after the build", built.display()))
    }
}

/// The name `netkit.gdextension` gives the release library of the platform this command
/// runs on (`linux.release.x86_64` -> `libnetkit.linux.x86_64.release.so`). Other
/// platforms are built on their own hosts or cross-built (see docs/ANDROID.md).
fn host_library_name() -> Result<String, String> {
    let arch = match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "x86_64",
        ("linux", "aarch64") => "arm64",
        (os, arch) => {
            return Err(format!(
                "packaging on {os}/{arch} is not supported yet; only Linux x86_64 and arm64"
            ));
        }
    };
    Ok(format!("libnetkit.linux.{arch}.release.so"))
}
