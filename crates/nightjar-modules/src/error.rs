//! Errors of the module system: building the runner, configuring and running modules.

/// What went wrong while configuring, ordering or running science modules.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModuleError {
    /// Two modules in the runner share a name.
    #[error("module {module:?} is listed twice")]
    DuplicateModule { module: String },
    /// A module depends on a module that is not in the runner.
    #[error("module {module:?} depends on {dependency:?}, which is not enabled or does not exist")]
    MissingDependency { module: String, dependency: String },
    /// The dependencies form a cycle; `cycle` lists it, the first name repeated at the end.
    #[error("modules depend on each other in a cycle: {}", cycle.join(" -> "))]
    DependencyCycle { cycle: Vec<String> },
    /// A module declares an invalid name or output column.
    #[error("module {module:?} declares an invalid output: {reason}")]
    InvalidDeclaration { module: String, reason: String },
    /// A module's configuration is invalid.
    #[error("invalid config for module {module:?}, field {field:?}: {reason}")]
    InvalidConfig {
        module: String,
        field: String,
        reason: String,
    },
    /// A module returned rows that do not match its batch or its declared columns.
    #[error("module {module:?} returned bad output: {reason}")]
    BadOutput { module: String, reason: String },
    /// A module failed on a batch, with its own message.
    #[error("module {module:?} failed: {message}")]
    Failed { module: String, message: String },
}
