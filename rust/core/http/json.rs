//! JSON parsing on worker threads, with a nesting limit so hostile input cannot overflow
//! a stack (here or later, when the value is converted for the engine).
//!
//! Two things Godot's own JSON accepts are accepted here too: a leading UTF-8 byte order
//! mark (which some Windows tools and .NET servers write), and numbers beyond the range
//! of a 64-bit float such as `1e400`, which become `INF` (or `-INF`), as Godot's JSON
//! makes them. serde_json keeps numbers as text (its `arbitrary_precision` feature), so
//! nothing is lost before [`number_value`] reads them.
//!
//! serde_json runs with `preserve_order`, so Dictionaries keep the server's key order.
//! Integers that fit `i64` become `int`, larger ones `float`. Nesting deeper than 128
//! levels is a decode error (serde_json's recursion limit); the Variant conversion
//! (`godot/json_variant.rs`) has the same bound both ways.

use serde_json::{Number, Value};

/// The UTF-8 encoding of U+FEFF, which some servers put before a JSON body.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A JSON number as the engine will hold it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NumberValue {
    /// An integer that fits i64 (Godot's `int`).
    Int(i64),
    /// Anything else (Godot's `float`): fractions, exponents, integers beyond i64, and
    /// `INF`/`-INF` for magnitudes beyond f64.
    Float(f64),
}

/// Reads a parsed number: integers that fit i64 stay integers, everything else is a float,
/// out-of-range magnitudes infinite (Rust's float parsing rounds them to infinity).
pub fn number_value(number: &Number) -> NumberValue {
    if let Some(i) = number.as_i64() {
        return NumberValue::Int(i);
    }
    NumberValue::Float(number.as_str().parse::<f64>().unwrap_or(f64::NAN))
}

/// The body without a leading UTF-8 byte order mark.
fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes)
}

/// Deepest nesting accepted. serde_json's own recursion guard stops at 128 levels; the
/// engine conversion walks the same depth, so both stay far from any stack limit.
pub const MAX_JSON_DEPTH: usize = 128;

/// Parses JSON text, explaining failures in a sentence (with line and column).
pub fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(without_bom(bytes)).map_err(|e| {
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
        without_bom(body).iter().find(|b| !b.is_ascii_whitespace()),
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

    fn number(v: &Value) -> NumberValue {
        match v {
            Value::Number(n) => number_value(n),
            other => panic!("not a number: {other}"),
        }
    }

    #[test]
    fn integers_stay_integers() {
        let v =
            parse_json(br#"{"a": 1, "b": 1.5, "c": 123456789012345678901234, "d": -7}"#).unwrap();
        assert_eq!(number(&v["a"]), NumberValue::Int(1));
        assert_eq!(number(&v["b"]), NumberValue::Float(1.5));
        assert_eq!(number(&v["c"]), NumberValue::Float(1.2345678901234568e23));
        assert_eq!(number(&v["d"]), NumberValue::Int(-7));
    }

    #[test]
    fn out_of_range_numbers_are_infinite_like_godot() {
        let v = parse_json(br#"{"big": 1e400, "neg": -1e400, "tiny": 1e-400, "deep": [2E+999]}"#)
            .unwrap();
        assert_eq!(number(&v["big"]), NumberValue::Float(f64::INFINITY));
        assert_eq!(number(&v["neg"]), NumberValue::Float(f64::NEG_INFINITY));
        assert_eq!(number(&v["tiny"]), NumberValue::Float(0.0));
        assert_eq!(number(&v["deep"][0]), NumberValue::Float(f64::INFINITY));
    }

    #[test]
    fn leading_bom_is_skipped_once() {
        let v = parse_json(b"\xEF\xBB\xBF{\"a\": 1}").unwrap();
        assert_eq!(number(&v["a"]), NumberValue::Int(1));
        assert!(wants_json(None, b"\xEF\xBB\xBF [1]"));
        assert!(parse_json(b"\xEF\xBB\xBF\xEF\xBB\xBF{}").is_err());
        assert!(parse_json(b"{}\xEF\xBB\xBF").is_err());
    }

    #[test]
    fn sniffing() {
        assert!(wants_json(Some("application/json; charset=utf-8"), b"x"));
        assert!(wants_json(None, b"  {\"a\":1}"));
        assert!(!wants_json(Some("text/html"), b"{"));
        assert!(claims_json(Some("application/problem+json")));
    }
}
