//! Science-module output values as they travel with an alert: [`Value`], its [`ColumnType`],
//! and [`ModuleValues`], one alert's outputs by column name. The modules crate computes them; the
//! store, filters and output streams read them from [`crate::Alert::module_values`].

use std::sync::Arc;

use serde::Serialize;
use serde::ser::SerializeMap;

/// The type of one output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Bool,
    Int,
    Float,
    Text,
}

impl ColumnType {
    /// The lowercase name (`bool`, `int`, `float`, `text`).
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Bool => "bool",
            ColumnType::Int => "int",
            ColumnType::Float => "float",
            ColumnType::Text => "text",
        }
    }
}

/// One non-null output value. A null is `None` in a [`Row`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Value {
    /// The column type this value belongs to.
    pub fn column_type(&self) -> ColumnType {
        match self {
            Value::Bool(_) => ColumnType::Bool,
            Value::Int(_) => ColumnType::Int,
            Value::Float(_) => ColumnType::Float,
            Value::Text(_) => ColumnType::Text,
        }
    }

    /// The value as a bool, for bool columns.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(value) => Some(value),
            _ => None,
        }
    }

    /// The value as an integer, for int columns.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(value) => Some(value),
            _ => None,
        }
    }

    /// The value as a float, for float and int columns.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(value) => Some(value),
            Value::Int(value) => Some(value as f64),
            _ => None,
        }
    }

    /// The value as text, for text columns.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(value) => Some(value),
            _ => None,
        }
    }

    /// The value as JSON (a float that is not finite becomes null, as JSON has no NaN).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Bool(value) => serde_json::Value::from(*value),
            Value::Int(value) => serde_json::Value::from(*value),
            Value::Float(value) => serde_json::Value::from(*value),
            Value::Text(value) => serde_json::Value::from(value.as_str()),
        }
    }
}

/// The science-module outputs of one alert: (column name, value) pairs in the order the modules
/// declared them; a null output is absent. Column names are global (`roid`, `real_bogus`,
/// `lc_features_g.amplitude`: a dot nests a field in a record).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModuleValues(Vec<(Arc<str>, Value)>);

impl ModuleValues {
    /// No outputs.
    pub fn new() -> ModuleValues {
        ModuleValues(Vec::new())
    }

    /// Adds one output (the modules crate calls this once per non-null value).
    pub fn push(&mut self, name: Arc<str>, value: Value) {
        self.0.push((name, value));
    }

    /// Sets the output `name`: replaces its value when present, else adds it at the end.
    pub fn set(&mut self, name: &str, value: Value) {
        match self.0.iter_mut().find(|(column, _)| &**column == name) {
            Some((_, old)) => *old = value,
            None => self.0.push((Arc::from(name), value)),
        }
    }

    /// The value of the column `name`, if it is not null.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(column, _)| &**column == name)
            .map(|(_, value)| value)
    }

    /// The output at `position` in declaration order (among the non-null ones).
    pub fn at(&self, position: usize) -> Option<(&str, &Value)> {
        self.0.get(position).map(|(name, value)| (&**name, value))
    }

    /// Every non-null output, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(name, value)| (&**name, value))
    }

    /// The number of non-null outputs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no module gave a value (or none ran).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The outputs as a flat JSON object `{"column": value, ...}` (nulls absent).
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.0
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_json()))
            .collect()
    }
}

impl Serialize for ModuleValues {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(&**name, value)?;
        }
        map.end()
    }
}
