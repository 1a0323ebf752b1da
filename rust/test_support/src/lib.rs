//! What godot-netkit's tests share: real servers on 127.0.0.1 and the helpers around them.
//!
//! - [`http_server`]: the HTTP/1.1 and HTTP/2 test server (TLS too), with routes for
//!   retries, redirects, transfers, the outbox, and raw misbehaving servers.
//! - [`agones_sdk`]: a stand-in for Agones' SDK sidecar REST API.
//! - [`relay`]: a UDP path that loses, duplicates, reorders and delays datagrams.
//! - [`dtls`], [`hostile`], [`mp`]: DTLS options, identities and event waits; clients that
//!   misbehave on purpose; multiplayer endpoints.
//! - [`outbox`], [`transfer`]: scratch folders and quick pools for the outbox, download
//!   and stream tests.
//! - [`wait`]: one way to wait for a condition with a deadline.

pub mod agones_sdk;
pub mod dtls;
pub mod hostile;
pub mod http_server;
pub mod mp;
pub mod outbox;
pub mod relay;
pub mod transfer;
pub mod wait;
