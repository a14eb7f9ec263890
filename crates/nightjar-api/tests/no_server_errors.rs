//! Property test: random parameters, as GET query strings and POST bodies, sent to every route
//! never yield a 5xx (nor a panic).

mod common;

use axum::http::Method;
use common::{app, call};
use nightjar_api::ApiConfig;
use proptest::prelude::*;

const ROUTES: [&str; 11] = [
    "/scs",
    "/api/v1/cutouts",
    "/api/v1/objects",
    "/api/v1/conesearch",
    "/api/v1/latests",
    "/api/v1/sso",
    "/api/v1/statistics",
    "/api/v1/schema",
    "/alerts",
    "/alerts/1642404680815015001",
    "/alerts/%FF%FE",
];

const NAMES: [&str; 30] = [
    "stretch",
    "pmin",
    "pmax",
    "RA",
    "DEC",
    "SR",
    "kind",
    "diaSourceId",
    "objectId",
    "diaObjectId",
    "columns",
    "withupperlim",
    "withcutouts",
    "output-format",
    "ra",
    "dec",
    "radius",
    "startdate",
    "stopdate",
    "window",
    "class",
    "n",
    "n_or_d",
    "date",
    "candid",
    "jd_start",
    "jd_end",
    "permissions",
    "x",
    "",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[-+0-9.eE:hdms ]{0,16}",
        any::<f64>().prop_map(|number| number.to_string()),
        any::<i64>().prop_map(|number| number.to_string()),
        Just("ZTF21abiuvdk".to_owned()),
        Just("i:jd,d:cdsxmatch,v:lastdate".to_owned()),
        Just("csv".to_owned()),
        Just("array".to_owned()),
        Just("votable".to_owned()),
        Just("png".to_owned()),
        Just("parquet".to_owned()),
        Just("fits".to_owned()),
        Just("Science".to_owned()),
        Just("1637249291815015005".to_owned()),
        Just("2021-07-01".to_owned()),
    ]
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (prop::sample::select(NAMES.to_vec()).prop_map(str::to_owned), value()),
        0..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_parameters_never_yield_a_server_error(
        route in prop::sample::select(ROUTES.to_vec()),
        pairs in pairs(),
        raw_query in "[A-Za-z0-9=&%:,._~+-]{0,40}",
        raw_body in any::<Vec<u8>>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let router = app(ApiConfig::default());
            let mut encoded = form_urlencoded::Serializer::new(String::new());
            for (name, value) in &pairs {
                encoded.append_pair(name, value);
            }
            let query = encoded.finish();
            let object: serde_json::Map<String, serde_json::Value> =
                pairs.iter().map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone()))).collect();
            let body = serde_json::Value::Object(object).to_string();
            let raw_body = String::from_utf8_lossy(&raw_body).into_owned();
            let requests = [
                (Method::GET, format!("{route}?{query}"), None),
                (Method::GET, format!("{route}?{raw_query}"), None),
                (Method::POST, route.to_owned(), Some(body.as_str())),
                (Method::POST, format!("{route}?{raw_query}"), Some(raw_body.as_str())),
            ];
            for (method, uri, body) in requests {
                let answer = call(&router, method.clone(), &uri, body, None).await;
                assert!(!answer.status.is_server_error(), "{method} {uri} {body:?} -> {} {}", answer.status, answer.text());
            }
        });
    }
}
