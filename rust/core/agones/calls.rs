//! The SDK's REST calls as requests, with the checks Kubernetes would otherwise make
//! later (and silently, from the game's point of view).
//!
//! Each call is a request on an internal `HttpPool` with `max_concurrent = 1`, so calls
//! reach the sidecar in the order they were made (`reserve()` then `allocate()` must not
//! end Reserved because a retry reordered them). Lifecycle, metadata and capacity calls
//! carry an `Idempotency-Key`, which is what lets the pool retry them (connection refused
//! while the sidecar container starts, 5xx): 60 retries with full-jitter backoff from 0.1 s
//! up to 1 s, about 30 s in all, as Agones' REST page asks ("the SDK Server sidecar process
//! may startup after your game server binary"). Player connect and disconnect are sent
//! once: after a lost answer a repeat would report `false`. Keys and label values are
//! checked against Kubernetes' rules before sending (`sdk-KEY` at most 63 characters of
//! `A-Za-z0-9-_.`, ending alphanumeric): the sidecar would accept them and the Kubernetes
//! update would fail later, invisible to the game.

use bytes::Bytes;
use serde_json::{Value, json};

use super::counts_lists::CountsCall;
use crate::core::http::{ErrorKind, Method, Rejected, RequestBody, RequestSpec, Response};

/// Most calls that may wait for the sidecar (calls go one at a time, in order); one more
/// fails at once with `ErrorKind::QueueFull` and is not sent.
pub const MAX_WAITING_CALLS: usize = 1024;

/// Longest name part of a Kubernetes label key or label value (RFC 1123 style, 63).
const K8S_NAME_MAX: usize = 63;
/// What the sidecar puts before a key: `agones.dev/` is the key's prefix and `sdk-` the
/// start of its name part, which therefore has 4 characters fewer for the game's key.
const SDK_NAME_PREFIX: &str = "sdk-";

/// One SDK call. Paths and bodies follow Agones' REST API (`sdk.proto`, `alpha.proto`).
#[derive(Clone, Debug, PartialEq)]
pub enum SdkCall {
    /// `POST /ready`.
    Ready,
    /// `POST /allocate`.
    Allocate,
    /// `POST /reserve` `{"seconds": "N"}`; 0 means until the next state change.
    Reserve(i64),
    /// `POST /shutdown`.
    Shutdown,
    /// `GET /gameserver`.
    GetGameServer,
    /// `PUT /metadata/label`, stored as `agones.dev/sdk-KEY`.
    SetLabel(String, String),
    /// `PUT /metadata/annotation`, stored as `agones.dev/sdk-KEY`.
    SetAnnotation(String, String),
    /// `POST /alpha/player/connect` (alpha: the PlayerTracking feature gate).
    PlayerConnect(String),
    /// `POST /alpha/player/disconnect` (alpha).
    PlayerDisconnect(String),
    /// `PUT /alpha/player/capacity` (alpha).
    SetPlayerCapacity(i64),
    /// A Counter or List call (beta: `/v1beta1/counters/...`, `/v1beta1/lists/...`).
    Counts(CountsCall),
}

