//! The API over a store filled from real alerts: each route, GET and POST, json and csv, the
//! columns filter and prefixes, errors, and the bearer token.

mod common;

use axum::http::{Method, StatusCode};
use common::{FIXTURE_CLASS, FIXTURE_TAGS, OBJECT, app, call, check_bad_request, get, light_curve, post};
use nightjar_api::ApiConfig;
use nightjar_store::conformance::ZTF_SOLAR_SYSTEM;
use serde_json::Value;

#[tokio::test]
async fn objects_returns_one_row_per_alert_newest_first() {
    let router = app(ApiConfig::default());
    let records = get(&router, &format!("/api/v1/objects?objectId={OBJECT}"))
        .await
        .records();
    assert_eq!(records.len(), 12, "one row per alert of the fixture");
    let jds: Vec<f64> = records
        .iter()
        .map(|record| record["i:jd"].as_f64().unwrap_or(f64::NAN))
        .collect();
    assert!(jds.windows(2).all(|pair| pair[0] > pair[1]), "newest first: {jds:?}");
    for record in &records {
        assert_eq!(record["i:objectId"], OBJECT);
        for column in [
            "i:candid",
            "i:ra",
            "i:dec",
            "i:magpsf",
            "i:sigmapsf",
            "i:fid",
            "i:diffmaglim",
            "i:programid",
        ] {
            assert!(
                record.get(column).is_some_and(|value| !value.is_null()),
                "{column} missing"
            );
        }
        assert!(
            record["v:lastdate"]
                .as_str()
                .is_some_and(|date| date.starts_with("2021-07")),
            "{record:?}"
        );
    }
}

