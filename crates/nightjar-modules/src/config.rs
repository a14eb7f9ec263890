//! [`ModulesConfig`], the `[modules]` section of the nightjar config file, and
//! [`builtin_modules`], the list of built-in module constructors.

use serde::{Deserialize, Serialize};

use crate::error::ModuleError;
use crate::module::ScienceModule;
use crate::quality::{Quality, QualityConfig};

/// Configuration of the built-in science modules: one section per module, each with its
/// `enabled` flag and parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModulesConfig {
    /// The `quality` module: real/bogus scores and quality cuts.
    pub quality: QualityConfig,
}

impl ModulesConfig {
    /// Checks every module's parameters.
    pub fn validate(&self) -> Result<(), ModuleError> {
        self.quality.validate()
    }
}

/// The enabled built-in modules, built from `config` (validated first). Pass them to
/// [`crate::ModuleRunner::new`], together with any modules of your own.
pub fn builtin_modules(config: &ModulesConfig) -> Result<Vec<Box<dyn ScienceModule>>, ModuleError> {
    config.validate()?;
    let mut modules: Vec<Box<dyn ScienceModule>> = Vec::new();
    if config.quality.enabled {
        modules.push(Box::new(Quality::build(&config.quality)?));
    }
    Ok(modules)
}
