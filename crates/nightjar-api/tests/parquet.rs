//! `output-format=parquet` of the list routes, read back with the parquet crate.

mod common;

use std::io::Write;

use axum::http::StatusCode;
use common::{OBJECT, app, get};
use nightjar_api::ApiConfig;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::Value;

/// The rows of a Parquet file as (column, value) lists.
fn read(bytes: &[u8]) -> Vec<Vec<(String, Field)>> {
    let mut file = tempfile::tempfile().expect("a temporary file");
    file.write_all(bytes).expect("writing");
    let reader = SerializedFileReader::new(file).expect("a Parquet file");
    reader
        .get_row_iter(None)
        .expect("rows")
        .map(|row| {
            row.expect("a row")
                .get_column_iter()
                .map(|(name, field)| (name.clone(), field.clone()))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn objects_parquet_has_the_json_rows_typed() {
    let router = app(ApiConfig::default());
    let uri = format!("/api/v1/objects?objectId={OBJECT}&columns=i:objectId,i:jd,i:fid,d:cdsxmatch");
    let records = get(&router, &uri).await.records();
    let answer = get(&router, &format!("{uri}&output-format=parquet")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.content_type, "application/vnd.apache.parquet");
    let rows = read(&answer.body);
    assert_eq!(rows.len(), records.len());
    for (row, record) in rows.iter().zip(&records) {
        let names: Vec<&str> = row.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["i:objectId", "i:jd", "i:fid", "d:cdsxmatch"]);
        assert_eq!(row[0].1, Field::Str(OBJECT.to_owned()));
        assert_eq!(Some(row[1].1.clone()), record["i:jd"].as_f64().map(Field::Double));
        assert_eq!(Some(row[2].1.clone()), record["i:fid"].as_i64().map(Field::Long));
        assert_eq!(row[3].1, Field::Null, "a column nightjar does not compute is null");
        assert_eq!(record["d:cdsxmatch"], Value::Null);
    }
}

#[tokio::test]
async fn every_list_route_serves_parquet() {
    let router = app(ApiConfig::default());
    for uri in ["/api/v1/latests?n=7", "/api/v1/statistics?date=2021", "/api/v1/schema"] {
        let records = get(&router, uri).await.records();
        let separator = if uri.contains('?') { '&' } else { '?' };
        let answer = get(&router, &format!("{uri}{separator}output-format=parquet")).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.text());
        assert_eq!(read(&answer.body).len(), records.len(), "{uri}");
    }
    let empty = get(&router, "/api/v1/objects?objectId=ZTF99zzzzzzz&output-format=parquet").await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text());
    assert!(read(&empty.body).is_empty());
}
