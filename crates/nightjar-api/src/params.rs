//! Request parameters: GET query arguments or a POST JSON body, read into one list of
//! (name, value) pairs, and the parsers every route shares (numbers, booleans, dates,
//! coordinates).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::Method;

use crate::error::ApiError;
use nightjar_core::calendar::{iso_to_mjd, mjd_to_iso};

/// JD minus MJD.
pub const JD_OFFSET: f64 = 2_400_000.5;

/// The parameters of one request, in the order sent; on POST the query's come first, then the
/// JSON body's (an object whose values are strings, numbers, booleans or lists of those).
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Params, ApiError> {
        let mut pairs: Vec<(String, String)> = request
            .uri()
            .query()
            .map(|query| form_urlencoded::parse(query.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        if request.method() == Method::POST {
            let body = Bytes::from_request(request, state)
                .await
                .map_err(|rejection| ApiError::Rejected {
                    status: rejection.status(),
                    message: rejection.body_text(),
                })?;
            pairs.extend(body_pairs(&body)?);
        }
        Ok(Params { pairs })
    }
}

/// The pairs of a JSON body; an empty body has none.
fn body_pairs(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let not_an_object = |detail: String| {
        ApiError::BadRequest(format!(
            "the request body is not a JSON object of parameters ({detail}); send e.g. {{\"objectId\": \"ZTF21abiuvdk\"}}, or use GET with query arguments"
        ))
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|error| not_an_object(error.to_string()))?;
    let serde_json::Value::Object(object) = value else {
        return Err(not_an_object("it is not an object".to_owned()));
    };
    let mut pairs = Vec::with_capacity(object.len());
    for (name, value) in object {
        let text = match &value {
            serde_json::Value::Null => continue,
            serde_json::Value::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    parts.push(scalar_text(&name, item)?);
                }
                parts.join(",")
            }
            other => scalar_text(&name, other)?,
        };
        pairs.push((name, text));
    }
    Ok(pairs)
}

fn scalar_text(name: &str, value: &serde_json::Value) -> Result<String, ApiError> {
    match value {
        serde_json::Value::String(text) => Ok(text.clone()),
        serde_json::Value::Number(number) => Ok(number.to_string()),
        serde_json::Value::Bool(flag) => Ok(flag.to_string()),
        _ => Err(ApiError::BadRequest(format!(
            "parameter {name:?} must be a string, a number, a boolean or a list of those, not {value}"
        ))),
    }
}

impl Params {
    /// Parameters from pairs (for tests and other callers).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Params {
        Params { pairs }
    }

    /// Refuses parameters this route does not take, naming the ones it does.
    pub fn check_names(&self, route: &str, accepted: &[&str]) -> Result<(), ApiError> {
        for (name, _) in &self.pairs {
            if !accepted.contains(&name.as_str()) {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {name:?} for {route}; accepted: {}",
                    accepted.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The first value of a parameter, trimmed; an empty value counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// The first value of a parameter whose name matches in any letter case (IVOA protocols),
    /// trimmed; an empty value counts as absent.
    pub fn get_ignore_case(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// A required parameter.
    pub fn required(&self, name: &str, what: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::BadRequest(format!("parameter {name} is required: {what}")))
    }

    /// A finite number, if given.
    pub fn number(&self, name: &str, what: &str) -> Result<Option<f64>, ApiError> {
        self.get(name).map(|text| parse_number(name, text, what)).transpose()
    }

    /// A boolean (`true`/`false`, `1`/`0`, `yes`/`no`, any case), `default` if absent.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        let Some(text) = self.get(name) else { return Ok(default) };
        match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "t" | "y" => Ok(true),
            "false" | "0" | "no" | "f" | "n" => Ok(false),
            _ => Err(ApiError::BadRequest(format!(
                "parameter {name} is {text:?}; accepted: true or false"
            ))),
        }
    }

    /// A count in `1..=max`, `default` if absent.
    pub fn count(&self, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
        let Some(text) = self.get(name) else { return Ok(default) };
        match text.parse::<usize>() {
            Ok(value) if (1..=max).contains(&value) => Ok(value),
            _ => Err(ApiError::BadRequest(format!(
                "parameter {name} is {text:?}; accepted: an integer from 1 to {max}"
            ))),
        }
    }

    /// A time (see [`parse_time`]) as MJD, if given.
    pub fn time(&self, name: &str) -> Result<Option<f64>, ApiError> {
        self.get(name).map(|text| parse_time(name, text)).transpose()
    }

    /// A comma-separated list, items trimmed, empty items dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|text| {
                text.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A finite number.
pub fn parse_number(name: &str, text: &str, what: &str) -> Result<f64, ApiError> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(ApiError::BadRequest(format!(
            "parameter {name} is {text:?}; accepted: {what}"
        ))),
    }
}

/// What [`parse_time`] accepts, for error messages.
pub const TIME_FORMATS: &str = "an ISO date or time (2021-07-01, 2021-07-01 09:45:17.003, 2021-07-01T09:45:17Z), an MJD (59396.4) or a JD (2459396.9)";

