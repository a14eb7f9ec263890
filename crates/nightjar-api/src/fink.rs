//! Fink-compatible routes under `/api/v1/`: `objects`, `conesearch`, `latests`, `sso`,
//! `statistics`, `schema` (and `cutouts`, in [`crate::cutouts`]). Each takes GET query arguments or a POST JSON body with the same
//! parameters, and `output-format` json (a list of records, the default), csv, votable or
//! parquet.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use nightjar_core::Survey;
use nightjar_store::{AlertRow, AlertSelection, LightCurve, Store};

use crate::AppState;
use crate::error::ApiError;
use crate::output::{OutputFormat, Record, render, requested_columns};
use crate::params::{COORDINATE_FORMATS, Params, parse_dec, parse_ra, window};
use crate::records::{COLUMNS, alert_record, detection_record, number, source_record, upper_limit_record};
use nightjar_core::calendar::mjd_to_iso;

/// Largest cone-search radius, arcsec (Fink's: 5 degrees).
pub const MAX_RADIUS_ARCSEC: f64 = 18_000.0;
/// Most object ids in one `objects` request.
pub const MAX_OBJECT_IDS: usize = 1000;

/// The object's light curve: ZTF first, then Rubin (ZTF ids are letters, Rubin's numbers).
pub(crate) async fn find_light_curve(store: &dyn Store, object_id: &str) -> Result<Option<LightCurve>, ApiError> {
    for survey in [Survey::Ztf, Survey::Rubin] {
        if let Some(light_curve) = store.light_curve(survey, object_id).await? {
            return Ok(Some(light_curve));
        }
    }
    Ok(None)
}

/// Refuses `withcutouts=true`: stamps come from `/api/v1/cutouts`, one at a time.
fn refuse_cutouts(params: &Params) -> Result<(), ApiError> {
    if params.flag("withcutouts", false)? {
        return Err(ApiError::BadRequest(
            "withcutouts: stamps are not inlined in objects; accepted: false (or leave it out), and ask /api/v1/cutouts?candid=...&kind=Science for each stamp".to_owned(),
        ));
    }
    Ok(())
}

/// Light curves of objects: one row per alert, newest first.
///
/// Parameters: `objectId` (comma-separated; `diaObjectId` for Rubin objects, same meaning),
/// `columns` (comma-separated, prefixed; default all), `withupperlim` (adds upper limits and
/// detections seen only in alert histories, with `d:tag`), `withcutouts` (false only),
/// `output-format`. An unknown object contributes no rows (like Fink).
///
/// `curl 'localhost:8080/api/v1/objects?objectId=ZTF21abiuvdk&columns=i:jd,i:magpsf,i:fid'`
#[utoipa::path(method(get, post), path = "/api/v1/objects", tag = "fink",
    params(
        ("objectId" = Option<String>, Query, description = "object ids, comma-separated (ZTF objectId or Rubin diaObjectId)"),
        ("diaObjectId" = Option<String>, Query, description = "Rubin diaObjectIds, comma-separated (same as objectId)"),
        ("columns" = Option<String>, Query, description = "columns to return, comma-separated, with family prefixes"),
        ("withupperlim" = Option<bool>, Query, description = "add upper limits and history-only detections (d:tag)"),
        ("withcutouts" = Option<bool>, Query, description = "false only: stamps come from /api/v1/cutouts"),
        ("output-format" = Option<String>, Query, description = "json (default), csv, votable or parquet"),
    ),
    responses((status = 200, description = "a list of records"), (status = 400, description = "a bad parameter")))]
