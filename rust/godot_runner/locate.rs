//! Finding a Godot 4 to run: `$GODOT4_BIN`, `godot4`/`godot` on PATH, or Debian's package
//! provisioned into the cache ([`crate::provision`]); and [`GodotCmd`], which runs it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{describe_exit, run_captured, tail};
use crate::provision::{DEBIAN_SUITE, provision_debian_package};

/// Environment variable naming the Godot 4 binary to use; wins over everything else,
/// so a developer with their own Godot never waits for provisioning.
pub const GODOT_BIN_ENV: &str = "GODOT4_BIN";

/// Environment variable overriding where provisioned packages are cached
/// (default `<repo>/.cache`), e.g. to share one cache between checkouts in CI.
pub const CACHE_DIR_ENV: &str = "NETKIT_CACHE_DIR";

// ---------------------------------------------------------------------------------------
// Locations
// ---------------------------------------------------------------------------------------

/// The repository root, which every default path below is relative to, so tests work
/// from any current directory. This crate lives at `<repo>/rust/godot_runner`.
pub fn repo_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// The Godot project holding the GDScript test suite (`<repo>/godot_project`).
pub fn project_dir() -> PathBuf {
    repo_dir().join("godot_project")
}

/// Where provisioned Debian packages live: `$NETKIT_CACHE_DIR`, else `<repo>/.cache`
/// (git-ignored), so the ~1 GB unpacked Godot is downloaded once per checkout.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os(CACHE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_dir().join(".cache"),
    }
}

// ---------------------------------------------------------------------------------------
// Finding Godot
// ---------------------------------------------------------------------------------------

/// A runnable Godot 4: program plus leading arguments (a provisioned Godot runs through
/// its own dynamic loader), with the version it reported.
#[derive(Clone, Debug)]
pub struct GodotCmd {
    program: PathBuf,
    leading_args: Vec<OsString>,
    version: String,
    origin: String,
}

impl GodotCmd {
    /// A `Command` ready to take Godot's own arguments (`--headless --path P ...`);
    /// hides whether Godot is a plain binary or runs through a provisioned loader.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.leading_args);
        cmd
    }

    /// The first line of `godot --version` (e.g. `4.6.3.stable.debian...`), for logs
    /// and for version-dependent expectations.
    pub fn version(&self) -> String {
        self.version.clone()
    }

    /// Where this Godot came from (`GODOT4_BIN`, `PATH`, or the provisioned root), so
    /// a failing run says which binary it used.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Wraps a Godot binary (path or name on PATH) after checking it runs and is 4.x,
    /// so a wrong `GODOT4_BIN` fails with a message instead of odd test failures.
    pub fn from_program(program: impl Into<PathBuf>, origin: &str) -> Result<GodotCmd, String> {
        let program = program.into();
        let mut cmd = GodotCmd {
            program,
            leading_args: Vec::new(),
            version: String::new(),
            origin: origin.to_string(),
        };
        cmd.version = probe_version(&cmd)?;
        Ok(cmd)
    }

    /// Uses the Godot unpacked by [`provision_debian_packages`] into `root`, run through
    /// the root's own dynamic loader and libraries, since the host's are too old for
    /// a sid build.
    pub fn from_debian_root(root: &Path) -> Result<GodotCmd, String> {
        let binary = root.join("usr/bin/godot");
        if !binary.is_file() {
            return Err(format!(
                "{} is missing: the provisioned package set in {} holds no Godot binary",
                binary.display(),
                root.display()
            ));
        }
        let cmd = command_in_root(root, &binary)?;
        let mut godot = GodotCmd {
            program: PathBuf::from(cmd.get_program()),
            leading_args: cmd.get_args().map(OsString::from).collect(),
            version: String::new(),
            origin: format!(
                "Debian {DEBIAN_SUITE} package unpacked in {}",
                root.display()
            ),
        };
        godot.version = probe_version(&godot)?;
        Ok(godot)
    }
}

/// Finds a Godot 4 to run the in-engine tests with, in this order: `$GODOT4_BIN`;
/// `godot4` or `godot` on PATH (if it is 4.x); on Debian-family hosts, Debian's `godot`
/// package from sid, provisioned into [`cache_dir`]. Never skips silently: the error
/// says what was tried and how to fix it. The result is computed once per process.
pub fn godot_command() -> Result<GodotCmd, String> {
    static FOUND: OnceLock<Result<GodotCmd, String>> = OnceLock::new();
    FOUND.get_or_init(find_godot).clone()
}

