//! serde_json <-> Variant, on the main thread. Integers stay `int` (Godot's own JSON turns
//! every number into `float`), and nesting is bounded both ways so no input can overflow
//! the stack, not even an Array that contains itself.

use godot::prelude::*;
use serde_json::{Map, Number, Value};

use crate::core::http::{MAX_JSON_DEPTH, NumberValue, number_value};

/// Converts parsed JSON to a Variant: objects to Dictionary (key order kept), arrays to
/// Array, integers that fit i64 to int, other numbers to float (`INF`/`-INF` beyond the
/// range of a float, as Godot's JSON gives them).
pub fn json_to_variant(value: &Value) -> Variant {
    to_variant(value, 0)
}

fn to_variant(value: &Value, depth: usize) -> Variant {
    // The parser already refuses deeper input; this guard only protects hand-made values.
    if depth > MAX_JSON_DEPTH {
        return Variant::nil();
    }
    match value {
        Value::Null => Variant::nil(),
        Value::Bool(b) => b.to_variant(),
        Value::Number(n) => match number_value(n) {
            NumberValue::Int(i) => i.to_variant(),
            NumberValue::Float(f) => f.to_variant(),
        },
        Value::String(s) => GString::from(s.as_str()).to_variant(),
        Value::Array(items) => {
            let mut array = VarArray::new();
            for item in items {
                array.push(&to_variant(item, depth + 1));
            }
            array.to_variant()
        }
        Value::Object(map) => {
            let mut dict = VarDictionary::new();
            for (k, v) in map {
                dict.set(
                    &GString::from(k.as_str()).to_variant(),
                    &to_variant(v, depth + 1),
                );
            }
            dict.to_variant()
        }
    }
}

/// Converts a Variant to JSON for a request body. Fails with a sentence on values JSON
/// cannot carry (NaN, objects, nesting deeper than the limit, which also catches cycles).
pub fn variant_to_json(value: &Variant) -> Result<Value, String> {
    from_variant(value, 0)
}

fn from_variant(value: &Variant, depth: usize) -> Result<Value, String> {
    if depth > MAX_JSON_DEPTH {
        return Err(format!(
            "the body is nested deeper than {MAX_JSON_DEPTH} levels (or contains itself)"
        ));
    }
    Ok(match value.get_type() {
        VariantType::NIL => Value::Null,
        VariantType::BOOL => Value::Bool(value.to::<bool>()),
        VariantType::INT => Value::from(value.to::<i64>()),
        VariantType::FLOAT => {
            let f = value.to::<f64>();
            Value::Number(
                Number::from_f64(f).ok_or_else(|| format!("JSON cannot carry the number {f}"))?,
            )
        }
        VariantType::STRING | VariantType::STRING_NAME | VariantType::NODE_PATH => {
            Value::String(value.stringify().to_string())
        }
        VariantType::ARRAY => {
            let array = value.to::<VarArray>();
            let mut out = Vec::with_capacity(array.len());
            for item in array.iter_shared() {
                out.push(from_variant(&item, depth + 1)?);
            }
            Value::Array(out)
        }
        VariantType::DICTIONARY => {
            let dict = value.to::<VarDictionary>();
            let mut out = Map::new();
            for (k, v) in dict.iter_shared() {
                // JSON keys are strings; Godot allows any key, so use its text form.
                out.insert(k.stringify().to_string(), from_variant(&v, depth + 1)?);
            }
            Value::Object(out)
        }
        VariantType::PACKED_BYTE_ARRAY => numbers(value.to::<PackedByteArray>().as_slice()),
        VariantType::PACKED_INT32_ARRAY => numbers(value.to::<PackedInt32Array>().as_slice()),
        VariantType::PACKED_INT64_ARRAY => numbers(value.to::<PackedInt64Array>().as_slice()),
        VariantType::PACKED_FLOAT32_ARRAY => floats(
            value
                .to::<PackedFloat32Array>()
                .as_slice()
                .iter()
                .map(|f| f64::from(*f)),
        )?,
        VariantType::PACKED_FLOAT64_ARRAY => {
            floats(value.to::<PackedFloat64Array>().as_slice().iter().copied())?
        }
        VariantType::PACKED_STRING_ARRAY => Value::Array(
            value
                .to::<PackedStringArray>()
                .as_slice()
                .iter()
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        other => {
            return Err(format!(
                "a value of type {other:?} cannot be sent as JSON; convert it to a String, number, Array or Dictionary"
            ));
        }
    })
}

fn numbers<T: Copy + Into<i64>>(items: &[T]) -> Value {
    Value::Array(items.iter().map(|n| Value::from((*n).into())).collect())
}

fn floats(items: impl Iterator<Item = f64>) -> Result<Value, String> {
    items
        .map(|f| {
            Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| format!("JSON cannot carry the number {f}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}
