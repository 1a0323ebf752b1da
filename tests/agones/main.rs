//! AgonesSDK's client against the SDK test server, and SIGTERM in a real process.
//!
//! One test binary per area (as gdext's itest crate): its files are modules, and what
//! they share comes from the `netkit-test-support` crate.

mod core;
mod counts_lists;
mod hostile;
mod sigterm;
