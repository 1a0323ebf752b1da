//! The Dictionary shape every `get_stats()` returns: counter name to int.

use godot::prelude::*;

/// Builds `{name: count}`; counts beyond `i64::MAX` (never reached in practice) saturate.
pub fn stats_dict<'a>(pairs: impl IntoIterator<Item = (&'a str, u64)>) -> VarDictionary {
    let mut d = VarDictionary::new();
    for (name, count) in pairs {
        d.set(name, i64::try_from(count).unwrap_or(i64::MAX));
    }
    d
}
