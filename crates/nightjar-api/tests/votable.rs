//! VOTable output of the list routes and the IVOA Simple Cone Search endpoint `/scs`, read back
//! with an XML parser: fields, datatypes, UCDs, rows, and errors reported inside the VOTable.

mod common;

use axum::http::StatusCode;
use common::{Answer, OBJECT, app, get, light_curve};
use nightjar_api::ApiConfig;
use nightjar_api::output::Record;
use nightjar_api::votable::{Field, table};
use serde_json::Value;

/// A FIELD: name, datatype, ucd.
type FieldInfo = (String, String, Option<String>);

/// A parsed VOTable: its fields, rows of cell texts, and its `INFO name="Error"` value if any.
#[derive(Debug)]
struct Parsed {
    fields: Vec<FieldInfo>,
    rows: Vec<Vec<String>>,
    error: Option<String>,
}

fn parse(xml: &str) -> Parsed {
    let document = roxmltree::Document::parse(xml).unwrap_or_else(|error| panic!("not XML ({error}): {xml}"));
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "VOTABLE");
    let elements = |name: &'static str| root.descendants().filter(move |node| node.tag_name().name() == name);
    let fields = elements("FIELD")
        .map(|field| {
            (
                field.attribute("name").unwrap_or_default().to_owned(),
                field.attribute("datatype").unwrap_or_default().to_owned(),
                field.attribute("ucd").map(str::to_owned),
            )
        })
        .collect();
    let rows = elements("TR")
        .map(|row| {
            row.children()
                .filter(|cell| cell.tag_name().name() == "TD")
                .map(|cell| cell.text().unwrap_or_default().to_owned())
                .collect()
        })
        .collect();
    let error = root
        .children()
        .find(|node| node.tag_name().name() == "INFO" && node.attribute("name") == Some("Error"))
        .map(|info| info.attribute("value").unwrap_or_default().to_owned());
    Parsed { fields, rows, error }
}

fn votable(answer: &Answer) -> Parsed {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    parse(&answer.text())
}

#[tokio::test]
async fn objects_votable_has_typed_fields_and_the_json_rows() {
    let router = app(ApiConfig::default());
    let columns = "i:objectId,i:ra,i:dec,i:jd,i:fid,d:cdsxmatch";
    let uri = format!("/api/v1/objects?objectId={OBJECT}&columns={columns}");
    let records = get(&router, &uri).await.records();
    let answer = get(&router, &format!("{uri}&output-format=votable")).await;
    assert_eq!(answer.content_type, "application/x-votable+xml");
    let parsed = votable(&answer);
    let expected_fields = [
        ("i:objectId", "char", Some("meta.id;meta.main")),
        ("i:ra", "double", Some("pos.eq.ra;meta.main")),
        ("i:dec", "double", Some("pos.eq.dec;meta.main")),
        ("i:jd", "double", Some("time.epoch")),
        ("i:fid", "long", None),
        ("d:cdsxmatch", "char", None),
    ];
    let expected_fields: Vec<FieldInfo> = expected_fields
        .iter()
        .map(|(name, datatype, ucd)| (name.to_string(), datatype.to_string(), ucd.map(str::to_owned)))
        .collect();
    assert_eq!(parsed.fields, expected_fields);
    assert_eq!(parsed.rows.len(), records.len());
    for (row, record) in parsed.rows.iter().zip(&records) {
        assert_eq!(row[0], OBJECT);
        for (cell, name) in row.iter().zip(columns.split(',')).skip(1) {
            match &record[name] {
                Value::Null => assert_eq!(cell, "", "{name}: null is an empty cell"),
                value => assert_eq!(cell.parse::<f64>().ok(), value.as_f64(), "{name}"),
            }
        }
    }
}

