//! The observing night: the calendar date of the local evening on which a night began.
//!
//! nightjar uses Rubin's `dayObs` rule for every survey: the night of a time `t` (UTC) is the
//! date of `t - 12 h`. An observation at 2025-09-07 03:00 UTC belongs to night 2025-09-06; so
//! does one at 2025-09-06 20:00 UTC. The rule keeps one night's observations together at
//! Rubin (Chile, UTC-3/-4) and ZTF (California, UTC-7/-8).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An observing night as `YYYYMMDD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Night(pub u32);

/// MJD of 1970-01-01T00:00 UTC.
const MJD_UNIX_EPOCH: f64 = 40_587.0;

impl Night {
    /// The night a time (MJD, UTC) belongs to.
    pub fn of_mjd(mjd: f64) -> Night {
        let days_since_epoch = (mjd - MJD_UNIX_EPOCH - 0.5).floor() as i64;
        let (year, month, day) = civil_from_days(days_since_epoch);
        Night((year * 10_000 + month * 100 + day) as u32)
    }

    /// MJD at which this night begins (12:00 UTC of its date).
    pub fn start_mjd(self) -> f64 {
        let (year, month, day) = (self.0 / 10_000, self.0 / 100 % 100, self.0 % 100);
        days_from_civil(i64::from(year), i64::from(month), i64::from(day)) as f64 + MJD_UNIX_EPOCH + 0.5
    }

    /// Year, month and day.
    pub fn ymd(self) -> (u32, u32, u32) {
        (self.0 / 10_000, self.0 / 100 % 100, self.0 % 100)
    }
}

impl fmt::Display for Night {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = self.ymd();
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

impl FromStr for Night {
    type Err = String;

    /// Parses `YYYY-MM-DD` or `YYYYMMDD`.
    fn from_str(text: &str) -> Result<Night, String> {
        let digits: String = text.chars().filter(|c| *c != '-').collect();
        let bad = || format!("invalid night {text:?}: expected a date as YYYY-MM-DD");
        if digits.len() != 8 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let value: u32 = digits.parse().map_err(|_| bad())?;
        let night = Night(value);
        let (year, month, day) = night.ymd();
        // Valid only if the date round-trips through the calendar.
        if month == 0 || day == 0 || Night::of_mjd(night.start_mjd() + 0.25) != night || year < 1900 {
            return Err(bad());
        }
        Ok(night)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
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
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn night_is_the_date_twelve_hours_earlier() {
        // MJD 60924.0 is 2025-09-06 00:00 UTC: still the night of 2025-09-05.
        assert_eq!(Night::of_mjd(60_924.0), Night(20250905));
        // 2025-09-06 12:00 UTC starts the night of 2025-09-06; 03:00 next day is still in it.
        assert_eq!(Night::of_mjd(60_924.5), Night(20250906));
        assert_eq!(Night::of_mjd(60_925.125), Night(20250906));
        assert_eq!(Night(20250906).start_mjd(), 60_924.5);
        assert_eq!(Night(20250906).to_string(), "2025-09-06");
    }

    #[test]
    fn nights_parse_and_reject_bad_dates() {
        assert_eq!("2024-07-15".parse::<Night>(), Ok(Night(20240715)));
        assert_eq!("20240229".parse::<Night>(), Ok(Night(20240229)));
        assert!("2023-02-29".parse::<Night>().is_err());
        assert!("2024-13-01".parse::<Night>().is_err());
        assert!("yesterday".parse::<Night>().is_err());
    }

    #[test]
    fn every_day_round_trips() {
        for mjd in (40_000..70_000).step_by(7) {
            let night = Night::of_mjd(f64::from(mjd) + 0.75);
            assert_eq!(Night::of_mjd(night.start_mjd()), night);
            assert_eq!(night.start_mjd(), f64::from(mjd) + 0.5);
        }
    }
}
