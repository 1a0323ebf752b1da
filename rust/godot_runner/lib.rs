//! The Godot runner shared by netkit's integration tests, the demo and the benchmark:
//! finds (or provisions) a Godot 4 binary, stages the freshly built extension, runs a
//! project headless and judges its output, so `cargo test` checks HTTPPool / DTLSPeer
//! inside a real engine.
//!
//! Its own crate so that it does not depend on the addon's dependencies: std only, plus
//! serde_json to read Cargo's build messages ([`extension`]).
//!
//! Typical use from an integration test:
//! ```ignore
//! let godot = godot_runner::godot_command().unwrap_or_else(|e| panic!("{e}"));
//! let out = godot_runner::run_project(&godot, &godot_runner::project_dir(),
//!     &["--http-url=http://127.0.0.1:8080"], &[], Duration::from_secs(300));
//! let (passed, _) = godot_runner::check_suite(&out).unwrap_or_else(|e| panic!("{e}"));
//! ```

mod apt_sources;
pub mod extension;
mod locate;
mod process;
mod project;
mod provision;
mod scene_process;
mod suite;

pub use apt_sources::{MIRROR_ENV, debian_mirror};
pub use locate::{
    CACHE_DIR_ENV, GODOT_BIN_ENV, GodotCmd, cache_dir, command_in_root, godot_command, project_dir,
    repo_dir,
};
pub use process::{RunOutput, run_captured, run_project, run_project_echo};
pub use project::ensure_imported;
pub use provision::{provision_debian_package, provision_debian_packages};
pub use scene_process::{SceneProcess, scene_command};
pub use suite::{check_suite, check_suite_allowing, test_results};
