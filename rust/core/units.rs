//! Readable units for sizes and long durations in the editor's Inspector.
//!
//! A property is stored in bytes or seconds, as scripts and `.tscn` files see it; the
//! Inspector shows it in the largest unit that holds it as a whole number ("16 MiB" for
//! 16777216, "7 d" for 604800), the way a person would write it. Godot's own editors offer
//! only a fixed suffix ("16777216 B"), and readable units only through a renamed property
//! (`_kb`, `_mb`), which would break every script that sets it.
//!
//! The byte units are the IEC binary prefixes (IEC 80000-13), as Godot's
//! `String.humanize_size()` writes them; the time units are the SI-accepted minute, hour
//! and day. Pure functions only: the Inspector's control (`rust/godot/inspector/`) is the
//! driver.

/// One unit a quantity can be shown in: its symbol and how many base units (bytes or
/// seconds) it holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    /// What the Inspector writes after the number: `"MiB"`, `"d"`.
    pub symbol: &'static str,
    /// Base units (bytes or seconds) in one of this unit.
    pub size: f64,
}

/// Bytes: B, KiB, MiB, GiB, TiB.
pub const BYTE_UNITS: [Unit; 5] = [
    Unit {
        symbol: "B",
        size: 1.0,
    },
    Unit {
        symbol: "KiB",
        size: 1024.0,
    },
    Unit {
        symbol: "MiB",
        size: 1_048_576.0,
    },
    Unit {
        symbol: "GiB",
        size: 1_073_741_824.0,
    },
    Unit {
        symbol: "TiB",
        size: 1_099_511_627_776.0,
    },
];

/// Seconds: s, min, h, d.
pub const TIME_UNITS: [Unit; 4] = [
    Unit {
        symbol: "s",
        size: 1.0,
    },
    Unit {
        symbol: "min",
        size: 60.0,
    },
    Unit {
        symbol: "h",
        size: 3_600.0,
    },
    Unit {
        symbol: "d",
        size: 86_400.0,
    },
];

/// Seconds from which a duration gets [`TIME_UNITS`] instead of a plain "s": a range that
/// reaches a day. Timeouts of seconds or minutes read best in seconds, as Godot writes them.
pub const DAY_SECONDS: f64 = 86_400.0;

/// A `PROPERTY_HINT_RANGE` string, `min,max[,step][,or_greater][,or_less][,suffix:…]`, in
/// base units, and the readable units its suffix calls for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeHint {
    /// 0 when the hint has none.
    pub min: f64,
    /// `f64::MAX` when the hint has none.
    pub max: f64,
    /// In base units; 1 when the hint has none (gdext writes none for a whole number).
    pub step: f64,
    pub or_greater: bool,
    pub or_less: bool,
    /// The unit table for a suffix `B`, or `s` with a maximum of a day or more; `None`
    /// otherwise (the property keeps Godot's own editor).
    pub units: Option<&'static [Unit]>,
}

impl RangeHint {
    /// Reads a hint; a part that is absent or unreadable takes the default above.
    pub fn parse(hint_string: &str) -> Self {
        let parts: Vec<&str> = hint_string.split(',').map(str::trim).collect();
        let number = |i: usize| parts.get(i).and_then(|p| p.parse::<f64>().ok());
        let max = number(1);
        let units = match parts.iter().find_map(|p| p.strip_prefix("suffix:")) {
            Some("B") => Some(&BYTE_UNITS[..]),
            Some("s") if max.is_some_and(|m| m >= DAY_SECONDS) => Some(&TIME_UNITS[..]),
            _ => None,
        };
        Self {
            min: number(0).unwrap_or(0.0),
            max: max.unwrap_or(f64::MAX),
            step: number(2).unwrap_or(1.0),
            or_greater: parts.contains(&"or_greater"),
            or_less: parts.contains(&"or_less"),
            units,
        }
    }
}

/// Index of the largest unit in which `value` (bytes or seconds) is a whole number; the
/// base unit for 0, a fraction or a value no other unit divides.
pub fn largest_exact(units: &[Unit], value: f64) -> usize {
    if value == 0.0 || !value.is_finite() {
        return 0;
    }
    units
        .iter()
        .rposition(|u| holds_whole(value, *u))
        .unwrap_or(0)
}

/// The unit to show `value` in. `kept` is the unit shown and the value it was kept for:
/// the value last shown, or the one the user typed in that unit. While the value is that
/// one, the unit stays (a unit the user picked, or typed in, is not taken back at the
/// Inspector's next refresh); a value set anywhere else (a script, undo) is shown in its
/// [`largest_exact`] unit.
pub fn display_unit(units: &[Unit], value: f64, kept: Option<(usize, f64)>) -> usize {
    match kept {
        Some((i, kept_value))
            if i < units.len() && kept_value == value && holds_whole(value, units[i]) =>
        {
            i
        }
        _ => largest_exact(units, value),
    }
}

/// Whether `value` is a whole number of `unit`: the units a user may switch to, so the
/// Inspector never shows a rounded figure.
pub fn holds_whole(value: f64, unit: Unit) -> bool {
    (value / unit.size).fract() == 0.0
}

/// `value` (in base units) expressed in `unit`.
pub fn to_unit(value: f64, unit: Unit) -> f64 {
    value / unit.size
}

/// The largest whole number a float holds exactly (2^53, 8192 TiB): the Inspector edits
/// numbers as floats, so an `int` size beyond it could be neither shown nor typed exactly.
pub const MAX_WHOLE: f64 = 9_007_199_254_740_992.0;

