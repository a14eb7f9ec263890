//! VOTable 1.4 output (TABLEDATA): `output-format=votable` of the list routes, and the IVOA
//! Simple Cone Search 1.03 endpoint `/scs`.
//!
//! The XML is written here rather than with the CDS `votable` crate: that crate turns on
//! serde_json's `preserve_order` feature, which Cargo's feature unification would impose on
//! every crate of the workspace (changing the key order of their JSON, and their snapshots).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use nightjar_core::calendar::mjd_to_iso;
use nightjar_store::TimeWindow;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;
use crate::output::Record;
use crate::params::Params;

/// The content type of a VOTable from the list routes.
pub const VOTABLE_CONTENT_TYPE: &str = "application/x-votable+xml";
/// The content type Simple Cone Search 1.03 asks for.
pub const SCS_CONTENT_TYPE: &str = "text/xml;content=x-votable";
/// Largest `SR` of `/scs`, degrees.
pub const MAX_SCS_RADIUS_DEG: f64 = 5.0;

const HEADER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
"#;

/// A column of a VOTable.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    /// `long`, `double`, `boolean` or `char` (then `arraysize="*"`).
    pub datatype: &'static str,
    pub ucd: Option<&'static str>,
    pub unit: Option<&'static str>,
    pub description: Option<&'static str>,
}

impl Field {
    fn new(name: impl Into<String>, datatype: &'static str) -> Field {
        Field {
            name: name.into(),
            datatype,
            ucd: None,
            unit: None,
            description: None,
        }
    }
}

/// Escapes text for XML content and attribute values; drops characters XML 1.0 cannot hold.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' => escaped.push(character),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => escaped.push('\u{FFFD}'),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The VOTable datatype that holds every non-null value of a column.
pub(crate) fn datatype_of<'a>(values: impl Iterator<Item = &'a Value>) -> &'static str {
    let mut datatype: Option<&'static str> = None;
    for value in values {
        let this = match value {
            Value::Null => continue,
            Value::Bool(_) => "boolean",
            Value::Number(number) if number.is_i64() => "long",
            Value::Number(_) => "double",
            Value::String(_) | Value::Array(_) | Value::Object(_) => "char",
        };
        datatype = Some(match (datatype, this) {
            (None, this) => this,
            (Some(known), this) if known == this => known,
            (Some("long" | "double"), "long" | "double") => "double",
            _ => "char",
        });
    }
    datatype.unwrap_or("char")
}

/// UCDs of the Fink columns that have an obvious one.
fn column_ucd(name: &str) -> Option<&'static str> {
    match name {
        "i:objectId" | "r:diaObjectId" => Some("meta.id;meta.main"),
        "i:candid" | "r:diaSourceId" => Some("meta.id"),
        "i:ra" | "r:ra" => Some("pos.eq.ra;meta.main"),
        "i:dec" | "r:dec" => Some("pos.eq.dec;meta.main"),
        "i:jd" => Some("time.epoch"),
        "i:magpsf" => Some("phot.mag"),
        "i:sigmapsf" => Some("stat.error;phot.mag"),
        "v:separation_degree" => Some("pos.angDistance"),
        _ => None,
    }
}

/// One table cell: empty for null, JSON text for nested values.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => escape(text),
        Some(Value::Bool(flag)) => flag.to_string(),
        Some(Value::Number(number)) => number.to_string(),
        Some(other) => escape(&other.to_string()),
    }
}

/// An XML ID for each field (names such as `i:objectId` are not valid IDs): the name with
/// every character outside `[A-Za-z0-9_.-]` turned into `_`, a leading `_` before a digit or
/// other non-letter start, and a numbered suffix where two would collide.
fn field_ids(fields: &[Field]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    fields
        .iter()
        .map(|field| {
            let mut id: String = field
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if !id.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                id.insert(0, '_');
            }
            let mut unique = id.clone();
            let mut suffix = 2;
            while !seen.insert(unique.clone()) {
                unique = format!("{id}_{suffix}");
                suffix += 1;
            }
            unique
        })
        .collect()
}

