//! DTLS: handshakes, trust, floods and hostile clients, lossy networks, scale.
//!
//! One test binary per area (as gdext's itest crate): its files are modules, and what
//! they share comes from the `netkit-test-support` crate.

mod flood;
mod fragments;
mod half_open;
mod handshake;
mod network;
mod robust;
mod scale;
mod tls_trust;
