//! Shared test support: the real HTTP test server. Also used by the tools' tests
//! (rust/tools/tests). The Godot runner is its own crate, `godot-runner`.
#![allow(dead_code)]

pub mod agones_sdk;
pub mod http_server;