fn write_fields(xml: &mut String, fields: &[Field]) {
    for (field, id) in fields.iter().zip(field_ids(fields)) {
        let _ = write!(
            xml,
            r#"<FIELD ID="{id}" name="{}" datatype="{}""#,
            escape(&field.name),
            field.datatype
        );
        if field.datatype == "char" {
            xml.push_str(r#" arraysize="*""#);
        }
        if let Some(ucd) = field.ucd {
            let _ = write!(xml, r#" ucd="{ucd}""#);
        }
        if let Some(unit) = field.unit {
            let _ = write!(xml, r#" unit="{unit}""#);
        }
        match field.description {
            Some(description) => {
                let _ = writeln!(xml, "><DESCRIPTION>{}</DESCRIPTION></FIELD>", escape(description));
            }
            None => xml.push_str("/>\n"),
        }
    }
}

/// A VOTable of one table: `fields`, then one row per record (a record's missing column is null).
pub fn table(resource_name: &str, fields: &[Field], records: &[Record], infos: &[(&str, String)]) -> String {
    let mut xml = String::from(HEADER);
    let _ = writeln!(xml, r#"<RESOURCE type="results" name="{}">"#, escape(resource_name));
    for (name, value) in infos {
        let _ = writeln!(xml, r#"<INFO name="{}" value="{}"/>"#, escape(name), escape(value));
    }
    xml.push_str("<TABLE>\n");
    write_fields(&mut xml, fields);
    xml.push_str("<DATA><TABLEDATA>\n");
    for record in records {
        xml.push_str("<TR>");
        for field in fields {
            let _ = write!(xml, "<TD>{}</TD>", cell(record.get(&field.name)));
        }
        xml.push_str("</TR>\n");
    }
    xml.push_str("</TABLEDATA></DATA>\n</TABLE>\n</RESOURCE>\n</VOTABLE>\n");
    xml
}

/// Records as a VOTable with the columns `names`, each typed from its values.
pub fn records_votable(records: &[Record], names: &[String]) -> String {
    let fields: Vec<Field> = names
        .iter()
        .map(|name| {
            let mut field = Field::new(
                name.clone(),
                datatype_of(records.iter().filter_map(|record| record.get(name))),
            );
            field.ucd = column_ucd(name);
            field
        })
        .collect();
    table("nightjar", &fields, records, &[])
}

/// A VOTable that reports an error as Simple Cone Search 1.03 says: an INFO named `Error`, a
/// direct child of VOTABLE.
pub fn error_votable(message: &str) -> String {
    format!(
        "{HEADER}<INFO name=\"Error\" value=\"{}\"/>\n<RESOURCE type=\"results\"/>\n</VOTABLE>\n",
        escape(message)
    )
}

fn scs_fields() -> Vec<Field> {
    let field = |name: &str, datatype, ucd, unit, description| Field {
        name: name.to_owned(),
        datatype,
        ucd: Some(ucd),
        unit,
        description: Some(description),
    };
    vec![
        field(
            "objectId",
            "char",
            "ID_MAIN",
            None,
            "object id: ZTF objectId or Rubin diaObjectId",
        ),
        field(
            "ra",
            "double",
            "POS_EQ_RA_MAIN",
            Some("deg"),
            "mean right ascension of the detections, ICRS",
        ),
        field(
            "dec",
            "double",
            "POS_EQ_DEC_MAIN",
            Some("deg"),
            "mean declination of the detections, ICRS",
        ),
        field("survey", "char", "INST_ID", None, "the survey: ztf or rubin"),
        field("ndet", "long", "NUMBER", None, "number of stored detections"),
        field("firstdate", "char", "TIME_DATE", None, "first detection, ISO UTC"),
        field("lastdate", "char", "TIME_DATE", None, "last detection, ISO UTC"),
        field(
            "separation",
            "double",
            "POS_ANG_DIST_GENERAL",
            Some("deg"),
            "distance from the search position",
        ),
    ]
}

/// The value of a Simple Cone Search parameter (names are case-insensitive there).
fn scs_number(params: &Params, name: &str, what: &str) -> Result<f64, String> {
    let text = params
        .get_ignore_case(name)
        .ok_or_else(|| format!("parameter {name} is required: {what}"))?;
    text.parse::<f64>()
        .ok()
        .filter(|value| value.is_finite())
        .ok_or_else(|| format!("parameter {name} is {text:?}; accepted: {what}"))
}

/// The rows of a cone search, or the message of a bad request.
async fn scs_rows(state: &AppState, params: &Params) -> Result<Result<Vec<Record>, String>, ApiError> {
    let position = (|| {
        let ra = scs_number(params, "RA", "right ascension in decimal degrees, ICRS, 0 to 360")?;
        let dec = scs_number(params, "DEC", "declination in decimal degrees, ICRS, -90 to 90")?;
        let sr = scs_number(params, "SR", "search radius in decimal degrees, 0 to 5")?;
        if !(0.0..=360.0).contains(&ra) {
            return Err(format!("RA is {ra}; accepted: decimal degrees, 0 to 360"));
        }
        if !(-90.0..=90.0).contains(&dec) {
            return Err(format!("DEC is {dec}; accepted: decimal degrees, -90 to 90"));
        }
        if !(0.0..=MAX_SCS_RADIUS_DEG).contains(&sr) {
            return Err(format!(
                "SR is {sr}; accepted: decimal degrees, 0 to {MAX_SCS_RADIUS_DEG}"
            ));
        }
        Ok((ra, dec, sr))
    })();
    let (ra, dec, sr) = match position {
        Ok(position) => position,
        Err(message) => return Ok(Err(message)),
    };
    if sr == 0.0 {
        // SR=0 asks for the columns only (SCS 1.03, section 2).
        return Ok(Ok(Vec::new()));
    }
    let found = state.store.cone_search(ra, dec, sr, TimeWindow::ALL).await?;
    let records = found
        .into_iter()
        .take(state.config.max_results)
        .map(|(object, distance)| {
            let mut record = Record::default();
            record.set("objectId", object.object_id);
            record.set("ra", object.ra);
            record.set("dec", object.dec);
            record.set("survey", object.survey.as_str());
            record.set("ndet", object.n_detections);
            record.set("firstdate", mjd_to_iso(object.first_mjd));
            record.set("lastdate", mjd_to_iso(object.last_mjd));
            record.set("separation", distance);
            record
        })
        .collect();
    Ok(Ok(records))
}

/// IVOA Simple Cone Search 1.03: objects whose mean position is within `SR` degrees of (`RA`,
/// `DEC`), nearest first, as a VOTable whose columns carry the UCDs ID_MAIN, POS_EQ_RA_MAIN
/// and POS_EQ_DEC_MAIN.
///
/// Parameters (names in any letter case): `RA`, `DEC` (decimal degrees, ICRS), `SR` (decimal
/// degrees, 0 to 5; 0 returns the columns only), `VERB` (accepted and ignored; every column is
/// returned). A bad request is answered, as the standard says, with HTTP 200 and a VOTable
/// holding `<INFO name="Error" value="..."/>`. At most the configured `max_results` rows.
///
/// `curl 'localhost:8080/scs?RA=193.822&DEC=2.89732&SR=0.01'`
#[utoipa::path(get, path = "/scs", tag = "ivoa",
    params(
        ("RA" = f64, Query, description = "right ascension, decimal degrees, ICRS"),
        ("DEC" = f64, Query, description = "declination, decimal degrees, ICRS"),
        ("SR" = f64, Query, description = "search radius, decimal degrees, 0 to 5"),
        ("VERB" = Option<u8>, Query, description = "verbosity 1 to 3: accepted, every column is returned"),
    ),
    responses((status = 200, description = "a VOTable (text/xml;content=x-votable): the objects found, or an INFO named Error")))]
pub async fn simple_cone_search(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let xml = match scs_rows(&state, &params).await {
        Ok(Ok(records)) => table(
            "nightjar cone search",
            &scs_fields(),
            &records,
            &[("QUERY_STATUS", "OK".to_owned())],
        ),
        Ok(Err(message)) => error_votable(&message),
        Err(error) if error.status().is_server_error() => {
            tracing::error!(error = %error, "cone search failed");
            error_votable("internal error: the store failed; the details are in the server log")
        }
        Err(error) => error_votable(&error.to_string()),
    };
    ([(header::CONTENT_TYPE, SCS_CONTENT_TYPE)], xml).into_response()
}
