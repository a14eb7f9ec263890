//! `/api/v1/cutouts` over real ZTF and Rubin stamps: FITS served decompressed and byte for byte
//! otherwise, the pixel array, GET and POST, and each error.

mod common;

use std::io::Read;

use axum::http::StatusCode;
use common::{Answer, app, check_bad_request, get, post};
use nightjar_api::ApiConfig;
use nightjar_core::{Alert, CutoutKind};
use nightjar_store::conformance::{rubin_alerts, ztf_light_curve_alerts};

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut plain)
        .expect("a gzip stamp");
    plain
}

fn stamp(alert: &Alert, kind: CutoutKind) -> Vec<u8> {
    alert.cutout(kind).expect("the fixture has the stamp").data.to_vec()
}

fn check_fits(answer: &Answer, expected: &[u8]) {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.content_type, "application/fits");
    assert!(answer.body.starts_with(b"SIMPLE  ="), "a FITS header");
    assert!(answer.body == expected, "the stamp as stored, decompressed");
}

#[tokio::test]
async fn cutouts_fits_serves_each_ztf_stamp_decompressed() {
    let router = app(ApiConfig::default());
    let alert = &ztf_light_curve_alerts()[0];
    for (kind, name) in [
        (CutoutKind::Science, "Science"),
        (CutoutKind::Template, "Template"),
        (CutoutKind::Difference, "Difference"),
    ] {
        let uri = format!(
            "/api/v1/cutouts?candid={}&kind={name}&output-format=FITS",
            alert.source_id()
        );
        check_fits(&get(&router, &uri).await, &gunzip(&stamp(alert, kind)));
    }
}

#[tokio::test]
async fn cutouts_post_agrees_with_get() {
    let router = app(ApiConfig::default());
    let alert = &ztf_light_curve_alerts()[1];
    let expected = gunzip(&stamp(alert, CutoutKind::Difference));
    let body = format!(
        r#"{{"candid": {}, "kind": "Difference", "output-format": "FITS"}}"#,
        alert.source_id()
    );
    check_fits(&post(&router, "/api/v1/cutouts", &body).await, &expected);
    let uri = format!(
        "/api/v1/cutouts?candid={}&kind=difference&output-format=fits",
        alert.source_id()
    );
    check_fits(&get(&router, &uri).await, &expected);
}

#[tokio::test]
async fn cutouts_serve_rubin_stamps_as_stored() {
    let router = app(ApiConfig::default());
    let alert = &rubin_alerts()[0];
    let expected = stamp(alert, CutoutKind::Science);
    for name in ["candid", "diaSourceId"] {
        let uri = format!(
            "/api/v1/cutouts?{name}={}&kind=Science&output-format=FITS",
            alert.source_id()
        );
        check_fits(&get(&router, &uri).await, &expected);
    }
    let uri = format!(
        "/api/v1/cutouts?diaSourceId={}&kind=Template&output-format=array",
        alert.source_id()
    );
    let answer = get(&router, &uri).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let rows = answer.json()[0]["b:cutoutTemplate_stampData"].clone();
    assert!(rows.as_array().is_some_and(|rows| !rows.is_empty()), "{rows}");
}

#[tokio::test]
async fn cutouts_array_is_the_63_by_63_ztf_stamp() {
    let router = app(ApiConfig::default());
    let alert = &ztf_light_curve_alerts()[0];
    let uri = format!(
        "/api/v1/cutouts?candid={}&kind=Science&output-format=array",
        alert.source_id()
    );
    let records = get(&router, &uri).await.records();
    assert_eq!(records.len(), 1);
    let rows = records[0]["b:cutoutScience_stampData"]
        .as_array()
        .expect("a list of rows");
    assert_eq!(rows.len(), 63, "ZTF stamps are 63x63");
    for row in rows {
        let row = row.as_array().expect("a row");
        assert_eq!(row.len(), 63);
        assert!(row.iter().all(|value| value.is_number() || value.is_null()));
    }
    let finite = rows
        .iter()
        .flat_map(|row| row.as_array().into_iter().flatten())
        .filter(|value| value.as_f64().is_some_and(f64::is_finite))
        .count();
    assert!(finite > 63 * 63 / 2, "mostly pixels, {finite} finite");
    let by_function = nightjar_api::cutouts::pixel_rows(&gunzip(&stamp(alert, CutoutKind::Science))).expect("pixels");
    assert_eq!(records[0]["b:cutoutScience_stampData"], by_function);
}

