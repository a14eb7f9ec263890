//! [`CrossmatchConfig`] (`[modules.crossmatch]`) and the bundled catalogues.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::ModuleError;

/// The catalogues compiled into nightjar (files of `data/catalogs`, provenance in
/// `data/README.md`): name of the file, its bytes.
pub const BUNDLED_CATALOGUES: &[(&str, &[u8])] = &[
    (
        "hipparcos2_hp_lt7.csv",
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/catalogs/hipparcos2_hp_lt7.csv"
        )),
    ),
    (
        "gcvs_variable_stars.parquet",
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/catalogs/gcvs_variable_stars.parquet"
        )),
    ),
    (
        "spicy_yso_candidates.parquet",
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/catalogs/spicy_yso_candidates.parquet"
        )),
    ),
    (
        "3hsp_blazars.csv",
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/catalogs/3hsp_blazars.csv"
        )),
    ),
    (
        "ztf_000250_zg_c01_q1_dr5.parquet",
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/catalogs/ztf_000250_zg_c01_q1_dr5.parquet"
        )),
    ),
];

/// The largest radius accepted, in arcseconds (1 degree).
pub const MAX_RADIUS_ARCSEC: f64 = 3600.0;

/// Configuration of the `crossmatch` module (`[modules.crossmatch]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrossmatchConfig {
    /// Run the module (default true).
    pub enabled: bool,
    /// The catalogues, each matched independently (`[[modules.crossmatch.catalogues]]`).
    /// Default: Hipparcos-2 bright stars, GCVS, SPICY and 3HSP, all bundled.
    pub catalogues: Vec<CatalogueConfig>,
}

impl Default for CrossmatchConfig {
    fn default() -> CrossmatchConfig {
        CrossmatchConfig {
            enabled: true,
            catalogues: CatalogueConfig::defaults(),
        }
    }
}

/// The file format of a catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogueFormat {
    /// Comma-separated values with a header line. Fields are trimmed of spaces and of
    /// enclosing double quotes.
    Csv,
    /// Apache Parquet.
    Parquet,
}

/// How the position columns are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Coordinates {
    /// Decimal degrees (ICRS).
    #[default]
    Degrees,
    /// Sexagesimal text: right ascension in hours (`00 01 16.37` or `00:01:16.37`),
    /// declination in degrees (`+29 35 34.0`).
    Sexagesimal,
}

/// One catalogue to match against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueConfig {
    /// Short name, the output prefix `xm_<name>`: lowercase letters, digits and `_`,
    /// starting with a letter.
    pub name: String,
    /// A catalogue file to read (CSV or Parquet). Exactly one of `path` and `bundled`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// A catalogue bundled with nightjar, by file name (see `data/catalogs`).
    #[serde(default)]
    pub bundled: Option<String>,
    /// The format; default: from the file name (`.csv`, `.parquet`).
    #[serde(default)]
    pub format: Option<CatalogueFormat>,
    /// Column of the right ascension.
    pub ra_column: String,
    /// Column of the declination.
    pub dec_column: String,
    /// How positions are written (default degrees).
    #[serde(default)]
    pub coordinates: Coordinates,
    /// Column of the source id; none: the row number in the file (from 0).
    #[serde(default)]
    pub id_column: Option<String>,
    /// Further columns to report: output field name -> catalogue column.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Match radius in arcseconds, in (0, 3600].
    pub radius_arcsec: f64,
}

