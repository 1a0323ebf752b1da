//! Shared test support: the real HTTP test server and the headless Godot harness.
#![allow(dead_code)]

pub mod http_server;
