//! The `crossmatch` module: for each alert, the nearest source of each configured catalogue
//! within that catalogue's radius (its id, its distance in arcseconds and chosen columns).
//!
//! Catalogues are CSV or Parquet files, user-supplied or bundled with nightjar (`data/catalogs`,
//! compiled into the binary: Hipparcos-2 bright stars, GCVS, SPICY, 3HSP, one ZTF DR5 quadrant).
//! Each is loaded once when the module is built, its rows sorted by their HEALPix cell
//! (cdshealpix, nested scheme) at the depth where a cone of the catalogue's radius overlaps at
//! most the 9 cells around its centre. A match looks up those 9 cells by binary search and
//! measures the great-circle distance of each row found there, so it costs microseconds
//! whatever the catalogue's size.
//!
//! Outputs, for a catalogue named `NAME`: `xm_NAME.id` (text: the id column, or the row
//! number in the file when none is configured), `xm_NAME.distance_arcsec` (float), and
//! `xm_NAME.FIELD` for each configured column (float when every value of the column is a
//! number, else text). All are null when no source lies within the radius.

mod catalogue;
mod config;

pub use catalogue::{Catalogue, CatalogueMatch, ColumnValue};
pub use config::{BUNDLED_CATALOGUES, CatalogueConfig, CatalogueFormat, Coordinates, CrossmatchConfig};

use nightjar_core::Alert;

use crate::error::ModuleError;
use crate::module::{ColumnType, OutputColumn, Row, ScienceModule, Value};
use crate::outputs::ModuleOutputs;

pub(crate) const NAME: &str = "crossmatch";

/// The `crossmatch` module, with its catalogues loaded and indexed.
#[derive(Debug)]
pub struct Crossmatch {
    catalogues: Vec<Catalogue>,
    outputs: Vec<OutputColumn>,
}

impl Crossmatch {
    /// Validates `config`, then loads and indexes every catalogue (the only I/O the module
    /// does; bundled catalogues are read from the binary).
    pub fn build(config: &CrossmatchConfig) -> Result<Crossmatch, ModuleError> {
        config.validate()?;
        let catalogues = config
            .catalogues
            .iter()
            .map(Catalogue::load)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Crossmatch::from_catalogues(catalogues))
    }

    /// The module over catalogues loaded already (for instance with [`Catalogue::load`]).
    pub fn from_catalogues(catalogues: Vec<Catalogue>) -> Crossmatch {
        let mut outputs = Vec::new();
        for catalogue in &catalogues {
            let prefix = format!("xm_{}", catalogue.name());
            // Names are 'static in `OutputColumn`; a module is built once per process, so the
            // few names of its configured catalogues are leaked on purpose.
            let leak = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
            outputs.push(OutputColumn::new(
                leak(format!("{prefix}.id")),
                ColumnType::Text,
                leak(format!(
                    "id of the nearest {} source within {} arcsec",
                    catalogue.name(),
                    catalogue.radius_arcsec()
                )),
            ));
            outputs.push(OutputColumn::new(
                leak(format!("{prefix}.distance_arcsec")),
                ColumnType::Float,
                leak(format!("distance to the nearest {} source, arcsec", catalogue.name())),
            ));
            for (field, column_type) in catalogue.fields() {
                outputs.push(OutputColumn::new(
                    leak(format!("{prefix}.{field}")),
                    *column_type,
                    leak(format!("column {field} of the nearest {} source", catalogue.name())),
                ));
            }
        }
        Crossmatch { catalogues, outputs }
    }

    /// The loaded catalogues.
    pub fn catalogues(&self) -> &[Catalogue] {
        &self.catalogues
    }

    fn row(&self, alert: &Alert) -> Row {
        let mut row = Vec::with_capacity(self.outputs.len());
        let (ra, dec) = (alert.detection.ra, alert.detection.dec);
        let valid = ra.is_finite() && dec.is_finite() && (-90.0..=90.0).contains(&dec);
        for catalogue in &self.catalogues {
            let found = if valid { catalogue.nearest(ra, dec) } else { None };
            match found {
                Some(found) => {
                    row.push(Some(Value::Text(catalogue.id(found.row))));
                    row.push(Some(Value::Float(found.distance_arcsec)));
                    for field in 0..catalogue.fields().len() {
                        row.push(catalogue.value(found.row, field).map(|value| match value {
                            ColumnValue::Float(value) => Value::Float(value),
                            ColumnValue::Text(value) => Value::Text(value.to_owned()),
                        }));
                    }
                }
                None => row.extend(std::iter::repeat_n(None, 2 + catalogue.fields().len())),
            }
        }
        row
    }
}

impl ScienceModule for Crossmatch {
    fn name(&self) -> &str {
        NAME
    }

    fn version(&self) -> &str {
        "1.0.0"
    }

    fn outputs(&self) -> &[OutputColumn] {
        &self.outputs
    }

    fn run(&self, batch: &[Alert], _inputs: &ModuleOutputs) -> Result<Vec<Row>, ModuleError> {
        Ok(batch.iter().map(|alert| self.row(alert)).collect())
    }
}
