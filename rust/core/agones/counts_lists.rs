//! Counters and Lists (Agones' beta `CountsAndLists` feature): the REST requests of
//! `beta.proto`, the checks the sidecar would make anyway, and its answers read back as
//! plain numbers and sentences.
//!
//! The contract, from `proto/sdk/beta/beta.proto` and the gateway the sidecar runs
//! (grpc-gateway v2 with `UseProtoNames` and `EmitUnpopulated`):
//! - `GET /v1beta1/counters/{name}` → `{"name", "count": "N", "capacity": "N"}`.
//! - `PATCH /v1beta1/counters/{name}` with a `CounterUpdateRequest` body: `count` and
//!   `capacity` are `Int64Value` wrappers (absent means "leave as is"), `countDiff` an
//!   int64 added to the count; answers the Counter.
//! - `GET /v1beta1/lists/{name}` → `{"name", "capacity": "N", "values": [...]}`.
//! - `PATCH /v1beta1/lists/{name}` with a `List` body: the gateway derives the
//!   `update_mask` from the fields present, so only `capacity` and/or `values` are sent.
//! - `POST /v1beta1/lists/{name}:addValue` and `:removeValue` `{"value": V}`.
//!
//! int64 travels as a JSON string both ways. Every error is HTTP 500 (gRPC `Unknown`) with
//! `{"code": 2, "message": ...}`; the message is the only thing telling "not found" from
//! "out of range", so [`explain`] reads it.

use serde_json::{Map, Value, json};

use crate::core::http::{ErrorKind, Method, Response};

/// The largest List capacity the sidecar accepts (`GameServerListMaxCapacity`, 1000).
pub const LIST_MAX_CAPACITY: i64 = 1000;

/// A change to a Counter; what is `None` (or a zero `count_diff`) is left as it is. The
/// sidecar applies `capacity`, then `count`, then `count_diff`, and refuses the whole
/// update when the count would leave `[0, capacity]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterUpdate {
    /// The new count.
    pub count: Option<i64>,
    /// The new capacity.
    pub capacity: Option<i64>,
    /// Added to the count (negative to subtract).
    pub count_diff: i64,
}

/// A change to a List: its capacity, and/or all of its values at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListUpdate {
    /// The new capacity, 0 to 1000. Values beyond it are dropped by the sidecar.
    pub capacity: Option<i64>,
    /// The new values, replacing every value the List held.
    pub values: Option<Vec<String>>,
}

/// A Counter as the sidecar reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    /// Its name (the key under `spec.counters`).
    pub name: String,
    /// The current count.
    pub count: i64,
    /// The most the count may reach.
    pub capacity: i64,
}

/// A List as the sidecar reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListState {
    /// Its name (the key under `spec.lists`).
    pub name: String,
    /// The most values it may hold.
    pub capacity: i64,
    /// Its values, in the order they were added.
    pub values: Vec<String>,
}

impl Counter {
    /// Reads the sidecar's JSON (int64 as strings or numbers).
    pub fn from_json(value: &Value) -> Option<Counter> {
        Some(Counter {
            name: value.get("name")?.as_str()?.to_string(),
            count: int64(value.get("count"))?,
            capacity: int64(value.get("capacity"))?,
        })
    }

    /// As the node hands it to GDScript: numbers as numbers.
    pub fn to_json(&self) -> Value {
        json!({ "name": self.name, "count": self.count, "capacity": self.capacity })
    }
}

impl ListState {
    /// Reads the sidecar's JSON; `values` may be absent (an empty List).
    pub fn from_json(value: &Value) -> Option<ListState> {
        let values = match value.get("values") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => v
                .as_array()?
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()?,
        };
        Some(ListState {
            name: value.get("name")?.as_str()?.to_string(),
            capacity: int64(value.get("capacity"))?,
            values,
        })
    }

    /// As the node hands it to GDScript: numbers as numbers.
    pub fn to_json(&self) -> Value {
        json!({ "name": self.name, "capacity": self.capacity, "values": self.values })
    }

    /// True when no value can be added.
    pub fn is_full(&self) -> bool {
        self.values.len() as i64 >= self.capacity
    }
}

