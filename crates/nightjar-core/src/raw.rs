//! Access to every raw survey field by name, and the macro that survey crates use to declare
//! their wire records.
//!
//! A survey crate declares each Avro record once with [`avro_record!`]; the macro gives a serde
//! struct whose fields are all optional (so every schema version, and records that Spark
//! rewrote with fields missing or reordered, decode into it), plus by-name field access
//! ([`RawRecord::get`]) and a JSON view ([`RawRecord::to_json`]).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One raw field value, borrowed from the decoded record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Bytes(&'a [u8]),
    /// A record or an array: not a scalar. Its JSON form is in [`RawRecord::to_json`].
    Nested,
}

impl FieldValue<'_> {
    /// The value as a float, for numeric fields.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            FieldValue::Int(value) => Some(value as f64),
            FieldValue::Float(value) => Some(value),
            _ => None,
        }
    }

    /// The value as an integer, for integer fields.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            FieldValue::Int(value) => Some(value),
            _ => None,
        }
    }

    /// The value as a string, for string fields.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::Str(value) => Some(value),
            _ => None,
        }
    }
}

/// The declared type of a raw field, the same in every alert of a record type (what
/// [`FieldValue`] a non-null value of the field holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    Bool,
    /// Avro `int` or `long`.
    Int,
    /// Avro `float` or `double`.
    Float,
    Str,
    Bytes,
    /// A scalar whose type differs between schema versions ([`Scalar`]); read it as text.
    Mixed,
    /// A record, an array or a map.
    Nested,
}

/// A decoded survey record whose fields can be read by name.
pub trait RawRecord {
    /// The value at a dotted path such as `candidate.drb`. `None` when no such field exists in
    /// this record type; `Some(FieldValue::Null)` when it exists but holds no value.
    fn get(&self, path: &str) -> Option<FieldValue<'_>>;
    /// Every field path this record type has, nested records expanded (`candidate.jd`, ...).
    fn field_paths() -> Vec<String>
    where
        Self: Sized;
    /// Every field path with its declared type, in the order of [`RawRecord::field_paths`].
    fn field_kinds() -> Vec<(String, FieldKind)>
    where
        Self: Sized;
    /// The record as JSON; bytes are summarised as `{"$bytes": {"len": N, "sha256": "..."}}`.
    fn to_json(&self) -> serde_json::Value;
}

/// A whole decoded survey alert, as held by [`crate::Alert::raw`].
pub trait RawAlert: fmt::Debug + Send + Sync {
    /// The value at a dotted path such as `candidate.drb` or `diaSource.reliability`.
    fn get(&self, path: &str) -> Option<FieldValue<'_>>;
    /// Every field path of this survey's alert record.
    fn field_paths(&self) -> Vec<String>;
    /// The record as JSON, bytes summarised.
    fn to_json(&self) -> serde_json::Value;
    /// The concrete wire type, for code that knows its survey (`downcast_ref::<ZtfAlert>()`).
    fn as_any(&self) -> &dyn Any;
}

/// Avro `bytes`, shared cheaply once decoded. Its JSON view is a summary, never the bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RawBytes(pub Arc<[u8]>);

impl RawBytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// `{"$bytes": {"len": N, "sha256": "<hex>"}}`.
    pub fn summary_json(&self) -> serde_json::Value {
        let digest = Sha256::digest(&self.0);
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        serde_json::json!({ "$bytes": { "len": self.0.len(), "sha256": hex } })
    }
}

impl fmt::Debug for RawBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawBytes({} bytes)", self.0.len())
    }
}

impl Serialize for RawBytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for RawBytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> serde::de::Visitor<'de> for BytesVisitor {
            type Value = RawBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<RawBytes, E> {
                Ok(RawBytes(Arc::from(bytes)))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<RawBytes, E> {
                Ok(RawBytes(Arc::from(bytes)))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RawBytes, E> {
                Ok(RawBytes(Arc::from(text.as_bytes())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawBytes, A::Error> {
                let mut bytes = Vec::new();
                while let Some(byte) = seq.next_element::<u8>()? {
                    bytes.push(byte);
                }
                Ok(RawBytes(Arc::from(bytes)))
            }
        }
        deserializer.deserialize_bytes(BytesVisitor)
    }
}

/// A scalar whose Avro type differs between schema versions in a way no numeric widening
/// covers (ZTF's `isdiffpos` is an int in the 2016 prototype packets and a string since).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Scalar {
    /// The value as text (integers and floats formatted, booleans `true`/`false`).
    pub fn to_text(&self) -> String {
        match self {
            Scalar::Bool(value) => value.to_string(),
            Scalar::Int(value) => value.to_string(),
            Scalar::Float(value) => value.to_string(),
            Scalar::Str(value) => value.clone(),
        }
    }
}

impl Serialize for Scalar {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Scalar::Bool(value) => serializer.serialize_bool(*value),
            Scalar::Int(value) => serializer.serialize_i64(*value),
            Scalar::Float(value) => serializer.serialize_f64(*value),
            Scalar::Str(value) => serializer.serialize_str(value),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl serde::de::Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean, number or string")
            }
            fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(value))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(value))
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Scalar, E> {
                i64::try_from(value).map(Scalar::Int).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(value))
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(value.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(value))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

