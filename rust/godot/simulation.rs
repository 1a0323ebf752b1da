//! Turning simulated network conditions on from Godot: the `NETKIT_SIMULATE` environment
//! variable and the Project Setting `netkit/debug/simulate` at start-up,
//! `Netkit.simulate_network()` at run time, and the `simulate` key of an object's options.
//! The conditions themselves and what they do are in `core::simulate`.

use godot::classes::Os;
use godot::prelude::*;

use super::project_settings::{SIMULATE, SIMULATE_IN_RELEASE, get};
use crate::core::simulate::{self, Conditions, ConditionsError};

/// The environment variable read at start-up; it beats the Project Setting.
pub const ENV_VAR: &str = "NETKIT_SIMULATE";

/// Reads a `simulate` value: a String in the conditions syntax or a Dictionary of the same
/// keys (values as Strings or numbers).
pub fn conditions_from(value: &Variant) -> Result<Conditions, String> {
    if let Ok(text) = value.try_to::<GString>() {
        return Conditions::parse(&text.to_string()).map_err(|e| e.to_string());
    }
    if let Ok(dict) = value.try_to::<VarDictionary>() {
        return from_dictionary(&dict).map_err(|e| e.to_string());
    }
    Err(format!(
        "network conditions are a String or a Dictionary, not {}",
        value.get_type().as_str()
    ))
}

/// Reads the Dictionary form.
pub fn from_dictionary(dict: &VarDictionary) -> Result<Conditions, ConditionsError> {
    let pairs: Vec<(String, String)> = dict
        .iter_shared()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Conditions::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// Applies the start-up conditions: `NETKIT_SIMULATE`, else `netkit/debug/simulate`. A
/// release build ignores both unless `netkit/debug/simulate_in_release` is on; an
/// unreadable value is reported and nothing applies.
pub fn apply_startup() {
    let (source, text) = match std::env::var(ENV_VAR) {
        Ok(text) if !text.trim().is_empty() => (ENV_VAR, text),
        _ => (SIMULATE, get(SIMULATE, GString::new()).to_string()),
    };
    if text.trim().is_empty() {
        return;
    }
    if !Os::singleton().is_debug_build() && !get(SIMULATE_IN_RELEASE, false) {
        godot_warn!(
            "[netkit] {source} is set but ignored in a release build (turn on {SIMULATE_IN_RELEASE} to allow it)"
        );
        return;
    }
    match Conditions::parse(&text) {
        Ok(c) => set(Some(c), source),
        Err(e) => godot_error!("[netkit] {source}: {e}; the network is not simulated"),
    }
}

/// Sets the process-wide conditions and says so in the output.
pub fn set(conditions: Option<Conditions>, source: &str) {
    let text = conditions.as_ref().filter(|c| !c.is_clean()).map(describe);
    simulate::set_process(conditions);
    match text {
        Some(text) => godot_print!("[netkit] simulating network conditions ({source}): {text}"),
        None => godot_print!("[netkit] network simulation off ({source})"),
    }
}

/// One line naming what is simulated, for the output.
pub fn describe(c: &Conditions) -> String {
    let mut parts = Vec::new();
    for (prefix, d) in [("", &c.outbound), ("in:", &c.inbound)] {
        let ms = |x: std::time::Duration| x.as_secs_f64() * 1000.0;
        let pct = |x: f64| x * 100.0;
        if !d.latency.is_zero() {
            parts.push(format!("{prefix}latency={}ms", ms(d.latency)));
        }
        if !d.jitter.is_zero() {
            parts.push(format!("{prefix}jitter={}ms", ms(d.jitter)));
        }
        for (name, v) in [
            ("loss", d.loss),
            ("duplicate", d.duplicate),
            ("reorder", d.reorder),
            ("failure", d.failure),
        ] {
            if v > 0.0 {
                parts.push(format!("{prefix}{name}={}%", pct(v)));
            }
        }
        if let Some(b) = d.bandwidth {
            parts.push(format!("{prefix}bandwidth={b}bit"));
        }
    }
    if let Some(seed) = c.seed {
        parts.push(format!("seed={seed}"));
    }
    parts.join(" ")
}
