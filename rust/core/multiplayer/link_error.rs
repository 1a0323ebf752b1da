//! Why a link ended, as a type: the endpoint turns it into the reason a game reads
//! (`Display`), and tests and callers can tell the kinds apart without reading sentences.

use std::fmt;
use std::time::Duration;

/// Why a [`super::link::Link`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LinkError {
    /// The peer broke netkit's protocol: a malformed bundle, packet, frame or control
    /// message, or data outside the window; the detail says which.
    Protocol(String),
    /// renet refused a packet of the peer (caught where renet itself would panic).
    Rejected,
    /// Reliable data was in flight and the peer reported no delivery for `ack_timeout`.
    Stalled { ack_timeout: Duration },
    /// renet ended the link itself; its reason.
    Renet(String),
    /// A panic inside renet while this side drove it, caught.
    Internal,
}

impl From<String> for LinkError {
    /// The parsers below the link (bundle, wire checks, framing, control messages) say what
    /// was malformed in a sentence: a protocol violation.
    fn from(detail: String) -> Self {
        Self::Protocol(detail)
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol(detail) => write!(f, "protocol violation by the peer: {detail}"),
            Self::Rejected => f.write_str("protocol violation by the peer (rejected by renet)"),
            Self::Stalled { ack_timeout } => write!(
                f,
                "the peer acknowledged no reliable data for {:.1} s (ack_timeout)",
                ack_timeout.as_secs_f64()
            ),
            Self::Renet(reason) => write!(f, "reliability layer: {reason}"),
            Self::Internal => f.write_str("internal error in the reliability layer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_as_its_cause() {
        assert_eq!(
            LinkError::from("bad bundle".to_string()).to_string(),
            "protocol violation by the peer: bad bundle"
        );
        assert!(
            LinkError::Rejected
                .to_string()
                .starts_with("protocol violation")
        );
        assert_eq!(
            LinkError::Stalled {
                ack_timeout: Duration::from_secs(10)
            }
            .to_string(),
            "the peer acknowledged no reliable data for 10.0 s (ack_timeout)"
        );
        assert!(
            LinkError::Renet("x".into())
                .to_string()
                .contains("reliability layer: x")
        );
        assert!(LinkError::Internal.to_string().contains("internal error"));
    }
}
