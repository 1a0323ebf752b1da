//! Provisioning Debian packages (Godot, export templates, nginx) from sid through the
//! host's own apt configuration, unpacked into the cache without installing anything.

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::apt_sources::debian_mirror;
use crate::locate::cache_dir;
use crate::process::{describe_exit, run_captured, tail};

/// Debian suite the packages come from: the only one that carries Godot 4.3+ today.
pub(crate) const DEBIAN_SUITE: &str = "sid";

/// Keyring that signs every Debian suite, sid included (verified with gpgv).
pub(crate) const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Name of the file written into a provisioned root once it is complete.
const PROVISIONED_MARKER: &str = ".netkit-provisioned";

/// Upper bound for each apt-get step; a stuck mirror must fail the test, not hang it.
const APT_TIMEOUT: Duration = Duration::from_secs(900);

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
