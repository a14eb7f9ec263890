//! Records (ordered name/value rows), the `columns` filter, and the output formats.

use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use crate::error::ApiError;
use crate::params::Params;

/// One row of a response: column names with values, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record(Vec<(String, Value)>);

impl Record {
    /// Sets a column, replacing its value in place if it is already there.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        let name = name.into();
        let value = value.into();
        match self.0.iter_mut().find(|(key, _)| *key == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// A column's value.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value)
    }

    /// Column names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _)| name.as_str())
    }

    /// Only these columns, in this order; a column the record lacks is null.
    pub fn project(&self, columns: &[String]) -> Record {
        Record(
            columns
                .iter()
                .map(|name| (name.clone(), self.get(name).cloned().unwrap_or(Value::Null)))
                .collect(),
        )
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Family prefixes a requested column may carry: `i:` alert field (ZTF), `r:` alert field
/// (Rubin), `d:` and `f:` broker-added values, `v:` computed at query time, `b:` cutouts,
/// `key:` and `basic:` for `statistics`.
pub const COLUMN_PREFIXES: [&str; 8] = ["i:", "r:", "d:", "f:", "v:", "b:", "key:", "basic:"];

/// The `columns` parameter: `None` for every column. A name without a family prefix is refused;
/// a prefixed column that nightjar does not compute (e.g. `d:cdsxmatch`) comes back null.
pub fn requested_columns(params: &Params) -> Result<Option<Vec<String>>, ApiError> {
    let columns = params.list("columns");
    if columns.is_empty() {
        return Ok(None);
    }
    for column in &columns {
        if !COLUMN_PREFIXES.iter().any(|prefix| column.starts_with(prefix)) {
            return Err(ApiError::BadRequest(format!(
                "column {column:?} has no family prefix; accepted: {} (e.g. i:{column}); see /api/v1/schema",
                COLUMN_PREFIXES.join(" ")
            )));
        }
    }
    Ok(Some(columns))
}

/// A response format (`output-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// A JSON list of records (Fink's default).
    Json,
    /// CSV with a header line; nulls are empty fields, nested values JSON text.
    Csv,
    /// A VOTable 1.4 (TABLEDATA); each column typed from its values, nulls are empty cells.
    Votable,
    /// A Parquet file; each column optional and typed from its values.
    Parquet,
}

impl OutputFormat {
    /// The `output-format` parameter; json if absent.
    pub fn from_params(params: &Params) -> Result<OutputFormat, ApiError> {
        match params.get("output-format").map(str::to_ascii_lowercase).as_deref() {
            None | Some("json") => Ok(OutputFormat::Json),
            Some("csv") => Ok(OutputFormat::Csv),
            Some("votable") => Ok(OutputFormat::Votable),
            Some("parquet") => Ok(OutputFormat::Parquet),
            Some(other) => Err(ApiError::BadRequest(format!(
                "output-format {other:?} is not served; accepted: json, csv, votable, parquet"
            ))),
        }
    }
}

/// Renders records in a format, keeping only `columns` when given.
pub fn render(records: Vec<Record>, columns: Option<&[String]>, format: OutputFormat) -> Result<Response, ApiError> {
    let records: Vec<Record> = match columns {
        Some(columns) => records.iter().map(|record| record.project(columns)).collect(),
        None => records,
    };
    match format {
        OutputFormat::Json => Ok(Json(records).into_response()),
        OutputFormat::Votable => {
            let names = column_names(&records, columns);
            let xml = crate::votable::records_votable(&records, &names);
            Ok(([(header::CONTENT_TYPE, crate::votable::VOTABLE_CONTENT_TYPE)], xml).into_response())
        }
        OutputFormat::Parquet => {
            let names = column_names(&records, columns);
            let bytes = crate::parquet_output::records_parquet(&records, &names)
                .map_err(|error| ApiError::Internal(format!("writing parquet: {error}")))?;
            Ok((
                [(header::CONTENT_TYPE, crate::parquet_output::PARQUET_CONTENT_TYPE)],
                bytes,
            )
                .into_response())
        }
        OutputFormat::Csv => {
            let header = column_names(&records, columns);
            let csv_error = |error: csv::Error| ApiError::Internal(format!("writing csv: {error}"));
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(&header).map_err(csv_error)?;
            for record in &records {
                writer
                    .write_record(header.iter().map(|name| csv_field(record.get(name))))
                    .map_err(csv_error)?;
            }
            let bytes = writer
                .into_inner()
                .map_err(|error| ApiError::Internal(format!("writing csv: {error}")))?;
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], bytes).into_response())
        }
    }
}

/// The requested columns, or every column of the records in the order first seen.
fn column_names(records: &[Record], columns: Option<&[String]>) -> Vec<String> {
    match columns {
        Some(columns) => columns.to_vec(),
        None => {
            let mut names: Vec<String> = Vec::new();
            for record in records {
                for name in record.names() {
                    if !names.iter().any(|known| known == name) {
                        names.push(name.to_owned());
                    }
                }
            }
            names
        }
    }
}

fn csv_field(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}
