//! A Linux release export really works: the project is exported with the
//! `dedicated_server` preset and Debian's `godot-template-release`, and the exported
//! binary, with the release extension library beside it, serves a real client.
//!
//! Steps (each one is what a user does by hand, see docs/EXPORT.md):
//! 1. build the release library (`cargo build --release --lib`; minutes the first time,
//!    then cached by Cargo), because a release export loads `linux.release.x86_64`;
//! 2. provision `godot-template-release` and `patchelf` from Debian sid into `.cache/`
//!    (as the editor is provisioned: nothing installed on the host);
//! 3. copy godot_project (with its `.godot/` cache) into scratch space, set the preset's
//!    `custom_template/release` to the provisioned template there (the committed preset
//!    keeps no machine path), bring the import up to date, and
//!    `godot --headless --export-release <preset> <out>`;
//! 4. check what the export produced: the binary with the pck embedded, the extension
//!    library beside it, the tests and benchmarks left out;
//! 5. point the binary's ELF interpreter at the provisioned loader (a sid build does
//!    not run on an older host's libc) and run it with `LD_LIBRARY_PATH`. Running it
//!    *through* the loader instead would make the executable path the loader's, and the
//!    engine would not find the pck embedded in the binary.
//!
//! The scene, preset and arguments are parameters ([`ExportCase`]): one case exports a
//! small HTTP check scene, the other the demo's dedicated server, which then admits a
//! real client over DTLS and stops cleanly on SIGTERM.

mod support;

// The demo's backend, to serve the exported demo server as `cargo run --bin demo` does.
#[allow(dead_code)]
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use godot_runner::{
    GodotCmd, RunOutput, command_in_root, ensure_imported, godot_command,
    provision_debian_packages, repo_dir, run_captured,
};
use netkit_tools::demo::backend;

/// Debian packages the export needs besides the editor: the template every export
/// starts from, and patchelf to give the exported binary the provisioned loader.
const EXPORT_PACKAGES: [&str; 2] = ["godot-template-release", "patchelf"];

/// Where `godot-template-release` puts the template inside its package.
const TEMPLATE_IN_ROOT: &str = "usr/bin/godot-template-release";

/// The release library's name in the addon, as `netkit.gdextension` lists it.
const RELEASE_LIBRARY: &str = "libnetkit.linux.x86_64.release.so";

/// The debug library's name: the headless *editor* that exports loads this one.
const DEBUG_LIBRARY: &str = "libnetkit.linux.x86_64.debug.so";

/// One export to check: which preset, which scene to run, with which user arguments,
/// and the line that proves it worked.
struct ExportCase {
    /// Names the scratch folder, so cases can run in parallel.
    name: &'static str,
    /// Preset name in godot_project/export_presets.cfg.
    preset: &'static str,
    /// Scene the exported binary runs: written as `run/main_scene` into the scratch
    /// copy's project.godot, because release templates are built without path overrides
    /// (a scene on the command line aborts) and the project's own main scene is the test
    /// runner, which the preset leaves out.
    main_scene: &'static str,
    /// User arguments after `--`.
    args: Vec<String>,
    /// The exported run must print a line starting with this.
    expect_line: String,
    /// A file that must be packed (as the pck's directory names it, without `res://`).
    must_pack: &'static str,
    /// Folders (e.g. `tests/`) of which no file may be packed.
    must_not_pack: &'static [&'static str],
}

#[test]
fn dedicated_server_export_runs_and_serves_a_client() {
    let server = support::http_server::start_blocking();
    let case = ExportCase {
        name: "http_check",
        preset: "dedicated_server",
        main_scene: "res://export_check/http_check.tscn",
        args: vec![format!("--url={}/json", server.http_url)],
        expect_line: "EXPORT_CHECK ok 200 int=42".to_string(),
        must_pack: "export_check/http_check.gdc",
        must_not_pack: &["tests/", "bench/"],
    };
    if let Err(why) = export_and_run(&case) {
        panic!("Linux export check failed:\n{why}");
    }
}

/// An exported binary, ready to run.
struct Exported {
    binary: PathBuf,
    library_path: OsString,
    out_dir: PathBuf,
}

#[test]
fn exported_demo_server_admits_a_real_client_and_stops_on_sigterm() {
    if let Err(why) = exported_demo_server() {
        panic!("exported demo server check failed:\n{why}");
    }
}

