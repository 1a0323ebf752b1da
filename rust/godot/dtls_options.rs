//! Reads the options Dictionary a script hands to `DTLSPeer` into the core's plain Rust
//! options. It runs on the main thread because certificates and keys may arrive as
//! Godot objects (`X509Certificate`, `CryptoKey`), which must become PEM text before
//! anything reaches a background task.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use godot::classes::{CryptoKey, X509Certificate};
use godot::global::type_string;
use godot::prelude::*;

use crate::core::dtls::record::MAX_DATAGRAM;
use crate::core::dtls::{
    ClientCredentials, ClientOptions, ServerCredentials, ServerOptions, ServerVerification,
    SessionOptions, psk_map,
};

/// Keys both sides understand.
const SESSION_KEYS: &[&str] = &[
    "handshake_timeout",
    "idle_timeout",
    "keepalive_interval",
    "mtu",
    "send_queue",
    "inbound_queue",
    "dispatch_queue",
    "simulate",
];
/// Keys only `start_server` understands.
const SERVER_KEYS: &[&str] = &[
    "bind_address",
    "certificate",
    "private_key",
    "psk_keys",
    "psk_identity_hint",
    "max_clients",
    "max_pending_handshakes",
];
/// Keys only `connect_to_server` understands.
const CLIENT_KEYS: &[&str] = &[
    "ca_certificate",
    "server_name",
    "pinned_sha256",
    "psk",
    "psk_identity",
    "insecure_skip_verify",
];

/// `start_server` keys of which a script gives one set (a certificate or PSKs): the node's
/// credential properties apply only when the Dictionary names none of them.
pub(super) const SERVER_CREDENTIAL_KEYS: &[&str] = &[
    "certificate",
    "private_key",
    "psk_keys",
    "psk_identity_hint",
];
/// `connect_to_server` keys that say how to trust the server, one way only: the node's
/// trust properties apply only when the Dictionary names none of them. Every client-only
/// key is one of them.
pub(super) const CLIENT_TRUST_KEYS: &[&str] = CLIENT_KEYS;