/// A time as MJD: ISO date or date-time (UTC), an MJD, or a JD (a number from 2,400,000 on).
pub fn parse_time(name: &str, text: &str) -> Result<f64, ApiError> {
    let bad = || ApiError::BadRequest(format!("parameter {name} is {text:?}; accepted: {TIME_FORMATS}"));
    if let Ok(value) = text.parse::<f64>() {
        if !value.is_finite() || value < 0.0 {
            return Err(bad());
        }
        return Ok(if value >= JD_OFFSET { value - JD_OFFSET } else { value });
    }
    iso_to_mjd(text).ok_or_else(bad)
}

/// A time window from `start` and `stop` (either open), checked to be in order.
pub fn window(start: Option<f64>, stop: Option<f64>) -> Result<nightjar_store::TimeWindow, ApiError> {
    let window = nightjar_store::TimeWindow {
        start_mjd: start.unwrap_or(f64::NEG_INFINITY),
        end_mjd: stop.unwrap_or(f64::INFINITY),
    };
    if window.start_mjd >= window.end_mjd {
        return Err(ApiError::BadRequest(format!(
            "the time window is empty: the start ({}) is not before the stop ({}); swap them",
            mjd_to_iso(window.start_mjd),
            mjd_to_iso(window.end_mjd)
        )));
    }
    Ok(window)
}

/// What [`parse_ra`] and [`parse_dec`] accept, for error messages.
pub const COORDINATE_FORMATS: &str =
    "degrees (193.822, 2.89732) or sexagesimal (12:55:17.218, 12h55m17.218s, 12 55 17.218; +02:53:50.35, 2d53m50.35s)";

/// Right ascension in degrees, `[0, 360)`: degrees, or hours-minutes-seconds.
pub fn parse_ra(text: &str) -> Result<f64, ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "parameter ra is {text:?}; accepted: {COORDINATE_FORMATS}, from 0 to 360"
        ))
    };
    let degrees = match text.parse::<f64>() {
        Ok(value) => value,
        Err(_) => {
            let is_degrees = text.contains('d');
            let (sign, value) = sexagesimal(text).ok_or_else(bad)?;
            if sign < 0.0 {
                return Err(bad());
            }
            if is_degrees { value } else { value * 15.0 }
        }
    };
    if !degrees.is_finite() || !(0.0..=360.0).contains(&degrees) {
        return Err(bad());
    }
    Ok(degrees % 360.0)
}

/// Declination in degrees, `[-90, 90]`: degrees, or degrees-minutes-seconds.
pub fn parse_dec(text: &str) -> Result<f64, ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "parameter dec is {text:?}; accepted: {COORDINATE_FORMATS}, from -90 to 90"
        ))
    };
    let degrees = match text.parse::<f64>() {
        Ok(value) => value,
        Err(_) => {
            let (sign, value) = sexagesimal(text).ok_or_else(bad)?;
            sign * value
        }
    };
    if !degrees.is_finite() || !(-90.0..=90.0).contains(&degrees) {
        return Err(bad());
    }
    Ok(degrees)
}

/// Sign and value of `[+-]A B C` where the parts are separated by `:`, spaces or the unit
/// letters `h`/`d`, `m`, `s`; A in the unit of the first part (hours or degrees).
fn sexagesimal(text: &str) -> Option<(f64, f64)> {
    let text = text.trim();
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, text.strip_prefix('+').unwrap_or(text)),
    };
    let parts: Vec<&str> = rest
        .split([':', ' ', 'h', 'd', 'm', 's'])
        .filter(|part| !part.is_empty())
        .collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut value = 0.0;
    for (index, part) in parts.iter().enumerate() {
        let number: f64 = part.parse().ok()?;
        if !number.is_finite() || number < 0.0 || part.starts_with(['+', '-']) || (index > 0 && number >= 60.0) {
            return None;
        }
        value += number / 60f64.powi(index as i32);
    }
    Some((sign, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_in_every_format_agree() {
        for text in ["193.822", "193d49m19.2s", "12h55m17.28s", "12 55 17.28", "12:55:17.28"] {
            let ra = parse_ra(text).unwrap_or_else(|error| panic!("{text}: {error}"));
            assert!((ra - 193.822).abs() < 1e-6, "{text} -> {ra}");
        }
        for text in ["-2.5", "-02:30:00", "-2d30m", "-02 30 00.0"] {
            let dec = parse_dec(text).unwrap_or_else(|error| panic!("{text}: {error}"));
            assert!((dec + 2.5).abs() < 1e-9, "{text} -> {dec}");
        }
        for text in ["", "abc", "361", "-1", "nan", "inf", "12:61:00", "1:2:3:4", "-12:00:00"] {
            assert!(parse_ra(text).is_err(), "{text}");
        }
        for text in ["91", "-90.5", "NaN", "+-3", "1:-2"] {
            assert!(parse_dec(text).is_err(), "{text}");
        }
    }

    #[test]
    fn times_in_every_format_agree() {
        let expected = 59_396.0;
        for text in [
            "2021-07-01",
            "2021-07-01 00:00:00",
            "2021-07-01T00:00:00.000Z",
            "59396",
            "2459396.5",
        ] {
            let mjd = parse_time("startdate", text).unwrap_or_else(|error| panic!("{text}: {error}"));
            assert!((mjd - expected).abs() < 1e-9, "{text} -> {mjd}");
        }
        for text in ["yesterday", "2021-13-01", "2021-02-30", "2021-07-01 25:00", "-5", "inf"] {
            assert!(parse_time("startdate", text).is_err(), "{text}");
        }
    }
}
