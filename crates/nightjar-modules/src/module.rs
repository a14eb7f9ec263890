//! The [`ScienceModule`] trait and the values and column declarations that modules produce.

use nightjar_core::Alert;
use serde::Serialize;

use crate::error::ModuleError;
use crate::outputs::ModuleOutputs;

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

/// One output column that a module declares: its name, its type and what it means.
///
/// Names are global: the stores, filters and output streams know a column by its name alone
/// (`roid`, `rf_snia_vs_nonia`, Fink's names where the quantity is Fink's), so no two modules may
/// declare the same one. A name is lowercase identifiers joined by dots; a dot nests a field in a
/// record, as Fink's `lc_features_g.amplitude`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OutputColumn {
    pub name: &'static str,
    pub column_type: ColumnType,
    pub description: &'static str,
}

impl OutputColumn {
    /// A column declaration, for `const` tables of outputs.
    pub const fn new(name: &'static str, column_type: ColumnType, description: &'static str) -> OutputColumn {
        OutputColumn {
            name,
            column_type,
            description,
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
}

/// A module's values for one alert, one per declared output column, in declaration order;
/// `None` is null.
pub type Row = Vec<Option<Value>>;

/// A science module: computes a fixed set of columns for every alert of a micro-batch.
///
/// A module is built from its config before the run (catalogues and models loaded there) and
/// is shared by the workers, so it must be `Send + Sync` and keep no per-batch state.
pub trait ScienceModule: Send + Sync {
    /// The module's name, a noun for what it computes (`quality`, `crossmatch`); no dots.
    fn name(&self) -> &str;
    /// The module's version, stored with its outputs so results can be traced to the code.
    fn version(&self) -> &str;
    /// The columns the module fills, in the order of each [`Row`].
    fn outputs(&self) -> &[OutputColumn];
    /// Names of the modules whose outputs this one reads; they run first.
    fn depends_on(&self) -> &[&str] {
        &[]
    }
    /// Computes one row per alert, in batch order. `inputs` holds the outputs of the modules
    /// that ran before (those named in [`ScienceModule::depends_on`] among them). A value the
    /// module cannot compute for one alert is `None`; an `Err` nulls the whole batch.
    fn run(&self, batch: &[Alert], inputs: &ModuleOutputs) -> Result<Vec<Row>, ModuleError>;
}

impl std::fmt::Debug for dyn ScienceModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScienceModule")
            .field("name", &self.name())
            .field("version", &self.version())
            .finish()
    }
}
