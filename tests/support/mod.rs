//! Shared test support: the real HTTP test server, the headless Godot harness, the
//! staging of the built extension, and fresh projects for the install tests.
#![allow(dead_code)]

pub mod agones_sdk;
pub mod extension;
pub mod godot;
pub mod http_server;
pub mod scratch_project;
