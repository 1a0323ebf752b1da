//! Support for the tools' tests: the shared test servers (the `netkit-test-support`
//! crate), and fresh projects for the install tests.
#![allow(dead_code)]

pub mod scratch_project;

// Each test binary uses a different part.
#[allow(unused_imports)]
pub use netkit_test_support::{agones_sdk, http_server};