pub async fn objects(State(state): State<Arc<AppState>>, params: Params) -> Result<Response, ApiError> {
    params.check_names(
        "/api/v1/objects",
        &[
            "objectId",
            "diaObjectId",
            "columns",
            "withupperlim",
            "withcutouts",
            "cutout-kind",
            "output-format",
        ],
    )?;
    let format = OutputFormat::from_params(&params)?;
    let columns = requested_columns(&params)?;
    let with_upper_limits = params.flag("withupperlim", false)?;
    refuse_cutouts(&params)?;
    let mut object_ids = params.list("objectId");
    object_ids.extend(params.list("diaObjectId"));
    if object_ids.is_empty() {
        return Err(ApiError::BadRequest(
            "parameter objectId is required: one or more object ids, comma-separated (ZTF21abiuvdk or a Rubin diaObjectId)"
                .to_owned(),
        ));
    }
    if object_ids.len() > MAX_OBJECT_IDS {
        return Err(ApiError::BadRequest(format!(
            "{} object ids requested; accepted: at most {MAX_OBJECT_IDS} per request",
            object_ids.len()
        )));
    }
    let store = state.store.as_ref();
    let mut records = Vec::new();
    for object_id in &object_ids {
        let Some(light_curve) = find_light_curve(store, object_id).await? else {
            continue;
        };
        let mut rows: Vec<(f64, Record)> = Vec::new();
        for detection in &light_curve.detections {
            let mut record = if detection.is_alert {
                match store.alert(detection.survey, detection.source_id).await? {
                    Some(alert) => alert_record(&alert),
                    None => detection_record(detection),
                }
            } else if with_upper_limits {
                let mut record = detection_record(detection);
                record.set("d:tag", "badquality");
                record
            } else {
                continue;
            };
            if with_upper_limits && detection.is_alert {
                record.set("d:tag", "valid");
            }
            record.set("v:firstdate", mjd_to_iso(light_curve.object.first_mjd));
            rows.push((detection.mjd, record));
        }
        if with_upper_limits {
            for limit in &light_curve.upper_limits {
                let mut record = upper_limit_record(limit);
                record.set("d:tag", "upperlim");
                record.set("v:firstdate", mjd_to_iso(light_curve.object.first_mjd));
                rows.push((limit.mjd, record));
            }
        }
        rows.sort_by(|a, b| b.0.total_cmp(&a.0));
        records.extend(rows.into_iter().map(|(_, record)| record));
    }
    render(records, columns.as_deref(), format)
}

/// Objects around a position: for each, its latest alert in the time window, nearest first,
/// with `v:separation_degree`.
///
/// Parameters: `ra`, `dec` (degrees or sexagesimal), `radius` (arcsec, 0 < radius <= 18000),
/// `startdate` and `stopdate` (ISO, MJD or JD) or `startdate` and `window` (days), `columns`,
/// `output-format`.
///
/// `curl 'localhost:8080/api/v1/conesearch?ra=193.822&dec=2.89732&radius=5'`
#[utoipa::path(method(get, post), path = "/api/v1/conesearch", tag = "fink",
    params(
        ("ra" = String, Query, description = "right ascension: degrees or sexagesimal (12:55:17.2)"),
        ("dec" = String, Query, description = "declination: degrees or sexagesimal (+02:53:50)"),
        ("radius" = f64, Query, description = "radius, arcsec, 0 < radius <= 18000"),
        ("startdate" = Option<String>, Query, description = "window start: ISO time, MJD or JD"),
        ("stopdate" = Option<String>, Query, description = "window stop: ISO time, MJD or JD"),
        ("window" = Option<f64>, Query, description = "window length in days after startdate"),
        ("columns" = Option<String>, Query, description = "columns to return, comma-separated"),
        ("output-format" = Option<String>, Query, description = "json (default), csv, votable or parquet"),
    ),
    responses((status = 200, description = "a list of records"), (status = 400, description = "a bad parameter")))]