/// An int64 as protojson writes it (a decimal string) or a plain JSON number; an absent
/// field is 0, as `EmitUnpopulated` would have written it.
fn int64(value: Option<&Value>) -> Option<i64> {
    match value {
        None | Some(Value::Null) => Some(0),
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
}

/// What a Counter or List call asks for, before it becomes a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CountsCall {
    /// `get_counter(name)`.
    GetCounter(String),
    /// `update_counter(name, ...)` (and its shorthands).
    UpdateCounter(String, CounterUpdate),
    /// `get_list(name)`.
    GetList(String),
    /// `update_list(name, ...)`.
    UpdateList(String, ListUpdate),
    /// `add_list_value(name, value)`.
    AddListValue(String, String),
    /// `remove_list_value(name, value)`.
    RemoveListValue(String, String),
}

/// Which of the two the call is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A Counter.
    Counter,
    /// A List.
    List,
}

impl CountsCall {
    /// The method's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            CountsCall::GetCounter(_) => "get_counter",
            CountsCall::UpdateCounter(..) => "update_counter",
            CountsCall::GetList(_) => "get_list",
            CountsCall::UpdateList(..) => "update_list",
            CountsCall::AddListValue(..) => "add_list_value",
            CountsCall::RemoveListValue(..) => "remove_list_value",
        }
    }

    /// The Counter's or List's name.
    pub fn subject_name(&self) -> &str {
        match self {
            CountsCall::GetCounter(n)
            | CountsCall::UpdateCounter(n, _)
            | CountsCall::GetList(n)
            | CountsCall::UpdateList(n, _)
            | CountsCall::AddListValue(n, _)
            | CountsCall::RemoveListValue(n, _) => n,
        }
    }

    /// A Counter call or a List call.
    pub fn subject(&self) -> Subject {
        match self {
            CountsCall::GetCounter(_) | CountsCall::UpdateCounter(..) => Subject::Counter,
            _ => Subject::List,
        }
    }

    /// Method, path and body, or why the call cannot be made (a sentence).
    pub fn request(&self) -> Result<(Method, String, Option<Value>), String> {
        let call = self.name();
        let name = self.subject_name();
        let segment = path_segment(call, name)?;
        Ok(match self {
            CountsCall::GetCounter(_) => {
                (Method::Get, format!("/v1beta1/counters/{segment}"), None)
            }
            CountsCall::UpdateCounter(_, update) => {
                let mut body = Map::new();
                if let Some(capacity) = update.capacity {
                    if capacity < 0 {
                        return Err(format!(
                            "{call}('{name}'): the capacity must be 0 or more, not {capacity}"
                        ));
                    }
                    body.insert("capacity".into(), capacity.to_string().into());
                }
                if let Some(count) = update.count {
                    if count < 0 {
                        return Err(format!(
                            "{call}('{name}'): the count must be 0 or more, not {count}"
                        ));
                    }
                    body.insert("count".into(), count.to_string().into());
                }
                if update.count_diff != 0 {
                    body.insert("countDiff".into(), update.count_diff.to_string().into());
                }
                if body.is_empty() {
                    return Err(format!(
                        "{call}('{name}'): nothing to change: give count, capacity or a non-zero count_diff"
                    ));
                }
                (
                    Method::Patch,
                    format!("/v1beta1/counters/{segment}"),
                    Some(Value::Object(body)),
                )
            }
            CountsCall::GetList(_) => (Method::Get, format!("/v1beta1/lists/{segment}"), None),
            CountsCall::UpdateList(_, update) => {
                let mut body = Map::new();
                if let Some(capacity) = update.capacity {
                    if !(0..=LIST_MAX_CAPACITY).contains(&capacity) {
                        return Err(format!(
                            "{call}('{name}'): the capacity must be 0 to {LIST_MAX_CAPACITY} (Agones' limit), not {capacity}"
                        ));
                    }
                    body.insert("capacity".into(), capacity.to_string().into());
                }
                if let Some(values) = &update.values {
                    body.insert("values".into(), json!(values));
                }
                if body.is_empty() {
                    return Err(format!(
                        "{call}('{name}'): nothing to change: give capacity and/or values"
                    ));
                }
                (
                    Method::Patch,
                    format!("/v1beta1/lists/{segment}"),
                    Some(Value::Object(body)),
                )
            }
            CountsCall::AddListValue(_, value) | CountsCall::RemoveListValue(_, value) => {
                if value.is_empty() {
                    return Err(format!("{call}('{name}'): the value is empty"));
                }
                let verb = if matches!(self, CountsCall::AddListValue(..)) {
                    "addValue"
                } else {
                    "removeValue"
                };
                (
                    Method::Post,
                    format!("/v1beta1/lists/{segment}:{verb}"),
                    Some(json!({ "value": value })),
                )
            }
        })
    }
}