fn find_godot() -> Result<GodotCmd, String> {
    if let Some(bin) = std::env::var_os(GODOT_BIN_ENV).filter(|v| !v.is_empty()) {
        // An explicit choice is never replaced by a fallback: a typo must be reported.
        return GodotCmd::from_program(&bin, &format!("{GODOT_BIN_ENV}={}", bin.to_string_lossy()))
            .map_err(|e| format!("{GODOT_BIN_ENV} is set but unusable: {e}"));
    }
    let mut tried = Vec::new();
    for name in ["godot4", "godot"] {
        match GodotCmd::from_program(name, &format!("`{name}` on PATH")) {
            Ok(cmd) => return Ok(cmd),
            Err(e) => tried.push(format!("`{name}` on PATH: {e}")),
        }
    }
    if is_debian_family() {
        match provision_debian_package("godot").and_then(|root| GodotCmd::from_debian_root(&root)) {
            Ok(cmd) => return Ok(cmd),
            Err(e) => tried.push(format!("provisioning Debian's `godot` package: {e}")),
        }
    } else {
        tried.push("provisioning: not a Debian-family host (no apt-get/dpkg)".to_string());
    }
    Err(format!(
        "No usable Godot 4 for the in-engine tests.\n\
         Fix: set {GODOT_BIN_ENV}=/path/to/godot (Godot 4.3 or newer), or install Godot 4.3+ \
         so that `godot4` or `godot` on PATH runs it.\nTried:\n  - {}",
        tried.join("\n  - ")
    ))
}

fn probe_version(godot: &GodotCmd) -> Result<String, String> {
    let mut cmd = godot.command();
    cmd.arg("--version");
    let out = run_captured(cmd, Duration::from_secs(60), false)
        .map_err(|e| format!("cannot run `{} --version`: {e}", godot.program.display()))?;
    let version = out
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if out.exit_code != Some(0) {
        return Err(format!(
            "`{} --version` failed ({}): {}",
            godot.program.display(),
            describe_exit(&out),
            tail(&format!("{}{}", out.stdout, out.stderr), 10)
        ));
    }
    // The extension's compatibility_minimum is 4.3; an older 4.x would refuse to load it.
    let minor = version
        .strip_prefix("4.")
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|m| m.parse::<u32>().ok());
    if minor.is_none_or(|m| m < 3) {
        return Err(format!(
            "`{} --version` printed {version:?}; the tests need Godot 4.3 or newer",
            godot.program.display()
        ));
    }
    Ok(version.to_string())
}

fn is_debian_family() -> bool {
    Path::new("/etc/debian_version").exists()
        && find_on_path("apt-get").is_some()
        && find_on_path("dpkg").is_some()
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A `Command` running `program` (a binary inside a root made by
/// [`provision_debian_packages`]) through the root's own dynamic loader and library
/// directories, so sid binaries run on an older host without touching the host's
/// libraries. Also meant for exported games run against provisioned export templates.
pub fn command_in_root(root: &Path, program: &Path) -> Result<Command, String> {
    let (triplet, loader) = match std::env::consts::ARCH {
        "x86_64" => ("x86_64-linux-gnu", "ld-linux-x86-64.so.2"),
        "aarch64" => ("aarch64-linux-gnu", "ld-linux-aarch64.so.1"),
        other => return Err(format!("no known Debian loader for architecture {other}")),
    };
    let loader_path = [
        format!("usr/lib/{triplet}/{loader}"),
        format!("lib/{triplet}/{loader}"),
    ]
    .iter()
    .map(|rel| root.join(rel))
    .find(|p| p.exists())
    .ok_or_else(|| {
        format!(
            "no dynamic loader {loader} under {} (libc6 not unpacked?)",
            root.display()
        )
    })?;
    let lib_dirs: Vec<PathBuf> = [
        format!("usr/lib/{triplet}"),
        format!("lib/{triplet}"),
        format!("usr/lib/{triplet}/pulseaudio"),
        "usr/lib".to_string(),
    ]
    .iter()
    .map(|rel| root.join(rel))
    .filter(|p| p.is_dir())
    .collect();
    let library_path = std::env::join_paths(&lib_dirs)
        .map_err(|e| format!("cannot build --library-path from {lib_dirs:?}: {e}"))?;
    let mut cmd = Command::new(loader_path);
    cmd.arg("--library-path").arg(library_path).arg(program);
    Ok(cmd)
}
