//! Counters and Lists (`beta.proto`, `/v1beta1/...`) with the rules and the answers of
//! Agones' SDK server, checked by hand against its `sdk-server --local` (see the module
//! docs of `agones_sdk`). Every refusal is HTTP 500 with gRPC code 2 (`Unknown`) and the
//! sidecar's wording, since that wording is all a client can tell refusals apart by.

use hyper::StatusCode;
use serde_json::{Value, json};

use super::game_server::GameServer;

/// The largest List capacity (Agones' `GameServerListMaxCapacity`).
const LIST_MAX_CAPACITY: i64 = 1000;

/// A refusal: HTTP status, gRPC code, message.
pub(super) type Refusal = (StatusCode, u8, String);

fn refused(message: String) -> Refusal {
    (StatusCode::INTERNAL_SERVER_ERROR, 2, message)
}

fn bad(message: String) -> Refusal {
    (StatusCode::BAD_REQUEST, 3, message)
}

/// Handles `method path` under `/v1beta1/`; `Ok((answer, changed))`, `None` when the path
/// is not a Counter or List path.
pub(super) fn route(
    gs: &mut GameServer,
    method: &str,
    path: &str,
    body: &Value,
) -> Option<Result<(Value, bool), Refusal>> {
    if let Some(name) = path.strip_prefix("/v1beta1/counters/") {
        let name = percent_decode(name)?;
        return match method {
            "GET" => Some(get_counter(gs, &name).map(|c| (c, false))),
            "PATCH" => Some(update_counter(gs, &name, body).map(|c| (c, true))),
            _ => None,
        };
    }
    let rest = path.strip_prefix("/v1beta1/lists/")?;
    let (name, verb) = match rest.split_once(':') {
        Some((name, verb)) => (name, Some(verb)),
        None => (rest, None),
    };
    let name = percent_decode(name)?;
    Some(match (method, verb) {
        ("GET", None) => get_list(gs, &name).map(|l| (l, false)),
        ("PATCH", None) => update_list(gs, &name, body).map(|l| (l, true)),
        ("POST", Some("addValue")) => add_value(gs, &name, body).map(|l| (l, true)),
        ("POST", Some("removeValue")) => remove_value(gs, &name, body).map(|l| (l, true)),
        _ => return None,
    })
}

fn counter_json(name: &str, (count, capacity): (i64, i64)) -> Value {
    json!({ "name": name, "count": count.to_string(), "capacity": capacity.to_string() })
}

fn list_json(name: &str, capacity: i64, values: &[String]) -> Value {
    json!({ "name": name, "capacity": capacity.to_string(), "values": values })
}

fn get_counter(gs: &GameServer, name: &str) -> Result<Value, Refusal> {
    gs.counters
        .get(name)
        .map(|c| counter_json(name, *c))
        .ok_or_else(|| refused(format!("not found. {name} Counter not found")))
}

/// An `Int64Value` or int64 field: a decimal string or a number; `Ok(None)` when absent.
fn int64(body: &Value, field: &str) -> Result<Option<i64>, Refusal> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("invalid value for int64 field {field}: {s:?}"))),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(format!("invalid value for int64 field {field}: {n}"))),
        Some(other) => Err(bad(format!(
            "invalid value for int64 field {field}: {other}"
        ))),
    }
}

