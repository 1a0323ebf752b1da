//! The addon's ProjectSettings, under `netkit/`: registered at startup so they appear in
//! Project Settings (with "Advanced Settings" on) and are read by the runtime.

use godot::classes::ProjectSettings;
use godot::prelude::*;
use godot::register::info::PropertyHint;

use crate::core::runtime;

/// Worker threads of the shared tokio runtime (read once, when the runtime starts).
pub const WORKER_THREADS: &str = "netkit/runtime/worker_threads";
/// Seconds between one-line stats logs in headless runs; 0 turns the log off.
pub const STATS_LOG_INTERVAL: &str = "netkit/debug/stats_log_interval";

/// Registers every setting with its default and hint, then applies the runtime ones.
pub fn register() {
    let mut settings = ProjectSettings::singleton();
    add(
        &mut settings,
        WORKER_THREADS,
        (runtime::DEFAULT_WORKER_THREADS as i64).to_variant(),
        PropertyHint::RANGE,
        "1,64,1",
    );
    add(
        &mut settings,
        STATS_LOG_INTERVAL,
        0.0f64.to_variant(),
        PropertyHint::RANGE,
        "0,3600,0.5,suffix:s",
    );
    let workers = settings
        .get_setting(WORKER_THREADS)
        .try_to::<i64>()
        .unwrap_or(2);
    runtime::set_worker_threads(workers.clamp(1, 64) as usize);
}

/// Reads a float setting, falling back to `default` when missing or of another type.
pub fn get_f64(name: &str, default: f64) -> f64 {
    ProjectSettings::singleton()
        .get_setting(name)
        .try_to::<f64>()
        .unwrap_or(default)
}

fn add(
    settings: &mut Gd<ProjectSettings>,
    name: &str,
    default: Variant,
    hint: PropertyHint,
    hint_string: &str,
) {
    if !settings.has_setting(name) {
        settings.set_setting(name, &default);
    }
    settings.set_initial_value(name, &default);
    settings.set_as_basic(name, false);
    let mut info = VarDictionary::new();
    info.set("name", name);
    info.set("type", default.get_type().ord() as i64);
    info.set("hint", hint.ord() as i64);
    info.set("hint_string", hint_string);
    settings.add_property_info(&info);
}
