//! The multiplayer core (endpoints, links) and two real Godot processes.
//!
//! One test binary per area (as gdext's itest crate): its files are modules, and what
//! they share comes from the `netkit-test-support` crate.

mod core;
mod processes;
mod resume;
