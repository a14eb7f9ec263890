//! The Fink-compatible `/api/v1/cutouts` route: one image stamp of an alert, as a PNG rendered
//! with a stretch, as plain FITS, or as its 2-D pixel array in JSON.

use std::io::{Cursor, Read};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use fitsrs::{Fits, HDU, Pixels};
use nightjar_core::{CutoutKind, Survey};
use nightjar_store::{CutoutRow, Store};
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;
use crate::fink::find_light_curve;
use crate::output::Record;
use crate::params::Params;

/// What `output-format` the cutouts route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutoutFormat {
    /// A grayscale PNG: percentile clip, then a stretch (Fink's default format).
    Png,
    /// The stamp as a plain FITS file (ZTF's gzip is undone).
    Fits,
    /// The pixel array as JSON: `[{"b:cutout<Kind>_stampData": [[row 0], [row 1], ...]}]`.
    Array,
}

const KINDS_ACCEPTED: &str = "Science, Template or Difference";
const FORMATS_ACCEPTED: &str = "PNG (default), FITS or array";
const STRETCHES_ACCEPTED: &str = "asinh (default), linear, sqrt or log";

/// The `kind` parameter, Fink's names (any letter case).
fn parse_kind(params: &Params) -> Result<CutoutKind, ApiError> {
    let kind = params.required("kind", KINDS_ACCEPTED)?;
    CutoutKind::ALL
        .into_iter()
        .find(|candidate| candidate.as_str().eq_ignore_ascii_case(kind))
        .ok_or_else(|| ApiError::BadRequest(format!("parameter kind is {kind:?}; accepted: {KINDS_ACCEPTED}")))
}

/// The `output-format` parameter; PNG if absent (like Fink).
fn parse_format(params: &Params) -> Result<CutoutFormat, ApiError> {
    match params.get("output-format").map(str::to_ascii_lowercase).as_deref() {
        None | Some("png") => Ok(CutoutFormat::Png),
        Some("fits") => Ok(CutoutFormat::Fits),
        Some("array") => Ok(CutoutFormat::Array),
        Some(other) => Err(ApiError::BadRequest(format!(
            "output-format {other:?} is not served for cutouts; accepted: {FORMATS_ACCEPTED}"
        ))),
    }
}

/// How pixel values between the clip limits map to gray levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stretch {
    Linear,
    Asinh,
    Sqrt,
    Log,
}

impl Stretch {
    /// Maps a value in [0, 1] to [0, 1].
    fn apply(self, x: f64) -> f64 {
        match self {
            Stretch::Linear => x,
            Stretch::Asinh => (10.0 * x).asinh() / 10.0_f64.asinh(),
            Stretch::Sqrt => x.sqrt(),
            Stretch::Log => (1000.0 * x).ln_1p() / 1000.0_f64.ln_1p(),
        }
    }
}

/// How to render a PNG: `stretch`, and the percentiles `pmin` and `pmax` that clip the values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rendering {
    pub stretch: Stretch,
    pub percentile_min: f64,
    pub percentile_max: f64,
}

fn parse_rendering(params: &Params) -> Result<Rendering, ApiError> {
    let stretch = match params.get("stretch").map(str::to_ascii_lowercase).as_deref() {
        None | Some("asinh") => Stretch::Asinh,
        Some("linear") => Stretch::Linear,
        Some("sqrt") => Stretch::Sqrt,
        Some("log") => Stretch::Log,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "parameter stretch is {other:?}; accepted: {STRETCHES_ACCEPTED}"
            )));
        }
    };
    let percentile = "a percentile from 0 to 100";
    let percentile_min = params.number("pmin", percentile)?.unwrap_or(0.5);
    let percentile_max = params.number("pmax", percentile)?.unwrap_or(99.5);
    if !(0.0..=100.0).contains(&percentile_min)
        || !(0.0..=100.0).contains(&percentile_max)
        || percentile_min >= percentile_max
    {
        return Err(ApiError::BadRequest(format!(
            "pmin is {percentile_min} and pmax {percentile_max}; accepted: percentiles from 0 to 100 with pmin < pmax (default 0.5 and 99.5)"
        )));
    }
    Ok(Rendering {
        stretch,
        percentile_min,
        percentile_max,
    })
}

