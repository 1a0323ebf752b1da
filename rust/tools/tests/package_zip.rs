//! The Asset-Library zip works as a user gets it: build it with the same code as
//! `cargo run --release --bin package` (rust/tools/package/zipper.rs), unzip it into a
//! Godot project that has never seen netkit (but uses another GDExtension), register
//! netkit with the shipped `install.gd` as the addon README says; then the project's
//! first headless import with netkit exits 0 (a raw unzip aborts there with exit code
//! 134, Godot bug godotengine/godot#123511), the other extension stays listed and
//! loaded, and a scene makes a real HTTPPool request to the loopback test server.
//!
//! The zip here carries the debug library this `cargo test` built, under the debug name
//! (`linux.debug.x86_64`), because the headless editor binary that runs the project
//! loads debug libraries; the command itself ships the release one. Everything else in
//! the zip (file selection, `.gdextension`, layout) is exactly what users receive.

mod support;

use std::fs::{self, File};
use std::time::Instant;

use godot_runner::godot_command;
use netkit_tools::package::{addon, zipper};
use support::scratch_project::{
    OTHER_ENTRY, OTHER_LOADED, add_other_extension, assert_exit_0, assert_request_works,
    run_headless, scratch_dir, write_request_project,
};

const NETKIT_ENTRY: &str = "res://addons/netkit/netkit.gdextension";
const INSTALL_SCRIPT: &str = "res://addons/netkit/install.gd";

#[test]
fn packaged_zip_installs_into_a_fresh_project_and_works() {
    let started = Instant::now();
    let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
    let debug_library = godot_runner::extension::built_library().unwrap_or_else(|e| panic!("{e}"));
    let work = scratch_dir("package_zip");
    let zip_path = work.join(zipper::zip_file_name("test"));

    let library = addon::Library {
        source: debug_library,
        file_name: "libnetkit.linux.x86_64.debug.so".to_string(),
    };
    let addon = godot_runner::repo_dir().join("addons/netkit");
    let summary = zipper::build_addon_zip(&addon, &[library], &zip_path)
        .unwrap_or_else(|e| panic!("building the zip failed: {e}"));
    check_entries(&summary.entries);
    assert_eq!(
        zipper::list_zip(&zip_path).unwrap_or_else(|e| panic!("{e}")),
        summary.entries,
        "the zip reads back differently from what was written"
    );

    // A project that has never seen netkit but already uses another GDExtension (listed
    // by hand, without a final newline), then the zip unpacked into it.
    let project = work.join("project");
    write_request_project(&project);
    add_other_extension(&work, &project);
    let list = project.join(".godot/extension_list.cfg");
    fs::create_dir_all(list.parent().unwrap()).unwrap();
    fs::write(&list, OTHER_ENTRY).unwrap();
    let mut archive = zip::ZipArchive::new(File::open(&zip_path).unwrap()).unwrap();
    archive
        .extract(&project)
        .unwrap_or_else(|e| panic!("cannot unzip {}: {e}", zip_path.display()));

    // The README's step for a raw unzip, run twice: the second run must add nothing, and
    // the other extension's line stays first, as it was.
    for (round, says) in [(1, "added"), (2, "already lists")] {
        let out = run_headless(&godot, &project, &["--script", INSTALL_SCRIPT]);
        assert_exit_0(&out, &format!("install.gd (run {round})"));
        assert!(
            out.stdout.contains(says),
            "install.gd run {round} should say {says:?}:\n{}",
            out.combined
        );
        assert!(
            !out.combined.contains("ERROR"),
            "install.gd run {round} printed an error:\n{}",
            out.combined
        );
        let text = fs::read_to_string(&list).unwrap_or_default();
        assert_eq!(
            text,
            format!("{OTHER_ENTRY}\n{NETKIT_ENTRY}\n"),
            "after install.gd run {round}"
        );
    }

    // The project's first import, as a user's CI runs it.
    let import = run_headless(&godot, &project, &["--import"]);
    assert_exit_0(&import, "the first headless import of the unzipped addon");
    assert!(
        import.stdout.contains(OTHER_LOADED),
        "the import did not load the other extension:\n{}",
        import.combined
    );
    let listed = fs::read_to_string(&list).unwrap();
    assert!(
        listed.contains(OTHER_ENTRY) && listed.contains(NETKIT_ENTRY),
        "after the import the list is {listed:?}"
    );

    let server = support::http_server::start_blocking();
    assert_request_works(&godot, &project, &format!("{}/json", server.http_url));
    println!(
        "zip of {} entries ({} bytes) installed and answered a request in {:.1?}",
        summary.entries.len(),
        summary.bytes,
        started.elapsed()
    );
}

/// What a user must find in the zip, and what must never be in it.
fn check_entries(entries: &[String]) {
    for required in [
        "addons/netkit/LICENSE",
        "addons/netkit/README.md",
        "addons/netkit/install.gd",
        "addons/netkit/netkit.gdextension",
        "addons/netkit/bin/libnetkit.linux.x86_64.debug.so",
        "addons/netkit/icons/http_pool.svg",
        "addons/netkit/icons/dtls_peer.svg",
        "addons/netkit/icons/agones_sdk.svg",
        // The help pages point here (AgonesSDK to DEPLOY.md, which links EXPORT.md).
        "addons/netkit/docs/DEPLOY.md",
        "addons/netkit/docs/EXPORT.md",
    ] {
        assert!(
            entries.iter().any(|e| e == required),
            "{required} is missing from the zip: {entries:#?}"
        );
    }
    for entry in entries {
        assert!(
            entry.starts_with("addons/netkit/") || entry == "addons/",
            "{entry} is outside addons/netkit"
        );
        let name = entry.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        assert!(
            !name.ends_with(".uid") && !name.ends_with(".import") && !name.starts_with('.'),
            "{entry} is generated or hidden and must not ship"
        );
    }
    let libraries: Vec<&String> = entries
        .iter()
        .filter(|e| e.starts_with("addons/netkit/bin/") && !e.ends_with('/'))
        .collect();
    assert_eq!(
        libraries.len(),
        1,
        "only the library handed to the builder may ship, found {libraries:?}"
    );
}
