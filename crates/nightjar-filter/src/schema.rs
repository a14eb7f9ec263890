//! [`AlertSchema`]: the columns of the `alerts` table that filters query, and where each comes from.
//!
//! One row per alert. Columns, in this order:
//! - core fields of every survey (`survey`, `object_id`, `source_id`, `mjd`, `ra`, `band`, ...);
//! - history columns computed from the history the alert carries (`n_detections`,
//!   `last_magnitude_g`, `first_detection_mjd`, ...);
//! - the raw survey fields by their names: top-level scalars as columns (`objectId`,
//!   `diaSourceId`), records as struct columns (`candidate.magpsf`, `diaSource.psfFlux`,
//!   `diaObject.nDiaSources`); a field of one survey is null on the other survey's alerts;
//! - every science-module output, a dot nesting a field in a struct (`lc_features_g.amplitude`).
//!
//! Arrays (`prv_candidates`, `prvDiaSources`) and bytes (cutouts) are not columns; the history
//! columns summarise the arrays.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use nightjar_core::raw::{FieldKind, RawRecord};
use nightjar_core::{Band, Survey};
use nightjar_modules::{ColumnType, OutputColumn};

use crate::error::SchemaError;

/// A core field of every alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreField {
    Survey,
    SchemaVersion,
    ObjectId,
    SourceId,
    Mjd,
    Jd,
    Ra,
    Dec,
    Band,
    Magnitude,
    MagnitudeErr,
    Flux,
    FluxErr,
    IsNegative,
}

/// A column computed from the history that an alert carries (its own detection included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryField {
    /// Detections carried, the alert's own included.
    NDetections,
    /// Upper limits carried.
    NUpperLimits,
    /// Forced-photometry points carried.
    NForcedPhotometry,
    /// MJD of the earliest detection carried.
    FirstDetectionMjd,
    /// The alert's MJD minus the earliest detection's.
    DaysSinceFirstDetection,
    /// MJD of the latest earlier detection, any band.
    PreviousDetectionMjd,
    /// Detections in a band.
    NDetectionsBand(Band),
    /// Magnitude of the latest detection in a band.
    LastMagnitudeBand(Band),
    /// MJD of the latest detection in a band.
    LastMjdBand(Band),
    /// Magnitude change per day between the two latest detections in a band (positive: fading).
    MagRateBand(Band),
}

/// Where the values of one leaf column come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSource {
    Core(CoreField),
    History(HistoryField),
    /// A raw survey field, read by its dotted path from the surveys listed.
    Raw {
        path: String,
        kind: FieldKind,
        surveys: Vec<Survey>,
    },
    /// A science-module output by its global name.
    Module {
        name: String,
        column_type: ColumnType,
    },
}

/// One leaf column of the `alerts` table.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafColumn {
    /// Dotted path (`candidate.magpsf`, `mjd`).
    pub path: String,
    pub data_type: DataType,
    pub source: ColumnSource,
    /// What the column means, for `nightjar filter columns` and error messages.
    pub description: String,
}

/// A node of the column tree: a leaf or a struct of nodes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Leaf(usize),
    Struct(Vec<(String, Node)>),
}

/// The `alerts` table's schema, fixed for a run: core, history, raw and module columns.
#[derive(Debug, Clone)]
pub struct AlertSchema {
    leaves: Vec<LeafColumn>,
    index: HashMap<String, usize>,
    tree: Vec<(String, Node)>,
    arrow: SchemaRef,
}

const CORE_FIELDS: [(&str, CoreField, DataType, &str); 14] = [
    ("survey", CoreField::Survey, DataType::Utf8, "the survey: ztf or rubin"),
    (
        "schema_version",
        CoreField::SchemaVersion,
        DataType::Utf8,
        "the alert's schema version (3.3, 4.02, 9.0)",
    ),
    (
        "object_id",
        CoreField::ObjectId,
        DataType::Utf8,
        "the survey's object id (ZTF objectId, Rubin diaObjectId)",
    ),
    (
        "source_id",
        CoreField::SourceId,
        DataType::Int64,
        "the survey's id of the detection (ZTF candid, Rubin diaSourceId)",
    ),
    ("mjd", CoreField::Mjd, DataType::Float64, "observation time, MJD"),
    ("jd", CoreField::Jd, DataType::Float64, "observation time, JD"),
    ("ra", CoreField::Ra, DataType::Float64, "right ascension, degrees"),
    ("dec", CoreField::Dec, DataType::Float64, "declination, degrees"),
    ("band", CoreField::Band, DataType::Utf8, "photometric band: u g r i z y"),
    (
        "magnitude",
        CoreField::Magnitude,
        DataType::Float64,
        "difference-image PSF magnitude (AB)",
    ),
    (
        "magnitude_err",
        CoreField::MagnitudeErr,
        DataType::Float64,
        "1-sigma uncertainty of magnitude",
    ),
    (
        "flux",
        CoreField::Flux,
        DataType::Float64,
        "difference-image PSF flux, nJy, signed",
    ),
    (
        "flux_err",
        CoreField::FluxErr,
        DataType::Float64,
        "1-sigma uncertainty of flux, nJy",
    ),
    (
        "is_negative",
        CoreField::IsNegative,
        DataType::Boolean,
        "true when the difference is negative",
    ),
];

