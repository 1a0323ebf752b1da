//! Runs the GDScript suite (godot_project/tests) in a real headless Godot against the real
//! test servers, with the extension that this `cargo test` just built.
//!
//! A `harness = false` target (see Cargo.toml), so that the in-engine report reaches the
//! terminal as it happens instead of disappearing into libtest's output capture: the
//! runner's `test FILE::NAME ... ok` lines are printed as they come, the rest of Godot's
//! output prefixed with `godot|` (stdout) or `godot!` (stderr), then a libtest-style
//! `test result:` line and a plain `N passed, M failed` line.
//!
//! Fails (exit code 1) on any failed test, zero tests, `SCRIPT ERROR`, leaked objects at
//! exit, an unexpected engine error, a crash or a hang (see `godot_runner::check_suite`).
//! A failure that is not a failed in-engine test counts as one more failed test, so the
//! summary line never says `0 failed` for a failed run.
//!
//! `NETKIT_TEST_FILTER=substr` runs only the in-engine tests whose `file::method` contains
//! `substr`. Arguments are read as libtest reads them: this target holds one test,
//! `gdscript_suite_in_headless_godot`, so `cargo test some_rust_test` filters it out
//! (and starts no Godot), and `--list` lists it.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use godot_runner::{check_suite, godot_command, project_dir, repo_dir, run_project, test_results};
// The lossy UDP path of the DTLS tests, in front of a port the GDScript suite listens on.
use netkit_test_support::{agones_sdk, http_server, relay};

/// The one test of this target, as libtest filters and `--list` see it.
const TEST_NAME: &str = "gdscript_suite_in_headless_godot";

/// Upper bound for the whole in-engine run.
const SUITE_TIMEOUT: Duration = Duration::from_secs(900);

fn main() -> ExitCode {
    let args = LibtestArgs::parse(std::env::args().skip(1));
    if args.list {
        if !args.ignored_only {
            println!("{TEST_NAME}: test");
        }
        if !args.terse {
            let tests = if args.ignored_only {
                "0 tests"
            } else {
                "1 test"
            };
            println!("\n{tests}, 0 benchmarks");
        }
        return ExitCode::SUCCESS;
    }
    if args.ignored_only || !args.selects(TEST_NAME) {
        println!("\nrunning 0 tests\n");
        println!(
            "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out; \
             finished in 0.00s\n"
        );
        return ExitCode::SUCCESS;
    }
    let started = Instant::now();
    let (passed, failed) = run_suite();
    let ok = failed == 0 && passed > 0;
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; \
         0 filtered out; finished in {:.2}s\n",
        if ok { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    println!("{passed} passed, {failed} failed");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs the suite with its output streamed, judges it, and returns the counts to report
/// (a failure other than failed tests adds one failed entry, printed as its own line).
fn run_suite() -> (usize, usize) {
    let harness_failure = |why: String| {
        println!("test {TEST_NAME} ... FAILED\n\n{why}");
        (0, 1)
    };
    let godot = match godot_command() {
        Ok(godot) => godot,
        Err(why) => return harness_failure(why),
    };
    let lib = match godot_runner::extension::stage_extension(&repo_dir()) {
        Ok(lib) => lib,
        Err(why) => return harness_failure(why),
    };
    let http = http_server::start_blocking();
    let agones = agones_sdk::AgonesSdkServer::start_blocking();
    // test_multiplayer_lossy.gd: its server listens on `lossy_server_port` and its clients
    // reach it through this relay (20 % lost, 5 % duplicated, 10 % reordered).
    let lossy_server_port =
        match std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()) {
            Ok(addr) => addr.port(),
            Err(e) => return harness_failure(format!("no free UDP port for the lossy relay: {e}")),
        };
    let lossy = relay::Relay::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], lossy_server_port)),
        relay::PathConfig::lossy(12),
    );
    let filter = std::env::var("NETKIT_TEST_FILTER").ok();
    println!(
        "\nrunning the in-engine suite{}: Godot {} ({}); extension {}",
        filter
            .as_deref()
            .map(|f| format!(" (NETKIT_TEST_FILTER={f})"))
            .unwrap_or_default(),
        godot.version(),
        godot.origin(),
        lib.display()
    );

    let mut args = vec![
        format!("--http-url={}", http.http_url),
        format!("--https-url={}", http.https_url),
        format!("--agones-sdk-port={}", agones.port),
        format!("--lossy-server-port={lossy_server_port}"),
        format!("--lossy-relay-port={}", lossy.addr.port()),
    ];
    if let Some(filter) = filter {
        args.push(format!("--filter={filter}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_project(&godot, &project_dir(), &args, &[], SUITE_TIMEOUT);

    let lines: Vec<&str> = out.stdout.lines().collect();
    let (passed, failed_lines) = test_results(&lines);
    // check_suite ends its report with the last lines of output; they are on screen
    // already, and repeated they would count twice for anyone counting `test` lines.
    let without_tail = |why: String| match why.split_once("\n--- last output lines ---") {
        Some((head, _)) => head.to_string(),
        None => why,
    };
    match check_suite(&out).map_err(without_tail) {
        Ok(_) => (passed, failed_lines.len()),
        Err(why) if !failed_lines.is_empty() => {
            // The failed tests are already on screen; say everything else that was wrong.
            println!("\n{why}");
            (passed, failed_lines.len())
        }
        Err(why) => {
            println!("test <Godot run: exit code, errors, leaks, crash> ... FAILED\n\n{why}");
            (passed, 1)
        }
    }
}

/// The libtest arguments that decide whether this target's one test runs.
#[derive(Debug, Default)]
struct LibtestArgs {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
    list: bool,
    terse: bool,
    ignored_only: bool,
}

impl LibtestArgs {
    fn parse(args: impl IntoIterator<Item = String>) -> LibtestArgs {
        // Options that take a value in the next argument (when not written `--opt=value`).
        const WITH_VALUE: [&str; 5] = [
            "--color",
            "--logfile",
            "--test-threads",
            "--shuffle-seed",
            "-Z",
        ];
        let mut parsed = LibtestArgs::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--list" => parsed.list = true,
                "--exact" => parsed.exact = true,
                "--ignored" => parsed.ignored_only = true,
                "--skip" => parsed.skips.extend(args.next()),
                "--format" => parsed.terse |= args.next().as_deref() == Some("terse"),
                "--format=terse" => parsed.terse = true,
                a if a.starts_with("--skip=") => parsed.skips.push(a["--skip=".len()..].into()),
                a if WITH_VALUE.contains(&a) => {
                    args.next();
                }
                a if a.starts_with('-') => {} // --nocapture, --include-ignored, -q, ...
                _ => parsed.filters.push(arg),
            }
        }
        parsed
    }

    /// libtest's rule: any filter matches (substring, or equality with `--exact`), and
    /// no `--skip` matches.
    fn selects(&self, name: &str) -> bool {
        let matches = |pattern: &String| {
            if self.exact {
                name == pattern
            } else {
                name.contains(pattern.as_str())
            }
        };
        (self.filters.is_empty() || self.filters.iter().any(matches))
            && !self.skips.iter().any(matches)
    }
}
