//! Shared test support: the real HTTP test server, the headless Godot harness, and the
//! staging of the built extension.
#![allow(dead_code)]

pub mod agones_sdk;
pub mod extension;
pub mod godot;
pub mod http_server;