/// `options` with `defaults` (the node's Inspector properties) added for the keys it leaves
/// out, as HTTPRequest's properties stand in for what a call does not say. Keys of
/// `exclusive` go in as a set or not at all: a Dictionary naming any of them keeps its own
/// choice, so a `"psk"` given to a call is never mixed with a pinned fingerprint set in the
/// Inspector.
pub(super) fn with_defaults(
    options: &VarDictionary,
    defaults: Vec<(&'static str, Variant)>,
    exclusive: &[&str],
) -> VarDictionary {
    let own_choice = exclusive
        .iter()
        .any(|k| options.contains_key(&k.to_variant()));
    let mut merged = options.duplicate_shallow();
    for (key, value) in defaults {
        let key = key.to_variant();
        let excluded = own_choice && exclusive.iter().any(|k| k.to_variant() == key);
        if !excluded && !options.contains_key(&key) {
            merged.set(&key, &value);
        }
    }
    merged
}

/// Smallest MTU accepted: below this a certificate flight fragments absurdly and a
/// payload barely fits.
const MIN_MTU: i64 = 256;
/// Longest timeout accepted, in seconds; far beyond any real use, and it keeps
/// `Instant + Duration` arithmetic in the core away from overflow.
const MAX_SECONDS: f64 = 86_400.0 * 365.0;

/// What `start_server` needs once its options are read.
pub(super) struct ServerSetup {
    pub addr: SocketAddr,
    pub options: ServerOptions,
}

/// What `connect_to_server` needs once its options are read.
pub(super) struct ClientSetup {
    pub options: ClientOptions,
    /// True when the script chose `insecure_skip_verify`, so the node can warn.
    pub insecure: bool,
}

/// The options Dictionary with every key checked against the caller's list, read one
/// typed value at a time.
struct Reader {
    values: HashMap<String, Variant>,
}

impl Reader {
    fn new(
        dict: &VarDictionary,
        own: &[&str],
        other: &[&str],
        other_name: &str,
    ) -> Result<Self, String> {
        let mut values = HashMap::new();
        for (key, value) in dict.iter_shared() {
            if !matches!(
                key.get_type(),
                VariantType::STRING | VariantType::STRING_NAME
            ) {
                return Err(format!(
                    "option keys must be Strings, got {} {}",
                    type_name(&key),
                    key.stringify()
                ));
            }
            let name = key.stringify().to_string();
            if other.contains(&name.as_str()) {
                return Err(format!(
                    "the option \"{name}\" belongs to {other_name}, not here"
                ));
            }
            if !own.contains(&name.as_str()) && !SESSION_KEYS.contains(&name.as_str()) {
                let mut known: Vec<&str> = own.iter().chain(SESSION_KEYS).copied().collect();
                known.sort_unstable();
                return Err(format!(
                    "unknown option \"{name}\" (known options: {})",
                    known.join(", ")
                ));
            }
            values.insert(name, value);
        }
        Ok(Self { values })
    }

    fn has(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    fn raw(&self, key: &str) -> Option<&Variant> {
        self.values.get(key)
    }

    fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) if matches!(v.get_type(), VariantType::STRING | VariantType::STRING_NAME) => {
                Ok(Some(v.stringify().to_string()))
            }
            Some(v) => Err(wrong_type(key, "a String", v)),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) if v.get_type() == VariantType::BOOL => Ok(Some(v.to::<bool>())),
            Some(v) => Err(wrong_type(key, "a bool", v)),
        }
    }

    /// An int within `min..=max`.
    fn int(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) if v.get_type() == VariantType::INT => {
                let n = v.to::<i64>();
                if (min..=max).contains(&n) {
                    Ok(Some(n))
                } else {
                    Err(format!(
                        "the option \"{key}\" must be between {min} and {max}, got {n}"
                    ))
                }
            }
            Some(v) => Err(wrong_type(key, "an int", v)),
        }
    }

    /// Seconds as an int or float; `allow_zero` for settings where 0 means "off".
    fn seconds(&self, key: &str, allow_zero: bool) -> Result<Option<Duration>, String> {
        let secs = match self.raw(key) {
            None => return Ok(None),
            Some(v) if v.get_type() == VariantType::INT => v.to::<i64>() as f64,
            Some(v) if v.get_type() == VariantType::FLOAT => v.to::<f64>(),
            Some(v) => return Err(wrong_type(key, "a number of seconds", v)),
        };
        let low_ok = if allow_zero { secs >= 0.0 } else { secs > 0.0 };
        if !secs.is_finite() || !low_ok || secs > MAX_SECONDS {
            let what = if allow_zero {
                "0 (off) or more"
            } else {
                "more than 0"
            };
            return Err(format!(
                "the option \"{key}\" must be {what} seconds, got {secs}"
            ));
        }
        Ok(Some(Duration::from_secs_f64(secs)))
    }

    /// A certificate as PEM text, from a String or an `X509Certificate`.
    fn certificate_pem(&self, key: &str) -> Result<Option<String>, String> {
        let Some(v) = self.raw(key) else {
            return Ok(None);
        };
        let pem = if v.get_type() == VariantType::OBJECT {
            let mut cert = v
                .try_to::<Gd<X509Certificate>>()
                .map_err(|_| wrong_type(key, "a PEM String or an X509Certificate", v))?;
            cert.save_to_string().to_string()
        } else {
            self.string(key)
                .map_err(|_| wrong_type(key, "a PEM String or an X509Certificate", v))?
                .unwrap_or_default()
        };
        if pem.trim().is_empty() {
            return Err(format!("the option \"{key}\" holds no certificate"));
        }
        Ok(Some(pem))
    }

    /// A private key as PEM text, from a String or a `CryptoKey`.
    fn private_key_pem(&self, key: &str) -> Result<Option<String>, String> {
        let Some(v) = self.raw(key) else {
            return Ok(None);
        };
        let pem = if v.get_type() == VariantType::OBJECT {
            let mut crypto_key = v
                .try_to::<Gd<CryptoKey>>()
                .map_err(|_| wrong_type(key, "a PEM String or a CryptoKey", v))?;
            if crypto_key.is_public_only() {
                return Err(format!(
                    "the option \"{key}\" is a public key; the private key is needed"
                ));
            }
            crypto_key.save_to_string().to_string()
        } else {
            self.string(key)
                .map_err(|_| wrong_type(key, "a PEM String or a CryptoKey", v))?
                .unwrap_or_default()
        };
        if pem.trim().is_empty() {
            return Err(format!("the option \"{key}\" holds no key"));
        }
        Ok(Some(pem))
    }

    /// Key bytes from a PackedByteArray or a hex String.
    fn key_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.raw(key).map(|v| psk_bytes(key, v)).transpose()
    }

    fn session(&self) -> Result<SessionOptions, String> {
        let mut s = SessionOptions::default();
        if let Some(d) = self.seconds("handshake_timeout", false)? {
            s.handshake_timeout = d;
        }
        if let Some(d) = self.seconds("idle_timeout", false)? {
            s.idle_timeout = d;
        }
        if let Some(d) = self.seconds("keepalive_interval", true)? {
            s.keepalive_interval = (!d.is_zero()).then_some(d);
        }
        if let Some(mtu) = self.int("mtu", MIN_MTU, MAX_DATAGRAM as i64)? {
            s.mtu = mtu as usize;
        }
        if let Some(n) = self.int("send_queue", 1, 1_000_000)? {
            s.send_queue = n as usize;
        }
        if let Some(n) = self.int("inbound_queue", 1, 1_000_000)? {
            s.inbound_queue = n as usize;
        }
        if let Some(n) = self.int("dispatch_queue", 1, 1_000_000)? {
            s.dispatch_queue = n as usize;
        }
        if let Some(v) = self.raw("simulate") {
            let c = super::simulation::conditions_from(v)
                .map_err(|e| format!("option \"simulate\": {e}"))?;
            if !c.is_clean() {
                godot_print!(
                    "[netkit] simulating network conditions (this object's \"simulate\" option): {}",
                    super::simulation::describe(&c)
                );
            }
            // Clean conditions still beat the process-wide ones: `""` opts an object out.
            s.simulate = Some(std::sync::Arc::new(c));
        }
        Ok(s)
    }
}