/// The demo's dedicated server, exported for Linux and run as an operator would: it
/// registers with the backend, a real client (a headless Godot on the demo's client
/// scene) logs in, joins it over DTLS and plays, then SIGTERM makes it deregister and
/// exit 0.
fn exported_demo_server() -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let backend = runtime
        .block_on(backend::start())
        .map_err(|e| format!("cannot start the demo backend: {e}"))?;
    let case = ExportCase {
        name: "demo_server",
        preset: "dedicated_server",
        main_scene: "res://demo/server.tscn",
        args: vec![
            format!("--backend-url={}", backend.url),
            format!("--server-key={}", backend.server_key),
        ],
        expect_line: "[server] bye".to_string(),
        must_pack: "demo/server.gdc",
        must_not_pack: &["tests/", "bench/"],
    };
    let exported = export_case(&case)?;
    // The exported server runs as in an Agones fleet: the SDK sidecar's port in the
    // environment, so the demo uses AgonesSDK (rust/test_support/src/agones_sdk.rs stands in).
    let sidecar = support::agones_sdk::AgonesSdkServer::start_blocking();
    let mut server = Command::new(&exported.binary)
        .env("LD_LIBRARY_PATH", &exported.library_path)
        .env("AGONES_SDK_HTTP_PORT", sidecar.port.to_string())
        .arg("--headless")
        .arg("--")
        .args(&case.args)
        .current_dir(&exported.out_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the exported server: {e}"))?;
    let stdout = collect(server.stdout.take());
    let stderr = collect(server.stderr.take());
    let outcome = drive_demo_server(&backend, &mut server);
    let _ = server.kill();
    let _ = server.wait();
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    println!("exported server stdout:\n{out}\nstderr:\n{err}");
    outcome?;
    for expected in [
        "[server] registered as server",
        "is alice: token valid, authentication complete",
        "(alice) joined: spawned player",
        "[server] deregistered from the backend: yes",
        "[server] agones: set_label(arena, demo-arena) -> ok",
        "[server] agones: ready() -> ok",
        "is Ready",
        "[server] agones: shutdown() -> ok",
        "[server] bye",
    ] {
        if !out.contains(expected) {
            return Err(format!("the exported server never printed {expected:?}"));
        }
    }
    if sidecar.state() != "Shutdown" || sidecar.health_pings().is_empty() {
        return Err(format!(
            "the sidecar saw state {} and {} health pings; expected Shutdown and some",
            sidecar.state(),
            sidecar.health_pings().len()
        ));
    }
    let labels = sidecar.game_server()["object_meta"]["labels"].clone();
    if labels["agones.dev/sdk-arena"] != "demo-arena" {
        return Err(format!("the label did not reach the sidecar: {labels}"));
    }
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| {
            l.contains("SCRIPT ERROR") || l.starts_with("ERROR:") || l.contains("leaked at exit")
        })
        .collect();
    if !problems.is_empty() {
        return Err(format!(
            "the exported server reported:\n{}",
            problems.join("\n")
        ));
    }
    Ok(())
}

