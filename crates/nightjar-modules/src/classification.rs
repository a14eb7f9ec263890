//! The `classification` module: Fink's single ZTF class per alert (`class`) and every tag whose
//! rule fires (`tags`, Fink's Rubin multi-tag style), for both surveys.
//!
//! # The rules
//!
//! [`RULES`] is the table, in Fink's order (fink-filters 7.45, `fink_filters/ztf/classification.py`
//! `extract_fink_classification_` and the filters it calls). The class starts as `Unknown` and
//! each rule that fires overwrites it, so the last one wins; then `Ambiguous` when more than one
//! of microlensing, SN, Solar System candidate and Solar System MPC fired; then a catalogue label
//! (Fink: the SIMBAD type, `cdsxmatch`) overrides everything.
//!
//! Inputs are the alert's raw ZTF fields (`candidate.ndethist`, `drb`, `classtar`, `jd`,
//! `jdstarthist`), `roid` from the `solar_system` module, and columns of other modules read
//! only when present: `rf_snia_vs_nonia` (early_snia), `xm_<catalogue>.<field>` (crossmatch),
//! and Fink's `snn_snia_vs_nonia`, `snn_sn_vs_all` (SuperNNova), `rf_kn_vs_nonkn` (kilonova),
//! `mulens` (LIA microlensing) and `tracklet`, which no nightjar module computes yet: the rules
//! that need them are not applied until a module provides them. A null input fails its
//! comparison, as NaN does in Fink. Rubin alerts lack the ZTF fields, so only the rules on
//! `roid`, catalogue labels, `mulens` and `tracklet` can fire for them.
//!
//! The catalogue label stands in for SIMBAD: the configured crossmatch columns are tried in
//! order and the first non-null one is the alert's label (default: the GCVS variability type,
//! then `YSO_Candidate` for a SPICY match, then `Blazar` for a 3HSP match; no match is
//! `Unknown`). As in Fink, the label overrides the class unless it is `Unknown`, `Transient`,
//! `Fail...` or `Galaxy...`, and the SN, early SN Ia and kilonova rules need a label from
//! [`EXTRAGALACTIC_HOST_LABELS`] (fink-utils' `return_list_of_eg_host`; `Unknown` is in it).

use nightjar_core::{Alert, FieldValue};
use serde::{Deserialize, Serialize};

use crate::error::ModuleError;
use crate::module::{ColumnType, OutputColumn, Row, ScienceModule, Value};
use crate::outputs::ModuleOutputs;

const NAME: &str = "classification";

/// The class of an alert that no rule flags.
pub const UNKNOWN: &str = "Unknown";
/// The class of an alert flagged by more than one of the mutually exclusive rules.
pub const AMBIGUOUS: &str = "Ambiguous";

const OUTPUTS: &[OutputColumn] = &[
    OutputColumn::new(
        "class",
        ColumnType::Text,
        "Fink's ZTF class: the last rule that fires in Fink's order, Ambiguous, or the catalogue label",
    ),
    OutputColumn::new(
        "tags",
        ColumnType::Text,
        "every rule that fires, comma-separated (sn_candidate, solar_system_mpc, in_gcvs, ...)",
    ),
];

/// Labels that Fink counts as a possible supernova host (or no information): fink-utils 0.79.0
/// `fink_utils.xmatch.simbad.return_list_of_eg_host()`.
pub const EXTRAGALACTIC_HOST_LABELS: &[&str] = &[
    "BClG",
    "BlueCompG",
    "Candidate_SN*",
    "ClG",
    "Compact_Gr_G",
    "EmG",
    "Fail",
    "Fail 504",
    "Galaxy",
    "GinCl",
    "GinGroup",
    "GinPair",
    "GravLens_Candidate",
    "GroupG",
    "HII_G",
    "High_z_G",
    "IG",
    "LINER",
    "LSB_G",
    "PairG",
    "PartofG",
    "Possible_ClG",
    "Possible_SClG",
    "SN",
    "SN*_Candidate",
    "Seyfert",
    "Seyfert_1",
    "Seyfert_2",
    "StarburstG",
    "SuperClG",
    "Transient",
    "Unknown",
    "Void",
    "galaxy",
];