impl RawFieldType for Scalar {
    fn kind() -> FieldKind {
        FieldKind::Mixed
    }
    fn field_value(&self) -> FieldValue<'_> {
        match self {
            Scalar::Bool(value) => FieldValue::Bool(*value),
            Scalar::Int(value) => FieldValue::Int(*value),
            Scalar::Float(value) => FieldValue::Float(*value),
            Scalar::Str(value) => FieldValue::Str(value),
        }
    }
    fn to_json_value(&self) -> serde_json::Value {
        match self {
            Scalar::Str(value) => serde_json::Value::String(value.clone()),
            Scalar::Bool(value) => serde_json::Value::Bool(*value),
            other => float_or_int_json(other.field_value()),
        }
    }
}

/// A value that can appear in a raw record field.
pub trait RawFieldType {
    /// The scalar view of the value; records and arrays give [`FieldValue::Nested`].
    fn field_value(&self) -> FieldValue<'_>;
    /// Resolves the rest of a dotted path inside a nested record.
    fn get_nested(&self, _rest: &str) -> Option<FieldValue<'_>> {
        None
    }
    /// Field paths below this value, for nested records.
    fn nested_paths() -> Vec<String> {
        Vec::new()
    }
    /// The declared type of the value.
    fn kind() -> FieldKind
    where
        Self: Sized,
    {
        FieldKind::Nested
    }
    /// Field paths below this value with their types, for nested records.
    fn nested_kinds() -> Vec<(String, FieldKind)>
    where
        Self: Sized,
    {
        Vec::new()
    }
    /// JSON view of the value.
    fn to_json_value(&self) -> serde_json::Value;
}

macro_rules! scalar_field_type {
    ($($ty:ty => $variant:ident as $conv:ty),* $(,)?) => {
        $(impl RawFieldType for $ty {
            fn kind() -> FieldKind {
                FieldKind::$variant
            }
            fn field_value(&self) -> FieldValue<'_> {
                FieldValue::$variant(*self as $conv)
            }
            fn to_json_value(&self) -> serde_json::Value {
                float_or_int_json(FieldValue::$variant(*self as $conv))
            }
        })*
    };
}

scalar_field_type!(i32 => Int as i64, i64 => Int as i64, f32 => Float as f64, f64 => Float as f64);

fn float_or_int_json(value: FieldValue<'_>) -> serde_json::Value {
    match value {
        FieldValue::Int(value) => serde_json::Value::from(value),
        FieldValue::Float(value) if value.is_nan() => serde_json::Value::from("NaN"),
        FieldValue::Float(value) if value == f64::INFINITY => serde_json::Value::from("Infinity"),
        FieldValue::Float(value) if value == f64::NEG_INFINITY => serde_json::Value::from("-Infinity"),
        FieldValue::Float(value) => serde_json::Value::from(value),
        _ => serde_json::Value::Null,
    }
}

impl RawFieldType for bool {
    fn kind() -> FieldKind {
        FieldKind::Bool
    }
    fn field_value(&self) -> FieldValue<'_> {
        FieldValue::Bool(*self)
    }
    fn to_json_value(&self) -> serde_json::Value {
        serde_json::Value::Bool(*self)
    }
}

impl RawFieldType for String {
    fn kind() -> FieldKind {
        FieldKind::Str
    }
    fn field_value(&self) -> FieldValue<'_> {
        FieldValue::Str(self)
    }
    fn to_json_value(&self) -> serde_json::Value {
        serde_json::Value::String(self.clone())
    }
}

impl RawFieldType for RawBytes {
    fn kind() -> FieldKind {
        FieldKind::Bytes
    }
    fn field_value(&self) -> FieldValue<'_> {
        FieldValue::Bytes(&self.0)
    }
    fn to_json_value(&self) -> serde_json::Value {
        self.summary_json()
    }
}

impl<T: RawFieldType> RawFieldType for Option<T> {
    fn field_value(&self) -> FieldValue<'_> {
        match self {
            Some(value) => value.field_value(),
            None => FieldValue::Null,
        }
    }
    fn get_nested(&self, rest: &str) -> Option<FieldValue<'_>> {
        match self {
            Some(value) => value.get_nested(rest),
            // The path exists in the type but the record is absent.
            None => T::nested_paths()
                .iter()
                .any(|path| path == rest)
                .then_some(FieldValue::Null),
        }
    }
    fn nested_paths() -> Vec<String> {
        T::nested_paths()
    }
    fn kind() -> FieldKind {
        T::kind()
    }
    fn nested_kinds() -> Vec<(String, FieldKind)> {
        T::nested_kinds()
    }
    fn to_json_value(&self) -> serde_json::Value {
        match self {
            Some(value) => value.to_json_value(),
            None => serde_json::Value::Null,
        }
    }
}

