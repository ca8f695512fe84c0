//! Wall-clock helpers shared by every crate: the current time as Unix epoch milliseconds or
//! seconds, and the proleptic Gregorian calendar date and time of day of an instant, in UTC (or
//! at an offset the caller has already added), with the text forms the store and the agent write.
//!
//! No time-zone database is involved: converting to local time is the caller's job (add the
//! zone's offset in seconds before calling [`CivilDateTime::from_epoch_secs`]). The date
//! conversion is Howard Hinnant's `civil_from_days`, exact for every `i64` day count whose year
//! fits in an `i64`.

/// Seconds in a day.
const SECS_PER_DAY: i64 = 86_400;

/// The current wall-clock time in Unix epoch milliseconds (0 if the system clock is set before
/// 1970, `i64::MAX` far past year 292 million).
pub fn now_ms() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// The current wall-clock time in whole Unix epoch seconds (0 before 1970).
pub fn now_secs() -> i64 {
    now_ms().div_euclid(1000)
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday (1970-01-01 was one).
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl Weekday {
    /// The weekday of the day `days` days after 1970-01-01 (negative: before it).
    pub const fn from_days_since_epoch(days: i64) -> Self {
        // 1970-01-01 was a Thursday, index 3 from Monday.
        match (days + 3).rem_euclid(7) {
            0 => Weekday::Monday,
            1 => Weekday::Tuesday,
            2 => Weekday::Wednesday,
            3 => Weekday::Thursday,
            4 => Weekday::Friday,
            5 => Weekday::Saturday,
            _ => Weekday::Sunday,
        }
    }

    /// The English name (`"Monday"` … `"Sunday"`).
    pub const fn name(self) -> &'static str {
        match self {
            Weekday::Monday => "Monday",
            Weekday::Tuesday => "Tuesday",
            Weekday::Wednesday => "Wednesday",
            Weekday::Thursday => "Thursday",
            Weekday::Friday => "Friday",
            Weekday::Saturday => "Saturday",
            Weekday::Sunday => "Sunday",
        }
    }
}

impl std::fmt::Display for Weekday {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The calendar date of the day `days` days after 1970-01-01: `(year, month 1-12, day 1-31)`.
pub const fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146_096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st, 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    // `day` is 1..=31 and `month` 1..=12 by construction, so the casts are lossless.
    (year, month as u32, day as u32)
}

/// The number of days from 1970-01-01 to the date `year-month-day` (negative before it): the
/// inverse of [`civil_from_days`]. `month` must be 1-12 and `day` valid for it; other values
/// give the day count of the normalized date, not an error.
pub const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (month as i64, day as i64);
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A calendar date and time of day (whole seconds), as read off an epoch instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct CivilDateTime {
    /// Year (proleptic Gregorian; may be ≤ 0 for instants before year 1).
    pub year: i64,
    /// Month, 1-12.
    pub month: u32,
    /// Day of the month, 1-31.
    pub day: u32,
    /// Hour, 0-23.
    pub hour: u32,
    /// Minute, 0-59.
    pub minute: u32,
    /// Second, 0-59.
    pub second: u32,
    /// Day of the week.
    pub weekday: Weekday,
}

impl CivilDateTime {
    /// The date and time of the instant `secs` seconds after the Unix epoch. Add a zone's offset
    /// (seconds east of UTC) to `secs` first to read local time.
    pub const fn from_epoch_secs(secs: i64) -> Self {
        let days = secs.div_euclid(SECS_PER_DAY);
        let sod = secs.rem_euclid(SECS_PER_DAY); // 0..86_400, so the casts are lossless
        let (year, month, day) = civil_from_days(days);
        CivilDateTime {
            year,
            month,
            day,
            hour: (sod / 3600) as u32,
            minute: (sod % 3600 / 60) as u32,
            second: (sod % 60) as u32,
            weekday: Weekday::from_days_since_epoch(days),
        }
    }

    /// The date and time of the instant `ms` milliseconds after the Unix epoch (the
    /// milliseconds are dropped, rounding toward the past).
    pub const fn from_epoch_ms(ms: i64) -> Self {
        Self::from_epoch_secs(ms.div_euclid(1000))
    }

    /// `YYYY-MM-DDTHH:MM:SS` (ISO 8601 without a zone designator).
    pub fn iso8601(&self) -> String {
        format!("{}T{}", self.date(), self.time())
    }

    /// `YYYY-MM-DD HH:MM:SS` (the ISO 8601 fields, space-separated, for people).
    pub fn date_time(&self) -> String {
        format!("{} {}", self.date(), self.time())
    }

    /// `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `HH:MM:SS`.
    pub fn time(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }
}

/// Formats epoch milliseconds as a UTC ISO-8601 timestamp `YYYY-MM-DDTHH:MM:SSZ` (whole seconds).
pub fn iso8601_utc_ms(ms: i64) -> String {
    format!("{}Z", CivilDateTime::from_epoch_ms(ms).iso8601())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates_convert_both_ways() {
        for (days, ymd) in [
            (0, (1970, 1, 1)),
            (-1, (1969, 12, 31)),
            (11_016, (2000, 2, 29)),
            (20_783, (2026, 11, 26)),
            (-719_468, (0, 3, 1)),
            (-719_162, (1, 1, 1)),
        ] {
            assert_eq!(civil_from_days(days), ymd, "{days}");
            assert_eq!(days_from_civil(ymd.0, ymd.1, ymd.2), days, "{ymd:?}");
        }
    }

    #[test]
    fn every_day_of_four_centuries_round_trips_in_order() {
        let mut prev = civil_from_days(-146_097 - 1);
        for days in -146_097..=146_097 {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            assert!((y, m, d) > prev, "{days}");
            assert_eq!(days_from_civil(y, m, d), days);
            prev = (y, m, d);
        }
    }

    #[test]
    fn weekdays_follow_the_epoch_thursday() {
        assert_eq!(Weekday::from_days_since_epoch(0), Weekday::Thursday);
        assert_eq!(Weekday::from_days_since_epoch(-1), Weekday::Wednesday);
        assert_eq!(Weekday::from_days_since_epoch(4), Weekday::Monday);
        assert_eq!(Weekday::from_days_since_epoch(20_783).name(), "Thursday");
    }

    #[test]
    fn instants_format_as_iso_and_for_people() {
        assert_eq!(iso8601_utc_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_utc_ms(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(iso8601_utc_ms(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601_utc_ms(-1), "1969-12-31T23:59:59Z");
        let t = CivilDateTime::from_epoch_secs(1_795_651_200 + 3_723);
        assert_eq!(t.date_time(), "2026-11-26 01:02:03");
        assert_eq!(t.iso8601(), "2026-11-26T01:02:03");
        assert_eq!(t.weekday, Weekday::Thursday);
    }

    #[test]
    fn the_clock_reads_epoch_time() {
        assert!(now_ms() > 1_600_000_000_000);
        assert!((now_secs() - now_ms() / 1000).abs() <= 1);
    }
}
