//! The editor with netkit nodes in a scene: a headless editor session opens it and quits
//! without a warning or an error (issue 25: the addon must read like Godot's own, and a
//! yellow line in the Output panel at every reload or exit does not).

use std::time::Duration;

use godot_runner::{godot_command, repo_dir, run_captured};

const SCENE: &str = r#"[gd_scene format=3]

[node name="Main" type="Node"]

[node name="HTTPPool" type="HTTPPool" parent="."]

[node name="DTLSPeer" type="DTLSPeer" parent="."]

[node name="AgonesSDK" type="AgonesSDK" parent="."]
"#;

/// A fresh project holding only the addon (linked from the repository, with the library
/// `stage_once` put there) and a scene of the three nodes, registered as `install.gd`
/// would, so the first editor session loads the extension (godotengine/godot#123511).
fn scratch_project() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("netkit-editor-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("addons")).expect("create the project");
    std::fs::create_dir_all(dir.join(".godot")).expect("create .godot");
    std::os::unix::fs::symlink(repo_dir().join("addons/netkit"), dir.join("addons/netkit"))
        .expect("link the addon");
    std::fs::write(
        dir.join("project.godot"),
        "config_version=5\n\n[application]\n\nconfig/name=\"editor load\"\n",
    )
    .expect("write project.godot");
    std::fs::write(
        dir.join(".godot/extension_list.cfg"),
        "res://addons/netkit/netkit.gdextension\n",
    )
    .expect("write extension_list.cfg");
    std::fs::write(dir.join("main.tscn"), SCENE).expect("write the scene");
    dir
}

#[test]
fn the_editor_opens_a_scene_of_netkit_nodes_and_quits_without_a_warning() {
    let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
    crate::stage_once();
    let project = scratch_project();
    // The first session imports (the icons); the second is the one a user meets daily.
    for session in ["first", "second"] {
        let mut cmd = godot.command();
        cmd.args(["--headless", "--editor", "--quit", "--path"])
            .arg(&project)
            .arg("res://main.tscn");
        let out = run_captured(cmd, Duration::from_secs(300), false).expect("start Godot");
        assert_eq!(
            out.exit_code,
            Some(0),
            "{session} session:\n{}",
            out.combined
        );
        let noisy: Vec<&str> = out
            .combined
            .lines()
            .filter(|l| l.contains("WARNING") || l.contains("ERROR"))
            .collect();
        assert!(
            noisy.is_empty(),
            "{session} session printed {noisy:?}\n{}",
            out.combined
        );
    }
    let _ = std::fs::remove_dir_all(&project);
}
