//! Finds (or provisions) a Godot 4 binary and runs the in-engine GDScript test suite
//! in `godot_project/`, so `cargo test` checks HTTPPool / DTLSPeer inside a real engine.
//!
//! Std only on purpose: this file is included by integration tests with `mod`, and must
//! keep working while the main crate's dependencies change.
//!
//! Typical use from an integration test:
//! ```ignore
//! let godot = godot::godot_command().unwrap_or_else(|e| panic!("{e}"));
//! let out = godot::run_project(&godot, &godot::project_dir(), &["--http-url=http://127.0.0.1:8080"],
//!                              &[], Duration::from_secs(300));
//! let (passed, _) = godot::check_suite(&out).unwrap_or_else(|e| panic!("{e}"));
//! ```

// Each integration test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Environment variable naming the Godot 4 binary to use; wins over everything else,
/// so a developer with their own Godot never waits for provisioning.
pub const GODOT_BIN_ENV: &str = "GODOT4_BIN";

/// Environment variable overriding where provisioned packages are cached
/// (default `<repo>/.cache`), e.g. to share one cache between checkouts in CI.
pub const CACHE_DIR_ENV: &str = "NETKIT_CACHE_DIR";

/// Environment variable overriding the Debian mirror URL used for provisioning, for
/// hosts whose apt configuration has no Debian archive (e.g. Ubuntu).
pub const MIRROR_ENV: &str = "NETKIT_DEBIAN_MIRROR";

/// Debian suite the packages come from: the only one that carries Godot 4.3+ today.
const DEBIAN_SUITE: &str = "sid";

/// Keyring that signs every Debian suite, sid included (verified with gpgv).
const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Name of the file written into a provisioned root once it is complete.
const PROVISIONED_MARKER: &str = ".netkit-provisioned";

/// Upper bound for each apt-get step; a stuck mirror must fail the test, not hang it.
const APT_TIMEOUT: Duration = Duration::from_secs(900);

/// Upper bound for `godot --import`.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(300);

/// Prefix of the line `NetkitTest.expect_error()` prints (see godot_project/tests/netkit_test.gd).
const EXPECT_ERROR_MARKER: &str = "[netkit-expect-error] ";

// ---------------------------------------------------------------------------------------
// Locations
// ---------------------------------------------------------------------------------------

/// The repository root (the crate's manifest directory), which every default path
/// below is relative to, so tests work from any current directory.
pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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

// ---------------------------------------------------------------------------------------
// Provisioning Debian packages
// ---------------------------------------------------------------------------------------

/// [`provision_debian_packages`] for one package; e.g. `"godot"`.
pub fn provision_debian_package(package: &str) -> Result<PathBuf, String> {
    provision_debian_packages(&[package])
}

/// Downloads `packages` and their whole dependency closure from Debian sid (through
/// the mirror the host's apt already uses) and unpacks them into one root folder under
/// [`cache_dir`] (`<cache>/<pkg>[+<pkg>...]-sid/`), returning that root. Nothing is
/// installed on the host. Idempotent and safe for concurrent test processes: one
/// process provisions under a lock into a temporary folder which is renamed into place
/// with a marker file inside; the others wait and reuse it.
pub fn provision_debian_packages(packages: &[&str]) -> Result<PathBuf, String> {
    if packages.is_empty()
        || packages
            .iter()
            .any(|p| p.is_empty() || p.contains(['/', ' ', '+']))
    {
        return Err(format!("invalid package list {packages:?}"));
    }
    let cache = cache_dir();
    let name = format!("{}-{DEBIAN_SUITE}", packages.join("+"));
    let root = cache.join(&name);
    if root.join(PROVISIONED_MARKER).is_file() {
        return Ok(root);
    }
    fs::create_dir_all(&cache)
        .map_err(|e| format!("cannot create cache folder {}: {e}", cache.display()))?;
    let lock_path = cache.join(format!("{name}.lock"));
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    // Another process may have finished while this one waited for the lock.
    if root.join(PROVISIONED_MARKER).is_file() {
        return Ok(root);
    }
    if root.exists() {
        fs::remove_dir_all(&root)
            .map_err(|e| format!("cannot remove incomplete {}: {e}", root.display()))?;
    }
    // Leftovers of a process that died while provisioning (we hold the lock now).
    let partial_prefix = format!(".{name}.partial-");
    if let Ok(entries) = fs::read_dir(&cache) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&partial_prefix)
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let work = cache.join(format!(".{name}.partial-{}", std::process::id()));
    let started = Instant::now();
    let result = provision_into(packages, &work).and_then(|unpacked| {
        fs::rename(&unpacked, &root).map_err(|e| {
            format!(
                "cannot move {} to {}: {e}",
                unpacked.display(),
                root.display()
            )
        })
    });
    // Best effort: the downloads are no longer needed either way.
    let _ = fs::remove_dir_all(&work);
    result?;
    eprintln!(
        "provisioned Debian {DEBIAN_SUITE} packages {packages:?} into {} in {:.0?}",
        root.display(),
        started.elapsed()
    );
    Ok(root)
}

