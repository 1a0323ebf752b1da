//! The editor's own Inspector on netkit's nodes, read and edited as a user would
//! (issue 25): sizes and a week in readable units ("16 MiB", "7 d"), labels with the
//! acronyms Godot's capitalization misses ("Trusted CA PEM", "SHA-256 Pin"), and edits
//! through those rows stored in bytes and seconds, with undo.
//!
//! `inspector/check.gd`, an editor plugin of a scratch project, shows each node in the
//! Inspector, prints every row (`ROW {json}`) and the rows after each edit (`EDIT {json}`).

use serde_json::Value;

use crate::editor_project;

const CHECK: &str = include_str!("inspector/check.gd");
const TWO_POOLS: &str = "[gd_scene format=3]\n\n[node name=\"Main\" type=\"Node\"]\n\n[node name=\"A\" type=\"HTTPPool\" parent=\".\"]\n\n[node name=\"B\" type=\"HTTPPool\" parent=\".\"]\n";
const PLUGIN_CFG: &str = "[plugin]\n\nname=\"check\"\ndescription=\"\"\nauthor=\"\"\nversion=\"1\"\nscript=\"check.gd\"\n";

/// The JSON objects after `tag` in the session's output.
fn records(output: &str, tag: &str) -> Vec<Value> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix(tag))
        .map(|json| serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}")))
        .collect()
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// What the row shows: "16 MiB", or the label alone for a row without a number.
fn shown(row: &Value) -> String {
    format!("{} {}", row["amount"], text(row, "unit"))
        .replace(".0 ", " ")
        .trim()
        .to_string()
}

#[test]
fn the_inspector_shows_readable_units_and_labels_and_stores_edits_in_bytes_and_seconds() {
    crate::stage_once();
    let project = editor_project::create(
        "editor-inspector",
        &[
            ("addons/check/plugin.cfg", PLUGIN_CFG),
            ("addons/check/check.gd", CHECK),
            ("two_pools.tscn", TWO_POOLS),
        ],
        &["res://addons/check/plugin.cfg"],
    );
    let output = editor_project::run_clean(&project, &[], "inspector");
    let _ = std::fs::remove_dir_all(&project);
    let rows = records(&output, "ROW ");
    let row = |class: &str, property: &str| -> &Value {
        rows.iter()
            .find(|r| text(r, "class") == class && text(r, "property") == property)
            .unwrap_or_else(|| panic!("no {class}.{property} row in:\n{output}"))
    };

    for (property, label, reads) in [
        ("max_body_bytes", "Max Body Size", "16 MiB"),
        ("stream_max_line_bytes", "Max Line Size", "1 MiB"),
        ("stream_buffer_bytes", "Buffer Size", "1 MiB"),
        ("max_download_bytes", "Max Size", "4 GiB"),
        ("outbox_max_age", "Max Age", "7 d"),
    ] {
        let r = row("HTTPPool", property);
        assert_eq!(
            (text(r, "label"), shown(r)),
            (label.to_string(), reads.to_string()),
            "{r}"
        );
    }
    // Godot's own editors, with the acronyms spelled as their standards do.
    let pem = row("HTTPPool", "trusted_ca_pem");
    assert_eq!(text(pem, "label"), "Trusted CA PEM", "{pem}");
    assert_eq!(text(pem, "editor"), "EditorPropertyMultilineText", "{pem}");
    let pin = row("DTLSPeer", "pinned_sha256");
    assert_eq!(text(pin, "label"), "SHA-256 Pin", "{pin}");
    assert_eq!(text(pin, "editor"), "EditorPropertyText", "{pin}");
    // A timeout keeps Godot's own editor and "s".
    assert_eq!(
        text(row("HTTPPool", "timeout"), "editor"),
        "EditorPropertyFloat"
    );

    // Every byte size of every node gets the units, and no label spells an acronym or a
    // unit as a word.
    for r in &rows {
        if text(r, "hint_string").contains("suffix:B") {
            assert_eq!(text(r, "editor"), "UnitProperty", "{r}");
        }
        let label = text(r, "label");
        for word in label.split(' ') {
            assert!(
                ![
                    "Pem", "Sha", "Sse", "Usec", "Us", "Bytes", "Tls", "Dtls", "Ca"
                ]
                .contains(&word),
                "label {label:?} of {r}"
            );
        }
    }

    let edits = records(&output, "EDIT ");
    let steps: Vec<(String, String, String)> = edits
        .iter()
        .map(|e| (text(e, "step"), shown(e), e["stored"].to_string()))
        .collect();
    let expected = [
        ("typed 32", "32 MiB", "33554432"),
        ("picked KiB", "32768 KiB", "33554432"),
        ("typed 1536", "1536 KiB", "1572864"),
        ("script set 1000", "1000 B", "1000"),
        ("script set 4 GiB", "4 GiB", "4294967296"),
        ("typed 30", "30 d", "2592000.0"),
        ("typed 36 h", "36 h", "129600.0"),
        // 2^53 B, the largest size a float holds exactly: not i64::MAX shown as 2^63.
        ("typed 1e8 TiB", "8192 TiB", "9007199254740992"),
        // A script's own size whose range goes below zero keeps its sign.
        ("script shown", "-2 KiB", "-2048"),
        ("typed -3 KiB", "-3 KiB", "-3072"),
        // Two pools selected at once read and edit as one.
        ("two selected", "16 MiB", "16777216"),
        ("two typed 2 MiB: A", "2 MiB", "2097152"),
        ("two typed 2 MiB: B", "2 MiB", "2097152"),
        // The extension reloaded: the rows work again (run_clean: no error printed).
        ("reloaded", "2 MiB", "2097152"),
        ("reloaded typed 8", "8 MiB", "8388608"),
    ];
    for (step, reads, stored) in expected {
        assert!(
            steps.contains(&(step.to_string(), reads.to_string(), stored.to_string())),
            "step {step:?}: expected {reads} stored as {stored}, got {steps:?}"
        );
    }
    let two = edits.iter().find(|e| text(e, "step") == "two selected");
    assert_eq!(
        two.map(|e| (text(e, "label"), text(e, "editor"))),
        Some(("Max Body Size".into(), "UnitProperty".into()))
    );
    // Units that cannot show the value whole are not offered.
    let small = edits.iter().find(|e| text(e, "step") == "script set 1000");
    assert_eq!(
        small.map(|e| e["units_offered"].to_string()),
        Some("[\"B\"]".into())
    );
    // Undo brings back a size the row's edits replaced (Godot merges quick edits of one
    // property into one step, so either 16 or 32 MiB), shown in its own unit.
    let undone = edits
        .iter()
        .find(|e| text(e, "step") == "undone")
        .expect("undo ran");
    assert!(
        ["16 MiB", "32 MiB"].contains(&shown(undone).as_str())
            && ["16777216", "33554432"].contains(&undone["stored"].to_string().as_str()),
        "{undone}"
    );
}
