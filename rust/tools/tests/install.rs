//! `cargo run --release --bin package -- --install <project>` works as a user needs it:
//! installed with the same code (rust/tools/package/install.rs), a project's very first
//! headless import exits 0 (without the registration it aborts with exit code 134, Godot
//! bug godotengine/godot#123511), extensions the project already had stay listed and
//! loaded, and the installed addon answers a real request.
//!
//! The library installed here is the debug build this `cargo test` made, under the debug
//! name, because the headless editor binary loads debug libraries; the command installs
//! the release builds under both names.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use extension_list::Registered;
use godot_runner::{godot_command, repo_dir};
use netkit_tools::package::{addon, extension_list, install};
use support::scratch_project::{
    OTHER_ENTRY, OTHER_LOADED, add_other_extension, assert_exit_0, assert_request_works,
    run_headless, scratch_dir, write_request_project,
};

#[test]
fn install_into_an_empty_project_then_first_import_exits_0() {
    let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
    let project = scratch_dir("install_empty").join("project");
    write_request_project(&project);

    let installed = install(&project);
    assert_eq!(installed.registered, Registered::Added);
    assert_eq!(listed(&project), [install::gdextension_entry()]);
    for file in ["netkit.gdextension", "install.gd", "LICENSE", "README.md"] {
        assert!(
            installed.addon_dir.join(file).is_file(),
            "{file} not installed"
        );
    }
    // A second install refreshes the files and leaves the list alone.
    let list_before = fs::read(extension_list::path(&project)).unwrap();
    assert_eq!(install(&project).registered, Registered::AlreadyListed);
    assert_eq!(
        fs::read(extension_list::path(&project)).unwrap(),
        list_before
    );

    let import = run_headless(&godot, &project, &["--import"]);
    assert_exit_0(&import, "the first headless import after the install");
    assert_eq!(listed(&project), [install::gdextension_entry()]);

    let server = support::http_server::start_blocking();
    assert_request_works(&godot, &project, &format!("{}/json", server.http_url));
}

#[test]
fn install_keeps_the_extensions_a_project_already_lists() {
    let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
    let work = scratch_dir("install_beside_other");
    let project = work.join("project");
    write_request_project(&project);
    // A project that already uses another GDExtension and has been imported with it.
    add_other_extension(&work, &project);
    let list_file = extension_list::path(&project);
    fs::create_dir_all(list_file.parent().unwrap()).unwrap();
    fs::write(&list_file, OTHER_ENTRY).unwrap(); // as hand-written: no final newline
    let import = run_headless(&godot, &project, &["--import"]);
    assert_exit_0(
        &import,
        "importing the project with only the other extension",
    );
    assert!(
        import.stdout.contains(OTHER_LOADED),
        "Godot did not load the other extension, so it proves nothing:\n{}",
        import.combined
    );

    let before = fs::read_to_string(&list_file).unwrap();
    assert_eq!(install(&project).registered, Registered::Added);
    let after = fs::read_to_string(&list_file).unwrap();
    assert!(
        after.starts_with(before.as_str()),
        "the install changed the lines already listed:\nbefore: {before:?}\nafter: {after:?}"
    );
    assert_eq!(
        listed(&project),
        [OTHER_ENTRY.to_string(), install::gdextension_entry()]
    );

    let import = run_headless(&godot, &project, &["--import"]);
    assert_exit_0(&import, "the first headless import after the install");
    assert!(
        import.stdout.contains(OTHER_LOADED),
        "the other extension was not loaded by the import:\n{}",
        import.combined
    );
    let mut now = listed(&project);
    now.sort();
    assert_eq!(now, [install::gdextension_entry(), OTHER_ENTRY.to_string()]);

    let server = support::http_server::start_blocking();
    let run = assert_request_works(&godot, &project, &format!("{}/json", server.http_url));
    assert!(
        run.stdout.contains(OTHER_LOADED),
        "the other extension was not loaded in the game run:\n{}",
        run.combined
    );
}

#[test]
fn install_refuses_what_would_break_a_project() {
    let work = scratch_dir("install_refused");
    let library = [debug_library()];

    // Not a project: nothing written.
    let not_project = work.join("not_a_project");
    fs::create_dir_all(&not_project).unwrap();
    let err = install::install_addon(&addon_source(), &library, &not_project)
        .expect_err("a folder without project.godot");
    assert!(err.contains("no project.godot"), "{err}");
    assert!(!not_project.join("addons").exists());

    // netkit already in another folder of the project: two copies would register the
    // same classes twice.
    let project = work.join("project");
    write_request_project(&project);
    let elsewhere = project.join("addons/vendor/netkit");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::copy(
        addon_source().join("netkit.gdextension"),
        elsewhere.join("netkit.gdextension"),
    )
    .unwrap();
    let err = install::install_addon(&addon_source(), &library, &project)
        .expect_err("a second copy of netkit");
    assert!(
        err.contains("res://addons/vendor/netkit/netkit.gdextension"),
        "{err}"
    );
    assert!(!project.join("addons/netkit").exists());
    assert!(!extension_list::path(&project).exists());

    // The repository's own test project links the addon source in: copying onto itself
    // would empty every file.
    let err = install::install_addon(&addon_source(), &library, &godot_runner::project_dir())
        .expect_err("installing onto the source");
    assert!(err.contains("source folder itself"), "{err}");
    assert!(addon_source().join("README.md").metadata().unwrap().len() > 0);
}

fn addon_source() -> PathBuf {
    repo_dir().join("addons/netkit")
}

/// The cdylib this `cargo test` built (built once per test process).
fn debug_library() -> addon::Library {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let source = BUILT
        .get_or_init(godot_runner::extension::built_library)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"));
    addon::Library {
        source,
        file_name: "libnetkit.linux.x86_64.debug.so".to_string(),
    }
}

fn install(project: &Path) -> install::Installed {
    install::install_addon(&addon_source(), &[debug_library()], project)
        .unwrap_or_else(|e| panic!("install into {} failed: {e}", project.display()))
}

fn listed(project: &Path) -> Vec<String> {
    extension_list::entries(project).unwrap_or_else(|e| panic!("{e}"))
}