fn provision_into(packages: &[&str], work: &Path) -> Result<PathBuf, String> {
    if work.exists() {
        fs::remove_dir_all(work).map_err(|e| format!("cannot clear {}: {e}", work.display()))?;
    }
    let apt = work.join("apt");
    let root = work.join("root");
    for dir in [
        apt.join("lists/partial"),
        apt.join("cache/archives/partial"),
        root.clone(),
    ] {
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    if !Path::new(DEBIAN_KEYRING).is_file() {
        return Err(format!(
            "{DEBIAN_KEYRING} is missing; install the `debian-archive-keyring` package so sid's \
             signatures can be checked"
        ));
    }
    let mirror = debian_mirror()?;
    let sources = apt.join("sid.sources");
    let status = apt.join("status");
    write_file(
        &sources,
        &format!(
            "Types: deb\nURIs: {mirror}\nSuites: {DEBIAN_SUITE}\nComponents: main\nSigned-By: {DEBIAN_KEYRING}\n"
        ),
    )?;
    // An empty dpkg status makes apt fetch the whole dependency closure.
    write_file(&status, "")?;
    let apt_options = |cmd: &mut Command| {
        for (key, value) in [
            ("Dir::Etc::SourceList", sources.as_os_str()),
            ("Dir::Etc::SourceParts", "/dev/null".as_ref()),
            ("Dir::State::Lists", apt.join("lists").as_os_str()),
            ("Dir::State::Status", status.as_os_str()),
            ("Dir::Cache", apt.join("cache").as_os_str()),
        ] {
            let mut option = OsString::from(format!("{key}="));
            option.push(value);
            cmd.arg("-o").arg(option);
        }
        cmd.args(["-o", "Debug::NoLocking=1"]);
        // The host's apt.conf.d may enable extra indexes (AppStream); they are not needed.
        cmd.args([
            "-o",
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false",
        ]);
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
    };

    let mut update = Command::new("apt-get");
    apt_options(&mut update);
    update.arg("update");
    run_step(update, "apt-get update (sid package lists)")?;

    let mut download = Command::new("apt-get");
    apt_options(&mut download);
    download
        .args([
            "install",
            "--download-only",
            "--no-install-recommends",
            "-y",
        ])
        .args(packages);
    run_step(
        download,
        &format!("apt-get install --download-only {}", packages.join(" ")),
    )?;

    let archives = apt.join("cache/archives");
    let mut debs: Vec<PathBuf> = fs::read_dir(&archives)
        .map_err(|e| format!("cannot list {}: {e}", archives.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "deb"))
        .collect();
    debs.sort();
    if debs.is_empty() {
        return Err(format!(
            "apt-get downloaded no .deb files into {}",
            archives.display()
        ));
    }
    for deb in &debs {
        let mut extract = Command::new("dpkg");
        extract.arg("-x").arg(deb).arg(&root);
        run_step(extract, &format!("dpkg -x {}", deb.display()))?;
    }
    let names: Vec<String> = debs
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    write_file(
        &root.join(".netkit-packages.txt"),
        &(names.join("\n") + "\n"),
    )?;
    write_file(
        &root.join(PROVISIONED_MARKER),
        &format!(
            "suite={DEBIAN_SUITE}\nmirror={mirror}\npackages={}\n",
            packages.join(" ")
        ),
    )?;
    Ok(root)
}

fn run_step(cmd: Command, what: &str) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let out =
        run_captured(cmd, APT_TIMEOUT, false).map_err(|e| format!("{what}: cannot start: {e}"))?;
    if out.exit_code == Some(0) {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}).\nCommand: {shown}\nOutput (last lines):\n{}",
        describe_exit(&out),
        tail(&format!("{}{}", out.stdout, out.stderr), 30)
    ))
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The Debian archive mirror this host's apt already uses (`$NETKIT_DEBIAN_MIRROR`
/// wins), read from /etc/apt/sources.list and /etc/apt/sources.list.d/ — never a
/// hard-coded host, so provisioning goes wherever the host's own apt traffic goes.
/// Only entries for the main Debian archive count: `deb` type, `main` component, a
/// Debian suite (codename or stable/testing/unstable/..., also with -updates or
/// -backports), no -security suite, and no third-party Signed-By keyring.
pub fn debian_mirror() -> Result<String, String> {
    if let Some(url) = std::env::var(MIRROR_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return Ok(url.trim().trim_end_matches('/').to_string());
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    let mut read = Vec::new();
    for file in &files {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        let entries = match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => parse_deb822_sources(&text),
            Some("list") => parse_one_line_sources(&text),
            _ => continue,
        };
        read.push(file.display().to_string());
        if let Some(uri) = entries
            .iter()
            .find(|e| e.is_main_debian_archive())
            .map(|e| e.uri.clone())
        {
            return Ok(uri.trim_end_matches('/').to_string());
        }
    }
    Err(format!(
        "found no main Debian archive mirror in the apt configuration (read: {}). Set \
         {MIRROR_ENV}=<URL of a Debian mirror> or {GODOT_BIN_ENV}=/path/to/godot",
        if read.is_empty() {
            "nothing".to_string()
        } else {
            read.join(", ")
        }
    ))
}