/// Fink's column name of a stamp: `b:cutoutScience_stampData`.
fn stamp_column(kind: CutoutKind) -> &'static str {
    match kind {
        CutoutKind::Science => "b:cutoutScience_stampData",
        CutoutKind::Template => "b:cutoutTemplate_stampData",
        CutoutKind::Difference => "b:cutoutDifference_stampData",
    }
}

/// An alert id parameter: a signed 64-bit integer.
fn parse_source_id(name: &str, text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().map_err(|_| {
        ApiError::BadRequest(format!(
            "parameter {name} is {text:?}; accepted: an alert id, an integer"
        ))
    })
}

/// The cutouts of the requested alert: `candid` (ZTF, then Rubin), `diaSourceId` (Rubin), or
/// the latest alert of `objectId` / `diaObjectId`.
async fn requested_cutouts(store: &dyn Store, params: &Params) -> Result<Vec<CutoutRow>, ApiError> {
    if let Some(text) = params.get("candid") {
        let candid = parse_source_id("candid", text)?;
        for survey in [Survey::Ztf, Survey::Rubin] {
            let rows = store.cutouts(survey, candid).await?;
            if !rows.is_empty() {
                return Ok(rows);
            }
        }
        return Err(ApiError::NotFound(format!("no alert with candid {candid}")));
    }
    if let Some(text) = params.get("diaSourceId") {
        let source_id = parse_source_id("diaSourceId", text)?;
        let rows = store.cutouts(Survey::Rubin, source_id).await?;
        if rows.is_empty() {
            return Err(ApiError::NotFound(format!("no alert with diaSourceId {source_id}")));
        }
        return Ok(rows);
    }
    let Some(object_id) = params.get("objectId").or_else(|| params.get("diaObjectId")) else {
        return Err(ApiError::BadRequest(
            "parameter candid is required: an alert id (or diaSourceId for Rubin, or objectId for the object's latest alert)"
                .to_owned(),
        ));
    };
    let Some(light_curve) = find_light_curve(store, object_id).await? else {
        return Err(ApiError::NotFound(format!("no object {object_id:?}")));
    };
    let latest = light_curve
        .detections
        .iter()
        .filter(|detection| detection.is_alert)
        .max_by(|a, b| a.mjd.total_cmp(&b.mjd));
    let Some(latest) = latest else {
        return Err(ApiError::NotFound(format!("object {object_id:?} has no alert")));
    };
    let rows = store.cutouts(latest.survey, latest.source_id).await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "the latest alert of {object_id:?} ({}) has no cutouts",
            latest.source_id
        )));
    }
    Ok(rows)
}

