//! [`FileSink`]: a filter's passing alerts as files per night, JSON lines or Parquet, one file
//! per input range, written atomically so a replay overwrites instead of duplicating.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use arrow_schema::ArrowError;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use crate::atomic::{create_directory, write_atomically};
use crate::delivery::Delivery;
use crate::error::SinkError;

/// The format of a file sink's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// JSON lines: one row object per line (`.jsonl`).
    Jsonl,
    /// Apache Parquet, snappy-compressed, schema inferred from the rows (`.parquet`).
    Parquet,
}

impl FileFormat {
    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Jsonl => "jsonl",
            FileFormat::Parquet => "parquet",
        }
    }
}

impl FromStr for FileFormat {
    type Err = SinkError;

    /// `jsonl` or `parquet` (the `format` of a filter's `file` sink).
    fn from_str(text: &str) -> Result<FileFormat, SinkError> {
        match text {
            "jsonl" => Ok(FileFormat::Jsonl),
            "parquet" => Ok(FileFormat::Parquet),
            other => Err(SinkError::UnknownFormat(other.to_string())),
        }
    }
}

/// Writes deliveries as `{directory}/{night}/{filter}_{survey}_{position}.{jsonl|parquet}`.
#[derive(Debug, Clone)]
pub struct FileSink {
    directory: PathBuf,
    format: FileFormat,
}

impl FileSink {
    /// A sink writing under `directory` (created if missing).
    pub fn new(directory: impl Into<PathBuf>, format: FileFormat) -> Result<FileSink, SinkError> {
        let directory = directory.into();
        create_directory(&directory)?;
        Ok(FileSink { directory, format })
    }

    /// The directory files are written under.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The format files are written in.
    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// Where [`FileSink::write`] puts a delivery (after [`Delivery::validate`]).
    pub fn path_for(&self, delivery: &Delivery) -> PathBuf {
        self.directory.join(delivery.night).join(format!(
            "{}_{}_{}.{}",
            delivery.filter,
            delivery.survey,
            delivery.position,
            self.format.extension()
        ))
    }

    /// Writes `{directory}/{night}/{filter}_{survey}_{position}.{jsonl|parquet}` atomically
    /// (temporary file, fsync, rename, directory fsync) and returns its path; a replay of the
    /// same input range overwrites the same file. No rows: no file, `None`.
    pub fn write(&self, delivery: &Delivery) -> Result<Option<PathBuf>, SinkError> {
        delivery.validate()?;
        if delivery.rows.is_empty() {
            return Ok(None);
        }
        let path = self.path_for(delivery);
        let bytes = match self.format {
            FileFormat::Jsonl => jsonl_bytes(delivery.rows),
            FileFormat::Parquet => parquet_bytes(delivery.rows).map_err(|error| SinkError::Parquet {
                filter: delivery.filter.to_string(),
                path: path.clone(),
                message: error,
            })?,
        };
        if let Some(night_directory) = path.parent() {
            create_directory(night_directory)?;
        }
        write_atomically(&path, &bytes)?;
        tracing::debug!(
            filter = delivery.filter,
            survey = delivery.survey,
            position = delivery.position,
            n_rows = delivery.rows.len(),
            path = %path.display(),
            "file sink wrote"
        );
        Ok(Some(path))
    }
}

fn jsonl_bytes(rows: &[Value]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for row in rows {
        // Serialising a `Value` into a Vec cannot fail.
        if serde_json::to_writer(&mut bytes, row).is_ok() {
            bytes.push(b'\n');
        }
    }
    bytes
}

/// Rows as one Parquet file: the schema is inferred from every row (integers and floats mixed
/// become floats, scalars of different kinds become strings), nested objects become structs,
/// arrays lists; a column null on every row is kept (Parquet's null type). Parquet cannot hold
/// an empty struct, so an empty object `{}` is written as null.
pub(crate) fn parquet_bytes(rows: &[Value]) -> Result<Vec<u8>, String> {
    let text = |error: ArrowError| error.to_string();
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| match row {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), empty_objects_to_null(value)))
                    .collect(),
            ),
            other => other.clone(),
        })
        .collect();
    let schema =
        arrow_json::reader::infer_json_schema_from_iterator(rows.iter().map(Ok::<_, ArrowError>)).map_err(text)?;
    if schema.fields().is_empty() {
        return Err("every row is an empty object: no column to write".to_string());
    }
    let schema = Arc::new(schema);
    let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
        .with_coerce_primitive(true)
        .with_batch_size(rows.len().max(1))
        .build_decoder()
        .map_err(text)?;
    decoder.serialize(&rows).map_err(text)?;
    let properties = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let parquet_text = |error: parquet::errors::ParquetError| error.to_string();
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(properties)).map_err(parquet_text)?;
    if let Some(batch) = decoder.flush().map_err(text)? {
        writer.write(&batch).map_err(parquet_text)?;
    }
    writer.into_inner().map_err(parquet_text)
}

fn empty_objects_to_null(value: &Value) -> Value {
    match value {
        Value::Object(map) if map.is_empty() => Value::Null,
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), empty_objects_to_null(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(empty_objects_to_null).collect()),
        other => other.clone(),
    }
}