#[tokio::test]
async fn cutouts_object_id_gives_the_latest_alert() {
    let router = app(ApiConfig::default());
    let alerts = ztf_light_curve_alerts();
    let latest = alerts
        .iter()
        .max_by(|a, b| a.detection.mjd.total_cmp(&b.detection.mjd))
        .expect("alerts");
    let uri = format!(
        "/api/v1/cutouts?objectId={}&kind=Science&output-format=FITS",
        common::OBJECT
    );
    check_fits(&get(&router, &uri).await, &gunzip(&stamp(latest, CutoutKind::Science)));
}

#[tokio::test]
async fn cutouts_errors_say_what_is_accepted() {
    let router = app(ApiConfig::default());
    let candid = ztf_light_curve_alerts()[0].source_id();
    check_bad_request(
        &get(&router, &format!("/api/v1/cutouts?candid={candid}&kind=Scienc")).await,
        &["kind", "Science, Template or Difference"],
    );
    check_bad_request(
        &get(&router, &format!("/api/v1/cutouts?candid={candid}")).await,
        &["kind is required"],
    );
    check_bad_request(
        &get(&router, "/api/v1/cutouts?kind=Science").await,
        &["candid is required"],
    );
    check_bad_request(
        &get(&router, "/api/v1/cutouts?candid=ZTF21&kind=Science").await,
        &["candid", "integer"],
    );
    for (query, expected) in [
        ("output-format=jpeg", &["jpeg", "PNG", "FITS", "array"][..]),
        ("stretch=sigmoid", &["stretch", "asinh", "linear"]),
        ("pmin=90&pmax=10", &["pmin", "pmax", "0 to 100"]),
        ("pmax=abc", &["pmax", "percentile"]),
        ("colormap=viridis", &["unknown parameter", "colormap"]),
    ] {
        let uri = format!("/api/v1/cutouts?candid={candid}&kind=Science&{query}");
        check_bad_request(&get(&router, &uri).await, expected);
    }
    for uri in [
        "/api/v1/cutouts?candid=42&kind=Science",
        "/api/v1/cutouts?diaSourceId=42&kind=Science",
        "/api/v1/cutouts?objectId=ZTF00aaaaaaa&kind=Science",
    ] {
        let answer = get(&router, uri).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}: {}", answer.text());
    }
}

#[tokio::test]
async fn cutouts_png_is_the_default_and_the_stretch_changes_it() {
    let router = app(ApiConfig::default());
    let candid = ztf_light_curve_alerts()[0].source_id();
    let mut pngs = Vec::new();
    for query in ["", "&output-format=PNG&stretch=asinh", "&stretch=linear&pmin=1&pmax=99"] {
        let answer = get(&router, &format!("/api/v1/cutouts?candid={candid}&kind=Science{query}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.content_type, "image/png");
        let image = image::load_from_memory_with_format(&answer.body, image::ImageFormat::Png)
            .expect("a PNG")
            .to_luma8();
        assert_eq!(image.dimensions(), (63, 63));
        let levels: std::collections::BTreeSet<u8> = image.pixels().map(|pixel| pixel.0[0]).collect();
        assert!(
            levels.len() > 50,
            "a picture, not a flat field: {} levels",
            levels.len()
        );
        pngs.push(answer.body);
    }
    assert_eq!(pngs[0], pngs[1], "asinh is the default");
    assert_ne!(pngs[0], pngs[2], "the stretch matters");
}