fn drive_demo_server(
    backend: &backend::Backend,
    server: &mut std::process::Child,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while backend.servers().is_empty() {
        if Instant::now() > deadline {
            return Err("the exported server never registered with the backend".into());
        }
        if let Ok(Some(status)) = server.try_wait() {
            return Err(format!("the exported server exited early: {status}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let godot = godot_command()?;
    godot_runner::extension::stage_extension(&repo_dir())?;
    let client = godot_runner::run_project(
        &godot,
        &godot_runner::project_dir(),
        &[
            "res://demo/client.tscn",
            "--",
            &format!("--backend-url={}", backend.url),
            "--player=alice",
            "--password=wonderland",
        ],
        &[],
        Duration::from_secs(60),
    );
    if client.exit_code != Some(0) || !client.stdout.contains("[client alice] move 3 acknowledged")
    {
        return Err(format!(
            "the client did not play on the exported server (exit {:?}):\n{}",
            client.exit_code,
            last_lines(&client.combined, 30)
        ));
    }
    let sent = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if !sent.success() {
        return Err("kill -TERM failed".into());
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.try_wait().map_err(|e| e.to_string())? {
            if status.code() != Some(0) {
                return Err(format!(
                    "after SIGTERM the exported server exited with {status}"
                ));
            }
            break;
        }
        if Instant::now() > deadline {
            return Err("the exported server did not quit within 15 s of SIGTERM".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !backend.servers().is_empty() {
        return Err("the exported server is still registered after SIGTERM".into());
    }
    Ok(())
}

/// Reads a child's pipe to the end on a thread.
fn collect(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

fn export_and_run(case: &ExportCase) -> Result<(), String> {
    let started = Instant::now();
    let exported = export_case(case)?;
    let mut run = Command::new(&exported.binary);
    run.env("LD_LIBRARY_PATH", &exported.library_path)
        .arg("--headless")
        .arg("--")
        .args(&case.args)
        .current_dir(&exported.out_dir);
    let shown = format!("{run:?}");
    let out = run_captured(run, Duration::from_secs(60), true)
        .map_err(|e| format!("cannot start the exported binary: {shown}: {e}"))?;
    judge_run(case, &out).map_err(|e| format!("{e}\nCommand: {shown}"))?;
    println!(
        "[{:>5.1?}] the exported {} answered: {}",
        started.elapsed(),
        case.preset,
        case.expect_line
    );
    Ok(())
}

/// Steps 1 to 5: build, provision, copy, export, check, patch.
fn export_case(case: &ExportCase) -> Result<Exported, String> {
    let started = Instant::now();
    let godot = godot_command()?;
    let release_library = build_release_library()?;
    let debug_library = godot_runner::extension::built_library()?;
    let root = provision_debian_packages(&EXPORT_PACKAGES)?;
    let template = root.join(TEMPLATE_IN_ROOT);
    if !template.is_file() {
        return Err(format!(
            "{} is missing from the provisioned godot-template-release",
            template.display()
        ));
    }
    println!(
        "[{:>5.1?}] Godot {}; template {}",
        started.elapsed(),
        godot.version(),
        template.display()
    );

    let work = scratch_dir(&format!("export_linux_{}", case.name))?;
    let project = work.join("project");
    copy_project(&godot_runner::project_dir(), &project)?;
    let bin = project.join("addons/netkit/bin");
    fs::create_dir_all(&bin).map_err(|e| format!("cannot create {}: {e}", bin.display()))?;
    copy(&release_library, &bin.join(RELEASE_LIBRARY))?;
    copy(&debug_library, &bin.join(DEBUG_LIBRARY))?;
    set_custom_template(&project.join("export_presets.cfg"), case.preset, &template)?;
    set_main_scene(&project.join("project.godot"), case.main_scene)?;
    ensure_imported(&godot, &project)?;
    println!("[{:>5.1?}] project copied and imported", started.elapsed());

    let out_dir = work.join("out");
    fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let exported = out_dir.join(format!("{}.x86_64", case.preset));
    export(&godot, &project, case.preset, &exported)?;
    println!(
        "[{:>5.1?}] exported {} ({} MiB)",
        started.elapsed(),
        exported.display(),
        fs::metadata(&exported).map(|m| m.len() >> 20).unwrap_or(0)
    );
    check_export_contents(case, &exported, &out_dir)?;

    let library_path = patch_interpreter(&root, &exported)?;
    Ok(Exported {
        binary: exported,
        library_path,
        out_dir,
    })
}

/// Builds the release cdylib with Cargo (the same command a user runs) and returns its
/// path as Cargo reports it, so a custom target dir works too. The output of Cargo goes
/// straight to the terminal: the first build takes minutes on a small machine.
fn build_release_library() -> Result<PathBuf, String> {
    println!(
        "building the release library for the export (`cargo build --release --lib`; \
         minutes the first time, cached afterwards)"
    );
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .ok_or("CARGO_TARGET_TMPDIR has no parent")?
        .to_path_buf();
    godot_runner::extension::build_library(true, &target)
}

/// Copies the Godot project, following the `addons/netkit` symlink and leaving out built
/// libraries (the caller places exactly the ones this export must use). The `.godot/`
/// cache comes along, minus lock files, so the copy starts as imported as the original
/// and `ensure_imported` only refreshes what changed.
fn copy_project(from: &Path, to: &Path) -> Result<(), String> {
    fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let entries = fs::read_dir(from).map_err(|e| format!("cannot list {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", from.display()))?;
        let name = entry.file_name();
        let source = entry.path();
        let target = to.join(&name);
        // fs::metadata follows symlinks, so the linked addon is copied as a folder.
        let meta =
            fs::metadata(&source).map_err(|e| format!("cannot stat {}: {e}", source.display()))?;
        if meta.is_dir() {
            if name == "bin" && from.ends_with("addons/netkit") {
                continue;
            }
            copy_project(&source, &target)?;
        } else if !name.to_string_lossy().ends_with(".lock") {
            copy(&source, &target)?;
        }
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

/// Points `custom_template/release` of the preset named `preset` at `template`, in the
/// scratch copy only.
fn set_custom_template(presets: &Path, preset: &str, template: &Path) -> Result<(), String> {
    let text = fs::read_to_string(presets)
        .map_err(|e| format!("cannot read {}: {e}", presets.display()))?;
    let name_line = format!("name=\"{preset}\"");
    let mut section = None;
    let mut options_of = None;
    let mut replaced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(header) = trimmed.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            section = Some(header.to_string());
        } else if trimmed == name_line {
            options_of = section.as_ref().map(|s| format!("{s}.options"));
        }
        if trimmed.starts_with("custom_template/release=") && section == options_of {
            out.push(format!(
                "custom_template/release=\"{}\"",
                template
                    .display()
                    .to_string()
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
            ));
            replaced = true;
            continue;
        }
        out.push(line.to_string());
    }
    if !replaced {
        return Err(format!(
            "{} has no preset {preset:?} with a custom_template/release option",
            presets.display()
        ));
    }
    fs::write(presets, out.join("\n") + "\n")
        .map_err(|e| format!("cannot write {}: {e}", presets.display()))
}

/// Replaces `run/main_scene` in the scratch copy's project.godot.
fn set_main_scene(project_godot: &Path, scene: &str) -> Result<(), String> {
    let text = fs::read_to_string(project_godot)
        .map_err(|e| format!("cannot read {}: {e}", project_godot.display()))?;
    let mut replaced = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("run/main_scene=") {
                replaced = true;
                format!("run/main_scene=\"{scene}\"")
            } else {
                line.to_string()
            }
        })
        .collect();
    if !replaced {
        return Err(format!(
            "{} has no run/main_scene line to replace",
            project_godot.display()
        ));
    }
    fs::write(project_godot, lines.join("\n") + "\n")
        .map_err(|e| format!("cannot write {}: {e}", project_godot.display()))
}

/// `godot --headless --path <project> --export-release <preset> <out>`.
fn export(godot: &GodotCmd, project: &Path, preset: &str, out: &Path) -> Result<(), String> {
    let mut cmd = godot.command();
    cmd.arg("--headless")
        .arg("--path")
        .arg(project)
        .arg("--export-release")
        .arg(preset)
        .arg(out);
    let shown = format!("{cmd:?}");
    let result = run_captured(cmd, Duration::from_secs(600), false)
        .map_err(|e| format!("cannot start the export: {shown}: {e}"))?;
    if result.exit_code != Some(0) || result.timed_out || !out.is_file() {
        return Err(format!(
            "the export failed (exit {:?}, signal {:?}, timed out: {}, output exists: {}).\n\
             Command: {shown}\nOutput:\n{}",
            result.exit_code,
            result.signal,
            result.timed_out,
            out.is_file(),
            last_lines(&result.combined, 40)
        ));
    }
    Ok(())
}

/// The export must embed the scene, leave out the excluded folders, and put the release
/// library next to the binary (where an exported game looks for GDExtension libraries).
fn check_export_contents(case: &ExportCase, exported: &Path, out_dir: &Path) -> Result<(), String> {
    let beside = out_dir.join(RELEASE_LIBRARY);
    if !beside.is_file() {
        let listing: Vec<String> = fs::read_dir(out_dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        return Err(format!(
            "the export did not put {RELEASE_LIBRARY} next to the binary; {} holds {listing:?}",
            out_dir.display()
        ));
    }
    let bytes =
        fs::read(exported).map_err(|e| format!("cannot read {}: {e}", exported.display()))?;
    if packed_files(&bytes, case.must_pack).is_empty() {
        return Err(format!(
            "the exported binary has no packed {:?}: the pck is not embedded or lacks the scene",
            case.must_pack
        ));
    }
    for excluded in case.must_not_pack {
        let found = packed_files(&bytes, excluded);
        if !found.is_empty() {
            return Err(format!(
                "the exported pck holds {found:?}, but the preset must exclude {excluded}"
            ));
        }
    }
    Ok(())
}

/// Names of packed files starting with `prefix` found in the exported binary. A packed
/// file shows up as a bare path ending in `.gdc` (exported script), `.remap` or
/// `.tscn`/`.scn`; the same folder names also occur where they prove nothing (the
/// template's own `./tests/...` strings, `res://` paths in the uid cache and in
/// project settings), so only bare names with a packed file's ending count.
fn packed_files(bytes: &[u8], prefix: &str) -> Vec<String> {
    let is_path_byte = |b: u8| b.is_ascii_alphanumeric() || b"_./-".contains(&b);
    let mut found = Vec::new();
    let needle = prefix.as_bytes();
    for start in 0..bytes.len().saturating_sub(needle.len()) {
        // First byte alone first: this scans an 80 MB binary in a debug build.
        if bytes[start] != needle[0] || &bytes[start..start + needle.len()] != needle {
            continue;
        }
        // A longer path or a `res://` / `./` prefix in front means this is not a pck entry.
        if start > 0 && (is_path_byte(bytes[start - 1]) || bytes[start - 1] == b':') {
            continue;
        }
        let end = (start..bytes.len().min(start + 256))
            .find(|&i| !is_path_byte(bytes[i]))
            .unwrap_or(start);
        let name = String::from_utf8_lossy(&bytes[start..end]).into_owned();
        if [".gdc", ".remap", ".tscn", ".scn"]
            .iter()
            .any(|ext| name.ends_with(ext))
            && !found.contains(&name)
        {
            found.push(name);
        }
    }
    found
}

/// Sets the exported binary's ELF interpreter to the provisioned loader and returns the
/// provisioned library directories for `LD_LIBRARY_PATH`. Both come from the same
/// `command_in_root` that runs the provisioned editor, so they cannot drift apart.
fn patch_interpreter(root: &Path, exported: &Path) -> Result<OsString, String> {
    let mut patchelf = command_in_root(root, &root.join("usr/bin/patchelf"))?;
    let loader = PathBuf::from(patchelf.get_program());
    let args: Vec<OsString> = patchelf.get_args().map(OsString::from).collect();
    let library_path = match args.as_slice() {
        [flag, path, ..] if flag == "--library-path" => path.clone(),
        _ => return Err(format!("unexpected loader command {patchelf:?}")),
    };
    patchelf.arg("--set-interpreter").arg(&loader).arg(exported);
    let shown = format!("{patchelf:?}");
    let out = run_captured(patchelf, Duration::from_secs(120), false)
        .map_err(|e| format!("cannot run patchelf: {shown}: {e}"))?;
    if out.exit_code != Some(0) {
        return Err(format!(
            "patchelf failed ({:?}): {shown}\n{}",
            out.exit_code,
            last_lines(&out.combined, 20)
        ));
    }
    Ok(library_path)
}

/// The exported run passes when it exits 0, prints the expected line, and shows no
/// script error, engine error, leak or crash.
fn judge_run(case: &ExportCase, out: &RunOutput) -> Result<(), String> {
    let mut problems = Vec::new();
    if out.timed_out {
        problems.push("it did not finish in time".to_string());
    } else if out.exit_code != Some(0) {
        problems.push(format!(
            "it exited with {:?} (signal {:?})",
            out.exit_code, out.signal
        ));
    }
    if !out
        .stdout
        .lines()
        .any(|l| l.trim_end().starts_with(&case.expect_line))
    {
        problems.push(format!("it never printed {:?}", case.expect_line));
    }
    for line in out.combined.lines() {
        let text = line.strip_prefix("[stderr] ").unwrap_or(line).trim_start();
        if text.contains("SCRIPT ERROR")
            || text.starts_with("ERROR:")
            || text.starts_with("USER ERROR:")
            || text.contains("leaked at exit")
            || text.contains("Program crashed")
        {
            problems.push(format!("it reported: {text}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the exported {} failed:\n- {}\nOutput:\n{}",
            case.preset,
            problems.join("\n- "),
            last_lines(&out.combined, 40)
        ))
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A fresh folder under Cargo's per-target scratch space, emptied first so an earlier
/// run cannot make this one pass.
fn scratch_dir(name: &str) -> Result<PathBuf, String> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}