fn update_counter(gs: &mut GameServer, name: &str, body: &Value) -> Result<Value, Refusal> {
    let capacity = int64(body, "capacity")?;
    let count = int64(body, "count")?;
    // protojson takes the JSON name and the proto name alike.
    let diff = match int64(body, "countDiff")? {
        Some(d) => d,
        None => int64(body, "count_diff")?.unwrap_or(0),
    };
    if capacity.is_none() && count.is_none() && diff == 0 {
        return Err(refused(format!(
            "invalid argument. Malformed CounterUpdateRequest: name:\"{name}\""
        )));
    }
    let Some(&(mut now_count, mut now_capacity)) = gs.counters.get(name) else {
        return Err(refused(format!("not found. {name} Counter not found")));
    };
    if let Some(capacity) = capacity {
        if capacity < 0 {
            return Err(refused(format!(
                "out of range. Capacity must be greater than or equal to 0. Found Capacity: {capacity}"
            )));
        }
        now_capacity = capacity;
    }
    let out_of_range = |count: i64, capacity: i64| {
        refused(format!(
            "out of range. Count must be within range [0,Capacity]. Found Count: {count}, Capacity: {capacity}"
        ))
    };
    if let Some(count) = count {
        if count < 0 || count > now_capacity {
            return Err(out_of_range(count, now_capacity));
        }
        now_count = count;
    }
    if diff != 0 {
        // Go's int64 addition wraps, and the wrapped count is then out of range: an
        // increment past the largest count is refused, not applied as "no change".
        let count = now_count.wrapping_add(diff);
        if count < 0 || count > now_capacity {
            return Err(out_of_range(count, now_capacity));
        }
        now_count = count;
    }
    gs.counters
        .insert(name.to_owned(), (now_count, now_capacity));
    gs.resource_version += 1;
    Ok(counter_json(name, (now_count, now_capacity)))
}

fn list_not_found(name: &str) -> Refusal {
    refused(format!("not found. {name} List not found"))
}

fn get_list(gs: &GameServer, name: &str) -> Result<Value, Refusal> {
    gs.lists
        .get(name)
        .map(|(capacity, values)| list_json(name, *capacity, values))
        .ok_or_else(|| list_not_found(name))
}

fn update_list(gs: &mut GameServer, name: &str, body: &Value) -> Result<Value, Refusal> {
    // The gateway makes the field mask from the fields present in the body.
    let capacity = int64(body, "capacity")?;
    let values = match body.get("values") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(format!("values must be strings, got {body}")))?,
        ),
        Some(other) => return Err(bad(format!("values must be a list, got {other}"))),
    };
    if let Some(c) = capacity
        && !(0..=LIST_MAX_CAPACITY).contains(&c)
    {
        return Err(refused(format!(
            "out of range. Capacity must be within range [0,1000]. Found Capacity: {c}"
        )));
    }
    let Some((now_capacity, now_values)) = gs.lists.get_mut(name) else {
        return Err(list_not_found(name));
    };
    if let Some(c) = capacity {
        *now_capacity = c;
    }
    if let Some(v) = values {
        *now_values = v;
    }
    // Silently truncated when the capacity is below the number of values, as Agones does.
    let keep = usize::try_from(*now_capacity).unwrap_or(0);
    now_values.truncate(keep);
    let answer = list_json(name, *now_capacity, now_values);
    gs.resource_version += 1;
    Ok(answer)
}

fn value_of(body: &Value) -> Result<String, Refusal> {
    body.get("value")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| bad(format!("expected {{\"value\": string}}, got {body}")))
}

fn add_value(gs: &mut GameServer, name: &str, body: &Value) -> Result<Value, Refusal> {
    let value = value_of(body)?;
    let Some((capacity, values)) = gs.lists.get_mut(name) else {
        return Err(list_not_found(name));
    };
    if *capacity <= values.len() as i64 {
        return Err(refused(format!(
            "out of range. No available capacity. Current Capacity: {capacity}, List Size: {}",
            values.len()
        )));
    }
    if values.contains(&value) {
        return Err(refused(format!(
            "already exists. Value: {value} already in List: {name}"
        )));
    }
    values.push(value);
    let answer = list_json(name, *capacity, values);
    gs.resource_version += 1;
    Ok(answer)
}

fn remove_value(gs: &mut GameServer, name: &str, body: &Value) -> Result<Value, Refusal> {
    let value = value_of(body)?;
    let Some((capacity, values)) = gs.lists.get_mut(name) else {
        return Err(list_not_found(name));
    };
    let Some(at) = values.iter().position(|v| *v == value) else {
        return Err(refused(format!(
            "not found. Value: {value} not found in List: {name}"
        )));
    };
    values.remove(at);
    let answer = list_json(name, *capacity, values);
    gs.resource_version += 1;
    Ok(answer)
}

/// A path segment as the gateway unescapes it; `None` for a broken escape.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