pub async fn conesearch(State(state): State<Arc<AppState>>, params: Params) -> Result<Response, ApiError> {
    params.check_names(
        "/api/v1/conesearch",
        &[
            "ra",
            "dec",
            "radius",
            "startdate",
            "stopdate",
            "window",
            "columns",
            "output-format",
        ],
    )?;
    let format = OutputFormat::from_params(&params)?;
    let columns = requested_columns(&params)?;
    let ra = parse_ra(params.required("ra", COORDINATE_FORMATS)?)?;
    let dec = parse_dec(params.required("dec", COORDINATE_FORMATS)?)?;
    let radius_what = "a radius in arcsec, greater than 0 and at most 18000";
    let radius = params.required("radius", radius_what)?;
    let radius = crate::params::parse_number("radius", radius, radius_what)?;
    if !(radius > 0.0 && radius <= MAX_RADIUS_ARCSEC) {
        return Err(ApiError::BadRequest(format!(
            "parameter radius is {radius}; accepted: {radius_what}"
        )));
    }
    let start = params.time("startdate")?;
    let mut stop = params.time("stopdate")?;
    if let Some(days) = params.number("window", "a number of days greater than 0")? {
        let Some(start) = start else {
            return Err(ApiError::BadRequest(
                "parameter window needs startdate: the window starts there".to_owned(),
            ));
        };
        if days <= 0.0 || stop.is_some() {
            return Err(ApiError::BadRequest(
                "parameter window: accepted: a number of days greater than 0, with startdate and without stopdate"
                    .to_owned(),
            ));
        }
        stop = Some(start + days);
    }
    let window = window(start, stop)?;
    let store = state.store.as_ref();
    let mut records = Vec::new();
    for (object, distance) in store.cone_search(ra, dec, radius / 3600.0, window).await? {
        let Some(light_curve) = store.light_curve(object.survey, &object.object_id).await? else {
            continue;
        };
        let in_window = |mjd: f64| mjd >= window.start_mjd && mjd < window.end_mjd;
        let latest = light_curve
            .detections
            .iter()
            .filter(|detection| in_window(detection.mjd))
            .max_by(|a, b| {
                (a.is_alert, a.mjd)
                    .partial_cmp(&(b.is_alert, b.mjd))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
        let Some(latest) = latest else { continue };
        let mut record = match latest.is_alert {
            true => match store.alert(latest.survey, latest.source_id).await? {
                Some(alert) => alert_record(&alert),
                None => detection_record(latest),
            },
            false => detection_record(latest),
        };
        record.set("v:separation_degree", number(distance));
        records.push(record);
    }
    render(records, columns.as_deref(), format)
}

/// The latest alerts, newest first.
///
/// Parameters: `class` (optional: `allClasses` or absent gives every alert, another class the
/// alerts the classification module gave that class; `/api/v1/classes` lists them),
/// `n` (1 to the configured maximum, default 10), `startdate`, `stopdate`, `columns`,
/// `output-format`.
///
/// `curl 'localhost:8080/api/v1/latests?n=5&startdate=2021-07-01&columns=i:objectId,i:jd'`
#[utoipa::path(method(get, post), path = "/api/v1/latests", tag = "fink",
    params(
        ("class" = Option<String>, Query, description = "allClasses or absent: every alert; otherwise the alerts of that class (see /api/v1/classes)"),
        ("n" = Option<u32>, Query, description = "number of alerts, default 10"),
        ("startdate" = Option<String>, Query, description = "window start: ISO time, MJD or JD"),
        ("stopdate" = Option<String>, Query, description = "window stop: ISO time, MJD or JD"),
        ("columns" = Option<String>, Query, description = "columns to return, comma-separated"),
        ("output-format" = Option<String>, Query, description = "json (default), csv, votable or parquet"),
    ),
    responses((status = 200, description = "a list of records"), (status = 400, description = "a bad parameter")))]
pub async fn latests(State(state): State<Arc<AppState>>, params: Params) -> Result<Response, ApiError> {
    params.check_names(
        "/api/v1/latests",
        &["class", "n", "startdate", "stopdate", "columns", "output-format"],
    )?;
    let selection = match params.get("class") {
        None | Some("allClasses") => AlertSelection::All,
        Some(class) => AlertSelection::Class(class.to_owned()),
    };
    latest_selected(&state, &params, &selection).await
}

/// The latest alerts of a selection, for `latests` and `tags`: parameters `n`, `startdate`,
/// `stopdate`, `columns`, `output-format`.
async fn latest_selected(state: &AppState, params: &Params, selection: &AlertSelection) -> Result<Response, ApiError> {
    let format = OutputFormat::from_params(params)?;
    let columns = requested_columns(params)?;
    let n = params.count("n", 10, state.config.max_results)?;
    let window = window(params.time("startdate")?, params.time("stopdate")?)?;
    let records = state
        .store
        .latest_alerts(window, selection, n)
        .await?
        .iter()
        .map(alert_record)
        .collect();
    render(records, columns.as_deref(), format)
}

/// The latest alerts carrying a tag (Fink's Rubin multi-tags: every tag whose rule fires is
/// in the alert's `tags` output), newest first.
///
/// Parameters: `tag` (required), `n` (1 to the configured maximum, default 10), `startdate`,
/// `stopdate`, `columns`, `output-format`.
///
/// `curl 'localhost:8080/api/v1/tags?tag=solar_system_mpc&n=5'`
#[utoipa::path(method(get, post), path = "/api/v1/tags", tag = "fink",
    params(
        ("tag" = String, Query, description = "the tag, as in the tags output of the classification module"),
        ("n" = Option<u32>, Query, description = "number of alerts, default 10"),
        ("startdate" = Option<String>, Query, description = "window start: ISO time, MJD or JD"),
        ("stopdate" = Option<String>, Query, description = "window stop: ISO time, MJD or JD"),
        ("columns" = Option<String>, Query, description = "columns to return, comma-separated"),
        ("output-format" = Option<String>, Query, description = "json (default), csv, votable or parquet"),
    ),
    responses((status = 200, description = "a list of records"), (status = 400, description = "a bad parameter")))]
