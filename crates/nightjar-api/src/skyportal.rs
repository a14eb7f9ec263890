//! SkyPortal's generic broker interface: `GET /alerts` and `GET /alerts/{candid}`, answers in a
//! `{"data": ...}` envelope.
//!
//! An alert is `{survey, objectId, candid, jd, band, ra, dec, ...photometry, candidate,
//! prv_candidates}`: ZTF alerts carry `fid`, `magpsf`, `sigmapsf`; Rubin alerts `flux`,
//! `flux_err` in nJy. `candidate` is the raw detection record (ZTF `candidate`, Rubin
//! `diaSource`); `prv_candidates` the object's earlier detections and upper limits, oldest first,
//! each with `jd` and `band` (and `fid` for ZTF).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use nightjar_core::Survey;
use nightjar_store::{AlertRow, DetectionRow, LightCurve, Store, TimeWindow, UpperLimitRow};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::fink::{MAX_RADIUS_ARCSEC, find_light_curve};
use crate::params::{COORDINATE_FORMATS, JD_OFFSET, Params, parse_dec, parse_number, parse_ra, window};
use crate::records::{number, optional};

/// Alerts by object, by candid, or in a cone; optionally within a JD window.
///
/// Parameters: `objectId`, `candid`, or `ra`, `dec` (degrees or sexagesimal) and `radius`
/// (arcsec, 0 < radius <= 18000): one of the three is required; `jd_start`, `jd_end` (JD);
/// `permissions` (accepted, ignored: every alert is public here).
///
/// `curl -H 'Authorization: Bearer TOKEN' 'localhost:8080/alerts?objectId=ZTF21abiuvdk'`
#[utoipa::path(get, path = "/alerts", tag = "skyportal",
    params(
        ("objectId" = Option<String>, Query, description = "object id"),
        ("candid" = Option<i64>, Query, description = "source id of the alert (ZTF candid, Rubin diaSourceId)"),
        ("ra" = Option<String>, Query, description = "cone centre right ascension, degrees or sexagesimal"),
        ("dec" = Option<String>, Query, description = "cone centre declination, degrees or sexagesimal"),
        ("radius" = Option<f64>, Query, description = "cone radius, arcsec"),
        ("jd_start" = Option<f64>, Query, description = "earliest JD, inclusive"),
        ("jd_end" = Option<f64>, Query, description = "latest JD, exclusive"),
        ("permissions" = Option<String>, Query, description = "accepted and ignored"),
    ),
    responses((status = 200, description = "{\"data\": [alert, ...]}"), (status = 400, description = "a bad parameter"),
        (status = 401, description = "a bearer token is configured and was not sent")))]
pub async fn alerts(State(state): State<Arc<AppState>>, params: Params) -> Result<Json<Value>, ApiError> {
    params.check_names(
        "/alerts",
        &[
            "objectId",
            "candid",
            "ra",
            "dec",
            "radius",
            "jd_start",
            "jd_end",
            "permissions",
        ],
    )?;
    let jd_what = "a Julian date (2459396.5)";
    let jd_start = params.number("jd_start", jd_what)?;
    let jd_end = params.number("jd_end", jd_what)?;
    let window = window(jd_start.map(|jd| jd - JD_OFFSET), jd_end.map(|jd| jd - JD_OFFSET))?;
    let store = state.store.as_ref();
    let mut found: Vec<Value> = Vec::new();
    if let Some(candid) = params.get("candid") {
        let candid = parse_candid(candid)?;
        if let Some(alert) = find_alert(store, candid).await?
            && in_window(window, alert.detection.mjd)
        {
            let light_curve = store
                .light_curve(alert.detection.survey, &alert.detection.object_id)
                .await?;
            found.push(alert_json(&alert, light_curve.as_ref()));
        }
    } else if let Some(object_id) = params.get("objectId") {
        if let Some(light_curve) = find_light_curve(store, object_id).await? {
            found.extend(object_alerts(store, &light_curve, window, state.config.max_results).await?);
        }
    } else if params.get("ra").is_some() || params.get("dec").is_some() || params.get("radius").is_some() {
        let ra = parse_ra(params.required("ra", COORDINATE_FORMATS)?)?;
        let dec = parse_dec(params.required("dec", COORDINATE_FORMATS)?)?;
        let radius_what = "a radius in arcsec, greater than 0 and at most 18000";
        let radius = parse_number("radius", params.required("radius", radius_what)?, radius_what)?;
        if !(radius > 0.0 && radius <= MAX_RADIUS_ARCSEC) {
            return Err(ApiError::BadRequest(format!(
                "parameter radius is {radius}; accepted: {radius_what}"
            )));
        }
        for (object, _) in store.cone_search(ra, dec, radius / 3600.0, window).await? {
            if found.len() >= state.config.max_results {
                break;
            }
            if let Some(light_curve) = store.light_curve(object.survey, &object.object_id).await? {
                found.extend(object_alerts(store, &light_curve, window, state.config.max_results).await?);
            }
        }
        found.truncate(state.config.max_results);
    } else {
        return Err(ApiError::BadRequest(
            "one of objectId, candid, or ra, dec and radius (arcsec) is required; jd_start and jd_end narrow the answer"
                .to_owned(),
        ));
    }
    Ok(Json(json!({"data": found})))
}