/// Whether a catalogue label overrides the class (fink-filters `simbad_candidates_`): not
/// `Unknown`, `Transient`, a failure (`Fail...`) or a galaxy (`Galaxy...`).
pub fn label_overrides_class(label: &str) -> bool {
    !(label == UNKNOWN || label == "Transient" || label.starts_with("Fail") || label.starts_with("Galaxy"))
}

/// One catalogue whose match labels the alert, standing in for SIMBAD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueLabel {
    /// The crossmatch catalogue name: its columns are `xm_<catalogue>.<field>`; its tag is
    /// `in_<catalogue>`.
    pub catalogue: String,
    /// The matched source's field to read (`type`, `id`, ...); the alert has a match when it
    /// is not null.
    pub field: String,
    /// The label to give on a match; none: the field's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl CatalogueLabel {
    fn new(catalogue: &str, field: &str, label: Option<&str>) -> CatalogueLabel {
        CatalogueLabel {
            catalogue: catalogue.to_owned(),
            field: field.to_owned(),
            label: label.map(str::to_owned),
        }
    }
}

/// Configuration of the `classification` module (`[modules.classification]`): Fink's
/// thresholds (a score must exceed its `_above` value) and the catalogues standing in for
/// SIMBAD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassificationConfig {
    /// Run the module (default true).
    pub enabled: bool,
    /// Fink's early SN Ia rule also needs a SuperNNova score above `supernnova_above`. While no
    /// module gives `snn_snia_vs_nonia` or `snn_sn_vs_all`, false (default) leaves that clause
    /// out and true never fires the rule. With the columns present the clause always applies.
    pub early_snia_needs_supernnova: bool,
    /// SuperNNova score (`snn_snia_vs_nonia` or `snn_sn_vs_all`) above which an alert is
    /// SN-like (Fink: 0.5).
    pub supernnova_above: f64,
    /// Early SN Ia score `rf_snia_vs_nonia` above which the early SN Ia rule fires (Fink: 0.5).
    pub rf_snia_vs_nonia_above: f64,
    /// Kilonova score `rf_kn_vs_nonkn` above which the kilonova rule fires (Fink: 0.5).
    pub rf_kn_vs_nonkn_above: f64,
    /// Microlensing probability `mulens` above which the microlensing rule fires (Fink: 0).
    pub mulens_above: f64,
    /// `candidate.drb` above which a detection is real enough (Fink: 0.5).
    pub drb_above: f64,
    /// `candidate.classtar` (SExtractor star/galaxy score) above which the source is point-like
    /// enough (Fink: 0.4).
    pub classtar_above: f64,
    /// Early SN Ia: at most this `ndethist` (Fink: 20).
    pub early_snia_max_ndethist: i64,
    /// SN: at most this many days between `jdstarthist` and `jd` (Fink: 90).
    pub sn_max_days_since_start: f64,
    /// Kilonova: fewer days than this between `jdstarthist` and `jd` (Fink: 5).
    pub kilonova_days_since_start_below: f64,
    /// Kilonova: `ndethist` below this (Fink: 20).
    pub kilonova_ndethist_below: i64,
    /// Catalogues standing in for SIMBAD, in priority order: the first that matches gives the
    /// alert's label.
    pub catalogue_labels: Vec<CatalogueLabel>,
}