pub async fn tags(State(state): State<Arc<AppState>>, params: Params) -> Result<Response, ApiError> {
    params.check_names(
        "/api/v1/tags",
        &["tag", "n", "startdate", "stopdate", "columns", "output-format"],
    )?;
    let tag = params
        .get("tag")
        .map(str::trim)
        .filter(|tag| !tag.is_empty() && !tag.contains(','));
    let Some(tag) = tag else {
        return Err(ApiError::BadRequest(
            "parameter tag is required: one tag without commas, as the classification module's tags output lists them (see docs/modules/classification.md)".to_owned(),
        ));
    };
    latest_selected(&state, &params, &AlertSelection::Tag(tag.to_owned())).await
}

/// The light curve of Rubin diaObjects: one row per diaSource stored (the alerts' own and those
/// seen in their histories), newest first, with the diaSource fields as `r:` columns.
///
/// Parameters: `diaObjectId` (comma-separated), `columns`, `output-format`. An unknown object
/// contributes no rows.
///
/// `curl 'localhost:8080/api/v1/sources?diaObjectId=169298433216610349&columns=r:midpointMjdTai,r:band,r:psfFlux'`
#[utoipa::path(method(get, post), path = "/api/v1/sources", tag = "fink",
    params(
        ("diaObjectId" = String, Query, description = "Rubin diaObjectIds, comma-separated"),
        ("columns" = Option<String>, Query, description = "columns to return, comma-separated"),
        ("output-format" = Option<String>, Query, description = "json (default), csv, votable or parquet"),
    ),
    responses((status = 200, description = "a list of records"), (status = 400, description = "a bad parameter")))]
pub async fn sources(State(state): State<Arc<AppState>>, params: Params) -> Result<Response, ApiError> {
    params.check_names("/api/v1/sources", &["diaObjectId", "columns", "output-format"])?;
    let format = OutputFormat::from_params(&params)?;
    let columns = requested_columns(&params)?;
    let object_ids = params.list("diaObjectId");
    if object_ids.is_empty() || object_ids.len() > MAX_OBJECT_IDS {
        return Err(ApiError::BadRequest(format!(
            "parameter diaObjectId is required: 1 to {MAX_OBJECT_IDS} Rubin diaObjectIds, comma-separated"
        )));
    }
    let mut records = Vec::new();
    for object_id in &object_ids {
        let Some(light_curve) = state.store.light_curve(Survey::Rubin, object_id).await? else {
            continue;
        };
        let mut detections: Vec<_> = light_curve.detections.iter().collect();
        detections.sort_by(|a, b| b.mjd.total_cmp(&a.mjd));
        records.extend(detections.into_iter().map(source_record));
    }
    render(records, columns.as_deref(), format)
}

/// The classes of the stored alerts, with their number of alerts, most common first.
///
/// Columns: `class`, `alerts`. Parameters: `columns`, `output-format`.
///
/// `curl 'localhost:8080/api/v1/classes'`
#[utoipa::path(method(get, post), path = "/api/v1/classes", tag = "fink",
    params(
        ("columns" = Option<String>, Query, description = "columns to return, comma-separated"),
        ("output-format" = Option<String>, Query, description = "json (default), csv, votable or parquet"),
    ),
    responses((status = 200, description = "a list of records"), (status = 400, description = "a bad parameter")))]
pub async fn classes(State(state): State<Arc<AppState>>, params: Params) -> Result<Response, ApiError> {
    params.check_names("/api/v1/classes", &["columns", "output-format"])?;
    let format = OutputFormat::from_params(&params)?;
    let columns = requested_columns(&params)?;
    let records = state
        .store
        .classes()
        .await?
        .into_iter()
        .map(|count| {
            let mut record = Record::default();
            record.set("class", count.class);
            record.set("alerts", count.alerts);
            record
        })
        .collect();
    render(records, columns.as_deref(), format)
}

