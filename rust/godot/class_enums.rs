//! Enum types as Godot shows them: `HTTPClient.Method` parameters, `DTLSPeer.Status`
//! returns and `HTTPResponse.Error` values, so the editor's autocompletion offers their
//! constants and the help links to them, as for Godot's own classes.
//!
//! Two gaps in gdext 0.5 are filled here:
//! - `#[constant]` registers plain integer constants only (named class enums are planned for
//!   gdext 0.6), so `register()` registers `DTLSPeer.Status` and `HTTPResponse.Error`
//!   through the GDExtension call gdext's own constants use
//!   (`classdb_register_extension_class_integer_constant`, with an enum name), once the
//!   classes exist.
//! - gdext's engine-enum types (`http_client::Method`) fail the whole call when a script
//!   passes an int outside the enum, with a conversion error that names no netkit rule. The
//!   types below carry any `int` unchanged, as Godot's own enum parameters do, so netkit
//!   answers an out-of-range value with its own clear error; only their type information
//!   names the enum (`class_name` plus `PROPERTY_USAGE_CLASS_IS_ENUM`).
//!
//! The constants' help text comes from `#[constant] #[cfg(any())]` declarations in the
//! classes: the docs generator reads them, the compiler drops them, so gdext does not
//! register the constants twice. A test checks that every registered enum constant has help
//! text and the same value.

use std::borrow::Cow;

use godot::classes::http_client;
use godot::meta::conv::ByValue;
use godot::meta::error::ConvertError;
use godot::meta::shape::{EnumeratorShape, GodotShape};
use godot::meta::{FromGodot, GodotConvert, ToGodot};
use godot::prelude::*;
use godot::register::private::constant::{ConstantKind, ExportConstant, IntegerConstant};
use godot::register::property::SimpleVar;

use super::dtls_peer::DtlsPeer;
use super::http_response::HttpResponse;
use super::http_stream::HttpStream;
use crate::core::dtls::Status;
use crate::core::http::ErrorKind;

/// `DTLSPeer.Status`: its constants, in value order.
const STATUS_CONSTANTS: [(&str, Status); 4] = [
    ("STATUS_DISCONNECTED", Status::Disconnected),
    ("STATUS_HANDSHAKING", Status::Handshaking),
    ("STATUS_CONNECTED", Status::Connected),
    ("STATUS_ERROR", Status::Error),
];

/// `DTLSPeer.Status` as `(constant, value)` pairs.
pub fn status_constants() -> [(&'static str, i64); 4] {
    STATUS_CONSTANTS.map(|(name, status)| (name, status as i64))
}

/// `HTTPResponse.Error` as `(constant, value)` pairs, from the core's stable list.
pub fn error_constants() -> [(&'static str, i64); ErrorKind::ALL.len()] {
    ErrorKind::ALL.map(|kind| (kind.constant_name(), i64::from(kind.code())))
}

/// Registers `DTLSPeer.Status` and `HTTPResponse.Error` with the ClassDB. Called once the
/// classes are registered (`InitStage::Scene`), again after a hot reload.
pub fn register() {
    register_enum::<DtlsPeer>(DtlsStatus::ENUM, status_constants());
    register_enum::<HttpResponse>(HttpError::ENUM, error_constants());
    register_enum::<HttpStream>(StreamModeArg::ENUM, stream_mode_constants());
}

/// Registers `constants` as the enum `enum_name` of class `T`, through the `#[doc(hidden)]`
/// gdext API that its own `#[constant]` expands to (with `ConstantKind::Integer`).
fn register_enum<T: GodotClass>(
    enum_name: &str,
    constants: impl IntoIterator<Item = (&'static str, i64)>,
) {
    ExportConstant::new(
        T::class_id(),
        ConstantKind::Enum {
            name: StringName::from(enum_name),
            enumerators: constants
                .into_iter()
                .map(|(name, value)| IntegerConstant::new(name, value))
                .collect(),
        },
    )
    .register();
}

/// Implements the conversions of an `i64` newtype that Godot shows as the enum
/// `$class.$name`; any int converts, so the callee decides what an unknown value means.
macro_rules! int_as_enum {
    ($Type:ident, $class:literal, $name:literal, $enumerators:expr) => {
        impl $Type {
            /// The enum's name inside its class.
            #[allow(dead_code)]
            pub const ENUM: &'static str = $name;
        }

        impl GodotConvert for $Type {
            type Via = i64;

            fn godot_shape() -> GodotShape {
                GodotShape::Enum {
                    variant_type: VariantType::INT,
                    enumerators: $enumerators,
                    godot_name: Some(Cow::Borrowed(concat!($class, ".", $name))),
                    is_bitfield: false,
                }
            }
        }

        impl ToGodot for $Type {
            type Pass = ByValue;

            fn to_godot(&self) -> i64 {
                self.0
            }
        }

        impl FromGodot for $Type {
            fn try_from_godot(via: i64) -> Result<Self, ConvertError> {
                Ok(Self(via))
            }
        }

        impl SimpleVar for $Type {}
    };
}

/// An `HTTPClient.Method` value as a script passed it; `Method::from_godot` in the core
/// checks it when the request is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpMethod(pub i64);

impl HttpMethod {
    /// `HTTPClient.METHOD_GET`.
    pub const GET: HttpMethod = HttpMethod(0);
}

int_as_enum!(
    HttpMethod,
    "HTTPClient",
    "Method",
    // Godot's own list, so the names and values cannot drift from the engine's.
    match <http_client::Method as GodotConvert>::godot_shape() {
        GodotShape::Enum { enumerators, .. } => enumerators,
        _ => Cow::Borrowed(&[]),
    }
);

/// A `DTLSPeer.Status` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtlsStatus(pub i64);

impl From<Status> for DtlsStatus {
    fn from(status: Status) -> Self {
        Self(status as i64)
    }
}

int_as_enum!(
    DtlsStatus,
    "DTLSPeer",
    "Status",
    Cow::Owned(
        status_constants()
            .map(|(name, value)| EnumeratorShape::new_int(name, value))
            .to_vec()
    )
);

/// An `HTTPResponse.Error` value (`HTTPResponse.ERR_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpError(pub i64);

impl From<ErrorKind> for HttpError {
    fn from(kind: ErrorKind) -> Self {
        Self(i64::from(kind.code()))
    }
}

int_as_enum!(
    HttpError,
    "HTTPResponse",
    "Error",
    Cow::Owned(
        error_constants()
            .map(|(name, value)| EnumeratorShape::new_int(name, value))
            .to_vec()
    )
);

/// `HTTPStream.Mode`: its constants, in value order (the core's `StreamMode` numbers).
pub fn stream_mode_constants() -> [(&'static str, i64); 3] {
    use crate::core::http::transfer::StreamMode;
    [
        ("MODE_CHUNKS", StreamMode::Chunks as i64),
        ("MODE_LINES", StreamMode::Lines as i64),
        ("MODE_EVENTS", StreamMode::Events as i64),
    ]
}

/// An `HTTPStream.Mode` value as a script passed it; checked when the stream starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamModeArg(pub i64);

int_as_enum!(
    StreamModeArg,
    "HTTPStream",
    "Mode",
    Cow::Owned(
        stream_mode_constants()
            .map(|(name, value)| EnumeratorShape::new_int(name, value))
            .to_vec()
    )
);
