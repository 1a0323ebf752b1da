//! HTTPPool's core against the real test server: requests, retries, downloads, streams, hostile servers.
//!
//! One test binary per area (as gdext's itest crate): its files are modules, and what
//! they share comes from the `netkit-test-support` crate.

mod core;
mod transfer;
mod transfer_hostile;
