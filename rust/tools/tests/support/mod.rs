//! Support for the tools' tests: the root's test support (the real HTTP test server,
//! tests/support), and fresh projects for the install tests.
#![allow(dead_code)]

#[path = "../../../../tests/support/mod.rs"]
mod root;
pub mod scratch_project;

// Each test binary uses a different part.
#[allow(unused_imports)]
pub use root::{agones_sdk, http_server};
