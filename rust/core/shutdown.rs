//! SIGTERM / SIGINT for headless dedicated servers: instead of dying mid-save, the process
//! records the request so the main thread can tell the game, which then saves and
//! disconnects before quitting. A second signal while the first is pending exits at once,
//! so an operator is never stuck with a server that ignores them.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The process's exit code when the grace period ran out before the game quit: the code
/// GNU `timeout` uses for a command that timed out, so an orchestrator (or a script reading
/// `$?`) can tell it from a clean exit (0, or the code the game passed to `quit()`). A
/// second signal exits at once with 1.
pub const GRACE_EXPIRED_EXIT_CODE: i32 = 124;

/// Installs the handlers (once per process). Returns an error sentence where the platform
/// has no such signals or the OS refused.
pub fn install() -> Result<(), String> {
    if REQUESTED.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicBool::new(false));
    install_handlers(&flag)?;
    let _ = REQUESTED.set(flag);
    Ok(())
}

/// The exit code of a second signal while the first is being handled.
#[cfg(unix)]
const SECOND_SIGNAL_EXIT_CODE: i32 = 1;

#[cfg(unix)]
fn install_handlers(flag: &Arc<AtomicBool>) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for signal in [SIGTERM, SIGINT] {
        // Order matters: the conditional exit must see the flag before this signal sets it,
        // so only a *second* signal exits.
        signal_hook::flag::register_conditional_shutdown(
            signal,
            SECOND_SIGNAL_EXIT_CODE,
            flag.clone(),
        )
        .map_err(|e| format!("cannot watch signal {signal}: {e}"))?;
        signal_hook::flag::register(signal, flag.clone())
            .map_err(|e| format!("cannot watch signal {signal}: {e}"))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn install_handlers(_flag: &Arc<AtomicBool>) -> Result<(), String> {
    Err("graceful shutdown on signals is only available on Unix-like systems".to_string())
}

/// True once SIGTERM or SIGINT arrived after [`install`].
pub fn requested() -> bool {
    REQUESTED.get().is_some_and(|f| f.load(Ordering::SeqCst))
}