impl AlertSchema {
    /// The schema for alerts of both surveys enriched by modules with these outputs.
    ///
    /// Fails when two sources claim one column name with different types (a module output named
    /// like a raw field, say).
    pub fn new<'a>(module_outputs: impl IntoIterator<Item = &'a OutputColumn>) -> Result<AlertSchema, SchemaError> {
        let mut leaves: Vec<LeafColumn> = Vec::new();
        for (name, field, data_type, description) in CORE_FIELDS {
            leaves.push(LeafColumn {
                path: name.to_string(),
                data_type,
                source: ColumnSource::Core(field),
                description: description.to_string(),
            });
        }
        leaves.extend(history_columns());
        let raw = [
            (Survey::Ztf, nightjar_ztf::ZtfAlert::field_kinds()),
            (
                Survey::Rubin,
                <nightjar_rubin::wire::RubinAlert as RawRecord>::field_kinds(),
            ),
        ];
        let mut raw_index: HashMap<String, usize> = HashMap::new();
        for (survey, kinds) in raw {
            for (path, kind) in kinds {
                let Some(data_type) = raw_data_type(kind) else {
                    continue;
                };
                if let Some(&position) = raw_index.get(&path) {
                    let leaf: &mut LeafColumn = &mut leaves[position];
                    if leaf.data_type != data_type {
                        return Err(SchemaError::Conflict {
                            column: path,
                            first: format!("{:?}", leaf.data_type),
                            second: format!("{data_type:?}"),
                        });
                    }
                    if let ColumnSource::Raw { surveys, .. } = &mut leaf.source {
                        surveys.push(survey);
                    }
                    continue;
                }
                raw_index.insert(path.clone(), leaves.len());
                leaves.push(LeafColumn {
                    description: format!("raw {survey} field {path}"),
                    path: path.clone(),
                    data_type,
                    source: ColumnSource::Raw {
                        path,
                        kind,
                        surveys: vec![survey],
                    },
                });
            }
        }
        for output in module_outputs {
            let data_type = match output.column_type {
                ColumnType::Bool => DataType::Boolean,
                ColumnType::Int => DataType::Int64,
                ColumnType::Float => DataType::Float64,
                ColumnType::Text => DataType::Utf8,
            };
            leaves.push(LeafColumn {
                path: output.name.to_string(),
                data_type,
                source: ColumnSource::Module {
                    name: output.name.to_string(),
                    column_type: output.column_type,
                },
                description: output.description.to_string(),
            });
        }
        Self::from_leaves(leaves)
    }

    fn from_leaves(leaves: Vec<LeafColumn>) -> Result<AlertSchema, SchemaError> {
        let mut index = HashMap::new();
        let mut tree: Vec<(String, Node)> = Vec::new();
        for (position, leaf) in leaves.iter().enumerate() {
            if index.insert(leaf.path.clone(), position).is_some() {
                return Err(SchemaError::Duplicate {
                    column: leaf.path.clone(),
                });
            }
            insert_leaf(&mut tree, &leaf.path, &leaf.path, position)?;
        }
        let fields: Vec<Field> = tree
            .iter()
            .map(|(name, node)| arrow_field(name, node, &leaves))
            .collect();
        Ok(AlertSchema {
            arrow: Arc::new(Schema::new(fields)),
            leaves,
            index,
            tree,
        })
    }

    /// The Arrow schema of the batches [`crate::AlertBatch`] builds.
    pub fn arrow(&self) -> &SchemaRef {
        &self.arrow
    }

    /// Every leaf column in schema order.
    pub fn leaves(&self) -> &[LeafColumn] {
        &self.leaves
    }

    /// The leaf column at a dotted path.
    pub fn leaf(&self, path: &str) -> Option<&LeafColumn> {
        self.index.get(path).map(|&position| &self.leaves[position])
    }

    /// The leaf positions under a path: the leaf itself, or every leaf of a struct.
    pub(crate) fn leaves_under(&self, path: &str) -> Vec<usize> {
        if let Some(&position) = self.index.get(path) {
            return vec![position];
        }
        let prefix = format!("{path}.");
        (0..self.leaves.len())
            .filter(|&position| self.leaves[position].path.starts_with(&prefix))
            .collect()
    }

    /// True when a path names a column or a struct of columns.
    pub fn has_path(&self, path: &str) -> bool {
        !self.leaves_under(path).is_empty()
    }

    pub(crate) fn tree(&self) -> &[(String, Node)] {
        &self.tree
    }

    /// Up to `limit` column paths closest to `name` (Jaro-Winkler), best first.
    pub fn suggest(&self, name: &str, limit: usize) -> Vec<String> {
        let mut candidates: BTreeMap<String, f64> = BTreeMap::new();
        let lowered = name.to_lowercase();
        for leaf in &self.leaves {
            let score = strsim::jaro_winkler(&lowered, &leaf.path.to_lowercase());
            // A path whose last part matches counts as well (`magpsf` for `candidate.magpsf`).
            let last = leaf.path.rsplit('.').next().unwrap_or(&leaf.path).to_lowercase();
            let last_name = lowered.rsplit('.').next().unwrap_or(&lowered);
            let score = score.max(strsim::jaro_winkler(last_name, &last) - 0.02);
            if score >= 0.85 {
                candidates.insert(leaf.path.clone(), score);
            }
        }
        let mut ranked: Vec<(String, f64)> = candidates.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.into_iter().take(limit).map(|(path, _)| path).collect()
    }
}