#[tokio::test]
async fn objects_post_takes_the_same_parameters_and_filters_columns() {
    let router = app(ApiConfig::default());
    let body = format!(r#"{{"objectId": "{OBJECT}", "columns": "i:jd,i:magpsf,d:cdsxmatch,v:lastdate"}}"#);
    let records = post(&router, "/api/v1/objects", &body).await.records();
    assert_eq!(records.len(), 12);
    for record in &records {
        let names: Vec<&str> = record.keys().map(String::as_str).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert_eq!(
            record["d:cdsxmatch"],
            Value::Null,
            "a broker column nightjar does not compute is null"
        );
        assert!(record["i:magpsf"].is_number());
    }
    let by_get = get(
        &router,
        &format!("/api/v1/objects?objectId={OBJECT}&columns=i:jd,i:magpsf,d:cdsxmatch,v:lastdate"),
    )
    .await
    .records();
    assert_eq!(records, by_get, "GET and POST agree");
}

#[tokio::test]
async fn objects_csv_has_the_requested_header() {
    let router = app(ApiConfig::default());
    let answer = get(
        &router,
        &format!("/api/v1/objects?objectId={OBJECT}&columns=i:jd,i:fid,d:cdsxmatch&output-format=csv"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.content_type.starts_with("text/csv"), "{}", answer.content_type);
    let text = answer.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "i:jd,i:fid,d:cdsxmatch");
    assert_eq!(lines.len(), 13);
    assert!(
        lines[1..]
            .iter()
            .all(|line| line.ends_with(',') && line.split(',').count() == 3),
        "{text}"
    );
}

#[tokio::test]
async fn objects_with_upper_limits_tags_every_row() {
    let router = app(ApiConfig::default());
    let records = post(
        &router,
        "/api/v1/objects",
        &format!(r#"{{"objectId": "{OBJECT}", "withupperlim": true}}"#),
    )
    .await
    .records();
    let tags: Vec<&str> = records
        .iter()
        .map(|record| record["d:tag"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(tags.iter().filter(|tag| **tag == "valid").count(), 12);
    assert!(tags.contains(&"upperlim"), "{tags:?}");
    assert!(
        tags.iter().all(|tag| ["valid", "upperlim", "badquality"].contains(tag)),
        "{tags:?}"
    );
    let limit = records
        .iter()
        .find(|record| record["d:tag"] == "upperlim")
        .expect("an upper limit");
    assert!(limit["i:diffmaglim"].is_number() && limit["i:jd"].is_number() && limit["i:fid"].is_number());
}

#[tokio::test]
async fn objects_serves_rubin_objects_by_dia_object_id() {
    let router = app(ApiConfig::default());
    let rubin = nightjar_store::conformance::rubin_alerts();
    let object_id = rubin[0].object_id.clone();
    let records = get(&router, &format!("/api/v1/objects?diaObjectId={object_id}"))
        .await
        .records();
    assert!(!records.is_empty());
    for record in &records {
        assert_eq!(record["i:objectId"], Value::String(object_id.clone()));
        assert_eq!(record["v:survey"], "rubin");
        assert!(record.get("r:diaSourceId").is_some_and(Value::is_i64), "{record:?}");
        assert!(record.get("i:flux").is_some() && record.get("i:band").is_some_and(Value::is_string));
    }
}

#[tokio::test]
async fn objects_unknown_is_an_empty_list_and_errors_say_what_is_accepted() {
    let router = app(ApiConfig::default());
    assert!(
        get(&router, "/api/v1/objects?objectId=ZTF99zzzzzzz")
            .await
            .records()
            .is_empty()
    );
    check_bad_request(&get(&router, "/api/v1/objects").await, &["objectId", "required"]);
    check_bad_request(&post(&router, "/api/v1/objects", "{}").await, &["objectId"]);
    check_bad_request(
        &get(
            &router,
            &format!("/api/v1/objects?objectId={OBJECT}&output-format=fits"),
        )
        .await,
        &["fits", "json, csv, votable, parquet"],
    );
    check_bad_request(
        &get(&router, &format!("/api/v1/objects?objectId={OBJECT}&columns=magpsf")).await,
        &["magpsf", "i:"],
    );
    check_bad_request(
        &get(&router, &format!("/api/v1/objects?objectID={OBJECT}")).await,
        &["objectID", "objectId"],
    );
    check_bad_request(
        &get(
            &router,
            &format!("/api/v1/objects?objectId={OBJECT}&withupperlim=maybe"),
        )
        .await,
        &["true or false"],
    );
    check_bad_request(&post(&router, "/api/v1/objects", "[1, 2]").await, &["JSON object"]);
    check_bad_request(&post(&router, "/api/v1/objects", "{not json").await, &["JSON object"]);
}

#[tokio::test]
async fn conesearch_finds_the_object_at_its_position_and_not_a_degree_away() {
    let router = app(ApiConfig::default());
    let object = light_curve().await.object;
    let (ra, dec) = (object.ra, object.dec);
    let records = get(&router, &format!("/api/v1/conesearch?ra={ra}&dec={dec}&radius=5"))
        .await
        .records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["i:objectId"], OBJECT);
    assert!(
        records[0]["v:separation_degree"]
            .as_f64()
            .is_some_and(|distance| distance < 1e-3)
    );
    let body = format!(
        r#"{{"ra": {ra}, "dec": "{}", "radius": "5", "columns": "i:objectId,v:separation_degree"}}"#,
        dec + 1.0
    );
    assert!(post(&router, "/api/v1/conesearch", &body).await.records().is_empty());
    // A window around the object's alerts keeps it; one before them does not.
    let inside = format!("/api/v1/conesearch?ra={ra}&dec={dec}&radius=5&startdate=2021-07-01&window=30");
    assert_eq!(get(&router, &inside).await.records().len(), 1);
    let before = format!("/api/v1/conesearch?ra={ra}&dec={dec}&radius=5&startdate=2020-01-01&stopdate=2020-02-01");
    assert!(get(&router, &before).await.records().is_empty());
    let csv = get(
        &router,
        &format!("/api/v1/conesearch?ra={ra}&dec={dec}&radius=5&output-format=csv"),
    )
    .await;
    assert!(csv.text().lines().nth(1).is_some_and(|line| line.contains(OBJECT)));
}

#[tokio::test]
async fn conesearch_refuses_bad_positions_radii_and_dates() {
    let router = app(ApiConfig::default());
    for radius in ["0", "-1", "18000.5", "abc", "nan", "inf"] {
        check_bad_request(
            &get(&router, &format!("/api/v1/conesearch?ra=10&dec=10&radius={radius}")).await,
            &["radius", "18000"],
        );
    }
    check_bad_request(
        &get(&router, "/api/v1/conesearch?ra=10&dec=10").await,
        &["radius", "required"],
    );
    check_bad_request(
        &get(&router, "/api/v1/conesearch?ra=400&dec=10&radius=5").await,
        &["ra", "0 to 360"],
    );
    check_bad_request(
        &get(&router, "/api/v1/conesearch?ra=10&dec=-91&radius=5").await,
        &["dec", "-90 to 90"],
    );
    check_bad_request(
        &get(&router, "/api/v1/conesearch?ra=10&dec=10&radius=5&startdate=yesterday").await,
        &["startdate", "ISO", "MJD"],
    );
    check_bad_request(
        &get(
            &router,
            "/api/v1/conesearch?ra=10&dec=10&radius=5&startdate=2021-07-02&stopdate=2021-07-01",
        )
        .await,
        &["window is empty"],
    );
    check_bad_request(
        &get(&router, "/api/v1/conesearch?ra=10&dec=10&radius=5&window=3").await,
        &["startdate"],
    );
}

#[tokio::test]
async fn latests_returns_n_newest_alerts() {
    let router = app(ApiConfig::default());
    let records = get(&router, "/api/v1/latests?n=3&columns=i:objectId,i:jd")
        .await
        .records();
    assert_eq!(records.len(), 3);
    let posted = post(
        &router,
        "/api/v1/latests",
        r#"{"n": 3, "class": "allClasses", "columns": "i:objectId,i:jd"}"#,
    )
    .await
    .records();
    assert_eq!(records, posted);
    let window = get(
        &router,
        "/api/v1/latests?n=100&startdate=2021-07-01&stopdate=2021-08-01",
    )
    .await
    .records();
    assert!(
        window.iter().all(|record| record["i:objectId"] == OBJECT) && window.len() == 12,
        "{}",
        window.len()
    );
    assert!(
        get(&router, "/api/v1/latests?class=Early%20SN%20Ia%20candidate")
            .await
            .records()
            .is_empty()
    );
    check_bad_request(&get(&router, "/api/v1/latests?n=0").await, &["n", "1 to 10000"]);
    check_bad_request(&get(&router, "/api/v1/latests?n=ten").await, &["n", "integer"]);
    check_bad_request(
        &get(&router, "/api/v1/latests?stopdate=2021-13-45").await,
        &["stopdate", "ISO"],
    );
}

#[tokio::test]
async fn sso_finds_alerts_by_solar_system_name() {
    let router = app(ApiConfig::default());
    let (candid, name) = ZTF_SOLAR_SYSTEM;
    let records = get(&router, &format!("/api/v1/sso?n_or_d={name}")).await.records();
    assert!(records.iter().any(|record| record["i:candid"] == candid), "{records:?}");
    assert!(records.iter().all(|record| record["v:ssname"] == name));
    assert!(
        post(&router, "/api/v1/sso", r#"{"n_or_d": "no such rock"}"#)
            .await
            .records()
            .is_empty()
    );
    check_bad_request(&get(&router, "/api/v1/sso").await, &["n_or_d", "required"]);
}

#[tokio::test]
async fn statistics_counts_alerts_per_night() {
    let router = app(ApiConfig::default());
    let records = get(&router, "/api/v1/statistics?date=2021").await.records();
    assert!(!records.is_empty());
    let total: u64 = records
        .iter()
        .map(|record| record["basic:raw"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(total, 12, "the 12 alerts of 2021 are ZTF21abiuvdk's");
    assert!(records.iter().all(|record| {
        record["key:key"]
            .as_str()
            .is_some_and(|key| key.starts_with("ztf_2021"))
    }));
    let all = post(&router, "/api/v1/statistics", "{}").await.records();
    assert!(all.len() > records.len());
    let csv = get(
        &router,
        "/api/v1/statistics?output-format=csv&columns=key:night,basic:raw",
    )
    .await;
    assert_eq!(csv.text().lines().next(), Some("key:night,basic:raw"));
    check_bad_request(
        &get(&router, "/api/v1/statistics?date=2021-07").await,
        &["date", "YYYYMMDD"],
    );
}

#[tokio::test]
async fn schema_lists_columns_with_type_and_description() {
    let router = app(ApiConfig::default());
    let records = get(&router, "/api/v1/schema").await.records();
    assert!(
        records
            .iter()
            .any(|record| record["name"] == "i:magpsf" && record["type"] == "float")
    );
    assert!(
        records
            .iter()
            .all(|record| record["description"].as_str().is_some_and(|text| !text.is_empty()))
    );
    let csv = post(&router, "/api/v1/schema", r#"{"output-format": "csv"}"#).await;
    assert_eq!(csv.text().lines().next(), Some("name,type,description"));
}

#[tokio::test]
async fn skyportal_alerts_carry_jd_band_and_photometry() {
    let router = app(ApiConfig::default());
    let answer = get(&router, &format!("/alerts?objectId={OBJECT}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let data = answer.json()["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(data.len(), 12);
    for alert in &data {
        assert_eq!(alert["objectId"], OBJECT);
        assert!(alert["jd"].is_number() && alert["band"].is_string() && alert["fid"].is_number());
        assert!(alert["magpsf"].is_number() && alert["candidate"].is_object());
        for point in alert["prv_candidates"].as_array().into_iter().flatten() {
            assert!(
                point["jd"].is_number() && point["band"].is_string() && point["fid"].is_number(),
                "{point}"
            );
            assert!(point["jd"].as_f64() < alert["jd"].as_f64());
        }
    }
    assert!(data.last().is_some_and(|oldest| {
        oldest["prv_candidates"]
            .as_array()
            .is_some_and(|points| !points.is_empty())
    }));
    let newest = data[0]["candid"].as_i64().unwrap_or_default();
    let one = get(&router, &format!("/alerts/{newest}")).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json()["data"]["candid"], newest);
    let by_candid = get(&router, &format!("/alerts?candid={newest}")).await.json();
    assert_eq!(by_candid["data"].as_array().map(Vec::len), Some(1));
    // The JD window: only the newest alert is at or after its own JD.
    let jd = data[0]["jd"].as_f64().unwrap_or_default();
    let windowed = get(&router, &format!("/alerts?objectId={OBJECT}&jd_start={jd}"))
        .await
        .json();
    assert_eq!(windowed["data"].as_array().map(Vec::len), Some(1));
    // A cone search.
    let object = light_curve().await.object;
    let cone = get(
        &router,
        &format!("/alerts?ra={}&dec={}&radius=3", object.ra, object.dec),
    )
    .await
    .json();
    assert_eq!(cone["data"].as_array().map(Vec::len), Some(12));
}

#[tokio::test]
async fn skyportal_rubin_alerts_carry_fluxes() {
    let router = app(ApiConfig::default());
    let rubin = nightjar_store::conformance::rubin_alerts();
    let answer = get(&router, &format!("/alerts/{}", rubin[0].source_id())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let alert = &answer.json()["data"];
    assert_eq!(alert["survey"], "rubin");
    assert!(
        alert["flux"].is_number() && alert["band"].is_string() && alert["jd"].is_number(),
        "{alert}"
    );
    assert!(alert.get("fid").is_none());
}

#[tokio::test]
async fn skyportal_errors() {
    let router = app(ApiConfig::default());
    let missing = get(&router, "/alerts/12345").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.json()["message"]
            .as_str()
            .is_some_and(|message| message.contains("12345"))
    );
    check_bad_request(&get(&router, "/alerts/abc").await, &["candid", "integer"]);
    check_bad_request(&get(&router, "/alerts").await, &["objectId", "candid", "radius"]);
    check_bad_request(&get(&router, "/alerts?ra=10&dec=10").await, &["radius"]);
    check_bad_request(
        &get(&router, "/alerts?objectId=x&jd_start=later").await,
        &["jd_start", "Julian"],
    );
    assert_eq!(
        get(&router, "/alerts?objectId=ZTF99zzzzzzz").await.json(),
        serde_json::json!({"data": []})
    );
}

#[tokio::test]
async fn bearer_token_guards_data_routes_only() {
    let config = ApiConfig {
        bearer_token: Some("s3cret".to_owned()),
        ..ApiConfig::default()
    };
    let router = app(config);
    let uri = format!("/alerts?objectId={OBJECT}");
    assert_eq!(
        call(&router, Method::GET, &uri, None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&router, Method::GET, &uri, None, Some("wrong")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&router, Method::GET, &uri, None, Some("s3cret")).await.status,
        StatusCode::OK
    );
    let fink = format!("/api/v1/objects?objectId={OBJECT}");
    assert_eq!(
        call(&router, Method::GET, &fink, None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&router, Method::GET, &fink, None, Some("s3cret")).await.status,
        StatusCode::OK
    );
    assert_eq!(get(&router, "/health").await.status, StatusCode::OK);
    assert_eq!(get(&router, "/api/v1/openapi.json").await.status, StatusCode::OK);
}

#[tokio::test]
async fn health_reports_counts_and_openapi_lists_every_route() {
    let router = app(ApiConfig::default());
    let health = get(&router, "/health").await.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["counts"]["alerts"], 12 + 6 + 11);
    let document = get(&router, "/api/v1/openapi.json").await.json();
    let paths = document["paths"].as_object().cloned().unwrap_or_default();
    for route in [
        "objects",
        "conesearch",
        "latests",
        "sso",
        "statistics",
        "schema",
        "cutouts",
    ] {
        let path = &paths[&format!("/api/v1/{route}")];
        assert!(
            path.get("get").is_some() && path.get("post").is_some(),
            "{route}: {path}"
        );
    }
    for path in [
        "/alerts",
        "/alerts/{candid}",
        "/health",
        "/api/v1/openapi.json",
        "/scs",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path}");
    }
}

#[tokio::test]
async fn serve_stops_on_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(nightjar_api::serve(listener, app(ApiConfig::default()), async {
        let _ = stopped.await;
    }));
    let _ = stop.send(());
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), server).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
}

#[tokio::test]
async fn module_outputs_are_d_columns_and_latests_selects_a_class() {
    let router = app(ApiConfig::default());
    let records = get(&router, &format!("/api/v1/objects?objectId={OBJECT}"))
        .await
        .records();
    for record in &records {
        // The quality module's outputs, stored with each alert.
        let rb = record["i:rb"].as_f64().expect("i:rb");
        assert_eq!(record["d:rb"].as_f64(), Some(rb), "{record:?}");
        assert_eq!(record["d:is_good_quality"].as_bool(), Some(rb >= 0.55), "{record:?}");
        assert_eq!(record["v:classification"], FIXTURE_CLASS);
    }
    // A column nightjar does not compute comes back null, not as an error.
    let records = get(
        &router,
        &format!("/api/v1/objects?objectId={OBJECT}&columns=i:candid,d:cdsxmatch"),
    )
    .await
    .records();
    assert!(records.iter().all(|record| record["d:cdsxmatch"].is_null()));

    let latest = get(
        &router,
        &format!("/api/v1/latests?class={}&n=100", FIXTURE_CLASS.replace(' ', "%20")),
    )
    .await
    .records();
    assert_eq!(latest.len(), 12, "every alert of the class, no other");
    assert!(latest.iter().all(|record| record["i:objectId"] == OBJECT));
    let none = get(&router, "/api/v1/latests?class=Kilonova%20candidate&n=100")
        .await
        .records();
    assert!(none.is_empty());
    let all = get(&router, "/api/v1/latests?class=allClasses&n=100").await.records();
    assert!(all.len() > latest.len());

    // Every stored alert has a class (the classification module's, "Unknown" when no rule
    // fires), most common first.
    let classes = get(&router, "/api/v1/classes").await.records();
    let count = |class: &str| {
        classes
            .iter()
            .find(|record| record["class"] == class)
            .and_then(|record| record["alerts"].as_u64())
    };
    assert_eq!(count(FIXTURE_CLASS), Some(12), "{classes:?}");
    assert!(
        count("Solar System MPC").is_some_and(|n| n >= 1),
        "the known asteroids: {classes:?}"
    );
    let total: u64 = classes.iter().filter_map(|record| record["alerts"].as_u64()).sum();
    let n = state_max_results();
    let every = get(&router, &format!("/api/v1/latests?n={n}")).await.records();
    assert_eq!(total, every.len() as u64, "{classes:?}");
    let sizes: Vec<u64> = classes.iter().filter_map(|record| record["alerts"].as_u64()).collect();
    assert!(
        sizes.windows(2).all(|pair| pair[0] >= pair[1]),
        "most common first: {sizes:?}"
    );
}

/// The largest `n` the default configuration accepts.
fn state_max_results() -> usize {
    ApiConfig::default().max_results
}

#[tokio::test]
async fn tags_selects_the_alerts_carrying_a_tag() {
    let router = app(ApiConfig::default());
    let tag = FIXTURE_TAGS.split(',').next().expect("a tag");
    let records = get(&router, &format!("/api/v1/tags?tag={tag}&n=100")).await.records();
    assert_eq!(records.len(), 12, "every alert with the tag");
    assert!(records.iter().all(|record| record["i:objectId"] == OBJECT));
    assert!(records.iter().all(|record| record["d:tags"] == FIXTURE_TAGS));
    // A prefix of a tag is not the tag.
    assert!(get(&router, "/api/v1/tags?tag=sn_near").await.records().is_empty());
    check_bad_request(&get(&router, "/api/v1/tags").await, &["tag is required"]);
    check_bad_request(&get(&router, "/api/v1/tags?tag=a,b").await, &["without commas"]);
}

#[tokio::test]
async fn sources_lists_every_dia_source_of_a_rubin_object_with_f_module_columns() {
    let router = app(ApiConfig::default());
    let alerts = nightjar_store::conformance::rubin_alerts();
    let object = &alerts[0].object_id;
    let store = common::store();
    let light_curve = store
        .light_curve(nightjar_core::Survey::Rubin, object)
        .await
        .expect("reads")
        .expect("stored");
    let records = get(&router, &format!("/api/v1/sources?diaObjectId={object}"))
        .await
        .records();
    assert_eq!(records.len(), light_curve.detections.len(), "one row per diaSource");
    let mut ids: Vec<i64> = records
        .iter()
        .filter_map(|record| record["r:diaSourceId"].as_i64())
        .collect();
    let mut expected: Vec<i64> = light_curve
        .detections
        .iter()
        .map(|detection| detection.source_id)
        .collect();
    ids.sort_unstable();
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let mjds: Vec<f64> = records
        .iter()
        .filter_map(|record| record["r:midpointMjdTai"].as_f64())
        .collect();
    assert!(mjds.windows(2).all(|pair| pair[0] >= pair[1]), "newest first");
    assert!(records.iter().all(|record| record["r:diaObjectId"] == object.as_str()));
    assert!(records.iter().all(|record| record["r:psfFlux"].is_number()));
    check_bad_request(&get(&router, "/api/v1/sources").await, &["diaObjectId is required"]);

    // Rubin alerts carry the module outputs with Fink's Rubin prefix f:.
    let rows = get(&router, &format!("/api/v1/objects?diaObjectId={object}"))
        .await
        .records();
    assert!(!rows.is_empty());
    for row in &rows {
        assert!(row.get("f:is_good_quality").is_some_and(Value::is_boolean), "{row:?}");
        assert!(row.get("d:is_good_quality").is_none());
    }
}