/// Reads `start_server`'s options.
pub(super) fn server_setup(port: u16, dict: &VarDictionary) -> Result<ServerSetup, String> {
    let r = Reader::new(dict, SERVER_KEYS, CLIENT_KEYS, "connect_to_server")?;
    let ip = match r.string("bind_address")?.as_deref().map(str::trim) {
        None | Some("*") | Some("") => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(text) => text.parse::<IpAddr>().map_err(|_| {
            format!(
                "the option \"bind_address\" must be an IP address such as \"127.0.0.1\" or \"::\", or \"*\" for every IPv4 address; got \"{text}\""
            )
        })?,
    };
    let certificate = r.certificate_pem("certificate")?;
    let private_key = r.private_key_pem("private_key")?;
    let credentials = match (certificate, private_key, r.raw("psk_keys")) {
        (Some(_), Some(_), Some(_)) => {
            return Err(
                "give either \"certificate\" + \"private_key\" or \"psk_keys\", not both".into(),
            );
        }
        (Some(certificate_pem), Some(private_key_pem), None) => ServerCredentials::Certificate {
            certificate_pem,
            private_key_pem,
        },
        (Some(_), None, _) => return Err("\"certificate\" needs its \"private_key\"".into()),
        (None, Some(_), _) => return Err("\"private_key\" needs its \"certificate\"".into()),
        (None, None, Some(keys)) => {
            let identity_hint = r.string("psk_identity_hint")?.map(String::into_bytes);
            ServerCredentials::Psk {
                lookup: psk_map(psk_table(keys)?),
                identity_hint,
            }
        }
        (None, None, None) => {
            return Err(
                "a server needs credentials: \"certificate\" and \"private_key\" (see DTLSPeer.generate_self_signed()), or \"psk_keys\"".into(),
            );
        }
    };
    if r.has("psk_identity_hint") && r.has("certificate") {
        return Err("\"psk_identity_hint\" only applies with \"psk_keys\"".into());
    }
    let mut options = ServerOptions::new(credentials);
    options.session = r.session()?;
    if let Some(n) = r.int("max_clients", 1, 1_000_000)? {
        options.max_clients = n as usize;
    }
    if let Some(n) = r.int("max_pending_handshakes", 1, 1_000_000)? {
        options.max_pending_handshakes = n as usize;
    }
    Ok(ServerSetup {
        addr: SocketAddr::new(ip, port),
        options,
    })
}