/// One `deb` source: URI, suites, components and keyring.
#[derive(Debug, Default, Clone)]
struct AptSource {
    uri: String,
    types: Vec<String>,
    suites: Vec<String>,
    components: Vec<String>,
    signed_by: Option<String>,
    enabled: bool,
}

impl AptSource {
    fn is_main_debian_archive(&self) -> bool {
        const SUITES: [&str; 17] = [
            "buster",
            "bullseye",
            "bookworm",
            "trixie",
            "forky",
            "duke",
            "sid",
            "stable",
            "testing",
            "unstable",
            "oldstable",
            "oldoldstable",
            "experimental",
            "stretch",
            "jessie",
            "rc-buggy",
            "stable-updates",
        ];
        let debian_suite = |suite: &str| {
            if suite.ends_with("-security") || suite.contains("/updates") {
                return false;
            }
            let base = suite
                .trim_end_matches("-updates")
                .trim_end_matches("-backports")
                .trim_end_matches("-proposed-updates");
            SUITES.contains(&base)
        };
        self.enabled
            && self.types.iter().any(|t| t == "deb")
            && (self.uri.starts_with("http://") || self.uri.starts_with("https://"))
            && self.components.iter().any(|c| c == "main")
            && self.suites.iter().any(|s| debian_suite(s))
            && self
                .signed_by
                .as_deref()
                .is_none_or(|k| k.contains("debian-archive"))
    }
}

