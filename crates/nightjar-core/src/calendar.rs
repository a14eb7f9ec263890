//! Calendar dates and times of MJDs (UTC, without leap seconds, as the surveys' alert times
//! are used), through the `time` crate.

use time::macros::format_description;
use time::{Date, Duration, PrimitiveDateTime, Time};

/// Julian day number of the calendar date on which MJD 0 falls (1858-11-17).
const JULIAN_DAY_OF_MJD_ZERO: i32 = 2_400_001;

/// The UTC calendar date an MJD falls on; `None` outside years -9999 to 9999 or for a
/// non-finite MJD.
pub fn date_of_mjd(mjd: f64) -> Option<Date> {
    if !mjd.is_finite() || mjd.abs() > 1e8 {
        return None;
    }
    Date::from_julian_day(mjd.floor() as i32 + JULIAN_DAY_OF_MJD_ZERO).ok()
}

/// The MJD of a date's 00:00 UTC.
pub fn mjd_of_date(date: Date) -> f64 {
    f64::from(date.to_julian_day() - JULIAN_DAY_OF_MJD_ZERO)
}

/// The UTC date and time of an MJD, to the millisecond.
pub fn datetime_of_mjd(mjd: f64) -> Option<PrimitiveDateTime> {
    let date = date_of_mjd(mjd)?;
    let millis = ((mjd - mjd.floor()) * 86_400_000.0).round() as i64;
    Some(PrimitiveDateTime::new(date, Time::MIDNIGHT) + Duration::milliseconds(millis))
}

/// `YYYY-MM-DD HH:MM:SS.sss` (UTC) of an MJD; `-inf` / `inf` for open ends, and the number
/// itself for a time no calendar holds.
pub fn mjd_to_iso(mjd: f64) -> String {
    if mjd.is_infinite() {
        return if mjd < 0.0 {
            "-inf".to_string()
        } else {
            "inf".to_string()
        };
    }
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]");
    datetime_of_mjd(mjd)
        .and_then(|datetime| datetime.format(format).ok())
        .unwrap_or_else(|| mjd.to_string())
}

/// The MJD of `YYYY-MM-DD`, optionally followed by `T` or a space and `HH:MM[:SS[.fff]]`, and
/// an optional `Z`; `None` if it is not such a date or the date does not exist.
pub fn iso_to_mjd(text: &str) -> Option<f64> {
    let text = text.trim();
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = match text.find(['T', ' ']) {
        Some(index) => (&text[..index], Some(text[index + 1..].trim())),
        None => (text, None),
    };
    let date = Date::parse(date, format_description!("[year]-[month]-[day]")).ok()?;
    let time = match time {
        None => Time::MIDNIGHT,
        Some(time) => Time::parse(time, format_description!("[hour]:[minute]:[second].[subsecond]"))
            .or_else(|_| Time::parse(time, format_description!("[hour]:[minute]:[second]")))
            .or_else(|_| Time::parse(time, format_description!("[hour]:[minute]")))
            .ok()?,
    };
    let seconds_of_day = (time - Time::MIDNIGHT).as_seconds_f64();
    Some(mjd_of_date(date) + seconds_of_day / 86_400.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_mjds() {
        assert_eq!(
            date_of_mjd(0.0).map(|date| date.to_string()),
            Some("1858-11-17".to_string())
        );
        assert_eq!(
            date_of_mjd(60_924.99).map(|date| date.to_string()),
            Some("2025-09-06".to_string())
        );
        assert_eq!(mjd_of_date(date_of_mjd(59_000.25).unwrap()), 59_000.0);
        assert_eq!(date_of_mjd(f64::NAN), None);
    }

    #[test]
    fn iso_round_trips() {
        assert_eq!(mjd_to_iso(59_396.5), "2021-07-01 12:00:00.000");
        let mjd = iso_to_mjd("2021-07-01 09:45:17.003").unwrap_or(f64::NAN);
        assert_eq!(mjd_to_iso(mjd), "2021-07-01 09:45:17.003");
        assert_eq!(iso_to_mjd("2024-02-29"), Some(60_369.0));
        assert_eq!(iso_to_mjd("2024-02-29T06:00Z"), Some(60_369.25));
        assert_eq!(iso_to_mjd("2023-02-29"), None);
        assert_eq!(iso_to_mjd("2023-02-28 25:00"), None);
        assert_eq!(mjd_to_iso(f64::NEG_INFINITY), "-inf");
    }
}
