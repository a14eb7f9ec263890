//! The [`ScienceModule`] trait and the values and column declarations that modules produce.

use nightjar_core::Alert;
pub use nightjar_core::{ColumnType, Value};
use serde::Serialize;

use crate::error::ModuleError;
use crate::outputs::ModuleOutputs;

/// One output column that a module declares: its name, its type and what it means.
///
/// Names are global: the stores, filters and output streams know a column by its name alone
/// (`roid`, `rf_snia_vs_nonia`, Fink's names where the quantity is Fink's), so no two modules may
/// declare the same one. A name is identifiers (`[A-Za-z_][A-Za-z0-9_]*`) joined by dots; a dot nests a field in a
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