/// Alerts of solar-system objects, by the name or number the survey associated (ZTF
/// `ssnamenr`, Rubin's MPC designation), newest first.
///
/// Parameters: `n_or_d` (comma-separated), `columns`, `output-format`.
///
/// `curl 'localhost:8080/api/v1/sso?n_or_d=113410'`
#[utoipa::path(method(get, post), path = "/api/v1/sso", tag = "fink",
    params(
        ("n_or_d" = String, Query, description = "solar-system names or numbers as the survey gave them, comma-separated"),
        ("columns" = Option<String>, Query, description = "columns to return, comma-separated"),
        ("output-format" = Option<String>, Query, description = "json (default), csv, votable or parquet"),
    ),
    responses((status = 200, description = "a list of records"), (status = 400, description = "a bad parameter")))]
pub async fn sso(State(state): State<Arc<AppState>>, params: Params) -> Result<Response, ApiError> {
    params.check_names("/api/v1/sso", &["n_or_d", "columns", "output-format"])?;
    let format = OutputFormat::from_params(&params)?;
    let columns = requested_columns(&params)?;
    let names = params.list("n_or_d");
    if names.is_empty() {
        return Err(ApiError::BadRequest(
            "parameter n_or_d is required: solar-system names or numbers as the survey gave them (ZTF ssnamenr, e.g. 113410), comma-separated"
                .to_owned(),
        ));
    }
    let mut records = Vec::new();
    for name in names.iter().take(MAX_OBJECT_IDS) {
        let alerts: Vec<AlertRow> = state.store.solar_system_alerts(name, state.config.max_results).await?;
        records.extend(alerts.iter().map(|alert| {
            let mut record = alert_record(alert);
            record.set("v:ssname", alert.solar_system_name.clone());
            record
        }));
    }
    render(records, columns.as_deref(), format)
}

/// Alerts and objects received per observing night and survey, oldest first.
///
/// Columns: `key:key` (`<survey>_<YYYYMMDD>`), `key:survey`, `key:night` (`YYYYMMDD`),
/// `basic:raw` (alerts received), `basic:objects` (objects with an alert that night).
/// Parameters: `date` (a `YYYYMMDD` prefix: `2021`, `202107`, `20210701`), `columns`,
/// `output-format`.
///
/// `curl 'localhost:8080/api/v1/statistics?date=202107'`
#[utoipa::path(method(get, post), path = "/api/v1/statistics", tag = "fink",
    params(
        ("date" = Option<String>, Query, description = "a YYYYMMDD prefix: 2021, 202107 or 20210701"),
        ("columns" = Option<String>, Query, description = "columns to return, comma-separated"),
        ("output-format" = Option<String>, Query, description = "json (default), csv, votable or parquet"),
    ),
    responses((status = 200, description = "a list of records"), (status = 400, description = "a bad parameter")))]
pub async fn statistics(State(state): State<Arc<AppState>>, params: Params) -> Result<Response, ApiError> {
    params.check_names("/api/v1/statistics", &["date", "columns", "output-format"])?;
    let format = OutputFormat::from_params(&params)?;
    let columns = requested_columns(&params)?;
    let prefix = params.get("date").unwrap_or("");
    if prefix.len() > 8 || !prefix.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ApiError::BadRequest(format!(
            "parameter date is {prefix:?}; accepted: a YYYYMMDD prefix (2021, 202107, 20210701)"
        )));
    }
    let mut records = Vec::new();
    for count in state.store.counts_per_night().await? {
        let night = format!("{:08}", count.night.0);
        if !night.starts_with(prefix) {
            continue;
        }
        let mut record = Record::default();
        record.set("key:key", format!("{}_{night}", count.survey.as_str()));
        record.set("key:survey", count.survey.as_str());
        record.set("key:night", night);
        record.set("basic:raw", count.n_alerts);
        record.set("basic:objects", count.n_objects);
        records.push(record);
    }
    render(records, columns.as_deref(), format)
}

/// The columns served, with type and description (`name`, `type`, `description`).
///
/// `curl 'localhost:8080/api/v1/schema'`
#[utoipa::path(method(get, post), path = "/api/v1/schema", tag = "fink",
    params(("output-format" = Option<String>, Query, description = "json (default), csv, votable or parquet")),
    responses((status = 200, description = "a list of columns")))]
pub async fn schema(params: Params) -> Result<Response, ApiError> {
    params.check_names("/api/v1/schema", &["output-format"])?;
    let format = OutputFormat::from_params(&params)?;
    let records = COLUMNS
        .iter()
        .map(|column| {
            let mut record = Record::default();
            record.set("name", column.name);
            record.set("type", column.kind);
            record.set("description", column.description);
            record
        })
        .collect();
    render(records, None, format)
}