impl SdkCall {
    /// The call's name as the node's methods spell it, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            SdkCall::Ready => "ready",
            SdkCall::Allocate => "allocate",
            SdkCall::Reserve(_) => "reserve",
            SdkCall::Shutdown => "shutdown",
            SdkCall::GetGameServer => "get_game_server",
            SdkCall::SetLabel(..) => "set_label",
            SdkCall::SetAnnotation(..) => "set_annotation",
            SdkCall::PlayerConnect(_) => "player_connect",
            SdkCall::PlayerDisconnect(_) => "player_disconnect",
            SdkCall::SetPlayerCapacity(_) => "set_player_capacity",
            SdkCall::Counts(call) => call.name(),
        }
    }

    /// How the call is named in messages: `ready`, or `get_counter('rooms')` for a Counter
    /// or List call.
    pub fn label(&self) -> String {
        match self {
            SdkCall::Counts(call) => format!("{}('{}')", call.name(), call.subject_name()),
            _ => self.name().to_string(),
        }
    }

    /// Makes a failed call's sentence say which call failed (the pool's own sentences
    /// name a URL), and a full queue say it in `AgonesSDK`'s terms rather than the pool's
    /// `max_queued`, which the node does not have.
    pub fn describe_failure(&self, response: &mut Response) {
        if response.ok() {
            return;
        }
        let label = self.label();
        if response.error == ErrorKind::QueueFull {
            response.error_message = format!(
                "{label}: not sent: {MAX_WAITING_CALLS} calls already wait for the sidecar, the most AgonesSDK keeps; await earlier calls' `completed` before making more"
            );
        } else if !response.error_message.starts_with(self.name()) {
            response.error_message = format!("{label}: {}", response.error_message);
        }
    }

    /// The request to send to the sidecar at `base` (`http://127.0.0.1:PORT`), or why
    /// the call cannot be made (as the pool takes it: kind, sentence, URL).
    ///
    /// Lifecycle and metadata calls carry an `Idempotency-Key`, which is what lets the
    /// pool retry them while the sidecar starts: repeating them is harmless (the state or
    /// the label is simply set again). Player connect/disconnect are not repeatable (a
    /// retry after a lost answer would report `false`), so they are sent once.
    ///
    /// Counter and List calls are repeatable too, so they wait for a starting sidecar like
    /// the lifecycle calls; the sidecar's 500 is final for them (it is how it says "not
    /// found" or "full"). An increment or an added value whose answer was lost to a
    /// timeout is sent again and may then count twice or answer "already exists".
    pub fn to_request(&self, base: &str, id: u64) -> Result<RequestSpec, Rejected> {
        let (method, path, body, repeatable): (Method, &str, Option<Value>, bool) = match self {
            SdkCall::Ready => (Method::Post, "/ready", Some(json!({})), true),
            SdkCall::Allocate => (Method::Post, "/allocate", Some(json!({})), true),
            SdkCall::Shutdown => (Method::Post, "/shutdown", Some(json!({})), true),
            SdkCall::Reserve(seconds) => {
                if *seconds < 0 {
                    return Err(invalid(
                        base,
                        "/reserve",
                        format!("reserve({seconds}): seconds must be 0 or more"),
                    ));
                }
                // int64 is a string in the gateway's JSON, as Agones' docs show it.
                let body = json!({ "seconds": seconds.to_string() });
                (Method::Post, "/reserve", Some(body), true)
            }
            SdkCall::GetGameServer => (Method::Get, "/gameserver", None, true),
            SdkCall::SetLabel(key, value) => {
                check_key("set_label", key).map_err(|m| invalid(base, "/metadata/label", m))?;
                check_label_value(value).map_err(|m| invalid(base, "/metadata/label", m))?;
                let body = json!({ "key": key, "value": value });
                (Method::Put, "/metadata/label", Some(body), true)
            }
            SdkCall::SetAnnotation(key, value) => {
                check_key("set_annotation", key)
                    .map_err(|m| invalid(base, "/metadata/annotation", m))?;
                let body = json!({ "key": key, "value": value });
                (Method::Put, "/metadata/annotation", Some(body), true)
            }
            SdkCall::PlayerConnect(player) | SdkCall::PlayerDisconnect(player) => {
                let path = if matches!(self, SdkCall::PlayerConnect(_)) {
                    "/alpha/player/connect"
                } else {
                    "/alpha/player/disconnect"
                };
                if player.is_empty() {
                    return Err(invalid(
                        base,
                        path,
                        format!("{}: the player id is empty", self.name()),
                    ));
                }
                (
                    Method::Post,
                    path,
                    Some(json!({ "playerID": player })),
                    false,
                )
            }
            SdkCall::SetPlayerCapacity(count) => {
                if *count < 0 {
                    return Err(invalid(
                        base,
                        "/alpha/player/capacity",
                        format!("set_player_capacity({count}): the capacity must be 0 or more"),
                    ));
                }
                let body = json!({ "count": count.to_string() });
                (Method::Put, "/alpha/player/capacity", Some(body), true)
            }
            SdkCall::Counts(call) => {
                let (method, path, body) = call
                    .request()
                    .map_err(|why| invalid(base, "/v1beta1", why))?;
                return Ok(Self::spec(base, method, &path, body, Some(id), true));
            }
        };
        Ok(Self::spec(
            base,
            method,
            path,
            body,
            repeatable.then_some(id),
            false,
        ))
    }

    /// The request; `key` (the call's number) makes it repeatable.
    fn spec(
        base: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        key: Option<u64>,
        final_500: bool,
    ) -> RequestSpec {
        let mut headers = vec![("Accept".to_string(), "application/json".to_string())];
        if let Some(id) = key {
            headers.push(("Idempotency-Key".to_string(), format!("netkit-agones-{id}")));
        }
        RequestSpec {
            method,
            url: format!("{base}{path}"),
            headers,
            body: body.map_or(RequestBody::Empty, |b| {
                RequestBody::Json(Bytes::from(b.to_string()))
            }),
            final_500,
        }
    }
}

fn invalid(base: &str, path: &str, message: String) -> Rejected {
    Rejected::Call {
        url: format!("{base}{path}"),
        kind: ErrorKind::InvalidRequest,
        why: message,
    }
}

