//! godot-netkit: a pooled HTTP manager and a crash-proof DTLS peer for Godot 4.
//!
//! `core` is engine-free and usable (and tested) from plain Rust; `godot` is the thin
//! binding layer that registers the nodes.

pub mod core;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod godot;

pub use crate::godot::NetkitExtension;
