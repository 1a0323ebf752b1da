//! The addon as a whole: rust/core stays engine-free, SIGTERM and `NETKIT_SIMULATE` reach a real Godot.
//!
//! One test binary per area (as gdext's itest crate): its files are modules, and what
//! they share comes from the `netkit-test-support` crate.

mod editor_inspector;
mod editor_load;
mod editor_project;
mod engine_free;
mod shutdown_signal;
mod simulate_env;

/// Stages the extension and imports the project once for this binary's tests: two
/// stagings at once would race on the library's file.
fn stage_once() {
    static STAGED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    STAGED.get_or_init(|| {
        let godot = godot_runner::godot_command().unwrap_or_else(|e| panic!("{e}"));
        godot_runner::extension::stage_extension(&godot_runner::repo_dir())
            .unwrap_or_else(|e| panic!("{e}"));
        godot_runner::ensure_imported(&godot, &godot_runner::project_dir())
            .unwrap_or_else(|e| panic!("{e}"));
    });
}