/// One alert by its candid (ZTF `candid`, Rubin `diaSourceId`); 404 if unknown.
///
/// `curl 'localhost:8080/alerts/1642404680815015001'`
#[utoipa::path(get, path = "/alerts/{candid}", tag = "skyportal",
    params(("candid" = i64, Path, description = "source id of the alert")),
    responses((status = 200, description = "{\"data\": alert}"), (status = 400, description = "not a number"),
        (status = 404, description = "no such alert"), (status = 401, description = "a bearer token is configured and was not sent")))]
pub async fn alert(State(state): State<Arc<AppState>>, Path(candid): Path<String>) -> Result<Json<Value>, ApiError> {
    let candid = parse_candid(&candid)?;
    let store = state.store.as_ref();
    let Some(alert) = find_alert(store, candid).await? else {
        return Err(ApiError::NotFound(format!("no alert with candid {candid}")));
    };
    let light_curve = store
        .light_curve(alert.detection.survey, &alert.detection.object_id)
        .await?;
    Ok(Json(json!({"data": alert_json(&alert, light_curve.as_ref())})))
}

fn parse_candid(text: &str) -> Result<i64, ApiError> {
    text.trim().parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "candid {text:?} is not a source id; accepted: an integer (ZTF candid or Rubin diaSourceId)"
        ))
    })
}

fn in_window(window: TimeWindow, mjd: f64) -> bool {
    mjd >= window.start_mjd && mjd < window.end_mjd
}

async fn find_alert(store: &dyn Store, candid: i64) -> Result<Option<AlertRow>, ApiError> {
    for survey in [Survey::Ztf, Survey::Rubin] {
        if let Some(alert) = store.alert(survey, candid).await? {
            return Ok(Some(alert));
        }
    }
    Ok(None)
}

/// The alerts of an object in the window, newest first, at most `limit`.
async fn object_alerts(
    store: &dyn Store,
    light_curve: &LightCurve,
    window: TimeWindow,
    limit: usize,
) -> Result<Vec<Value>, ApiError> {
    let mut alerts = Vec::new();
    for detection in light_curve.detections.iter().rev() {
        if alerts.len() >= limit {
            break;
        }
        if detection.is_alert
            && in_window(window, detection.mjd)
            && let Some(alert) = store.alert(detection.survey, detection.source_id).await?
        {
            alerts.push(alert_json(&alert, Some(light_curve)));
        }
    }
    Ok(alerts)
}

/// An alert in SkyPortal's shape, its history from the light curve (points before the alert).
fn alert_json(alert: &AlertRow, light_curve: Option<&LightCurve>) -> Value {
    let detection = &alert.detection;
    let mut value = detection_point(detection);
    value["survey"] = json!(detection.survey.as_str());
    value["objectId"] = json!(detection.object_id);
    value["candidate"] = alert.raw_detection.clone();
    let mut history: Vec<(f64, Value)> = Vec::new();
    if let Some(light_curve) = light_curve {
        for earlier in light_curve
            .detections
            .iter()
            .filter(|earlier| earlier.mjd < detection.mjd)
        {
            history.push((earlier.mjd, detection_point(earlier)));
        }
        for limit in light_curve
            .upper_limits
            .iter()
            .filter(|limit| limit.mjd < detection.mjd)
        {
            history.push((limit.mjd, limit_point(limit)));
        }
    }
    history.sort_by(|a, b| a.0.total_cmp(&b.0));
    value["prv_candidates"] = Value::Array(history.into_iter().map(|(_, point)| point).collect());
    value
}

fn detection_point(detection: &DetectionRow) -> Value {
    let mut point = json!({
        "candid": detection.source_id,
        "jd": number(detection.mjd + JD_OFFSET),
        "band": detection.band.map(|band| band.as_str()),
        "ra": number(detection.ra),
        "dec": number(detection.dec),
    });
    match detection.survey {
        Survey::Ztf => {
            point["fid"] = json!(detection.band.and_then(|band| band.ztf_fid()));
            point["magpsf"] = optional(detection.magnitude);
            point["sigmapsf"] = optional(detection.magnitude_err);
        }
        Survey::Rubin => {
            point["flux"] = optional(detection.flux);
            point["flux_err"] = optional(detection.flux_err);
        }
    }
    point
}

fn limit_point(limit: &UpperLimitRow) -> Value {
    let mut point = json!({
        "jd": number(limit.mjd + JD_OFFSET),
        "band": limit.band.map(|band| band.as_str()),
    });
    match limit.survey {
        Survey::Ztf => {
            point["fid"] = json!(limit.band.and_then(|band| band.ztf_fid()));
            point["diffmaglim"] = optional(limit.limiting_magnitude);
        }
        Survey::Rubin => point["flux_err"] = optional(limit.noise_flux),
    }
    point
}
