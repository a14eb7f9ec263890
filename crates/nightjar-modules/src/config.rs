//! [`ModulesConfig`], the `[modules]` section of the nightjar config file, and
//! [`builtin_modules`], the list of built-in module constructors.

use serde::{Deserialize, Serialize};

use crate::anomaly::{Anomaly, AnomalyConfig};
use crate::classification::{Classification, ClassificationConfig};
use crate::crossmatch::{Crossmatch, CrossmatchConfig};
use crate::early_snia::{EarlySnia, EarlySniaConfig};
use crate::error::ModuleError;
use crate::light_curve_features::{LightCurveFeatures, LightCurveFeaturesConfig};
use crate::module::ScienceModule;
use crate::quality::{Quality, QualityConfig};
use crate::rates::{RatesConfig, RatesModule};
use crate::solar_system::{SolarSystem, SolarSystemConfig};

/// Configuration of the built-in science modules: one section per module, each with its
/// `enabled` flag and parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModulesConfig {
    /// The `quality` module: real/bogus scores and quality cuts.
    pub quality: QualityConfig,
    /// The `solar_system` module: Fink's `roid` flag and the known object's name.
    pub solar_system: SolarSystemConfig,
    /// The `rates` module: Fink's fast-transient quantities and the magnitude rate.
    pub rates: RatesConfig,
    /// The `light_curve_features` module: Fink's `lc_features_g` / `lc_features_r`.
    pub light_curve_features: LightCurveFeaturesConfig,
    /// The `classification` module: Fink's `class` and the `tags` of every rule that fires.
    pub classification: ClassificationConfig,
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
        self.solar_system.validate()?;
        self.rates.validate()?;
        self.light_curve_features.validate()?;
        self.crossmatch.validate()?;
        self.anomaly.validate()?;
        self.early_snia.validate()?;
        self.classification.validate()
    }
}

/// The enabled built-in modules, built from `config` (validated first). Pass them to
/// [`crate::ModuleRunner::new`], together with any modules of your own.
///
/// `classification` comes last: it reads the columns of optional modules (early SN Ia score,
/// catalogue matches) only when they ran before it, and the runner keeps this order.
pub fn builtin_modules(config: &ModulesConfig) -> Result<Vec<Box<dyn ScienceModule>>, ModuleError> {
    config.validate()?;
    let mut modules: Vec<Box<dyn ScienceModule>> = Vec::new();
    if config.quality.enabled {
        modules.push(Box::new(Quality::build(&config.quality)?));
    }
    if config.solar_system.enabled {
        modules.push(Box::new(SolarSystem::build(&config.solar_system)?));
    }
    if config.rates.enabled {
        modules.push(Box::new(RatesModule::build(&config.rates)?));
    }
    if config.light_curve_features.enabled {
        modules.push(Box::new(LightCurveFeatures::build(&config.light_curve_features)?));
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
    if config.classification.enabled {
        modules.push(Box::new(Classification::build(&config.classification)?));
    }
    Ok(modules)
}
