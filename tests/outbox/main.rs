//! The durable outbox: its store, its faults, a backend that hangs calls, and real
//! processes killed mid-save.
//!
//! One test binary per area (as gdext's itest crate): its files are modules, and what
//! they share comes from the `netkit-test-support` crate.

mod faults;
mod hanging_backend;
mod processes;
mod store;
