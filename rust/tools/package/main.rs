//! `cargo run --release --bin package`: writes `dist/godot-netkit-<version>.zip`, the
//! Asset-Library-ready zip of `addons/netkit` with the release library of this host in
//! `bin/`.
//!
//! `cargo run --release --bin package -- --install <project>`: puts the same addon into
//! a Godot project and registers it in the project's `.godot/extension_list.cfg`, so
//! that the project's first headless import does not abort (see `extension_list.rs`).
//!
//! One command on purpose: run under `--release`, this binary builds the addon's cdylib
//! with the release profile into the same target folder (`cargo build --release --lib`,
//! a no-op when fresh), so the library packaged is the fresh release build, and
//! `build.rs` has just regenerated `netkit.gdextension`.
//!
//! The editor loads the `debug` library (the editor binary carries the debug feature tag),
//! and that is where the doc comments matter (the `editor-docs` feature, on by default). So
//! the zip ships the optimized build with docs under the `debug` name and an optimized
//! build without them (`--no-default-features`, built into `package-nodocs` in the target
//! folder) under the `release` name: exported games carry no editor help.

use netkit_tools::package::{addon, extension_list, install, zipper};

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use addon::Library;
use extension_list::Registered;

/// The file name Cargo gives the cdylib on Linux; the platforms this command packages.
const BUILT_NAME: &str = "libnetkit.so";

const USAGE: &str = "\
usage: cargo run --release --bin package                       write dist/godot-netkit-<version>.zip
       cargo run --release --bin package -- --install <project>  install the addon into a Godot project";

/// What the command was asked to do.
#[derive(Debug, PartialEq, Eq)]
enum Task {
    Zip,
    Install(PathBuf),
    Help,
}

fn main() -> ExitCode {
    let task = match parse_args(std::env::args_os().skip(1)) {
        Ok(task) => task,
        Err(why) => {
            eprintln!("package: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match task {
        Task::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Task::Zip => write_zip(),
        Task::Install(project) => install_into(&project),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("package: {why}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Task, String> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Ok(Task::Zip);
    };
    let task = match first.to_str() {
        Some("-h" | "--help") => Task::Help,
        Some("--install") => match args.next() {
            Some(project) if !project.is_empty() => Task::Install(PathBuf::from(project)),
            _ => return Err("--install needs the path of a Godot project".to_string()),
        },
        _ => return Err(format!("unknown argument {}", first.to_string_lossy())),
    };
    match args.next() {
        Some(extra) => Err(format!("unexpected argument {}", extra.to_string_lossy())),
        None => Ok(task),
    }
}

fn write_zip() -> Result<(), String> {
    let repo = godot_runner::repo_dir();
    let version = env!("CARGO_PKG_VERSION");
    let libraries = host_libraries(&repo)?;
    let output = repo.join("dist").join(zipper::zip_file_name(version));
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

fn install_into(project: &Path) -> Result<(), String> {
    let repo = godot_runner::repo_dir();
    // Checked before the (slow) second build, so a typo fails at once.
    if !project.join("project.godot").is_file() {
        return Err(format!(
            "{} is not a Godot project (it has no project.godot)",
            project.display()
        ));
    }
    let libraries = host_libraries(&repo)?;
    let installed = install::install_addon(&repo.join("addons/netkit"), &libraries, project)?;
    for file in &installed.files {
        println!("  {}", file.display());
    }
    println!(
        "package: installed {} files into {}",
        installed.files.len(),
        installed.addon_dir.display()
    );
    match installed.registered {
        Registered::Added => println!(
            "package: added {} to {}, which lists:",
            installed.entry,
            installed.list.display()
        ),
        Registered::AlreadyListed => println!(
            "package: {} already lists {}; it lists:",
            installed.list.display(),
            installed.entry
        ),
    }
    for entry in extension_list::entries(project)? {
        println!("  {entry}");
    }
    println!(
        "package: `godot --headless --path {} --import` now loads netkit at startup. A fresh \
         clone needs the same list: commit .godot/extension_list.cfg, or run \
         `godot --headless --path <project> --script res://addons/netkit/install.gd` first \
         (addons/netkit/README.md)",
        project.display()
    );
    Ok(())
}

/// The two libraries of this host, named as `netkit.gdextension` lists them.
fn host_libraries(repo: &Path) -> Result<Vec<Library>, String> {
    let built = release_library()?;
    // The editor (and debug exports) load the `debug` entry of netkit.gdextension: it gets
    // the optimized build with the editor docs. Release exports load the `release` entry:
    // it gets the same build without the docs (`--no-default-features`), which a shipped
    // game never shows. A user who installs the addon can open the editor and export
    // without building anything.
    let without_docs = release_library_without_docs(repo)?;
    let release_name = host_library_name()?;
    let libraries = vec![
        Library {
            source: built,
            file_name: release_name.replace(".release.", ".debug."),
        },
        Library {
            source: without_docs,
            file_name: release_name,
        },
    ];
    for library in &libraries {
        println!(
            "package: {} -> bin/{}",
            library.source.display(),
            library.file_name
        );
    }
    Ok(libraries)
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
    // This binary lives in its own crate of the workspace, so the addon's cdylib is not
    // necessarily the one beside it: `cargo build --release --lib` (a no-op when fresh)
    // names the current one.
    let target_dir = dir
        .parent()
        .ok_or_else(|| format!("{} has no parent folder", dir.display()))?;
    godot_runner::extension::build_library(true, target_dir)
}

/// Builds the release library without the `editor-docs` feature into its own target
/// folder (so it does not replace the one this command runs from) and returns it. That
/// folder is `package-nodocs` inside the target folder this command runs from, so a
/// `CARGO_TARGET_DIR` (or `--target-dir`) is honoured rather than the repository's
/// `target/` filling up behind the user's back.
fn release_library_without_docs(repo: &Path) -> Result<PathBuf, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot locate the running executable: {e}"))?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| repo.join("target"), Path::to_path_buf)
        .join("package-nodocs");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("package: building the release library without editor docs (for release exports)");
    let status = std::process::Command::new(cargo)
        .current_dir(repo)
        .args([
            "build",
            "--release",
            "--lib",
            "--package",
            "godot-netkit",
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

#[cfg(test)]
mod tests {
    use super::{Task, parse_args};
    use std::path::PathBuf;

    fn parse(args: &[&str]) -> Result<Task, String> {
        parse_args(args.iter().map(Into::into))
    }

    #[test]
    fn arguments() {
        assert_eq!(parse(&[]), Ok(Task::Zip));
        assert_eq!(
            parse(&["--install", "../game"]),
            Ok(Task::Install(PathBuf::from("../game")))
        );
        assert_eq!(parse(&["--help"]), Ok(Task::Help));
        assert!(
            parse(&["--install"])
                .unwrap_err()
                .contains("needs the path")
        );
        assert!(parse(&["--install", ""]).is_err());
        assert!(
            parse(&["--install", "a", "b"])
                .unwrap_err()
                .contains("unexpected")
        );
        assert!(parse(&["--zip"]).unwrap_err().contains("unknown"));
    }
}
