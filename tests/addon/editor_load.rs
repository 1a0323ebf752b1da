//! The editor with netkit nodes in a scene: a headless editor session opens it and quits
//! without a warning or an error (issue 25: the addon must read like Godot's own, and a
//! yellow line in the Output panel at every reload or exit does not).

use crate::editor_project;

const SCENE: &str = r#"[gd_scene format=3]

[node name="Main" type="Node"]

[node name="HTTPPool" type="HTTPPool" parent="."]

[node name="DTLSPeer" type="DTLSPeer" parent="."]

[node name="AgonesSDK" type="AgonesSDK" parent="."]
"#;

#[test]
fn the_editor_opens_a_scene_of_netkit_nodes_and_quits_without_a_warning() {
    crate::stage_once();
    let project = editor_project::create("editor-load", &[("main.tscn", SCENE)], &[]);
    // The first session imports (the icons); the second is the one a user meets daily.
    for session in ["first", "second"] {
        editor_project::run_clean(&project, &["--quit", "res://main.tscn"], session);
    }
    let _ = std::fs::remove_dir_all(&project);
}