/// The name as one path segment: percent-encoded, and refused when the gateway could not
/// route it back (`/` splits segments, `:` starts a custom verb like `:addValue`).
fn path_segment(call: &str, name: &str) -> Result<String, String> {
    if name.is_empty() || name.contains(['/', ':']) || name.chars().any(char::is_control) {
        return Err(format!(
            "{call}('{name}'): a Counter or List name must be non-empty, without '/', ':' or control characters"
        ));
    }
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

/// How the sidecar refused a call, read from its message (it sends every refusal as gRPC
/// `Unknown`, so the words are all there is; both the cluster's and the local SDK server's
/// wordings are known here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The Counter or List is not declared in the GameServer spec.
    NoSuchSubject,
    /// `remove_list_value`: the value is not in the List.
    NoSuchValue,
    /// The List is at its capacity, or the count would leave `[0, capacity]`.
    OutOfRange,
    /// `add_list_value`: the value is already in the List.
    AlreadyExists,
    /// The sidecar runs without the `CountsAndLists` feature gate.
    NotEnabled,
    /// Anything else.
    Other,
}

/// Reads a refusal from the sidecar's message.
pub fn refusal(call: &CountsCall, message: &str) -> Refusal {
    let lower = message.to_ascii_lowercase();
    if lower.contains("countsandlists not enabled") {
        Refusal::NotEnabled
    } else if lower.contains("already exists") {
        Refusal::AlreadyExists
    } else if lower.contains("out of range") {
        Refusal::OutOfRange
    } else if lower.contains("not found") {
        // "not found. Value: v not found in List: l" (local) and "not found: value v not in
        // list l" (cluster) are about the value; the rest about the Counter or List.
        let about_value = matches!(call, CountsCall::RemoveListValue(..))
            && (lower.contains("value:") || lower.contains("not found: value"));
        if about_value {
            Refusal::NoSuchValue
        } else {
            Refusal::NoSuchSubject
        }
    } else {
        Refusal::Other
    }
}

