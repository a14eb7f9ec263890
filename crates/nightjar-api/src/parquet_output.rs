//! Parquet output of the list routes (`output-format=parquet`): one row group, one optional
//! column per requested column, typed from its values like the VOTable's (INT64, DOUBLE,
//! BOOLEAN, or UTF-8 strings, nested values as JSON text), uncompressed.

use std::sync::Arc;

use ::parquet::basic::{LogicalType, Repetition, Type as PhysicalType};
use ::parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use ::parquet::errors::ParquetError;
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::schema::types::Type;
use serde_json::Value;

use crate::output::Record;
use crate::votable::datatype_of;

/// The content type of a Parquet file.
pub const PARQUET_CONTENT_TYPE: &str = "application/vnd.apache.parquet";

/// Records as a Parquet file with the columns `names`.
pub fn records_parquet(records: &[Record], names: &[String]) -> Result<Vec<u8>, ParquetError> {
    let datatypes: Vec<&'static str> = names
        .iter()
        .map(|name| datatype_of(records.iter().filter_map(|record| record.get(name))))
        .collect();
    let mut fields = Vec::with_capacity(names.len());
    for (name, datatype) in names.iter().zip(&datatypes) {
        let (physical, logical) = match *datatype {
            "long" => (PhysicalType::INT64, None),
            "double" => (PhysicalType::DOUBLE, None),
            "boolean" => (PhysicalType::BOOLEAN, None),
            _ => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
        };
        let field = Type::primitive_type_builder(name, physical)
            .with_repetition(Repetition::OPTIONAL)
            .with_logical_type(logical)
            .build()?;
        fields.push(Arc::new(field));
    }
    let schema = Type::group_type_builder("schema").with_fields(fields).build()?;
    let mut file = SerializedFileWriter::new(
        Vec::new(),
        Arc::new(schema),
        Arc::new(WriterProperties::builder().build()),
    )?;
    let mut row_group = file.next_row_group()?;
    let mut column_idx = 0;
    while let Some(mut column) = row_group.next_column()? {
        let name = &names[column_idx];
        let values: Vec<Option<&Value>> = records
            .iter()
            .map(|record| record.get(name).filter(|value| !value.is_null()))
            .collect();
        let levels: Vec<i16> = values.iter().map(|value| i16::from(value.is_some())).collect();
        let present = values.iter().flatten();
        match datatypes[column_idx] {
            "long" => {
                let data: Vec<i64> = present.map(|value| value.as_i64().unwrap_or_default()).collect();
                column.typed::<Int64Type>().write_batch(&data, Some(&levels), None)?;
            }
            "double" => {
                let data: Vec<f64> = present.map(|value| value.as_f64().unwrap_or(f64::NAN)).collect();
                column.typed::<DoubleType>().write_batch(&data, Some(&levels), None)?;
            }
            "boolean" => {
                let data: Vec<bool> = present.map(|value| value.as_bool().unwrap_or_default()).collect();
                column.typed::<BoolType>().write_batch(&data, Some(&levels), None)?;
            }
            _ => {
                let data: Vec<ByteArray> = present
                    .map(|value| match value {
                        Value::String(text) => ByteArray::from(text.as_bytes().to_vec()),
                        other => ByteArray::from(other.to_string().into_bytes()),
                    })
                    .collect();
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&data, Some(&levels), None)?;
            }
        }
        column.close()?;
        column_idx += 1;
    }
    row_group.close()?;
    file.into_inner()
}