impl Default for ClassificationConfig {
    fn default() -> ClassificationConfig {
        ClassificationConfig {
            enabled: true,
            early_snia_needs_supernnova: false,
            supernnova_above: 0.5,
            rf_snia_vs_nonia_above: 0.5,
            rf_kn_vs_nonkn_above: 0.5,
            mulens_above: 0.0,
            drb_above: 0.5,
            classtar_above: 0.4,
            early_snia_max_ndethist: 20,
            sn_max_days_since_start: 90.0,
            kilonova_days_since_start_below: 5.0,
            kilonova_ndethist_below: 20,
            catalogue_labels: vec![
                CatalogueLabel::new("gcvs", "type", None),
                CatalogueLabel::new("spicy", "class", Some("YSO_Candidate")),
                CatalogueLabel::new("x3hsp", "id", Some("Blazar")),
            ],
        }
    }
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl ClassificationConfig {
    /// Checks that scores lie in [0, 1], day and detection limits are finite and non-negative,
    /// and catalogue labels name valid columns.
    pub fn validate(&self) -> Result<(), ModuleError> {
        let invalid = |field: &str, reason: String| ModuleError::InvalidConfig {
            module: NAME.to_owned(),
            field: field.to_owned(),
            reason,
        };
        let scores = [
            ("supernnova_above", self.supernnova_above),
            ("rf_snia_vs_nonia_above", self.rf_snia_vs_nonia_above),
            ("rf_kn_vs_nonkn_above", self.rf_kn_vs_nonkn_above),
            ("mulens_above", self.mulens_above),
            ("drb_above", self.drb_above),
            ("classtar_above", self.classtar_above),
        ];
        for (field, value) in scores {
            if !(0.0..=1.0).contains(&value) {
                return Err(invalid(field, format!("{value} is not within [0, 1]")));
            }
        }
        let days = [
            ("sn_max_days_since_start", self.sn_max_days_since_start),
            ("kilonova_days_since_start_below", self.kilonova_days_since_start_below),
        ];
        for (field, value) in days {
            if !(value.is_finite() && value >= 0.0) {
                return Err(invalid(field, format!("{value} is not a finite number >= 0")));
            }
        }
        let counts = [
            ("early_snia_max_ndethist", self.early_snia_max_ndethist),
            ("kilonova_ndethist_below", self.kilonova_ndethist_below),
        ];
        for (field, value) in counts {
            if value < 0 {
                return Err(invalid(field, format!("{value} is negative")));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for entry in &self.catalogue_labels {
            if !is_identifier(&entry.catalogue) || !is_identifier(&entry.field) {
                return Err(invalid(
                    "catalogue_labels",
                    format!(
                        "catalogue {:?} and field {:?} must be identifiers ([A-Za-z_][A-Za-z0-9_]*), as in the column xm_<catalogue>.<field>",
                        entry.catalogue, entry.field
                    ),
                ));
            }
            if !seen.insert((&entry.catalogue, &entry.field)) {
                return Err(invalid(
                    "catalogue_labels",
                    format!("xm_{}.{} is listed twice", entry.catalogue, entry.field),
                ));
            }
            if let Some(label) = &entry.label
                && (label.trim().is_empty() || label.contains(','))
            {
                return Err(invalid(
                    "catalogue_labels",
                    format!(
                        "label {label:?} of catalogue {:?} is empty or has a comma",
                        entry.catalogue
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// What the rules see of one alert. Scores and fields are `None` when null or absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// `roid` of the `solar_system` module.
    pub roid: Option<i64>,
    /// ZTF `candidate.ndethist`: detections (3 sigma) since the start of the survey.
    pub ndethist: Option<i64>,
    /// ZTF `candidate.drb`: deep-learning real/bogus score.
    pub drb: Option<f64>,
    /// ZTF `candidate.classtar`: SExtractor star/galaxy score.
    pub classtar: Option<f64>,
    /// ZTF `candidate.jd - candidate.jdstarthist`, days.
    pub days_since_start: Option<f64>,
    /// `rf_snia_vs_nonia` of the `early_snia` module.
    pub rf_snia_vs_nonia: Option<f64>,
    /// Fink's SuperNNova score, SN Ia against other supernovae.
    pub snn_snia_vs_nonia: Option<f64>,
    /// Fink's SuperNNova score, supernova against everything else.
    pub snn_sn_vs_all: Option<f64>,
    /// Whether some module gives SuperNNova scores (the columns exist, even if null here).
    pub supernnova_available: bool,
    /// Fink's kilonova score.
    pub rf_kn_vs_nonkn: Option<f64>,
    /// Fink's microlensing probability.
    pub mulens: Option<f64>,
    /// Fink's tracklet label (`TRCK_...` for a satellite or debris trail).
    pub tracklet: Option<String>,
    /// The catalogue label standing in for SIMBAD's `cdsxmatch`; `None` is `Unknown`.
    pub catalogue_label: Option<String>,
}

fn above(value: Option<f64>, threshold: f64) -> bool {
    value.is_some_and(|value| value > threshold)
}

impl Facts {
    fn label(&self) -> &str {
        self.catalogue_label.as_deref().unwrap_or(UNKNOWN)
    }

    /// fink-utils `return_list_of_eg_host`: no label, or an extragalactic one.
    fn host_may_be_extragalactic(&self) -> bool {
        EXTRAGALACTIC_HOST_LABELS.contains(&self.label())
    }

    fn supernnova(&self, config: &ClassificationConfig) -> bool {
        above(self.snn_snia_vs_nonia, config.supernnova_above) || above(self.snn_sn_vs_all, config.supernnova_above)
    }

    fn not_mpc(&self) -> bool {
        self.roid != Some(3)
    }

    fn real_point_like(&self, config: &ClassificationConfig) -> bool {
        above(self.drb, config.drb_above) && above(self.classtar, config.classtar_above)
    }
}

/// One rule: the class it gives, its tag, whether it counts for `Ambiguous`, and when it fires.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Fink's class name.
    pub class: &'static str,
    /// The tag in `tags`.
    pub tag: &'static str,
    /// Counts toward `Ambiguous` (microlensing, SN, Solar System candidate and MPC).
    pub exclusive: bool,
    /// Fink's definition, as the docs print it.
    pub definition: &'static str,
    /// Whether the rule fires.
    pub fires: fn(&Facts, &ClassificationConfig) -> bool,
}

/// The rules in Fink's order: a later rule that fires overwrites the class of an earlier one.
pub const RULES: &[Rule] = &[
    Rule {
        class: "Microlensing candidate",
        tag: "microlensing_candidate",
        exclusive: true,
        definition: "mulens > 0 (LIA; no nightjar module: not applied)",
        fires: |facts, config| above(facts.mulens, config.mulens_above),
    },
    Rule {
        class: "SN candidate",
        tag: "sn_candidate",
        exclusive: true,
        definition: "(snn_snia_vs_nonia > 0.5 or snn_sn_vs_all > 0.5) and extragalactic host and \
                     jd - jdstarthist <= 90 and drb > 0.5 and classtar > 0.4 and ndethist > 1 and roid != 3 \
                     (SuperNNova; no nightjar module: not applied)",
        fires: |facts, config| {
            facts.supernnova(config)
                && facts.host_may_be_extragalactic()
                && facts
                    .days_since_start
                    .is_some_and(|days| days <= config.sn_max_days_since_start)
                && facts.real_point_like(config)
                && facts.ndethist.is_some_and(|n| n > 1)
                && facts.not_mpc()
        },
    },
    Rule {
        class: "Early SN Ia candidate",
        tag: "early_snia_candidate",
        exclusive: false,
        definition: "rf_snia_vs_nonia > 0.5 and ndethist <= 20 and drb > 0.5 and classtar > 0.4 and \
                     extragalactic host and (snn_snia_vs_nonia > 0.5 or snn_sn_vs_all > 0.5; left out \
                     while no module gives SuperNNova scores)",
        fires: |facts, config| {
            let supernnova = if facts.supernnova_available {
                facts.supernnova(config)
            } else {
                !config.early_snia_needs_supernnova
            };
            above(facts.rf_snia_vs_nonia, config.rf_snia_vs_nonia_above)
                && facts.ndethist.is_some_and(|n| n <= config.early_snia_max_ndethist)
                && facts.real_point_like(config)
                && facts.host_may_be_extragalactic()
                && supernnova
        },
    },
    Rule {
        class: "Kilonova candidate",
        tag: "kilonova_candidate",
        exclusive: false,
        definition: "rf_kn_vs_nonkn > 0.5 and drb > 0.5 and classtar > 0.4 and jd - jdstarthist < 5 and \
                     ndethist < 20 and roid != 3 and extragalactic host (no nightjar module: not applied)",
        fires: |facts, config| {
            above(facts.rf_kn_vs_nonkn, config.rf_kn_vs_nonkn_above)
                && facts.real_point_like(config)
                && facts
                    .days_since_start
                    .is_some_and(|days| days < config.kilonova_days_since_start_below)
                && facts.ndethist.is_some_and(|n| n < config.kilonova_ndethist_below)
                && facts.not_mpc()
                && facts.host_may_be_extragalactic()
        },
    },
    Rule {
        class: "Solar System candidate",
        tag: "solar_system_candidate",
        exclusive: true,
        definition: "roid == 2",
        fires: |facts, _| facts.roid == Some(2),
    },
    Rule {
        class: "Tracklet",
        tag: "tracklet",
        exclusive: false,
        definition: "tracklet starts with TRCK_ (no nightjar module: not applied)",
        fires: |facts, _| {
            facts
                .tracklet
                .as_deref()
                .is_some_and(|label| label.starts_with("TRCK_"))
        },
    },
    Rule {
        class: "Solar System MPC",
        tag: "solar_system_mpc",
        exclusive: true,
        definition: "roid == 3",
        fires: |facts, _| facts.roid == Some(3),
    },
];

/// The class and tags of one alert: [`RULES`] in order, `Ambiguous`, then the catalogue label.
/// `catalogue_tags` are the `in_<catalogue>` tags of every catalogue that matched.
pub fn classify(facts: &Facts, catalogue_tags: &[String], config: &ClassificationConfig) -> (String, String) {
    let mut class = UNKNOWN;
    let mut n_exclusive = 0;
    let mut tags: Vec<&str> = Vec::new();
    for rule in RULES {
        if (rule.fires)(facts, config) {
            class = rule.class;
            n_exclusive += usize::from(rule.exclusive);
            tags.push(rule.tag);
        }
    }
    if n_exclusive > 1 {
        class = AMBIGUOUS;
    }
    let label = facts.label();
    if label_overrides_class(label) {
        class = label;
    }
    tags.extend(catalogue_tags.iter().map(String::as_str));
    (class.to_owned(), tags.join(","))
}

/// A configured catalogue label with its column name and tag, built once.
#[derive(Debug, Clone)]
struct CatalogueColumn {
    column: String,
    tag: String,
    label: Option<String>,
}

/// The `classification` module.
#[derive(Debug, Clone)]
pub struct Classification {
    config: ClassificationConfig,
    catalogues: Vec<CatalogueColumn>,
}

impl Classification {
    /// Builds the module after validating `config`.
    pub fn build(config: &ClassificationConfig) -> Result<Classification, ModuleError> {
        config.validate()?;
        let catalogues = config
            .catalogue_labels
            .iter()
            .map(|entry| CatalogueColumn {
                column: format!("xm_{}.{}", entry.catalogue, entry.field),
                tag: format!("in_{}", entry.catalogue),
                label: entry.label.clone(),
            })
            .collect();
        Ok(Classification {
            config: config.clone(),
            catalogues,
        })
    }

    /// The rule inputs of alert `index` of the batch, and the tags of its catalogue matches.
    pub fn facts(&self, alert: &Alert, index: usize, inputs: &ModuleOutputs) -> (Facts, Vec<String>) {
        let float = |column: &str| {
            inputs
                .get(index, column)
                .and_then(Value::as_f64)
                .filter(|value| !value.is_nan())
        };
        let raw_float = |path: &str| {
            alert
                .raw
                .get(path)
                .and_then(|value| value.as_f64())
                .filter(|value| !value.is_nan())
        };
        let jd = raw_float("candidate.jd");
        let jdstarthist = raw_float("candidate.jdstarthist");
        let mut catalogue_label = None;
        let mut catalogue_tags = Vec::new();
        for catalogue in &self.catalogues {
            let value = match inputs.get(index, &catalogue.column) {
                Some(Value::Text(text)) => Some(text.trim().to_owned()),
                Some(Value::Float(number)) if !number.is_nan() => Some(number.to_string()),
                Some(Value::Int(number)) => Some(number.to_string()),
                Some(Value::Bool(flag)) => Some(flag.to_string()),
                _ => None,
            };
            let Some(value) = value.filter(|value| !value.is_empty()) else {
                continue;
            };
            catalogue_tags.push(catalogue.tag.clone());
            if catalogue_label.is_none() {
                catalogue_label = Some(catalogue.label.clone().unwrap_or(value));
            }
        }
        let facts = Facts {
            roid: inputs.get(index, "roid").and_then(Value::as_i64),
            ndethist: match alert.raw.get("candidate.ndethist") {
                Some(FieldValue::Int(value)) => Some(value),
                _ => None,
            },
            drb: raw_float("candidate.drb"),
            classtar: raw_float("candidate.classtar"),
            days_since_start: jd.zip(jdstarthist).map(|(jd, start)| jd - start),
            rf_snia_vs_nonia: float("rf_snia_vs_nonia"),
            snn_snia_vs_nonia: float("snn_snia_vs_nonia"),
            snn_sn_vs_all: float("snn_sn_vs_all"),
            supernnova_available: inputs.column("snn_snia_vs_nonia").is_some()
                || inputs.column("snn_sn_vs_all").is_some(),
            rf_kn_vs_nonkn: float("rf_kn_vs_nonkn"),
            mulens: float("mulens"),
            tracklet: inputs.get(index, "tracklet").and_then(Value::as_str).map(str::to_owned),
            catalogue_label,
        };
        (facts, catalogue_tags)
    }
}

impl ScienceModule for Classification {
    fn name(&self) -> &str {
        NAME
    }

    fn version(&self) -> &str {
        "1.0.0"
    }

    fn outputs(&self) -> &[OutputColumn] {
        OUTPUTS
    }

    /// Only `solar_system` is required; the columns of optional modules are read when present,
    /// so `builtin_modules` lists this module last.
    fn depends_on(&self) -> &[&str] {
        &["solar_system"]
    }

    fn run(&self, batch: &[Alert], inputs: &ModuleOutputs) -> Result<Vec<Row>, ModuleError> {
        Ok(batch
            .iter()
            .enumerate()
            .map(|(index, alert)| {
                let (facts, catalogue_tags) = self.facts(alert, index, inputs);
                let (class, tags) = classify(&facts, &catalogue_tags, &self.config);
                vec![Some(Value::Text(class)), Some(Value::Text(tags))]
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClassificationConfig {
        ClassificationConfig::default()
    }

    /// An alert that passes every raw-field clause of the SN, early SN Ia and kilonova rules.
    fn young_transient() -> Facts {
        Facts {
            roid: Some(0),
            ndethist: Some(3),
            drb: Some(0.99),
            classtar: Some(0.98),
            days_since_start: Some(2.0),
            ..Facts::default()
        }
    }

    fn class_of(facts: &Facts) -> String {
        classify(facts, &[], &config()).0
    }

    #[test]
    fn no_rule_gives_unknown_and_no_tags() {
        assert_eq!(
            classify(&young_transient(), &[], &config()),
            ("Unknown".into(), String::new())
        );
    }

    #[test]
    fn early_snia_without_supernnova_module_follows_the_config() {
        let facts = Facts {
            rf_snia_vs_nonia: Some(0.7),
            ..young_transient()
        };
        assert_eq!(class_of(&facts), "Early SN Ia candidate");
        let strict = ClassificationConfig {
            early_snia_needs_supernnova: true,
            ..config()
        };
        assert_eq!(classify(&facts, &[], &strict).0, "Unknown");
        // With a SuperNNova module present, its clause applies whatever the setting.
        let low_snn = Facts {
            supernnova_available: true,
            snn_snia_vs_nonia: Some(0.3),
            ..facts.clone()
        };
        assert_eq!(class_of(&low_snn), "Unknown");
        // Fink's cuts: ndethist <= 20, drb > 0.5, classtar > 0.4, rf > 0.5.
        for changed in [
            Facts {
                ndethist: Some(21),
                ..facts.clone()
            },
            Facts {
                drb: Some(0.5),
                ..facts.clone()
            },
            Facts {
                classtar: Some(0.4),
                ..facts.clone()
            },
            Facts {
                rf_snia_vs_nonia: Some(0.5),
                ..facts.clone()
            },
            Facts {
                drb: None,
                ..facts.clone()
            },
        ] {
            assert_eq!(class_of(&changed), "Unknown", "{changed:?}");
        }
        assert_eq!(
            class_of(&Facts {
                ndethist: Some(20),
                ..facts
            }),
            "Early SN Ia candidate"
        );
    }

    #[test]
    fn later_rules_overwrite_earlier_ones_in_finks_order() {
        let all = Facts {
            snn_sn_vs_all: Some(0.9),
            supernnova_available: true,
            rf_snia_vs_nonia: Some(0.9),
            rf_kn_vs_nonkn: Some(0.9),
            ..young_transient()
        };
        let (class, tags) = classify(&all, &[], &config());
        assert_eq!(class, "Kilonova candidate");
        assert_eq!(tags, "sn_candidate,early_snia_candidate,kilonova_candidate");
        let tracklet = Facts {
            tracklet: Some("TRCK_20191027_090120_00".into()),
            ..all.clone()
        };
        assert_eq!(class_of(&tracklet), "Tracklet");
        // An MPC object is not an SN or kilonova: only the MPC rule among the exclusive ones.
        let mpc = Facts {
            roid: Some(3),
            ..tracklet
        };
        let (class, tags) = classify(&mpc, &[], &config());
        assert_eq!(class, "Solar System MPC");
        assert_eq!(tags, "early_snia_candidate,tracklet,solar_system_mpc");
    }

    #[test]
    fn two_exclusive_rules_give_ambiguous() {
        let facts = Facts {
            mulens: Some(0.2),
            roid: Some(2),
            ..young_transient()
        };
        let (class, tags) = classify(&facts, &[], &config());
        assert_eq!(class, "Ambiguous");
        assert_eq!(tags, "microlensing_candidate,solar_system_candidate");
        // Early SN Ia, kilonova and tracklet do not count.
        let facts = Facts {
            roid: Some(2),
            rf_snia_vs_nonia: Some(0.9),
            rf_kn_vs_nonkn: Some(0.9),
            ..young_transient()
        };
        assert_eq!(class_of(&facts), "Solar System candidate");
        let facts = Facts {
            tracklet: Some("TRCK_1".into()),
            ..facts
        };
        assert_eq!(class_of(&facts), "Tracklet");
    }

    #[test]
    fn a_catalogue_label_overrides_all_but_galaxies_and_unknown() {
        let facts = Facts {
            roid: Some(3),
            catalogue_label: Some("RRAB".into()),
            ..young_transient()
        };
        let tags = vec!["in_gcvs".to_owned()];
        assert_eq!(
            classify(&facts, &tags, &config()),
            ("RRAB".into(), "solar_system_mpc,in_gcvs".into())
        );
        for label in ["Galaxy", "Unknown", "Fail 504", "Transient"] {
            let facts = Facts {
                catalogue_label: Some(label.into()),
                rf_snia_vs_nonia: Some(0.9),
                ..young_transient()
            };
            assert_eq!(class_of(&facts), "Early SN Ia candidate", "{label}");
        }
        // A stellar label is no supernova host.
        let star = Facts {
            catalogue_label: Some("YSO_Candidate".into()),
            rf_snia_vs_nonia: Some(0.9),
            ..young_transient()
        };
        assert_eq!(classify(&star, &[], &config()), ("YSO_Candidate".into(), String::new()));
    }

    #[test]
    fn sn_and_kilonova_cuts() {
        let sn = Facts {
            snn_snia_vs_nonia: Some(0.6),
            supernnova_available: true,
            ..young_transient()
        };
        assert_eq!(class_of(&sn), "SN candidate");
        let cases = [
            (
                Facts {
                    days_since_start: Some(90.5),
                    ..sn.clone()
                },
                "Unknown",
            ),
            (
                Facts {
                    days_since_start: Some(90.0),
                    ..sn.clone()
                },
                "SN candidate",
            ),
            (
                Facts {
                    ndethist: Some(1),
                    ..sn.clone()
                },
                "Unknown",
            ),
            (
                Facts {
                    roid: Some(3),
                    ..sn.clone()
                },
                "Solar System MPC",
            ),
        ];
        for (facts, expected) in cases {
            assert_eq!(class_of(&facts), expected, "{facts:?}");
        }
        let kilonova = Facts {
            rf_kn_vs_nonkn: Some(0.6),
            ..young_transient()
        };
        assert_eq!(class_of(&kilonova), "Kilonova candidate");
        for changed in [
            Facts {
                days_since_start: Some(5.0),
                ..kilonova.clone()
            },
            Facts {
                ndethist: Some(20),
                ..kilonova.clone()
            },
        ] {
            assert_eq!(class_of(&changed), "Unknown", "{changed:?}");
        }
    }

    #[test]
    fn config_is_validated() {
        assert!(ClassificationConfig::default().validate().is_ok());
        let bad = [
            ClassificationConfig {
                drb_above: 1.5,
                ..config()
            },
            ClassificationConfig {
                sn_max_days_since_start: f64::NAN,
                ..config()
            },
            ClassificationConfig {
                early_snia_max_ndethist: -1,
                ..config()
            },
            ClassificationConfig {
                catalogue_labels: vec![CatalogueLabel::new("gcvs.x", "type", None)],
                ..config()
            },
            ClassificationConfig {
                catalogue_labels: vec![
                    CatalogueLabel::new("gcvs", "type", None),
                    CatalogueLabel::new("gcvs", "type", Some("Star")),
                ],
                ..config()
            },
            ClassificationConfig {
                catalogue_labels: vec![CatalogueLabel::new("gcvs", "type", Some("a,b"))],
                ..config()
            },
        ];
        for config in bad {
            let error = config.validate().expect_err("invalid config");
            assert!(error.to_string().contains("classification"), "{error}");
        }
    }
}
