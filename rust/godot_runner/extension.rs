//! Puts the freshly built extension where godot_project loads it from.

use std::path::{Path, PathBuf};

/// The library file name Cargo produces for the cdylib on this platform.
const BUILT_NAME: &str = "libnetkit.so";

/// Copies the built library into `addons/netkit/bin/` under the name the `.gdextension`
/// table gives for Linux x86_64 and this build profile, and returns its path. The
/// library is looked for beside the running executable (`target/<profile>/` or its
/// `deps/`), which is where Cargo put it while building this test or binary.
pub fn stage_extension(repo: &Path) -> Result<PathBuf, String> {
    let built = built_library()?;
    let profile = if built.components().any(|c| c.as_os_str() == "release") {
        "release"
    } else {
        "debug"
    };
    let bin = repo.join("addons/netkit/bin");
    std::fs::create_dir_all(&bin).map_err(|e| format!("cannot create {}: {e}", bin.display()))?;
    let dest = bin.join(format!("libnetkit.linux.x86_64.{profile}.so"));
    // Copy through a temporary name and rename, so a Godot that is starting never maps a
    // half-written library.
    let tmp = bin.join(format!(".libnetkit.{}.tmp", std::process::id()));
    std::fs::copy(&built, &tmp).map_err(|e| format!("cannot copy {}: {e}", built.display()))?;
    std::fs::rename(&tmp, &dest).map_err(|e| format!("cannot place {}: {e}", dest.display()))?;
    Ok(dest)
}

/// Builds the extension's cdylib for the running executable's profile (`cargo build
/// --lib`, a no-op when it is up to date) and returns its path. `cargo test` only builds
/// the library as an rlib for the tests, so a fresh checkout has no `.so` until this runs;
/// and a `.so` left from an earlier build must never be tested in place of the code at hand.
pub fn built_library() -> Result<PathBuf, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot locate the running executable: {e}"))?;
    let profile_dir = exe
        .ancestors()
        .find(|d| {
            d.file_name()
                .is_some_and(|n| n == "debug" || n == "release")
        })
        .ok_or_else(|| format!("{} is not inside a Cargo target folder", exe.display()))?;
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| format!("{} has no parent", profile_dir.display()))?;
    build_library(release, target_dir)
}

/// Runs `cargo build --lib [--release]` into `target_dir` and returns the cdylib Cargo
/// reports.
pub fn build_library(release: bool, target_dir: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    // A test or `cargo run` gives this process the package's own variables
    // (CARGO_MANIFEST_DIR, CARGO_PKG_*, OUT_DIR, ...). Build scripts such as ring's declare
    // rerun-if-env-changed on exactly those, so passing them on would make every build
    // from here and every build from a shell invalidate each other.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&key.as_ref())
        {
            build.env_remove(key.as_ref());
        }
    }
    build
        .args([
            "build",
            "--lib",
            "--package",
            "godot-netkit",
            "--message-format=json",
        ])
        .args(release.then_some("--release"))
        .arg("--manifest-path")
        .arg(crate::repo_dir().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    let output = build
        .output()
        .map_err(|e| format!("cannot run cargo to build the extension: {e}"))?;
    if !output.status.success() {
        return Err(format!("`cargo build --lib` failed ({})", output.status));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "netkit")
        .flat_map(|msg| {
            msg["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .find(|f| f.file_name().is_some_and(|n| n == BUILT_NAME))
        .ok_or_else(|| format!("cargo reported no {BUILT_NAME}"))
}