#[tokio::test]
async fn every_list_route_serves_votable_with_the_json_row_count() {
    let router = app(ApiConfig::default());
    let object = light_curve().await.object;
    for uri in [
        format!("/api/v1/conesearch?ra={}&dec={}&radius=10", object.ra, object.dec),
        "/api/v1/latests?n=7".to_owned(),
        format!("/api/v1/sso?n_or_d={}", nightjar_store::conformance::ZTF_SOLAR_SYSTEM.1),
        "/api/v1/statistics".to_owned(),
        "/api/v1/schema".to_owned(),
    ] {
        let records = get(&router, &uri).await.records();
        assert!(!records.is_empty(), "{uri}: the fixture has rows");
        let separator = if uri.contains('?') { '&' } else { '?' };
        let parsed = votable(&get(&router, &format!("{uri}{separator}output-format=votable")).await);
        assert_eq!(parsed.rows.len(), records.len(), "{uri}");
        let names: Vec<&str> = parsed.fields.iter().map(|field| field.0.as_str()).collect();
        let first: Vec<&str> = records[0].keys().map(String::as_str).collect();
        for name in first {
            assert!(names.contains(&name), "{uri}: {name} in {names:?}");
        }
    }
}

#[test]
fn votable_text_is_escaped_and_empty_tables_are_valid() {
    let mut record = Record::default();
    record.set("v:name", "<a & \"b\"> 'c'\u{1}");
    let field = Field {
        name: "v:name".to_owned(),
        datatype: "char",
        ucd: None,
        unit: None,
        description: Some("a <description> & more"),
    };
    let parsed = parse(&table("x & y", std::slice::from_ref(&field), &[record], &[]));
    assert_eq!(parsed.rows, vec![vec!["<a & \"b\"> 'c'\u{FFFD}".to_owned()]]);
    let parsed = parse(&table("empty", &[field], &[], &[]));
    assert!(parsed.rows.is_empty());
}

#[tokio::test]
async fn scs_returns_the_required_ucds_and_the_object() {
    let router = app(ApiConfig::default());
    let object = light_curve().await.object;
    let answer = get(&router, &format!("/scs?RA={}&DEC={}&SR=0.01", object.ra, object.dec)).await;
    assert_eq!(answer.content_type, "text/xml;content=x-votable");
    let parsed = votable(&answer);
    assert_eq!(parsed.error, None);
    let ucds: Vec<&str> = parsed.fields.iter().filter_map(|field| field.2.as_deref()).collect();
    for required in ["ID_MAIN", "POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN"] {
        assert_eq!(
            ucds.iter().filter(|ucd| **ucd == required).count(),
            1,
            "exactly one {required}: {ucds:?}"
        );
    }
    let column = |ucd: &str| {
        parsed
            .fields
            .iter()
            .position(|field| field.2.as_deref() == Some(ucd))
            .expect("the column")
    };
    assert_eq!(parsed.rows.len(), 1, "{:?}", parsed.rows);
    let row = &parsed.rows[0];
    assert_eq!(row[column("ID_MAIN")], OBJECT);
    let ra: f64 = row[column("POS_EQ_RA_MAIN")].parse().expect("a number");
    let dec: f64 = row[column("POS_EQ_DEC_MAIN")].parse().expect("a number");
    assert!(
        (ra - object.ra).abs() < 1e-9 && (dec - object.dec).abs() < 1e-9,
        "{ra} {dec}"
    );
    // Parameter names are case-insensitive; VERB is accepted.
    let uri = format!("/scs?ra={}&dec={}&sr=0.01&VERB=3", object.ra, object.dec);
    let lower = votable(&get(&router, &uri).await);
    assert_eq!(lower.rows, parsed.rows);
}

#[tokio::test]
async fn scs_sr_zero_returns_the_columns_only() {
    let router = app(ApiConfig::default());
    let parsed = votable(&get(&router, "/scs?RA=193.822&DEC=2.89732&SR=0").await);
    assert_eq!(parsed.error, None);
    assert!(parsed.rows.is_empty());
    assert_eq!(parsed.fields.len(), 8);
}

#[tokio::test]
async fn scs_errors_are_reported_inside_the_votable_with_200() {
    let router = app(ApiConfig::default());
    for (uri, expected) in [
        ("/scs", "RA is required"),
        ("/scs?RA=193.8&DEC=2.9", "SR is required"),
        ("/scs?RA=abc&DEC=2.9&SR=0.1", "RA is \"abc\""),
        ("/scs?RA=193.8&DEC=91&SR=0.1", "-90 to 90"),
        ("/scs?RA=-1&DEC=2.9&SR=0.1", "0 to 360"),
        ("/scs?RA=193.8&DEC=2.9&SR=6", "0 to 5"),
        ("/scs?RA=193.8&DEC=2.9&SR=NaN", "SR is \"NaN\""),
    ] {
        let answer = get(&router, uri).await;
        assert_eq!(answer.content_type, "text/xml;content=x-votable", "{uri}");
        let parsed = votable(&answer);
        let error = parsed.error.unwrap_or_else(|| panic!("{uri}: no error INFO"));
        assert!(error.contains(expected), "{uri}: {error:?} lacks {expected:?}");
        assert!(parsed.fields.is_empty() && parsed.rows.is_empty(), "{uri}");
    }
}

