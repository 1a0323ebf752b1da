//! The options of `DTLSMultiplayerPeer`: DTLSPeer's options (read by the one DTLS options
//! parser, `dtls_options`) plus the reliability layer's own keys, which are taken out
//! first.

use std::time::Duration;

use godot::prelude::*;

use super::super::dtls_options::{ClientSetup, ServerSetup, client_setup, server_setup};
use crate::core::dtls::SessionOptions;
use crate::core::dtls::record::GCM_RECORD_OVERHEAD;
use crate::core::multiplayer::{EndpointConfig, MAX_CHANNEL_COUNT, MIN_PAYLOAD};

/// Keys only the multiplayer peer understands.
const MULTIPLAYER_KEYS: &[&str] = &[
    "channel_count",
    "max_message_size",
    "send_buffer",
    "receive_buffer",
    "ack_timeout",
    "resend_interval",
    "resume_window",
    "resume_after",
];

/// Datagram size when the script gives no `mtu`: ENet's default, which leaves room for
/// renet's largest packet after DTLS overhead (DTLSPeer's 1,200 does not).
const DEFAULT_MTU: usize = 1392;
/// DTLS datagrams waiting per peer when the script gives no `send_queue`: a flush of a
/// full reliable window on several channels must not overflow it.
const DEFAULT_SEND_QUEUE: usize = 1024;

/// Splits the Dictionary into the reliability layer's settings and the rest (for the DTLS
/// parser).
fn split(dict: &VarDictionary) -> Result<(EndpointConfig, VarDictionary), String> {
    let mut rest = dict.duplicate_shallow();
    let mut config = EndpointConfig::default();
    for key in MULTIPLAYER_KEYS {
        let Some(value) = rest.remove(*key) else {
            continue;
        };
        match *key {
            "channel_count" => {
                config.link.channel_count = int(key, &value, 0, MAX_CHANNEL_COUNT as i64)? as usize
            }
            "max_message_size" => {
                config.link.max_message_size = int(key, &value, 1024, 64 << 20)? as usize
            }
            "send_buffer" => {
                config.link.send_buffer = int(key, &value, 64 << 10, 1 << 30)? as usize
            }
            "receive_buffer" => {
                config.receive_buffer = int(key, &value, 64 << 10, 1 << 30)? as usize
            }
            "ack_timeout" => config.link.ack_timeout = seconds(key, &value, 0.5, 3600.0)?,
            "resend_interval" => config.link.resend_interval = seconds(key, &value, 0.01, 5.0)?,
            "resume_window" => config.resume_window = seconds(key, &value, 0.0, 3600.0)?,
            "resume_after" => config.resume_after = seconds(key, &value, 0.2, 60.0)?,
            _ => unreachable!("listed above"),
        }
    }
    if config.link.send_buffer < config.link.max_message_size {
        return Err(format!(
            "\"send_buffer\" ({}) must be at least \"max_message_size\" ({})",
            config.link.send_buffer, config.link.max_message_size
        ));
    }
    if !config.resume_window.is_zero() && config.resume_after >= config.resume_window {
        return Err(format!(
            "\"resume_after\" ({} s) must be less than \"resume_window\" ({} s): a session counts as interrupted after the first, and ends after the second",
            config.resume_after.as_secs_f64(),
            config.resume_window.as_secs_f64()
        ));
    }
    config.receive_buffer = config.receive_buffer.max(config.link.max_message_size);
    Ok((config, rest))
}

fn int(key: &str, v: &Variant, min: i64, max: i64) -> Result<i64, String> {
    match v.try_to::<i64>() {
        Ok(n) if v.get_type() == VariantType::INT && (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "the option \"{key}\" must be an int from {min} to {max}, got {}",
            v.stringify()
        )),
    }
}

fn seconds(key: &str, v: &Variant, min: f64, max: f64) -> Result<Duration, String> {
    let secs = match v.get_type() {
        VariantType::INT => v.to::<i64>() as f64,
        VariantType::FLOAT => v.to::<f64>(),
        _ => f64::NAN,
    };
    if !(min..=max).contains(&secs) {
        return Err(format!(
            "the option \"{key}\" must be {min} to {max} seconds, got {}",
            v.stringify()
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Multiplayer defaults for the DTLS session where the script left them out, and the check
/// that every renet packet fits one datagram.
fn session_defaults(dict: &VarDictionary, session: &mut SessionOptions) -> Result<(), String> {
    if !dict.contains_key("mtu") {
        session.mtu = DEFAULT_MTU;
    }
    if !dict.contains_key("send_queue") {
        session.send_queue = DEFAULT_SEND_QUEUE;
    }
    if session.max_payload() < MIN_PAYLOAD {
        return Err(format!(
            "the option \"mtu\" must be at least {} for the multiplayer peer (its packets are up to {MIN_PAYLOAD} bytes plus {GCM_RECORD_OVERHEAD} bytes of DTLS overhead), got {}",
            MIN_PAYLOAD + GCM_RECORD_OVERHEAD,
            session.mtu
        ));
    }
    Ok(())
}

/// Reads `create_server`'s options.
pub(super) fn multiplayer_server_setup(
    port: u16,
    dict: &VarDictionary,
) -> Result<(ServerSetup, EndpointConfig), String> {
    let (config, rest) = split(dict)?;
    let mut setup = server_setup(port, &rest)?;
    session_defaults(dict, &mut setup.options.session)?;
    Ok((setup, config))
}

/// Reads `create_client`'s options.
pub(super) fn multiplayer_client_setup(
    host: &str,
    dict: &VarDictionary,
) -> Result<(ClientSetup, EndpointConfig), String> {
    let (config, rest) = split(dict)?;
    let mut setup = client_setup(host, &rest)?;
    session_defaults(dict, &mut setup.options.session)?;
    Ok((setup, config))
}
