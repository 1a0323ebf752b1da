//! JSON parsing on worker threads, with a nesting limit so hostile input cannot overflow
//! a stack (here or later, when the value is converted for the engine).

use serde_json::Value;

/// Deepest nesting accepted. serde_json's own recursion guard stops at 128 levels; the
/// engine conversion walks the same depth, so both stay far from any stack limit.
pub const MAX_JSON_DEPTH: usize = 128;

/// Parses JSON text, explaining failures in a sentence (with line and column).
pub fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        if e.to_string().contains("recursion limit") {
            format!("the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
        } else {
            format!("the body is not valid JSON: {e}")
        }
    })
}

/// True when a body should be parsed as JSON: the server said so, or (lacking a content
/// type that says otherwise) it starts like an object or array.
pub fn wants_json(content_type: Option<&str>, body: &[u8]) -> bool {
    if let Some(ct) = content_type {
        let ct = ct.to_ascii_lowercase();
        if ct.contains("json") {
            return true;
        }
        if !ct.starts_with("text/plain") && !ct.is_empty() {
            return false;
        }
    }
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{') | Some(b'[')
    )
}

/// True when the content type explicitly claims JSON, so a parse failure is an error
/// rather than just "not JSON".
pub fn claims_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| ct.to_ascii_lowercase().contains("json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        let err = parse_json(deep.as_bytes()).unwrap_err();
        assert!(err.contains("nested deeper"), "{err}");
    }

    #[test]
    fn integers_stay_integers() {
        let v = parse_json(br#"{"a": 1, "b": 1.5, "c": 123456789012345678901234}"#).unwrap();
        assert!(v["a"].is_i64());
        assert!(v["b"].is_f64());
        assert!(v["c"].is_f64());
    }

    #[test]
    fn sniffing() {
        assert!(wants_json(Some("application/json; charset=utf-8"), b"x"));
        assert!(wants_json(None, b"  {\"a\":1}"));
        assert!(!wants_json(Some("text/html"), b"{"));
        assert!(claims_json(Some("application/problem+json")));
    }
}
