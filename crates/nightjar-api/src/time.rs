//! Conversions between MJD and ISO 8601 UTC text (no leap seconds, as Fink's `v:lastdate`).

/// MJD of 1970-01-01T00:00 UTC.
const MJD_UNIX_EPOCH: f64 = 40_587.0;

/// `YYYY-MM-DD HH:MM:SS.sss` (UTC) of an MJD; the text `-inf`/`inf` for open ends.
pub fn mjd_to_iso(mjd: f64) -> String {
    if !mjd.is_finite() {
        return if mjd < 0.0 { "-inf".to_owned() } else { "inf".to_owned() };
    }
    let total_ms = ((mjd - MJD_UNIX_EPOCH) * 86_400_000.0).round() as i64;
    let days = total_ms.div_euclid(86_400_000);
    let ms_of_day = total_ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (hours, minutes) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60);
    let (seconds, millis) = (ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year:04}-{month:02}-{day:02} {hours:02}:{minutes:02}:{seconds:02}.{millis:03}")
}

/// MJD of `YYYY-MM-DD`, optionally followed by `T` or a space and `HH:MM[:SS[.fff]]`, and an
/// optional `Z`; `None` if it is not such a date or the date does not exist.
pub fn iso_to_mjd(text: &str) -> Option<f64> {
    let text = text.trim();
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = match text.find(['T', ' ']) {
        Some(index) => (&text[..index], Some(text[index + 1..].trim())),
        None => (text, None),
    };
    let mut date_parts = date.split('-');
    let year: i64 = digits(date_parts.next()?, 4)?;
    let month: i64 = digits(date_parts.next()?, 2)?;
    let day: i64 = digits(date_parts.next()?, 2)?;
    if date_parts.next().is_some() || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut seconds_of_day = 0.0;
    if let Some(time) = time {
        let mut time_parts = time.split(':');
        let hours: i64 = digits(time_parts.next()?, 2)?;
        let minutes: i64 = digits(time_parts.next()?, 2)?;
        let seconds: f64 = match time_parts.next() {
            Some(part) if part.len() >= 2 && part.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.') => {
                part.parse().ok()?
            }
            Some(_) => return None,
            None => 0.0,
        };
        if time_parts.next().is_some() || hours > 23 || minutes > 59 || !(0.0..60.0).contains(&seconds) {
            return None;
        }
        seconds_of_day = (hours * 3600 + minutes * 60) as f64 + seconds;
    }
    Some(days_from_civil(year, month, day) as f64 + MJD_UNIX_EPOCH + seconds_of_day / 86_400.0)
}

/// A fixed-width run of ASCII digits.
fn digits(text: &str, width: usize) -> Option<i64> {
    if text.len() == width && text.bytes().all(|byte| byte.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trips() {
        assert_eq!(mjd_to_iso(59_396.5), "2021-07-01 12:00:00.000");
        let mjd = iso_to_mjd("2021-07-01 09:45:17.003").unwrap_or(f64::NAN);
        assert_eq!(mjd_to_iso(mjd), "2021-07-01 09:45:17.003");
        assert_eq!(iso_to_mjd("2024-02-29"), Some(60_369.0));
        assert_eq!(iso_to_mjd("2023-02-29"), None);
    }
}