/// An alert's image stamp.
///
/// Parameters: `candid` (a ZTF candid or Rubin diaSourceId), or `diaSourceId`, or `objectId`
/// / `diaObjectId` for the object's latest alert; `kind` (Science, Template or Difference);
/// `output-format`: `PNG` (default: grayscale, FITS's first row at the bottom, values clipped
/// at the percentiles `pmin` and `pmax`, default 0.5 and 99.5, then `stretch`: asinh by
/// default, linear, sqrt or log), `FITS` (the stamp as plain FITS, `application/fits`; ZTF's
/// gzip is undone) or `array` (`[{"b:cutoutScience_stampData": [[...], ...]}]`, rows of
/// pixels in FITS order, BSCALE/BZERO applied, NaN as null). An unknown alert answers 404.
///
/// `curl -o stamp.png 'localhost:8080/api/v1/cutouts?candid=1637249291815015005&kind=Science'`
/// `curl -o stamp.fits 'localhost:8080/api/v1/cutouts?candid=1637249291815015005&kind=Difference&output-format=FITS'`
#[utoipa::path(method(get, post), path = "/api/v1/cutouts", tag = "fink",
    params(
        ("candid" = Option<i64>, Query, description = "alert id: ZTF candid or Rubin diaSourceId"),
        ("diaSourceId" = Option<i64>, Query, description = "Rubin alert id (same as candid)"),
        ("objectId" = Option<String>, Query, description = "without candid: the latest alert of this object"),
        ("kind" = String, Query, description = "Science, Template or Difference"),
        ("output-format" = Option<String>, Query, description = "PNG (default), FITS or array"),
        ("stretch" = Option<String>, Query, description = "PNG only: asinh (default), linear, sqrt or log"),
        ("pmin" = Option<f64>, Query, description = "PNG only: lower clip percentile, default 0.5"),
        ("pmax" = Option<f64>, Query, description = "PNG only: upper clip percentile, default 99.5"),
    ),
    responses(
        (status = 200, description = "the stamp: PNG (image/png), FITS (application/fits) or a JSON pixel array"),
        (status = 400, description = "a bad parameter"),
        (status = 404, description = "no such alert")))]
