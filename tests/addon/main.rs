//! The addon as a whole: rust/core stays engine-free, SIGTERM reaches a real Godot.
//!
//! One test binary per area (as gdext's itest crate): its files are modules, and what
//! they share comes from the `netkit-test-support` crate.

mod engine_free;
mod shutdown_signal;
