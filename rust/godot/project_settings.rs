//! The addon's ProjectSettings, under `netkit/`: registered at startup so they appear in
//! Project Settings (with "Advanced Settings" on) and are read by the runtime.
//!
//! Godot shows a setting's description from the `ProjectSettings` class documentation
//! only, and gives an extension no way to add to it: `ProjectSettings.add_property_info`
//! takes a name, type, hint and hint string, no description (proposal
//! godotengine/godot-proposals#11294), and loading documentation XML for the class
//! `ProjectSettings` would replace Godot's own documentation of every setting. So the
//! editor shows "No description available" for these settings; [`SETTINGS`] holds the
//! descriptions, and addons/netkit/README.md shows them in a table that a test keeps
//! in step with this file. The range hint (and its unit suffix) is what the editor does
//! show.

use godot::classes::ProjectSettings;
use godot::prelude::*;
use godot::register::info::PropertyHint;

use crate::core::runtime;

/// Worker threads of the shared tokio runtime (read once, when the runtime starts).
pub const WORKER_THREADS: &str = "netkit/runtime/worker_threads";
/// Seconds between one-line stats logs in headless runs; 0 turns the log off.
pub const STATS_LOG_INTERVAL: &str = "netkit/debug/stats_log_interval";
/// Simulated network conditions for every netkit object of the process.
pub const SIMULATE: &str = "netkit/debug/simulate";
/// Whether a release export honours `netkit/debug/simulate` and `NETKIT_SIMULATE`.
pub const SIMULATE_IN_RELEASE: &str = "netkit/debug/simulate_in_release";

/// A setting's default, which also fixes its Variant type.
#[derive(Clone, Copy, Debug)]
pub enum Default {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(&'static str),
}

/// One netkit setting, as registered and as documented in the addon README. `unit` and
/// `description` are read only by the README test: Godot has nowhere to show them.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub struct Setting {
    pub name: &'static str,
    pub default: Default,
    /// `PROPERTY_HINT_RANGE` string: `min,max,step[,suffix:unit]`; for a text setting, the
    /// placeholder shown while it is empty.
    pub range: &'static str,
    /// Unit for the README table (`-` when the value is a count).
    pub unit: &'static str,
    /// What it does, when it is read, and what a change needs to take effect.
    pub description: &'static str,
}

/// Every netkit setting.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: WORKER_THREADS,
        default: Default::Int(runtime::DEFAULT_WORKER_THREADS as i64),
        range: "1,64,1",
        unit: "threads",
        description: "Worker threads of the tokio runtime that every HTTPPool and DTLSPeer \
            shares. Read once when the extension loads, so a change takes effect at the next \
            start. Values outside 1 to 64 are clamped.",
    },
    Setting {
        name: STATS_LOG_INTERVAL,
        default: Default::Float(0.0),
        range: "0,3600,0.5,suffix:s",
        unit: "seconds",
        description: "Interval of a one-line stats log (the figures of the `netkit/` \
            Performance monitors, and a DTLSMultiplayerPeer's peers, bytes and resends) \
            printed while any netkit object with figures lives (an HTTPPool, a DTLSPeer, a \
            DTLSMultiplayerPeer that was started) and the game runs headless (e.g. a \
            dedicated server); 0 turns it off. Read again every second, so a script may \
            change it at run time.",
    },
    Setting {
        name: SIMULATE,
        default: Default::Text(""),
        range: "latency=100ms loss=2%",
        unit: "-",
        description: "Simulated network conditions for every netkit object of the process, \
            in the syntax of `Netkit.simulate_network()` (`latency=150ms jitter=10ms loss=5% \
            in:loss=1% bandwidth=256kbit seed=7`); empty for none. Read once at start-up; the \
            environment variable `NETKIT_SIMULATE` beats it. Ignored in a release export unless \
            `netkit/debug/simulate_in_release` is on.",
    },
    Setting {
        name: SIMULATE_IN_RELEASE,
        default: Default::Bool(false),
        range: "",
        unit: "-",
        description: "Lets a release export honour `netkit/debug/simulate` and \
            `NETKIT_SIMULATE`. Off, so nobody ships a lagging game by accident; \
            `Netkit.simulate_network()` works in every build.",
    },
];

/// Registers every setting with its default and hint, then applies the runtime ones.
pub fn register() {
    let mut settings = ProjectSettings::singleton();
    for setting in SETTINGS {
        let (default, hint) = match setting.default {
            Default::Int(v) => (v.to_variant(), PropertyHint::RANGE),
            Default::Float(v) => (v.to_variant(), PropertyHint::RANGE),
            Default::Bool(v) => (v.to_variant(), PropertyHint::NONE),
            Default::Text(v) => (v.to_variant(), PropertyHint::PLACEHOLDER_TEXT),
        };
        add(&mut settings, setting.name, default, hint, setting.range);
    }
    let workers = settings
        .get_setting(WORKER_THREADS)
        .try_to::<i64>()
        .unwrap_or(runtime::DEFAULT_WORKER_THREADS as i64);
    runtime::set_worker_threads(workers.clamp(1, 64) as usize);
}

/// Reads a setting, falling back to `default` when missing or of another type.
pub fn get<T: FromGodot>(name: &str, default: T) -> T {
    ProjectSettings::singleton()
        .get_setting(name)
        .try_to::<T>()
        .unwrap_or(default)
}

fn add(
    settings: &mut Gd<ProjectSettings>,
    name: &str,
    default: Variant,
    hint: PropertyHint,
    range: &str,
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
    info.set("hint_string", range);
    settings.add_property_info(&info);
}

#[cfg(test)]
mod tests {
    use super::{Default, SETTINGS};

    /// The addon README's settings table is the only place a user can read what a
    /// setting does (see the module docs): every setting must have a row with its type,
    /// default, unit and description, and no row may name a setting that does not exist.
    #[test]
    fn addon_readme_documents_every_setting() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/addons/netkit/README.md");
        let readme = std::fs::read_to_string(path).expect("addons/netkit/README.md");
        let rows: Vec<Vec<String>> = readme
            .lines()
            .filter(|l| l.starts_with("| `netkit/"))
            .map(|l| {
                l.trim_matches('|')
                    .split(" | ")
                    .map(|cell| cell.trim().to_string())
                    .collect()
            })
            .collect();
        assert_eq!(
            rows.len(),
            SETTINGS.len(),
            "one README row per setting: {rows:?}"
        );
        for setting in SETTINGS {
            let row = rows
                .iter()
                .find(|r| r[0] == format!("`{}`", setting.name))
                .unwrap_or_else(|| panic!("no README row for {}", setting.name));
            let (kind, default) = match setting.default {
                Default::Int(v) => ("int", v.to_string()),
                Default::Float(v) => ("float", format!("{v:.1}")),
                Default::Bool(v) => ("bool", v.to_string()),
                Default::Text(v) => ("String", format!("\"{v}\"")),
            };
            let expected = [
                format!("`{}`", setting.name),
                kind.to_string(),
                format!("`{default}`"),
                setting.unit.to_string(),
                setting.description.to_string(),
            ];
            assert_eq!(row[..], expected[..], "README row of {}", setting.name);
        }
    }
}
