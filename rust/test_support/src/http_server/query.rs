//! A tiny query-string parser: handlers need a few named parameters, nothing more.

/// The decoded `name=value` pairs of a request's query string, in order.
#[derive(Debug, Default)]
pub struct Query {
    raw: String,
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `a=1&b=x%20y`; malformed pieces are kept as best as possible, never rejected.
    pub fn parse(raw: Option<&str>) -> Self {
        let raw = raw.unwrap_or_default();
        let pairs = raw
            .split('&')
            .filter(|piece| !piece.is_empty())
            .map(|piece| {
                let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
                (decode(name), decode(value))
            })
            .collect();
        Self {
            raw: raw.to_owned(),
            pairs,
        }
    }

    /// The query string as received, without the `?`.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value of `name` as a number: `Ok(None)` when absent, `Err` with a message
    /// for the client when present but not a number.
    pub fn number(&self, name: &str) -> Result<Option<u64>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| format!("query parameter {name}={text:?} is not a number")),
        }
    }

    /// Like [`Query::number`] with a default for a missing parameter and an upper bound.
    pub fn number_or(&self, name: &str, default: u64, max: u64) -> Result<u64, String> {
        let value = self.number(name)?.unwrap_or(default);
        if value > max {
            return Err(format!("query parameter {name}={value} is above {max}"));
        }
        Ok(value)
    }

    /// Whether `name` is `1` or `true`.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("1" | "true"))
    }
}

/// Percent-decodes a query component (`+` is a space); invalid escapes stay literal and
/// invalid UTF-8 becomes U+FFFD.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                if let Some(byte) = hex_pair(bytes.get(i + 1..i + 3)) {
                    out.push(byte);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The byte two hex digits spell, if they are two hex digits.
fn hex_pair(digits: Option<&[u8]>) -> Option<u8> {
    let digits = digits?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u8::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}