fn parse_deb822_sources(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    let flush = |fields: &mut Vec<(String, String)>, out: &mut Vec<AptSource>| {
        if fields.is_empty() {
            return;
        }
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        let words = |key: &str| -> Vec<String> {
            get(key)
                .map(|v| v.split_whitespace().map(String::from).collect())
                .unwrap_or_default()
        };
        let base = AptSource {
            uri: String::new(),
            types: words("Types"),
            suites: words("Suites"),
            components: words("Components"),
            signed_by: get("Signed-By"),
            enabled: get("Enabled").is_none_or(|v| !v.trim().eq_ignore_ascii_case("no")),
        };
        for uri in words("URIs") {
            out.push(AptSource {
                uri,
                ..base.clone()
            });
        }
        fields.clear();
    };
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut fields, &mut out);
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    flush(&mut fields, &mut out);
    out
}

fn parse_one_line_sources(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut rest = line;
        let Some(kind) = rest.split_whitespace().next() else {
            continue;
        };
        rest = rest[kind.len()..].trim_start();
        let mut signed_by = None;
        if rest.starts_with('[') {
            let Some(end) = rest.find(']') else { continue };
            for option in rest[1..end].split_whitespace() {
                if let Some(value) = option.strip_prefix("signed-by=") {
                    signed_by = Some(value.to_string());
                }
            }
            rest = rest[end + 1..].trim_start();
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.len() < 2 {
            continue;
        }
        out.push(AptSource {
            uri: words[0].to_string(),
            types: vec![kind.to_string()],
            suites: vec![words[1].to_string()],
            components: words[2..].iter().map(|w| w.to_string()).collect(),
            signed_by,
            enabled: true,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------
// Running processes
// ---------------------------------------------------------------------------------------

/// What one Godot run produced. `combined` interleaves both streams in arrival order
/// (stderr lines prefixed with `[stderr] `), so an engine error can be placed next to
/// the test that was running.
#[derive(Clone, Debug, Default)]
pub struct RunOutput {
    /// Exit code; `None` when killed by a signal (crash or timeout) or never started.
    pub exit_code: Option<i32>,
    /// The signal that ended the process, if one did (e.g. 11 for a segfault).
    pub signal: Option<i32>,
    /// Everything Godot printed to stdout (the runner's result lines go here).
    pub stdout: String,
    /// Everything Godot printed to stderr (engine errors, SCRIPT ERROR, leak reports).
    pub stderr: String,
    /// Both streams, line by line in arrival order; stderr lines start with `[stderr] `.
    pub combined: String,
    /// True when the run was killed because it exceeded its timeout.
    pub timed_out: bool,
}

/// Runs the test project: `godot --headless --path <project> [engine args] -- [user args]`,
/// with extra environment variables, killing Godot after `timeout`. Output is captured
/// (and echoed to the test's output, prefixed `godot| `) without pipe deadlocks.
///
/// `args` are user arguments for the tests (`--filter=...`, `--http-url=...`), passed
/// after a `--` this function inserts. To pass engine options too, put them first and
/// separate them with an explicit `"--"`: `&["--verbose", "--", "--filter=x"]`.
///
/// Before the first run the project is imported when needed (see [`ensure_imported`]);
/// if that fails, the returned output describes the failure and [`check_suite`] reports it.
pub fn run_project(
    godot: &GodotCmd,
    project: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> RunOutput {
    run_project_echo(godot, project, args, env, timeout, true)
}

/// [`run_project`] with the live echo of Godot's output switched on or off (the demo
/// prints its own, cleaner log instead).
pub fn run_project_echo(
    godot: &GodotCmd,
    project: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
    echo: bool,
) -> RunOutput {
    if let Err(e) = ensure_imported(godot, project) {
        return RunOutput {
            stderr: e.clone(),
            combined: format!("[stderr] {e}\n"),
            ..RunOutput::default()
        };
    }
    let (engine_args, user_args) = match args.iter().position(|a| *a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (&[][..], args),
    };
    let mut cmd = godot.command();
    cmd.arg("--headless")
        .arg("--path")
        .arg(project)
        .args(engine_args)
        .arg("--")
        .args(user_args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let shown = format!("{cmd:?}");
    match run_captured(cmd, timeout, echo) {
        Ok(out) => out,
        Err(e) => {
            let msg = format!("could not start Godot ({}): {shown}: {e}", godot.origin());
            RunOutput {
                stderr: msg.clone(),
                combined: format!("[stderr] {msg}\n"),
                ..RunOutput::default()
            }
        }
    }
}

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

/// Runs any command (a Godot, an exported game, a packaging tool) with both streams
/// captured without pipe deadlocks and a kill after `timeout`; `echo` mirrors the output
/// live into the test's output. Public so tests that run exported binaries get the same
/// crash and hang handling as Godot runs.
pub fn run_captured(mut cmd: Command, timeout: Duration, echo: bool) -> std::io::Result<RunOutput> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let combined = Arc::new(Mutex::new(String::new()));
    // Each reader sends its stream's text when it reaches EOF. Sent, not returned from
    // the thread: a thread that has sent is not yet `is_finished()`, so joining only
    // finished threads lost a stream's text now and then.
    let (done_tx, done_rx) = mpsc::channel::<(usize, String)>();
    let readers = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .zip([false, true])
    .enumerate()
    .map(|(index, (stream, is_err))| {
        let combined = Arc::clone(&combined);
        let done_tx = done_tx.clone();
        thread::spawn(move || {
            let mut own = String::new();
            if let Some(stream) = stream {
                let mut reader = BufReader::new(stream);
                let mut buf = Vec::new();
                while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']);
                    if echo {
                        // The runner's per-test lines read like libtest's, as they are;
                        // its `--- run` lines only repeat them (check_suite still reads
                        // them); everything else Godot prints is marked as Godot's.
                        if !is_err && is_test_line(line) {
                            println!("{line}");
                        } else if is_err || !line.starts_with("--- run ") {
                            println!("godot{} {line}", if is_err { "!" } else { "|" });
                        }
                    }
                    own.push_str(line);
                    own.push('\n');
                    if let Ok(mut all) = combined.lock() {
                        all.push_str(if is_err { "[stderr] " } else { "" });
                        all.push_str(line);
                        all.push('\n');
                    }
                    buf.clear();
                }
            }
            let _ = done_tx.send((index, own));
        })
    })
    .collect::<Vec<_>>();
    drop(done_tx);

    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status: Option<ExitStatus> = loop {
        match child.try_wait()? {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    // Readers end at EOF. Should a grandchild keep a pipe open, give up after a grace
    // period instead of hanging the test; that reader's text is still in `combined`.
    let grace = Instant::now() + Duration::from_secs(5);
    let mut texts = vec![String::new(); readers.len()];
    for _ in 0..readers.len() {
        let left = grace.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok((index, text)) => texts[index] = text,
            Err(_) => break,
        }
    }
    drop(readers); // detached: a reader still blocked on an open pipe ends with it
    let combined = combined.lock().map(|s| s.clone()).unwrap_or_default();
    let (exit_code, signal) = match status {
        Some(status) => (status.code(), exit_signal(&status)),
        None => (None, None),
    };
    Ok(RunOutput {
        exit_code,
        signal,
        stderr: texts.pop().unwrap_or_default(),
        stdout: texts.pop().unwrap_or_default(),
        combined,
        timed_out,
    })
}

#[cfg(unix)]
fn exit_signal(status: &ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn exit_signal(_status: &ExitStatus) -> Option<i32> {
    None
}

fn describe_exit(out: &RunOutput) -> String {
    if out.timed_out {
        "timed out and was killed".to_string()
    } else if let Some(code) = out.exit_code {
        format!("exit code {code}")
    } else if let Some(signal) = out.signal {
        format!(
            "killed by signal {signal}{}",
            if signal == 11 { " (segfault)" } else { "" }
        )
    } else {
        "did not run".to_string()
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------
// Judging a run
// ---------------------------------------------------------------------------------------

/// Judges a run of the GDScript suite (res://tests/runner.gd) and returns
/// `(passed, failed)` only when everything is clean; otherwise an error quoting the
/// offending lines (with the test that was running when they appeared).
///
/// It is an error when:
/// - Godot timed out, crashed (signal), did not start, or exited non-zero;
/// - the final `N passed, M failed` line is missing, or disagrees with the per-test lines;
/// - zero tests ran, or any test FAILED;
/// - any line contains `SCRIPT ERROR` (GDScript runtime or parse error);
/// - any line reports a leak: `leaked at exit` (ObjectDB instances, RIDs), `Leaked instance`,
///   `resources still in use at exit`;
/// - any line reports a crash: `Program crashed`, `FATAL:`, `handle_crash`;
/// - any `ERROR:` / `USER ERROR:` line: engine errors, `push_error`, gdext's
///   `godot_error!`, and a GDExtension that fails to load (`Error loading extension`,
///   `GDExtension dynamic library not found`, `Can't open dynamic library`). Godot
///   cannot tell which are harmless, so none is presumed harmless; a test that provokes
///   one on purpose declares it with `expect_error("text")`, which tolerates ERROR lines
///   containing that text for the whole run.
///
/// Not errors: `WARNING:` / `USER WARNING:` lines (other than the leak reports above),
/// plain `printerr` output, and the `at:` / backtrace lines following an error (they are
/// quoted as context).
pub fn check_suite(out: &RunOutput) -> Result<(usize, usize), String> {
    check_suite_allowing(out, &[])
}

/// [`check_suite`] that also tolerates `ERROR:` lines containing any of `allowed_errors`,
/// for runs known to print a specific engine error, e.g. the harness self-test run before
/// the extension library is built (`"Error loading extension"`). Never tolerates
/// SCRIPT ERROR, leaks, crashes or failed tests.
pub fn check_suite_allowing(
    out: &RunOutput,
    allowed_errors: &[&str],
) -> Result<(usize, usize), String> {
    let mut problems: Vec<String> = Vec::new();
    if out.timed_out {
        problems.push(
            "Godot did not finish in time and was killed (a test or the runner hung; \
                       the last `--- run` line below names the test that was running)"
                .to_string(),
        );
    } else if out.exit_code != Some(0) {
        problems.push(format!("Godot {}", describe_exit(out)));
    }

    let combined = if out.combined.is_empty() {
        format!("{}{}", out.stdout, out.stderr)
    } else {
        out.combined.clone()
    };
    let lines: Vec<String> = combined.lines().map(strip_ansi).collect();
    let expected: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            l.find(EXPECT_ERROR_MARKER)
                .map(|i| l[i + EXPECT_ERROR_MARKER.len()..].trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .collect();

    // Per-test results and the summary.
    let (ok, failed_lines) = test_results(&lines);
    let summary = lines
        .iter()
        .filter_map(|l| parse_summary(l.trim_end()))
        .next_back();
    let mut counts = None;
    match summary {
        None => problems.push(
            "the runner's final `N passed, M failed` line is missing (Godot stopped early, or the \
             runner could not start: see SCRIPT ERROR / ERROR lines)"
                .to_string(),
        ),
        Some((passed, failed)) => {
            counts = Some((passed, failed));
            if passed + failed == 0 {
                problems.push(
                    "no tests ran (wrong --filter, or no res://tests/**/test_*.gd files)"
                        .to_string(),
                );
            }
            if passed != ok || failed != failed_lines.len() {
                problems.push(format!(
                    "summary says {passed} passed, {failed} failed but the output has {ok} `... ok` and {} \
                     `... FAILED` lines",
                    failed_lines.len()
                ));
            }
        }
    }
    if !failed_lines.is_empty() {
        problems.push(format!(
            "{} test(s) failed:\n    {}",
            failed_lines.len(),
            failed_lines.join("\n    ")
        ));
    }

    // Engine output that fails the run, placed relative to the runner's lines. The two
    // pipes are read separately, so "during" vs "after" is approximate.
    let mut place = String::new();
    let mut offending = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let text = line.strip_prefix("[stderr] ").unwrap_or(line);
        if let Some(test) = text.strip_prefix("--- run ") {
            place = format!(" (during {})", test.trim());
            continue;
        }
        if let Some(test) = text
            .strip_prefix("test ")
            .and_then(|t| t.split(" ... ").next())
        {
            place = format!(" (after {test})");
            continue;
        }
        if parse_summary(text.trim_end()).is_some() {
            place = " (at exit)".to_string();
            continue;
        }
        let Some(mut kind) = fatal_kind(text, &expected, allowed_errors) else {
            continue;
        };
        if kind == "leak" && failed_lines.iter().any(|l| l.contains("timed out after")) {
            // The runner abandons a timed-out test's coroutine; its objects stay alive.
            kind = "leak (expected after a timed-out test)";
        }
        let mut quote = text.trim().to_string();
        for next in lines.iter().skip(i + 1).take(3) {
            let next = next.strip_prefix("[stderr] ").unwrap_or(next);
            if next.starts_with([' ', '\t']) && !next.trim().is_empty() {
                quote.push_str("\n        ");
                quote.push_str(next.trim());
            } else {
                break;
            }
        }
        offending.push(format!("{kind}{place}: {quote}"));
    }
    if !offending.is_empty() {
        problems.push(format!(
            "Godot reported problems:\n    {}",
            offending.join("\n    ")
        ));
    }

    match (problems.is_empty(), counts) {
        (true, Some(counts)) => Ok(counts),
        _ => Err(format!(
            "in-engine test suite failed:\n- {}\n--- last output lines ---\n{}",
            problems.join("\n- "),
            tail(&lines.join("\n"), 25)
        )),
    }
}

/// The runner's per-test lines in a run's output: how many passed, and each `... FAILED`
/// line. Counted from the lines themselves, so a run that died before the runner's
/// summary still reports what it got through.
pub fn test_results<S: AsRef<str>>(lines: &[S]) -> (usize, Vec<String>) {
    let mut ok = 0usize;
    let mut failed = Vec::new();
    for line in lines {
        let l = line.as_ref().trim_end();
        if l.starts_with("test ") && l.ends_with(" ... ok") {
            ok += 1;
        } else if l.starts_with("test ") && l.contains(" ... FAILED") {
            failed.push(l.to_string());
        }
    }
    (ok, failed)
}

/// A runner result line: `test NAME ... ok` or `test NAME ... FAILED: why`.
fn is_test_line(line: &str) -> bool {
    line.starts_with("test ") && (line.ends_with(" ... ok") || line.contains(" ... FAILED"))
}

fn parse_summary(line: &str) -> Option<(usize, usize)> {
    let (passed, rest) = line.split_once(" passed, ")?;
    let failed = rest.strip_suffix(" failed")?;
    Some((passed.parse().ok()?, failed.parse().ok()?))
}

fn fatal_kind(text: &str, expected: &[String], allowed: &[&str]) -> Option<&'static str> {
    // A test may declare an error it provokes on purpose (NetkitTest.expect_error), such
    // as Godot refusing to free an object inside its own signal's emission.
    let declared = |text: &str| expected.iter().any(|e| text.contains(e.as_str()));
    if text.contains("SCRIPT ERROR") && !declared(text) {
        return Some("script error");
    }
    if [
        "leaked at exit",
        "Leaked instance",
        "resources still in use at exit",
    ]
    .iter()
    .any(|p| text.contains(p))
    {
        return Some("leak");
    }
    if ["Program crashed", "FATAL:", "handle_crash"]
        .iter()
        .any(|p| text.contains(p))
    {
        return Some("crash");
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with("ERROR:") || trimmed.starts_with("USER ERROR:") {
        let tolerated = declared(text) || allowed.iter().any(|a| !a.is_empty() && text.contains(a));
        if !tolerated {
            return Some("engine error");
        }
    }
    None
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Skip parameters up to the final byte of the escape sequence.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