/// Reads `connect_to_server`'s options. `host` is the default `server_name`, as any TLS
/// client checks the name it dialled.
pub(super) fn client_setup(host: &str, dict: &VarDictionary) -> Result<ClientSetup, String> {
    let r = Reader::new(dict, CLIENT_KEYS, SERVER_KEYS, "start_server")?;
    let ca = r.certificate_pem("ca_certificate")?;
    let server_name = r.string("server_name")?;
    let pinned = r.string("pinned_sha256")?;
    let psk = r.key_bytes("psk")?;
    let psk_identity = match r.raw("psk_identity") {
        None => None,
        Some(v) if v.get_type() == VariantType::PACKED_BYTE_ARRAY => {
            Some(v.to::<PackedByteArray>().to_vec())
        }
        Some(_) => r.string("psk_identity")?.map(String::into_bytes),
    };
    let insecure = r.boolean("insecure_skip_verify")?.unwrap_or(false);
    if server_name.is_some() && ca.is_none() {
        return Err("\"server_name\" only applies with \"ca_certificate\"".into());
    }
    if psk_identity.is_some() && psk.is_none() {
        return Err("\"psk_identity\" only applies with \"psk\"".into());
    }
    let chosen = [ca.is_some(), pinned.is_some(), psk.is_some(), insecure]
        .iter()
        .filter(|x| **x)
        .count();
    if chosen == 0 {
        return Err(
            "say how to trust the server: give \"pinned_sha256\", \"ca_certificate\" (and optionally \"server_name\"), \"psk\" with \"psk_identity\", or \"insecure_skip_verify\": true".into(),
        );
    }
    if chosen > 1 {
        return Err(
            "give only one of \"pinned_sha256\", \"ca_certificate\", \"psk\" and \"insecure_skip_verify\"".into(),
        );
    }
    let credentials = if let Some(key) = psk {
        let identity = psk_identity
            .ok_or("\"psk\" needs \"psk_identity\", the name the server looks the key up by")?;
        ClientCredentials::Psk { identity, key }
    } else if let Some(ca_pem) = ca {
        ClientCredentials::Certificate(ServerVerification::CaChain {
            ca_pem,
            server_name: server_name.unwrap_or_else(|| host.to_owned()),
        })
    } else if let Some(sha256_fingerprint) = pinned {
        ClientCredentials::Certificate(ServerVerification::Pinned { sha256_fingerprint })
    } else {
        ClientCredentials::Certificate(ServerVerification::InsecureSkipVerify)
    };
    let mut options = ClientOptions::new(credentials);
    options.session = r.session()?;
    Ok(ClientSetup { options, insecure })
}

/// `psk_keys`: identity (String or PackedByteArray) → key (PackedByteArray or hex).
fn psk_table(keys: &Variant) -> Result<HashMap<Vec<u8>, Vec<u8>>, String> {
    let dict = keys
        .try_to::<VarDictionary>()
        .map_err(|_| wrong_type("psk_keys", "a Dictionary of identity → key", keys))?;
    if dict.is_empty() {
        return Err("the option \"psk_keys\" is empty; add at least one identity → key".into());
    }
    let mut table = HashMap::new();
    for (identity, key) in dict.iter_shared() {
        let identity = match identity.get_type() {
            VariantType::PACKED_BYTE_ARRAY => identity.to::<PackedByteArray>().to_vec(),
            VariantType::STRING | VariantType::STRING_NAME => {
                identity.stringify().to_string().into_bytes()
            }
            _ => {
                return Err(format!(
                    "\"psk_keys\" identities must be Strings or PackedByteArrays, got {}",
                    type_name(&identity)
                ));
            }
        };
        table.insert(identity, psk_bytes("psk_keys", &key)?);
    }
    Ok(table)
}

/// A pre-shared key from a PackedByteArray (raw bytes) or a String of hex digits.
fn psk_bytes(key: &str, v: &Variant) -> Result<Vec<u8>, String> {
    let bytes = match v.get_type() {
        VariantType::PACKED_BYTE_ARRAY => v.to::<PackedByteArray>().to_vec(),
        VariantType::STRING | VariantType::STRING_NAME => {
            parse_hex(&v.stringify().to_string()).ok_or_else(|| {
                format!(
                    "a key in \"{key}\" given as a String must be hex digits (e.g. \"00a1ff...\"); pass a PackedByteArray for raw bytes"
                )
            })?
        }
        _ => return Err(wrong_type(key, "a PackedByteArray or a hex String", v)),
    };
    if bytes.is_empty() {
        return Err(format!("a key in \"{key}\" is empty"));
    }
    Ok(bytes)
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text
        .trim()
        .chars()
        .map(|c| c.to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()?;
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    Some(digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect())
}

fn type_name(v: &Variant) -> String {
    type_string(v.get_type().ord() as i64).to_string()
}

fn wrong_type(key: &str, want: &str, got: &Variant) -> String {
    format!(
        "the option \"{key}\" must be {want}, got {}",
        type_name(got)
    )
}