/// The Python interpreter with astropy: `NIGHTJAR_PYTHON` (scripts/test.sh points it at the
/// virtual environment it installs), else `python3`.
fn python() -> String {
    std::env::var("NIGHTJAR_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// What astropy reads in each VOTable (see scripts/votable_astropy.py), one JSON value each.
fn read_with_astropy(documents: &[(String, Vec<u8>)]) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut paths = Vec::new();
    for (index, (_, body)) in documents.iter().enumerate() {
        let path = dir.path().join(format!("{index}.xml"));
        std::fs::write(&path, body).expect("writing the VOTable");
        paths.push(path);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/votable_astropy.py");
    let output = std::process::Command::new(python())
        .arg(script)
        .args(&paths)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "running {} (set NIGHTJAR_PYTHON, or use scripts/test.sh): {error}",
                python()
            )
        });
    assert!(
        output.status.success(),
        "astropy refused a VOTable (scripts/test.sh installs astropy): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let described: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("json"))
        .collect();
    assert_eq!(described.len(), documents.len());
    described
}

#[tokio::test]
async fn astropy_reads_every_votable_with_the_same_fields_rows_and_errors() {
    let router = app(ApiConfig::default());
    let object = light_curve().await.object;
    let uris = [
        format!("/api/v1/objects?objectId={OBJECT}&output-format=votable"),
        format!(
            "/api/v1/conesearch?ra={}&dec={}&radius=10&output-format=votable",
            object.ra, object.dec
        ),
        "/api/v1/latests?n=7&output-format=votable".to_owned(),
        "/api/v1/statistics?output-format=votable".to_owned(),
        format!("/scs?RA={}&DEC={}&SR=0.01", object.ra, object.dec),
        "/scs?RA=193.8&DEC=2.9&SR=0".to_owned(),
        "/scs?RA=abc&DEC=2.9&SR=0.1".to_owned(),
    ];
    let mut documents = Vec::new();
    for uri in &uris {
        let answer = get(&router, uri).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}");
        documents.push((uri.clone(), answer.body));
    }
    let described = read_with_astropy(&documents);
    for ((uri, body), astropy) in documents.iter().zip(&described) {
        let ours = parse(std::str::from_utf8(body).expect("utf-8"));
        assert_eq!(astropy["rows"].as_u64(), Some(ours.rows.len() as u64), "{uri}: rows");
        let fields: Vec<FieldInfo> = astropy["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|field| {
                (
                    field["name"].as_str().unwrap_or_default().to_owned(),
                    field["datatype"].as_str().unwrap_or_default().to_owned(),
                    field["ucd"].as_str().map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(fields, ours.fields, "{uri}: fields");
        assert_eq!(astropy["error"].as_str(), ours.error.as_deref(), "{uri}: error INFO");
        if let Some(first) = ours.rows.first() {
            let theirs: Vec<&str> = astropy["first_row"]
                .as_array()
                .expect("first row")
                .iter()
                .map(|cell| cell.as_str().unwrap_or_default())
                .collect();
            assert_eq!(theirs.len(), first.len(), "{uri}");
            // Object ids and other text read back identically.
            for ((name, datatype, _), (theirs, ours)) in ours.fields.iter().zip(theirs.iter().zip(first)) {
                if datatype == "char" || datatype == "unicodeChar" {
                    assert_eq!(theirs, ours, "{uri}: {name}");
                }
            }
        }
    }
    let scs = &described[4];
    let ucds: Vec<&str> = scs["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|field| field["ucd"].as_str())
        .collect();
    for required in ["ID_MAIN", "POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN"] {
        assert!(ucds.contains(&required), "astropy sees {required} in {ucds:?}");
    }
    assert!(described[6]["error"].as_str().is_some_and(|error| error.contains("RA")));
}
