//! Where the Agones SDK sidecar is, or why we think there is none.
//!
//! The order: the node's `port` property if set; else `AGONES_SDK_HTTP_PORT`, which Agones
//! always sets, so the sidecar is trusted to come up even when it is not listening yet;
//! else port 9358, but only if a connect to it succeeds at once (a local `sdk-server
//! --local`). Otherwise there is no sidecar: the node prints one line per process ("not
//! running under Agones ...") and every call completes at once with `ERR_CONNECT` and that
//! sentence, with no retries, no pings and no watch. URLs use `127.0.0.1`, not `localhost`,
//! so a resolver answering `::1` first costs nothing.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The environment variable Agones sets in every game server container.
pub const PORT_ENV: &str = "AGONES_SDK_HTTP_PORT";
/// The REST port Agones uses when the variable is not set.
pub const DEFAULT_PORT: u16 = 9358;
/// How long the one-time probe of the default port may take. Loopback answers a connect
/// at once (accepted or refused), so this only bounds odd firewall setups.
const PROBE_TIMEOUT: Duration = Duration::from_millis(100);

/// The outcome of looking for the sidecar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Talk to `127.0.0.1:port`. The sidecar may not be up yet: calls retry.
    Sidecar {
        /// The REST port.
        port: u16,
        /// Where the port came from, for the log line.
        source: &'static str,
    },
    /// No sidecar: every call fails at once with this sentence, nothing is pinged.
    Absent(String),
}

/// Finds the sidecar: an explicit `port` (> 0) wins; else `AGONES_SDK_HTTP_PORT` (as
/// `env_value`), which Agones always sets, so the sidecar is trusted to come up even if it
/// is not listening yet; else the default port, but only if something listens there now
/// (local development with Agones' `sdk-server --local`), probed once with a short connect.
pub fn resolve(port: u16, env_value: Option<&str>) -> Endpoint {
    if port > 0 {
        return Endpoint::Sidecar {
            port,
            source: "the port property",
        };
    }
    if let Some(value) = env_value {
        return match value.trim().parse::<u16>() {
            Ok(port) if port > 0 => Endpoint::Sidecar {
                port,
                source: PORT_ENV,
            },
            _ => Endpoint::Absent(format!(
                "{PORT_ENV} is '{value}', which is not a TCP port number; the Agones SDK is disabled"
            )),
        };
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT));
    if TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).is_ok() {
        Endpoint::Sidecar {
            port: DEFAULT_PORT,
            source: "the default port (an SDK server answers there)",
        }
    } else {
        Endpoint::Absent(format!(
            "not running under Agones: {PORT_ENV} is not set and nothing listens on 127.0.0.1:{DEFAULT_PORT}; SDK calls fail at once and no health pings are sent"
        ))
    }
}

/// Reads `AGONES_SDK_HTTP_PORT` from the process environment.
pub fn env_port() -> Option<String> {
    std::env::var(PORT_ENV).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_port_and_variable_win_without_probing() {
        assert_eq!(
            resolve(4000, Some("5000")),
            Endpoint::Sidecar {
                port: 4000,
                source: "the port property"
            }
        );
        assert_eq!(
            resolve(0, Some(" 5000 ")),
            Endpoint::Sidecar {
                port: 5000,
                source: PORT_ENV
            }
        );
    }

    #[test]
    fn a_bad_variable_is_explained() {
        for bad in ["", "abc", "0", "70000", "-1"] {
            match resolve(0, Some(bad)) {
                Endpoint::Absent(why) => assert!(why.contains("not a TCP port"), "{why}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