pub async fn cutouts(State(state): State<Arc<AppState>>, params: Params) -> Result<Response, ApiError> {
    params.check_names(
        "/api/v1/cutouts",
        &[
            "candid",
            "diaSourceId",
            "objectId",
            "diaObjectId",
            "kind",
            "output-format",
            "stretch",
            "pmin",
            "pmax",
        ],
    )?;
    let kind = parse_kind(&params)?;
    let format = parse_format(&params)?;
    let rendering = parse_rendering(&params)?;
    let rows = requested_cutouts(state.store.as_ref(), &params).await?;
    let Some(row) = rows.into_iter().find(|row| row.kind == kind) else {
        return Err(ApiError::NotFound(format!("the alert has no {} cutout", kind.as_str())));
    };
    let fits = plain_fits(&row)?;
    let unreadable = |error: String| {
        ApiError::Internal(format!(
            "reading the {} cutout of alert {}: {error}",
            kind.as_str(),
            row.source_id
        ))
    };
    match format {
        CutoutFormat::Fits => {
            let file_name = row
                .file_name
                .as_deref()
                .map(|name| name.trim_end_matches(".gz").to_owned())
                .unwrap_or_else(|| format!("{}_{}.fits", row.source_id, kind.as_str()));
            let disposition = format!("inline; filename=\"{}\"", file_name.replace(['"', '\\'], "_"));
            Ok((
                [
                    (header::CONTENT_TYPE, "application/fits".to_owned()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                fits,
            )
                .into_response())
        }
        CutoutFormat::Png => {
            let image = Image::read(&fits).map_err(unreadable)?;
            let png = image.png(rendering).map_err(unreadable)?;
            Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
        }
        CutoutFormat::Array => {
            let pixels = pixel_rows(&fits).map_err(unreadable)?;
            let mut record = Record::default();
            record.set(stamp_column(kind), pixels);
            Ok(Json(vec![record]).into_response())
        }
    }
}

/// The stamp as plain FITS: ZTF's gzip undone, Rubin's as stored.
fn plain_fits(row: &CutoutRow) -> Result<Vec<u8>, ApiError> {
    if !row.data.starts_with(&[0x1f, 0x8b]) {
        return Ok(row.data.clone());
    }
    let mut fits = Vec::with_capacity(row.data.len() * 4);
    flate2::read::GzDecoder::new(row.data.as_slice())
        .read_to_end(&mut fits)
        .map_err(|error| {
            ApiError::Internal(format!(
                "decompressing the {} cutout of alert {}: {error}",
                row.kind.as_str(),
                row.source_id
            ))
        })?;
    Ok(fits)
}

/// The first 2-D image of a FITS file (primary HDU or image extension), BSCALE and BZERO
/// applied; row 0 is FITS's first row (the bottom of the picture).
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    /// Row after row.
    pub values: Vec<f64>,
}

impl Image {
    /// Reads the first 2-D image of a FITS file.
    pub fn read(fits: &[u8]) -> Result<Image, String> {
        let mut hdu_list = Fits::from_reader(Cursor::new(fits));
        while let Some(hdu) = hdu_list.next() {
            let hdu = hdu.map_err(|error| format!("not a FITS file: {error}"))?;
            let image = match hdu {
                HDU::Primary(image) | HDU::XImage(image) => image,
                HDU::XBinaryTable(_) | HDU::XASCIITable(_) => continue,
            };
            let header = image.get_header();
            let &[width, height] = header.get_xtension().get_naxis() else {
                continue;
            };
            let scale = header.get_parsed::<f64>("BSCALE").unwrap_or(1.0);
            let zero = header.get_parsed::<f64>("BZERO").unwrap_or(0.0);
            let values: Vec<f64> = match hdu_list.get_data(&image).pixels() {
                Pixels::U8(it) => it.map(f64::from).collect(),
                Pixels::I16(it) => it.map(f64::from).collect(),
                Pixels::I32(it) => it.map(f64::from).collect(),
                Pixels::I64(it) => it.map(|value| value as f64).collect(),
                Pixels::F32(it) => it.map(f64::from).collect(),
                Pixels::F64(it) => it.collect(),
            };
            let (width, height) = (width as usize, height as usize);
            if width == 0 || height == 0 || values.len() != width * height {
                return Err(format!(
                    "the image is {width}x{height} pixels but its data holds {}",
                    values.len()
                ));
            }
            let values = values.into_iter().map(|value| value * scale + zero).collect();
            return Ok(Image { width, height, values });
        }
        Err("no 2-D image in the FITS file".to_owned())
    }

    /// A grayscale PNG, FITS's first row at the bottom: values clipped at the percentiles,
    /// scaled to [0, 1], stretched; NaN is black.
    pub fn png(&self, rendering: Rendering) -> Result<Vec<u8>, String> {
        let mut finite: Vec<f64> = self.values.iter().copied().filter(|value| value.is_finite()).collect();
        finite.sort_by(f64::total_cmp);
        let percentile = |p: f64| -> f64 {
            if finite.is_empty() {
                return 0.0;
            }
            let index = (p / 100.0 * (finite.len() - 1) as f64).round() as usize;
            finite[index.min(finite.len() - 1)]
        };
        let low = percentile(rendering.percentile_min);
        let high = percentile(rendering.percentile_max);
        let range = if high > low { high - low } else { 1.0 };
        let mut gray = Vec::with_capacity(self.values.len());
        for row in self.values.chunks(self.width).rev() {
            for &value in row {
                let level = match value.is_finite() {
                    true => rendering.stretch.apply(((value - low) / range).clamp(0.0, 1.0)),
                    false => 0.0,
                };
                gray.push((level * 255.0).round() as u8);
            }
        }
        let too_large = |_| format!("the image is too large: {}x{}", self.width, self.height);
        let width = u32::try_from(self.width).map_err(too_large)?;
        let height = u32::try_from(self.height).map_err(too_large)?;
        let image = image::GrayImage::from_raw(width, height, gray)
            .ok_or_else(|| "the pixels do not fill the image".to_owned())?;
        let mut png = Cursor::new(Vec::new());
        image
            .write_to(&mut png, image::ImageFormat::Png)
            .map_err(|error| format!("encoding the PNG: {error}"))?;
        Ok(png.into_inner())
    }
}

/// The first 2-D image of a FITS file as rows of pixels (FITS order, BSCALE and BZERO applied);
/// NaN and infinities are null.
pub fn pixel_rows(fits: &[u8]) -> Result<Value, String> {
    let image = Image::read(fits)?;
    let rows = image
        .values
        .chunks(image.width)
        .map(|row| {
            Value::Array(
                row.iter()
                    .map(|&value| serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
                    .collect(),
            )
        })
        .collect();
    Ok(Value::Array(rows))
}
