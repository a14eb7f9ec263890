//! The observing night: the calendar date of the local evening on which a night began.
//!
//! nightjar uses Rubin's `dayObs` rule for every survey: the night of a time `t` (UTC) is the
//! date of `t - 12 h`. An observation at 2025-09-07 03:00 UTC belongs to night 2025-09-06; so
//! does one at 2025-09-06 20:00 UTC. The rule keeps one night's observations together at
//! Rubin (Chile, UTC-3/-4) and ZTF (California, UTC-7/-8).

use std::fmt;
use std::str::FromStr;

use nightjar_core::calendar;
use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::{Date, Month};

/// An observing night as `YYYYMMDD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Night(pub u32);

impl Night {
    /// The night a time (MJD, UTC) belongs to; night 0 for a time no calendar holds.
    pub fn of_mjd(mjd: f64) -> Night {
        calendar::date_of_mjd(mjd - 0.5).map_or(Night(0), Night::of_date)
    }

    fn of_date(date: Date) -> Night {
        let (year, month, day) = (
            date.year().max(0) as u32,
            u32::from(u8::from(date.month())),
            u32::from(date.day()),
        );
        Night(year * 10_000 + month * 100 + day)
    }

    fn date(self) -> Option<Date> {
        let (year, month, day) = self.ymd();
        let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()
    }

    /// MJD at which this night begins (12:00 UTC of its date).
    pub fn start_mjd(self) -> f64 {
        self.date().map_or(f64::NAN, |date| calendar::mjd_of_date(date) + 0.5)
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
        let bad = || format!("invalid night {text:?}: expected a date as YYYY-MM-DD");
        let date = Date::parse(text, format_description!("[year]-[month]-[day]"))
            .or_else(|_| Date::parse(text, format_description!("[year repr:full][month][day]")))
            .map_err(|_| bad())?;
        if date.year() < 1900 {
            return Err(bad());
        }
        Ok(Night::of_date(date))
    }
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
