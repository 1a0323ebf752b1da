//! The durable outbox: its store, its faults, a backend that hangs calls, and real
//! processes killed mid-save.
//!
//! One test binary per area (as gdext's itest crate): its files are modules, and what
//! they share comes from the `netkit-test-support` crate.
//!
//! Against the test server's Idempotency-Key backend: 50 saves through connection refused
//! then 503s, each applied exactly once; replay on reopen; 400 and 422 to dead letters,
//! listed, kept on disk, dropped; a garbage store file set aside; credentials sent but
//! absent from the file; the max age; `Retry-After`; one pool per file;
//! `outbox_max_pending`; real Godot processes (`godot_project/outbox_check`) killed with
//! SIGKILL with 20 saves pending, and a save made in a `Netkit.shutdown_requested` handler
//! just before quitting, each delivered exactly once by the next process. In the engine:
//! `test_http_outbox.gd`.

mod faults;
mod hanging_backend;
mod processes;
mod store;
