//! Enriched output records from real alerts, read back with apache-avro (an independent Avro
//! implementation): the alert's fields are unchanged and the module outputs are where the
//! extended schema says, nulls included.

use std::io::Cursor;

use apache_avro::types::Value as Avro;
use nightjar_avro::{Container, EnrichedSchema, OutputField, SchemaCache};
use nightjar_core::{ColumnType, ModuleValues, Value};

fn real_alerts() -> Vec<(String, Vec<u8>)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/ztf/alerts");
    let mut files = Vec::new();
    for folder in [
        "pittgoogle_ZTF21abiuvdk_lightcurve_v3.3",
        "alerce_snappy_v3.x",
        "boom_20240715_v4.02",
    ] {
        let mut entries: Vec<_> = std::fs::read_dir(format!("{root}/{folder}"))
            .expect("fixture folder")
            .map(|entry| entry.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries.into_iter().take(2) {
            files.push((path.display().to_string(), std::fs::read(&path).expect("fixture")));
        }
    }
    files
}

fn columns() -> Vec<OutputField> {
    let field = |name: &str, column_type| OutputField {
        name: name.to_string(),
        column_type,
        doc: format!("{name} for the test"),
    };
    vec![
        field("real_bogus", ColumnType::Float),
        field("roid", ColumnType::Int),
        field("is_good_quality", ColumnType::Bool),
        field("lc_features_g.mean", ColumnType::Float),
        field("lc_features_g.stetson_K", ColumnType::Float),
        field("class", ColumnType::Text),
        field("lc_features_r.mean", ColumnType::Float),
    ]
}

fn read_datum(schema: &apache_avro::Schema, bytes: &[u8]) -> apache_avro::AvroResult<Avro> {
    apache_avro::reader::datum::GenericDatumReader::builder(schema)
        .build()?
        .read_value(&mut Cursor::new(bytes))
}

fn record_field<'a>(record: &'a Avro, name: &str) -> &'a Avro {
    match record {
        Avro::Record(fields) => fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value)
            .unwrap_or_else(|| panic!("no field {name}")),
        other => panic!("not a record: {other:?}"),
    }
}

fn union_value(value: &Avro) -> Option<&Avro> {
    match value {
        Avro::Union(0, inner) if **inner == Avro::Null => None,
        Avro::Union(_, inner) => Some(inner),
        other => panic!("not a union: {other:?}"),
    }
}

#[test]
fn enriched_real_alerts_read_back_with_apache_avro() {
    let mut cache = SchemaCache::new();
    let mut n_alerts = 0;
    for (index, (name, bytes)) in real_alerts().into_iter().enumerate() {
        let container = Container::open(&bytes, &mut cache).expect("opens");
        let schema_json = container.schema.json.clone();
        let original = apache_avro::Schema::parse_str(&schema_json).expect("alert schema");
        let enriched = EnrichedSchema::new(
            &schema_json,
            &columns(),
            &[
                ("quality".into(), "0.1.0".into()),
                ("light_curve_features".into(), "0.1.0".into()),
            ],
        )
        .expect("extends");
        let extended = apache_avro::Schema::parse_str(enriched.schema_json()).expect("extended schema parses");
        for datum in container.datums().expect("datums") {
            let mut values = ModuleValues::new();
            values.push("real_bogus".into(), Value::Float(0.5 + index as f64));
            values.push("roid".into(), Value::Int(-3 - index as i64 * 1000));
            if index % 2 == 0 {
                values.push("is_good_quality".into(), Value::Bool(true));
                values.push("lc_features_g.stetson_K".into(), Value::Float(0.75));
            }
            values.push("class".into(), Value::Text(format!("SN candidate {index} é")));
            let mut out = Vec::new();
            enriched.encode(&datum, &values, &mut out);

            let before = read_datum(&original, &datum).expect("original");
            let after = read_datum(&extended, &out)
                .unwrap_or_else(|error| panic!("{name}: the enriched datum does not decode: {error}"));
            let (Avro::Record(before_fields), Avro::Record(after_fields)) = (&before, &after) else {
                panic!("records expected");
            };
            assert_eq!(after_fields.len(), before_fields.len() + 6, "{name}");
            assert_eq!(
                &after_fields[..before_fields.len()],
                &before_fields[..],
                "{name}: alert unchanged"
            );

            assert_eq!(
                union_value(record_field(&after, "real_bogus")),
                Some(&Avro::Double(0.5 + index as f64))
            );
            assert_eq!(
                union_value(record_field(&after, "roid")),
                Some(&Avro::Long(-3 - index as i64 * 1000))
            );
            assert_eq!(
                union_value(record_field(&after, "class")),
                Some(&Avro::String(format!("SN candidate {index} é")))
            );
            let features_g = union_value(record_field(&after, "lc_features_g"));
            if index % 2 == 0 {
                assert_eq!(
                    union_value(record_field(&after, "is_good_quality")),
                    Some(&Avro::Boolean(true))
                );
                let features_g = features_g.expect("a record with one value");
                assert_eq!(union_value(record_field(features_g, "mean")), None);
                assert_eq!(
                    union_value(record_field(features_g, "stetson_K")),
                    Some(&Avro::Double(0.75))
                );
            } else {
                assert_eq!(union_value(record_field(&after, "is_good_quality")), None);
                assert_eq!(features_g, None, "a record whose fields are all null is null");
            }
            assert_eq!(union_value(record_field(&after, "lc_features_r")), None);
            n_alerts += 1;
        }
        let schema: serde_json::Value = serde_json::from_str(enriched.schema_json()).expect("json");
        assert_eq!(schema["nightjar.modules"]["quality"], "0.1.0");
    }
    assert!(n_alerts >= 6);
}