impl<T: RawFieldType> RawFieldType for Vec<T> {
    fn field_value(&self) -> FieldValue<'_> {
        FieldValue::Nested
    }
    fn to_json_value(&self) -> serde_json::Value {
        serde_json::Value::Array(self.iter().map(RawFieldType::to_json_value).collect())
    }
}

/// A map of strings (Avro `map<string>`), as some broker-written records carry.
impl RawFieldType for std::collections::BTreeMap<String, String> {
    fn field_value(&self) -> FieldValue<'_> {
        FieldValue::Nested
    }
    fn to_json_value(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.iter()
                .map(|(key, value)| (key.clone(), serde_json::Value::String(value.clone())))
                .collect(),
        )
    }
}

/// Declares a survey wire record.
///
/// ```
/// nightjar_core::avro_record! {
///     /// A tiny record.
///     pub struct Point {
///         /// Right ascension.
///         ra: f64,
///         name: String,
///     }
/// }
/// use nightjar_core::raw::{FieldValue, RawRecord};
/// let point = Point { ra: Some(1.5), name: None };
/// assert_eq!(point.get("ra"), Some(FieldValue::Float(1.5)));
/// assert_eq!(point.get("name"), Some(FieldValue::Null));
/// assert_eq!(point.get("dec"), None);
/// use nightjar_core::raw::FieldKind;
/// assert_eq!(Point::field_kinds(), [("ra".to_string(), FieldKind::Float), ("name".to_string(), FieldKind::Str)]);
/// ```
///
/// Every field becomes `Option<T>` and missing fields deserialize as `None`, so one struct
/// reads every schema version. Field names are the Avro names, verbatim. `None` fields are left
/// out when serializing, so a record re-encodes with its own writer schema (which writes absent
/// nullable fields as null).
#[macro_export]
macro_rules! avro_record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        #[allow(non_snake_case)]
        pub struct $name {
            $(
                $(#[$field_meta])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }

        impl $crate::raw::RawRecord for $name {
            fn get(&self, path: &str) -> Option<$crate::raw::FieldValue<'_>> {
                let (head, rest) = match path.split_once('.') {
                    Some((head, rest)) => (head, Some(rest)),
                    None => (path, None),
                };
                match (head, rest) {
                    $(
                        (stringify!($field), None) => Some($crate::raw::RawFieldType::field_value(&self.$field)),
                        (stringify!($field), Some(rest)) => $crate::raw::RawFieldType::get_nested(&self.$field, rest),
                    )*
                    _ => None,
                }
            }

            fn field_paths() -> Vec<String> {
                let mut paths = Vec::new();
                $(
                    let nested = <Option<$ty> as $crate::raw::RawFieldType>::nested_paths();
                    if nested.is_empty() {
                        paths.push(stringify!($field).to_string());
                    } else {
                        paths.extend(nested.into_iter().map(|rest| format!("{}.{}", stringify!($field), rest)));
                    }
                )*
                paths
            }

            fn field_kinds() -> Vec<(String, $crate::raw::FieldKind)> {
                let mut kinds = Vec::new();
                $(
                    let nested = <Option<$ty> as $crate::raw::RawFieldType>::nested_kinds();
                    if nested.is_empty() {
                        kinds.push((stringify!($field).to_string(), <Option<$ty> as $crate::raw::RawFieldType>::kind()));
                    } else {
                        kinds.extend(nested.into_iter().map(|(rest, kind)| (format!("{}.{}", stringify!($field), rest), kind)));
                    }
                )*
                kinds
            }

            fn to_json(&self) -> serde_json::Value {
                let mut object = serde_json::Map::new();
                $(
                    object.insert(
                        stringify!($field).to_string(),
                        $crate::raw::RawFieldType::to_json_value(&self.$field),
                    );
                )*
                serde_json::Value::Object(object)
            }
        }

        impl $crate::raw::RawFieldType for $name {
            fn field_value(&self) -> $crate::raw::FieldValue<'_> {
                $crate::raw::FieldValue::Nested
            }
            fn get_nested(&self, rest: &str) -> Option<$crate::raw::FieldValue<'_>> {
                $crate::raw::RawRecord::get(self, rest)
            }
            fn nested_paths() -> Vec<String> {
                <$name as $crate::raw::RawRecord>::field_paths()
            }
            fn nested_kinds() -> Vec<(String, $crate::raw::FieldKind)> {
                <$name as $crate::raw::RawRecord>::field_kinds()
            }
            fn to_json_value(&self) -> serde_json::Value {
                $crate::raw::RawRecord::to_json(self)
            }
        }
    };
}