fn raw_data_type(kind: FieldKind) -> Option<DataType> {
    match kind {
        FieldKind::Bool => Some(DataType::Boolean),
        FieldKind::Int => Some(DataType::Int64),
        FieldKind::Float => Some(DataType::Float64),
        FieldKind::Str | FieldKind::Mixed => Some(DataType::Utf8),
        FieldKind::Bytes | FieldKind::Nested => None,
    }
}

fn history_columns() -> Vec<LeafColumn> {
    let mut columns = vec![
        history(
            "n_detections",
            HistoryField::NDetections,
            DataType::Int64,
            "detections the alert carries, its own included",
        ),
        history(
            "n_upper_limits",
            HistoryField::NUpperLimits,
            DataType::Int64,
            "upper limits the alert carries",
        ),
        history(
            "n_forced_photometry",
            HistoryField::NForcedPhotometry,
            DataType::Int64,
            "forced-photometry points the alert carries",
        ),
        history(
            "first_detection_mjd",
            HistoryField::FirstDetectionMjd,
            DataType::Float64,
            "MJD of the earliest detection the alert carries",
        ),
        history(
            "days_since_first_detection",
            HistoryField::DaysSinceFirstDetection,
            DataType::Float64,
            "mjd minus first_detection_mjd, days",
        ),
        history(
            "previous_detection_mjd",
            HistoryField::PreviousDetectionMjd,
            DataType::Float64,
            "MJD of the latest earlier detection in any band; null for a first detection",
        ),
    ];
    for band in Band::ALL {
        columns.push(LeafColumn {
            path: format!("n_detections_{band}"),
            data_type: DataType::Int64,
            source: ColumnSource::History(HistoryField::NDetectionsBand(band)),
            description: format!("detections in {band} the alert carries, its own included"),
        });
        columns.push(LeafColumn {
            path: format!("last_magnitude_{band}"),
            data_type: DataType::Float64,
            source: ColumnSource::History(HistoryField::LastMagnitudeBand(band)),
            description: format!("magnitude of the latest detection in {band}"),
        });
        columns.push(LeafColumn {
            path: format!("last_mjd_{band}"),
            data_type: DataType::Float64,
            source: ColumnSource::History(HistoryField::LastMjdBand(band)),
            description: format!("MJD of the latest detection in {band}"),
        });
        columns.push(LeafColumn {
            path: format!("mag_rate_{band}"),
            data_type: DataType::Float64,
            source: ColumnSource::History(HistoryField::MagRateBand(band)),
            description: format!(
                "magnitude change per day between the two latest detections in {band} (positive: fading)"
            ),
        });
    }
    columns
}

fn history(path: &str, field: HistoryField, data_type: DataType, description: &str) -> LeafColumn {
    LeafColumn {
        path: path.to_string(),
        data_type,
        source: ColumnSource::History(field),
        description: description.to_string(),
    }
}

fn insert_leaf(tree: &mut Vec<(String, Node)>, full: &str, rest: &str, position: usize) -> Result<(), SchemaError> {
    let (head, tail) = match rest.split_once('.') {
        Some((head, tail)) => (head, Some(tail)),
        None => (rest, None),
    };
    let existing = tree.iter_mut().find(|(name, _)| name == head);
    match (existing, tail) {
        (None, None) => {
            tree.push((head.to_string(), Node::Leaf(position)));
            Ok(())
        }
        (None, Some(tail)) => {
            let mut children = Vec::new();
            insert_leaf(&mut children, full, tail, position)?;
            tree.push((head.to_string(), Node::Struct(children)));
            Ok(())
        }
        (Some((_, Node::Struct(children))), Some(tail)) => insert_leaf(children, full, tail, position),
        (Some(_), _) => Err(SchemaError::Duplicate {
            column: full.to_string(),
        }),
    }
}

pub(crate) fn arrow_field(name: &str, node: &Node, leaves: &[LeafColumn]) -> Field {
    match node {
        Node::Leaf(position) => Field::new(name, leaves[*position].data_type.clone(), true),
        Node::Struct(children) => {
            let fields: Fields = children
                .iter()
                .map(|(child, node)| arrow_field(child, node, leaves))
                .collect();
            Field::new(name, DataType::Struct(fields), true)
        }
    }
}