/// A label or annotation key: the sidecar stores it as `agones.dev/sdk-KEY`, so
/// `sdk-KEY` must be a Kubernetes name (at most 63 characters, alphanumerics, `-`, `_`,
/// `.`, ending in an alphanumeric). Kubernetes would reject anything else when the sidecar
/// updates the GameServer, long after the call said OK.
fn check_key(call: &str, key: &str) -> Result<(), String> {
    let name_len = SDK_NAME_PREFIX.len() + key.len();
    let ok_chars = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let ends_ok = key
        .bytes()
        .last()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    if key.is_empty() || !ok_chars || !ends_ok || name_len > K8S_NAME_MAX {
        return Err(format!(
            "{call}: '{key}' cannot be a key: it is stored as 'agones.dev/sdk-{key}', and Kubernetes needs 1 to {} characters from A-Z a-z 0-9 - _ . ending in a letter or digit",
            K8S_NAME_MAX - SDK_NAME_PREFIX.len()
        ));
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters from alphanumerics, `-`, `_`, `.`,
/// beginning and ending with an alphanumeric (Kubernetes' rule for label values).
fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let bytes = value.as_bytes();
    let ok = value.len() <= K8S_NAME_MAX
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "set_label: '{value}' cannot be a label value: Kubernetes allows an empty value or up to {K8S_NAME_MAX} characters from A-Z a-z 0-9 - _ . beginning and ending with a letter or digit (use set_annotation for free text)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://127.0.0.1:9358";

    #[test]
    fn lifecycle_calls_are_repeatable_player_calls_are_not() {
        let spec = SdkCall::Ready.to_request(BASE, 7).unwrap();
        assert_eq!(spec.url, "http://127.0.0.1:9358/ready");
        assert_eq!(spec.header("idempotency-key"), Some("netkit-agones-7"));
        let spec = SdkCall::PlayerConnect("p1".into())
            .to_request(BASE, 8)
            .unwrap();
        assert_eq!(spec.header("idempotency-key"), None);
        let spec = SdkCall::Reserve(5).to_request(BASE, 9).unwrap();
        assert_eq!(
            spec.body,
            RequestBody::Json(Bytes::from(r#"{"seconds":"5"}"#))
        );
    }

    #[test]
    fn failures_name_the_call_and_a_full_queue_says_what_to_do() {
        let call = SdkCall::Counts(CountsCall::GetCounter("rooms".into()));
        let mut full = Response::failed(
            ErrorKind::QueueFull,
            "the queue is full (1024 requests waiting, max_queued); the request to http://x was not sent",
            "http://x",
        );
        call.describe_failure(&mut full);
        assert!(
            full.error_message
                .starts_with("get_counter('rooms'): not sent: 1024 calls already wait")
                && !full.error_message.contains("max_queued"),
            "{}",
            full.error_message
        );
        let mut lost =
            Response::failed(ErrorKind::Decode, "the body is not valid JSON", "http://x");
        SdkCall::Ready.describe_failure(&mut lost);
        assert_eq!(lost.error_message, "ready: the body is not valid JSON");
        // A sentence that names the call already is left alone, and so is a success.
        let mut named = Response::failed(ErrorKind::HttpStatus, "get_counter('rooms'): gone", "");
        call.describe_failure(&mut named);
        assert_eq!(named.error_message, "get_counter('rooms'): gone");
        let mut ok = Response::failed(ErrorKind::None, "", "");
        ok.status = 200;
        call.describe_failure(&mut ok);
        assert_eq!(ok.error_message, "");
    }

    #[test]
    fn keys_and_values_follow_kubernetes() {
        let ok = |k: &str, v: &str| SdkCall::SetLabel(k.into(), v.into()).to_request(BASE, 1);
        assert!(ok("mode", "ranked").is_ok());
        assert!(ok("a.b_c-9", "").is_ok());
        assert!(ok(&"k".repeat(59), "v").is_ok());
        for (k, v) in [
            ("", "v"),
            ("has space", "v"),
            ("trailing-", "v"),
            (&*"k".repeat(60), "v"),
            ("ünï", "v"),
            ("k", "-starts"),
            ("k", "ends."),
            ("k", &*"v".repeat(64)),
            ("k", "a/b"),
        ] {
            let err = ok(k, v).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{k:?} {v:?}");
        }
        // Annotation values are free text; keys follow the same rule.
        assert!(
            SdkCall::SetAnnotation("note".into(), "any text / ✓".into())
                .to_request(BASE, 1)
                .is_ok()
        );
        assert!(
            SdkCall::SetAnnotation("bad key".into(), "x".into())
                .to_request(BASE, 1)
                .is_err()
        );
        assert!(SdkCall::Reserve(-1).to_request(BASE, 1).is_err());
        assert!(SdkCall::SetPlayerCapacity(-1).to_request(BASE, 1).is_err());
        assert!(
            SdkCall::PlayerConnect(String::new())
                .to_request(BASE, 1)
                .is_err()
        );
    }
}
