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

/// The library Cargo built alongside the running executable (`target/<profile>/` or its
/// `deps/`), without copying it anywhere; for callers that package or stage it
/// themselves (the packaging test puts it into a zip).
pub fn built_library() -> Result<PathBuf, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot locate the running executable: {e}"))?;
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join(BUILT_NAME))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "{BUILT_NAME} was not found next to {}; build it with `cargo build --lib`",
                exe.display()
            )
        })
}
