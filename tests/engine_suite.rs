//! Runs the GDScript suite (godot_project/tests) in a real headless Godot against the real
//! test servers, with the extension that this `cargo test` just built.
//!
//! Fails on any failed test, zero tests, `SCRIPT ERROR`, leaked objects at exit, an
//! unexpected engine error, a crash or a hang (see `support::godot::check_suite`).

mod support;

use std::time::Duration;

use support::godot::{check_suite, godot_command, project_dir, repo_dir, run_project};

#[test]
fn gdscript_suite_in_headless_godot() {
    let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
    let lib = support::extension::stage_extension(&repo_dir()).unwrap_or_else(|e| panic!("{e}"));
    let http = support::http_server::start_blocking();
    let agones = support::agones_sdk::AgonesSdkServer::start_blocking();
    println!(
        "Godot {} ({}); extension {}",
        godot.version(),
        godot.origin(),
        lib.display()
    );

    let mut args = vec![
        format!("--http-url={}", http.http_url),
        format!("--https-url={}", http.https_url),
        format!("--agones-sdk-port={}", agones.port),
    ];
    if let Ok(filter) = std::env::var("NETKIT_TEST_FILTER") {
        args.push(format!("--filter={filter}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_project(&godot, &project_dir(), &args, &[], Duration::from_secs(900));
    match check_suite(&out) {
        Ok((passed, failed)) => println!("in-engine suite: {passed} passed, {failed} failed"),
        Err(why) => panic!("the in-engine suite failed:\n{why}"),
    }
}