impl CatalogueConfig {
    /// The default catalogues: bundled Hipparcos-2 (Hp < 7, within 600 arcsec: a bright star
    /// whose light can reach the alert), GCVS and SPICY (1.5 arcsec, Fink's radius for its
    /// catalogue matches) and 3HSP blazars (60 arcsec).
    pub fn defaults() -> Vec<CatalogueConfig> {
        let bundled = |name: &str, file: &str, ra: &str, dec: &str, radius_arcsec: f64| CatalogueConfig {
            name: name.to_owned(),
            path: None,
            bundled: Some(file.to_owned()),
            format: None,
            ra_column: ra.to_owned(),
            dec_column: dec.to_owned(),
            coordinates: Coordinates::Degrees,
            id_column: None,
            columns: BTreeMap::new(),
            radius_arcsec,
        };
        let columns = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(field, column)| (field.to_string(), column.to_string()))
                .collect()
        };
        vec![
            CatalogueConfig {
                id_column: Some("hip".to_owned()),
                columns: columns(&[("hpmag", "hpmag"), ("b_v", "b_v")]),
                ..bundled("hipparcos", "hipparcos2_hp_lt7.csv", "ra_deg", "dec_deg", 600.0)
            },
            CatalogueConfig {
                columns: columns(&[("type", "VarType")]),
                ..bundled("gcvs", "gcvs_variable_stars.parquet", "ra", "dec", 1.5)
            },
            CatalogueConfig {
                columns: columns(&[("class", "class")]),
                ..bundled("spicy", "spicy_yso_candidates.parquet", "RAdeg", "DEdeg", 1.5)
            },
            CatalogueConfig {
                id_column: Some("3HSP Source name".to_owned()),
                coordinates: Coordinates::Sexagesimal,
                columns: columns(&[("fom", "FOM")]),
                ..bundled("x3hsp", "3hsp_blazars.csv", "R.A.", "Dec", 60.0)
            },
        ]
    }

    /// The bundled bytes this catalogue names, if it names one.
    pub fn bundled_bytes(&self) -> Option<&'static [u8]> {
        let name = self.bundled.as_deref()?;
        BUNDLED_CATALOGUES
            .iter()
            .find(|(file, _)| *file == name)
            .map(|(_, bytes)| *bytes)
    }

    /// The format: as configured, else from the file name.
    pub fn resolved_format(&self) -> Option<CatalogueFormat> {
        if self.format.is_some() {
            return self.format;
        }
        let file = match (&self.path, &self.bundled) {
            (Some(path), _) => path.to_string_lossy().into_owned(),
            (None, Some(bundled)) => bundled.clone(),
            (None, None) => return None,
        };
        let lower = file.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Some(CatalogueFormat::Csv)
        } else if lower.ends_with(".parquet") || lower.ends_with(".parq") {
            Some(CatalogueFormat::Parquet)
        } else {
            None
        }
    }

    /// Where the catalogue comes from, for messages.
    pub fn source(&self) -> String {
        match (&self.path, &self.bundled) {
            (Some(path), _) => path.display().to_string(),
            (None, Some(bundled)) => format!("bundled:{bundled}"),
            (None, None) => "(no source)".to_owned(),
        }
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl CrossmatchConfig {
    /// Checks names (unique identifiers), sources (exactly one of path and bundled, a known
    /// bundled name), formats and radii.
    pub fn validate(&self) -> Result<(), ModuleError> {
        let invalid = |field: String, reason: String| ModuleError::InvalidConfig {
            module: super::NAME.to_owned(),
            field,
            reason,
        };
        let mut names = std::collections::HashSet::new();
        for (position, catalogue) in self.catalogues.iter().enumerate() {
            let field = |name: &str| format!("catalogues[{position}].{name}");
            if !is_identifier(&catalogue.name) {
                return Err(invalid(
                    field("name"),
                    format!(
                        "{:?} must be lowercase letters, digits and _, starting with a letter",
                        catalogue.name
                    ),
                ));
            }
            if !names.insert(catalogue.name.as_str()) {
                return Err(invalid(field("name"), format!("{:?} is used twice", catalogue.name)));
            }
            match (&catalogue.path, &catalogue.bundled) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(invalid(
                        field("path"),
                        "give exactly one of path and bundled".to_owned(),
                    ));
                }
                (None, Some(bundled)) if catalogue.bundled_bytes().is_none() => {
                    let known: Vec<&str> = BUNDLED_CATALOGUES.iter().map(|(file, _)| *file).collect();
                    return Err(invalid(
                        field("bundled"),
                        format!("{bundled:?} is not a bundled catalogue (known: {})", known.join(", ")),
                    ));
                }
                _ => {}
            }
            if catalogue.resolved_format().is_none() {
                return Err(invalid(
                    field("format"),
                    format!(
                        "cannot tell the format of {}: set format = \"csv\" or \"parquet\"",
                        catalogue.source()
                    ),
                ));
            }
            let radius = catalogue.radius_arcsec;
            if !(radius.is_finite() && radius > 0.0 && radius <= MAX_RADIUS_ARCSEC) {
                return Err(invalid(
                    field("radius_arcsec"),
                    format!("{radius} is not within (0, {MAX_RADIUS_ARCSEC}]"),
                ));
            }
            for output in catalogue.columns.keys() {
                if !is_identifier(output) || output == "id" || output == "distance_arcsec" {
                    return Err(invalid(
                        field("columns"),
                        format!(
                            "output name {output:?} must be lowercase letters, digits and _, starting with a letter, and not id or distance_arcsec"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