/// `amount` of `unit` in base units, snapped to the property's own steps from its
/// minimum (`min + k * step`, as Godot's Range snaps; a `step` of 0 does not snap). The
/// snapping is done in base units, so a unit's fraction of a step (1 s is 1/86400 d) adds
/// no rounding error. An `int` property (`whole`) gets whole base units within
/// ±[`MAX_WHOLE`]. The range's limits are the control's business, not this function's.
pub fn from_unit(amount: f64, unit: Unit, min: f64, step: f64, whole: bool) -> f64 {
    let mut base = amount * unit.size;
    if step > 0.0 {
        base = min + ((base - min) / step).round() * step;
    }
    if whole {
        base.round().clamp(-MAX_WHOLE, MAX_WHOLE)
    } else {
        base
    }
}

/// `value` written in its largest exact unit: `"16 MiB"`, `"7 d"`, `"1000 B"`.
pub fn describe(units: &[Unit], value: f64) -> String {
    let unit = units[largest_exact(units, value)];
    format!("{} {}", to_unit(value, unit), unit.symbol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_in_their_largest_whole_unit() {
        assert_eq!(describe(&BYTE_UNITS, 16_777_216.0), "16 MiB");
        assert_eq!(describe(&BYTE_UNITS, 4_294_967_296.0), "4 GiB");
        assert_eq!(describe(&BYTE_UNITS, 1_048_576.0), "1 MiB");
        // 1.5 KiB is no whole number of KiB.
        assert_eq!(describe(&BYTE_UNITS, 1_536.0), "1536 B");
        assert_eq!(describe(&BYTE_UNITS, 1_000.0), "1000 B");
        assert_eq!(describe(&BYTE_UNITS, 0.0), "0 B");
        assert_eq!(describe(&TIME_UNITS, 604_800.0), "7 d");
        assert_eq!(describe(&TIME_UNITS, 5_400.0), "90 min");
        assert_eq!(describe(&TIME_UNITS, 0.5), "0.5 s");
    }

    #[test]
    fn a_unit_chosen_for_display_converts_both_ways() {
        let mib = BYTE_UNITS[2];
        assert_eq!(to_unit(16_777_216.0, mib), 16.0);
        // A fraction of a larger unit is stored as typed: 1.5 MiB, 1.5 d, 0.25 min.
        assert_eq!(from_unit(1.5, mib, 0.0, 1.0, true), 1_572_864.0);
        assert_eq!(from_unit(1.5, TIME_UNITS[3], 1.0, 1.0, false), 129_600.0);
        assert_eq!(from_unit(0.25, TIME_UNITS[1], 0.0, 0.0, false), 15.0);
        // An int property gets whole bytes.
        assert_eq!(from_unit(0.3, BYTE_UNITS[1], 0.0, 1.0, true), 307.0);
        // Snapped to the property's own step from its minimum, exactly: 7 d from a
        // minimum of 1 s is 604800 s, not 604800.0000000001.
        assert_eq!(from_unit(7.0, TIME_UNITS[3], 1.0, 1.0, false), 604_800.0);
        assert_eq!(from_unit(1.001, TIME_UNITS[2], 0.0, 60.0, false), 3_600.0);
        // A range that allows negative sizes keeps them (the range limits are the
        // control's), and an int stays within what a float holds exactly.
        assert_eq!(from_unit(-3.0, BYTE_UNITS[1], -1024.0, 1.0, true), -3_072.0);
        assert_eq!(from_unit(1e8, BYTE_UNITS[4], 0.0, 1.0, true), MAX_WHOLE);
        assert_eq!(describe(&BYTE_UNITS, MAX_WHOLE), "8192 TiB");
    }

    #[test]
    fn a_picked_unit_stays_while_it_holds_the_value() {
        // 16 MiB shown in KiB (the user picked it) stays 16384 KiB at every refresh.
        assert_eq!(
            display_unit(&BYTE_UNITS, 16_777_216.0, Some((1, 16_777_216.0))),
            1
        );
        // The user typed 2048 in KiB: it stays 2048 KiB, not 2 MiB.
        assert_eq!(
            display_unit(&BYTE_UNITS, 2_097_152.0, Some((1, 2_097_152.0))),
            1
        );
        // A script (or undo) set another value: its own largest unit.
        assert_eq!(
            display_unit(&BYTE_UNITS, 4_194_304.0, Some((1, 2_097_152.0))),
            2
        );
        assert_eq!(display_unit(&BYTE_UNITS, 1_000.0, Some((1, 1_000.0))), 0);
        assert_eq!(display_unit(&BYTE_UNITS, 16_777_216.0, None), 2);
        assert_eq!(
            display_unit(&TIME_UNITS, 604_800.0, Some((9, 604_800.0))),
            3
        );
        assert!(holds_whole(604_800.0, TIME_UNITS[2]));
        assert!(!holds_whole(90.0, TIME_UNITS[2]));
    }

    #[test]
    fn only_byte_ranges_and_ranges_reaching_a_day_get_units() {
        assert_eq!(
            RangeHint::parse("0,1073741824,1,or_greater,suffix:B").units,
            Some(&BYTE_UNITS[..])
        );
        assert_eq!(
            RangeHint::parse("1,31536000,1,or_greater,suffix:s").units,
            Some(&TIME_UNITS[..])
        );
        // A timeout of seconds keeps Godot's "s".
        assert_eq!(
            RangeHint::parse("0.1,600,0.1,or_greater,suffix:s").units,
            None
        );
        assert_eq!(RangeHint::parse("0,100000,1,or_greater").units, None);
        assert_eq!(RangeHint::parse("0,100000,1,suffix:µs").units, None);
        assert_eq!(RangeHint::parse("").units, None);
        assert_eq!(RangeHint::parse("suffix:s").units, None);
    }
}