/// Rewrites a finished Counter/List call for the game: a success's JSON with numbers as
/// numbers, a refusal's message as a sentence naming the call, the cause and the fix. The
/// sidecar's own words stay at the end of the sentence.
pub fn explain(call: &CountsCall, response: &mut Response) {
    if response.ok() {
        // An answer about another Counter or List is as wrong as one of the wrong shape
        // (and would mislead `track_players`, which reads List answers).
        let asked = call.subject_name();
        let parsed = response.json.as_ref().and_then(|v| match call.subject() {
            Subject::Counter => Counter::from_json(v)
                .filter(|c| c.name == asked)
                .map(|c| c.to_json()),
            Subject::List => ListState::from_json(v)
                .filter(|l| l.name == asked)
                .map(|l| l.to_json()),
        });
        match parsed {
            Some(json) => response.json = Some(json),
            None => {
                response.error = ErrorKind::Decode;
                response.error_message = format!(
                    "{}('{asked}'): the sidecar's answer is not the {} '{asked}': {}",
                    call.name(),
                    match call.subject() {
                        Subject::Counter => "Counter",
                        Subject::List => "List",
                    },
                    response.text().chars().take(200).collect::<String>()
                );
            }
        }
        return;
    }
    if response.error != ErrorKind::HttpStatus {
        return;
    }
    let Some(said) = response
        .json
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return;
    };
    let name = call.subject_name();
    let what = match call.subject() {
        Subject::Counter => format!("the Counter '{name}'"),
        Subject::List => format!("the List '{name}'"),
    };
    let declared_under = match call.subject() {
        Subject::Counter => "spec.counters",
        Subject::List => "spec.lists",
    };
    let cause = match refusal(call, &said) {
        Refusal::NoSuchSubject => format!(
            "{what} does not exist: declare it under {declared_under} in the GameServer (or Fleet template)"
        ),
        Refusal::NoSuchValue => match call {
            CountsCall::RemoveListValue(_, value) => {
                format!("'{value}' is not in {what}")
            }
            _ => format!("{what}: a value was not found"),
        },
        Refusal::OutOfRange => match call {
            CountsCall::AddListValue(..) => format!("{what} is full"),
            CountsCall::UpdateCounter(..) => {
                format!("{what} would leave the range 0 to its capacity")
            }
            CountsCall::UpdateList(..) => format!(
                "{what} cannot take that capacity (Agones allows 0 to {LIST_MAX_CAPACITY})"
            ),
            _ => format!("{what}: a number is out of range"),
        },
        Refusal::AlreadyExists => match call {
            CountsCall::AddListValue(_, value) => format!("'{value}' is already in {what}"),
            _ => format!("{what}: the value already exists"),
        },
        Refusal::NotEnabled => "the sidecar runs without the CountsAndLists feature gate (beta, on by default since Agones 1.41)".to_string(),
        Refusal::Other => format!("the sidecar refused it (HTTP {})", response.status),
    };
    response.error_message = format!(
        "{}('{name}'): {cause} (the sidecar said: {said})",
        call.name()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn refused(message: &str) -> Response {
        let body = json!({ "code": 2, "message": message, "details": [] });
        let mut r = Response::failed(ErrorKind::HttpStatus, "HTTP 500", "http://x");
        r.status = 500;
        r.body = Bytes::from(body.to_string());
        r.json = Some(body);
        r
    }

    #[test]
    fn requests_follow_beta_proto() {
        let (m, path, body) = CountsCall::UpdateCounter(
            "rooms".into(),
            CounterUpdate {
                count: Some(5),
                capacity: Some(11),
                count_diff: 0,
            },
        )
        .request()
        .unwrap();
        assert_eq!(m, Method::Patch);
        assert_eq!(path, "/v1beta1/counters/rooms");
        assert_eq!(body, Some(json!({"capacity": "11", "count": "5"})));
        let (_, _, body) = CountsCall::UpdateCounter(
            "rooms".into(),
            CounterUpdate {
                count_diff: -2,
                ..Default::default()
            },
        )
        .request()
        .unwrap();
        assert_eq!(body, Some(json!({"countDiff": "-2"})));
        // Only the fields present go out: the gateway makes the field mask from them.
        let (m, path, body) = CountsCall::UpdateList(
            "players".into(),
            ListUpdate {
                capacity: Some(120),
                values: None,
            },
        )
        .request()
        .unwrap();
        assert_eq!(
            (m, path.as_str()),
            (Method::Patch, "/v1beta1/lists/players")
        );
        assert_eq!(body, Some(json!({"capacity": "120"})));
        let (m, path, body) = CountsCall::AddListValue("players".into(), "p 9".into())
            .request()
            .unwrap();
        assert_eq!(
            (m, path.as_str()),
            (Method::Post, "/v1beta1/lists/players:addValue")
        );
        assert_eq!(body, Some(json!({"value": "p 9"})));
        let (_, path, _) = CountsCall::RemoveListValue("my list".into(), "x".into())
            .request()
            .unwrap();
        assert_eq!(path, "/v1beta1/lists/my%20list:removeValue");
    }

    #[test]
    fn bad_arguments_are_refused_before_sending() {
        let bad = [
            CountsCall::GetCounter(String::new()),
            CountsCall::GetList("a/b".into()),
            CountsCall::GetList("a:addValue".into()),
            CountsCall::UpdateCounter("c".into(), CounterUpdate::default()),
            CountsCall::UpdateCounter(
                "c".into(),
                CounterUpdate {
                    capacity: Some(-1),
                    ..Default::default()
                },
            ),
            CountsCall::UpdateCounter(
                "c".into(),
                CounterUpdate {
                    count: Some(-1),
                    ..Default::default()
                },
            ),
            CountsCall::UpdateList("l".into(), ListUpdate::default()),
            CountsCall::UpdateList(
                "l".into(),
                ListUpdate {
                    capacity: Some(1001),
                    values: None,
                },
            ),
            CountsCall::AddListValue("l".into(), String::new()),
        ];
        for call in bad {
            let err = call.request().unwrap_err();
            assert!(err.starts_with(call.name()), "{err}");
        }
    }

    #[test]
    fn answers_become_numbers() {
        let mut r = Response::failed(ErrorKind::None, "", "http://x");
        r.status = 200;
        r.json = Some(json!({"name": "rooms", "count": "3", "capacity": "10"}));
        explain(&CountsCall::GetCounter("rooms".into()), &mut r);
        assert_eq!(
            r.json,
            Some(json!({"name": "rooms", "count": 3, "capacity": 10}))
        );
        r.json = Some(json!({"name": "players", "capacity": "2"}));
        explain(&CountsCall::GetList("players".into()), &mut r);
        assert_eq!(
            r.json,
            Some(json!({"name": "players", "capacity": 2, "values": []}))
        );
        r.json = Some(json!({"unexpected": true}));
        explain(&CountsCall::GetList("players".into()), &mut r);
        assert_eq!(r.error, ErrorKind::Decode);
        assert!(
            r.error_message.contains("not the List 'players'"),
            "{}",
            r.error_message
        );
        // A well-formed answer about something else is not taken for the one asked for.
        for (call, answer) in [
            (
                CountsCall::AddListValue("players".into(), "p1".into()),
                json!({"name": "rooms", "count": "1", "capacity": "10"}),
            ),
            (
                CountsCall::GetCounter("rooms".into()),
                json!({"name": "matches", "count": "1", "capacity": "10"}),
            ),
        ] {
            let mut r = Response::failed(ErrorKind::None, "", "http://x");
            r.status = 200;
            r.json = Some(answer);
            explain(&call, &mut r);
            assert_eq!(r.error, ErrorKind::Decode, "{call:?}");
            assert!(
                r.error_message.starts_with(call.name()),
                "{}",
                r.error_message
            );
        }
    }

    #[test]
    fn refusals_of_both_sidecars_become_sentences() {
        let cases: [(CountsCall, &str, &str); 7] = [
            (
                CountsCall::GetCounter("rooms".into()),
                "counter not found: rooms",
                "the Counter 'rooms' does not exist",
            ),
            (
                CountsCall::GetCounter("rooms".into()),
                "not found. rooms Counter not found",
                "the Counter 'rooms' does not exist",
            ),
            (
                CountsCall::AddListValue("players".into(), "7".into()),
                "out of range. No available capacity. Current Capacity: 2, List Size: 2",
                "the List 'players' is full",
            ),
            (
                CountsCall::AddListValue("players".into(), "7".into()),
                "already exists. Value: 7 already in List: players",
                "'7' is already in the List 'players'",
            ),
            (
                CountsCall::RemoveListValue("players".into(), "7".into()),
                "not found: value 7 not in list players",
                "'7' is not in the List 'players'",
            ),
            (
                CountsCall::RemoveListValue("players".into(), "7".into()),
                "not found. Value: 7 not found in List: players",
                "'7' is not in the List 'players'",
            ),
            (
                CountsCall::RemoveListValue("players".into(), "7".into()),
                "not found. players List not found",
                "the List 'players' does not exist",
            ),
        ];
        for (call, said, expected) in cases {
            let mut r = refused(said);
            explain(&call, &mut r);
            assert!(r.error_message.contains(expected), "{}", r.error_message);
            assert!(r.error_message.contains(said), "{}", r.error_message);
            assert_eq!(r.error, ErrorKind::HttpStatus);
        }
    }
}
