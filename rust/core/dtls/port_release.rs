//! A closed server's UDP port, free again before dropping the server returns.
//!
//! The socket is shared by the tasks of the server (the demultiplexer, every session,
//! webrtc-dtls's own tasks through `PeerConn`), and it closes when the last of them has
//! seen the cancellation and ended: 1 to 7 ms after the close on this machine, with
//! sessions and handshakes in flight. ENet closes its socket inside `close()`, so a script
//! that closes a server and starts one on the same port at once (a lobby's "host again")
//! must work here too; without this wait that `bind` failed with "address in use" every
//! time.
//!
//! The signal is a field dropped after the socket ([`Socket`]): a count of references
//! reaching zero is not enough, since the last owner's thread may still be inside the
//! socket's destructor when another thread reads the count.

use std::ops::Deref;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;

/// Longest the close waits for the port; a task that has not ended by then (none is known
/// to) leaves the port taken a little longer, and a new `bind` reports "address in use".
pub const CLOSE_WAIT: Duration = Duration::from_millis(250);

/// Whether the socket is closed, and a condition variable to wait for it.
type Closed = Arc<(Mutex<bool>, Condvar)>;

/// A UDP socket that says when it has been closed.
pub(crate) struct Socket {
    // Declared first, so dropped (closed) before `closed` tells.
    udp: UdpSocket,
    closed: ClosedOnDrop,
}

impl Socket {
    pub(crate) fn new(udp: UdpSocket) -> Self {
        Self {
            udp,
            closed: ClosedOnDrop(Closed::default()),
        }
    }

    /// Watches when this socket closes.
    pub(crate) fn release(&self) -> PortRelease {
        PortRelease(self.closed.0.clone())
    }
}

impl Deref for Socket {
    type Target = UdpSocket;

    fn deref(&self) -> &UdpSocket {
        &self.udp
    }
}

/// Sets the flag and wakes the waiters when dropped, which happens after the socket's
/// own drop closed it.
struct ClosedOnDrop(Closed);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        let (flag, changed) = &*self.0;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        changed.notify_all();
    }
}

/// Watches whether a socket is still open, without keeping it open.
#[derive(Clone, Debug)]
pub struct PortRelease(Closed);

impl PortRelease {
    /// Whether the socket is closed.
    pub fn is_released(&self) -> bool {
        *self.0.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks until the socket is closed or [`CLOSE_WAIT`] passed; true when closed. On a
    /// thread of netkit's runtime it does not wait (the tasks that close the socket may
    /// need that very thread) and returns whether it is closed already.
    pub fn wait(&self) -> bool {
        if tokio::runtime::Handle::try_current().is_ok() {
            return self.is_released();
        }
        let (flag, changed) = &*self.0;
        let guard = flag.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = changed
            .wait_timeout_while(guard, CLOSE_WAIT, |closed| !*closed)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }
}
