//! Kernel buffers of the DTLS sockets. Linux gives a UDP socket about 208 KiB of receive
//! buffer by default, and it charges each queued datagram's whole allocation (about
//! 1 KiB for a small one) against it. So a burst of a thousand small packets, or one
//! frame's worth from many clients, overflows it whenever the receiving thread is
//! descheduled for a moment. The kernel then drops datagrams silently, and no queue of
//! netkit's ever sees them.
//! Game networking libraries size these buffers themselves (ENet asks for 256 KiB);
//! netkit asks for more, and the kernel caps the request at `net.core.rmem_max` /
//! `net.core.wmem_max`, which a dedicated server's host can raise.
//!
//! Every DTLS socket asks for 4 MiB of receive and send buffer (`SO_RCVBUF`/`SO_SNDBUF`
//! through socket2). Before, the in-engine 1,000-packet burst test lost 10 of 1,000 while
//! the machine was busy with builds.

use socket2::SockRef;

/// What each DTLS socket asks for, each way, in bytes.
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Asks the kernel for [`SOCKET_BUFFER_BYTES`] of receive and send buffer. A refusal is
/// not an error: the socket works with the default size, as it did before.
pub(crate) fn enlarge<'s, S>(socket: &'s S)
where
    SockRef<'s>: From<&'s S>,
{
    let socket = SockRef::from(socket);
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    /// The kernel's cap on what a socket may ask for (Linux), if readable.
    fn rmem_max() -> Option<usize> {
        std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// A burst of a thousand small datagrams waits in the kernel, complete, while the
    /// receiving thread is not reading (descheduled, busy), where the default buffer would
    /// keep about two hundred of them.
    #[test]
    fn a_burst_waits_in_the_kernel_while_nobody_reads() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        enlarge(&receiver);
        let cap = rmem_max().unwrap_or(0);
        let granted = SockRef::from(&receiver).recv_buffer_size().unwrap();
        // Linux reports twice what it grants (the doubled bookkeeping of socket(7)).
        assert!(
            granted >= SOCKET_BUFFER_BYTES.min(cap),
            "asked for {SOCKET_BUFFER_BYTES} bytes, the kernel allows {cap}, got {granted}"
        );
        if cap < SOCKET_BUFFER_BYTES {
            return; // the burst below needs the full buffer; the cap was checked above
        }
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        enlarge(&sender);
        let to = receiver.local_addr().unwrap();
        for i in 0..1000u32 {
            let mut d = [0u8; 100];
            d[..4].copy_from_slice(&i.to_le_bytes());
            sender.send_to(&d, to).unwrap();
        }
        receiver.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 200];
        let mut got = 0;
        while receiver.recv(&mut buf).is_ok() {
            got += 1;
        }
        assert_eq!(got, 1000, "datagrams kept while nobody read");
    }
}
