//! [`ModulesConfig`], the `[modules]` section of the nightjar config file, and
//! [`builtin_modules`], the list of built-in module constructors.

use serde::{Deserialize, Serialize};

use crate::anomaly::{Anomaly, AnomalyConfig};
use crate::crossmatch::{Crossmatch, CrossmatchConfig};
use crate::early_snia::{EarlySnia, EarlySniaConfig};
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
    /// The `crossmatch` module: nearest catalogue sources.
    pub crossmatch: CrossmatchConfig,
    /// The `anomaly` module: Fink's anomaly score.
    pub anomaly: AnomalyConfig,
    /// The `early_snia` module: Fink's early SN Ia classifier.
    pub early_snia: EarlySniaConfig,
}

impl ModulesConfig {
    /// Checks every module's parameters.
    pub fn validate(&self) -> Result<(), ModuleError> {
        self.quality.validate()?;
        self.crossmatch.validate()?;
        self.anomaly.validate()?;
        self.early_snia.validate()
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
    if config.crossmatch.enabled {
        modules.push(Box::new(Crossmatch::build(&config.crossmatch)?));
    }
    if config.anomaly.enabled {
        modules.push(Box::new(Anomaly::build(&config.anomaly)?));
    }
    if config.early_snia.enabled {
        modules.push(Box::new(EarlySnia::build(&config.early_snia)?));
    }
    Ok(modules)
}
