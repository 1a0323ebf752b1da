//! The engine-free HTTP pool: one keep-alive connection pool, a FIFO queue with a bound,
//! retries with backoff, and responses (JSON already parsed) pushed through an event channel.

mod classify;
mod client;
mod error;
mod exec;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzz;
mod json;
pub mod outbox;
mod pool;
mod redirect;
mod request;
mod request_parse;
mod response;
mod retry;
mod settings;
pub mod transfer;

pub use client::{MAX_RESPONSE_HEAD_BYTES, MAX_RESPONSE_HEADERS};
pub use error::ErrorKind;
pub use json::{MAX_JSON_DEPTH, NumberValue, number_value, parse_json};
pub use pool::{CancelHandle, HttpEvent, HttpPool, PoolStats, RequestId};
pub use request::{Method, RequestBody, RequestSpec, build_url};
pub use request_parse::{ParsedRequest, Rejected};
pub use response::Response;
pub use retry::{RetryPolicy, backoff_delay, is_idempotent, parse_retry_after};
pub use settings::{DEFAULT_POOL_IDLE_TIMEOUT, PoolSettings};
