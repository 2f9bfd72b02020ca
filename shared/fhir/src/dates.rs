//! FHIR `date`, `dateTime` and `instant` values as the half-open time range their precision
//! covers, as the search specification compares them: `2020` is [2020-01-01, 2021-01-01),
//! `2020-03` the month, `2020-03-04` the day, `...T10:00Z` the minute, `...T10:00:00Z` the
//! second, `...T10:00:00.25Z` that hundredth.
//!
//! A time without a zone is taken as UTC (the specification says the server's zone; ours run
//! in UTC). Any number of fractional digits is accepted, as R4's `(\.[0-9]+)?` allows; the
//! range never gets narrower than a nanosecond.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, SecondsFormat, TimeZone, Utc};

/// [start, end).
pub type Range = (DateTime<Utc>, DateTime<Utc>);

/// A FHIR `instant` with milliseconds, UTC: `2026-11-23T04:22:58.123Z`.
pub fn format_instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now, truncated to milliseconds, so `meta.lastUpdated` and the stored timestamp agree.
pub fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN))
}

/// `YYYY-MM-DD` (ASCII), digits only (chrono alone would take `2026-1-05` or a signed year).
fn parse_day(raw: &str) -> Option<NaiveDate> {
    let shaped = raw.len() == 10
        && is_digits(&raw[..4])
        && &raw[4..5] == "-"
        && is_digits(&raw[5..7])
        && &raw[7..8] == "-"
        && is_digits(&raw[8..]);
    if !shaped {
        return None;
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()
}

/// `Z`, `+hh:mm` or `-hh:mm` at the end of the time, split off; no zone is UTC.
fn split_zone(time: &str) -> Option<(&str, FixedOffset)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, FixedOffset::east_opt(0)?));
    }
    let Some(pos) = time.rfind(['+', '-']) else {
        return Some((time, FixedOffset::east_opt(0)?));
    };
    let (clock, zone) = time.split_at(pos);
    let (h, m) = zone[1..].split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !is_digits(h) || !is_digits(m) {
        return None;
    }
    let seconds = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    Some((clock, FixedOffset::east_opt(sign * seconds)?))
}

/// `hh:mm`, `hh:mm:ss` or `hh:mm:ss.f...`, with the width of the range it names.
fn parse_clock(clock: &str) -> Option<(NaiveTime, Duration)> {
    match clock.len() {
        5 => Some((
            NaiveTime::parse_from_str(clock, "%H:%M").ok()?,
            Duration::minutes(1),
        )),
        8 => Some((
            NaiveTime::parse_from_str(clock, "%H:%M:%S").ok()?,
            Duration::seconds(1),
        )),
        n if n > 9 && &clock[8..9] == "." && is_digits(&clock[9..]) => {
            let places = u32::try_from(n - 9).ok()?.min(9);
            Some((
                NaiveTime::parse_from_str(clock, "%H:%M:%S%.f").ok()?,
                Duration::nanoseconds(10_i64.pow(9 - places)),
            ))
        }
        _ => None,
    }
}

/// Parses a FHIR `date`, `dateTime` or `instant` (and the search forms without seconds or
/// without a zone) into the range its precision covers; `None` if it is not one.
pub fn parse_range(raw: &str) -> Option<Range> {
    // An unencoded `+` in a query string arrives as a space (`...T10:00:00 01:00`).
    let fixed = raw.trim().replace(' ', "+");
    let raw = fixed.as_str();
    // Every valid value is ASCII, which also makes the byte slicing below safe.
    if !raw.is_ascii() {
        return None;
    }
    match raw.len() {
        4 if is_digits(raw) => {
            let year: i32 = raw.parse().ok()?;
            let start = NaiveDate::from_ymd_opt(year, 1, 1)?;
            let end = NaiveDate::from_ymd_opt(year + 1, 1, 1)?;
            return Some((midnight(start), midnight(end)));
        }
        7 if is_digits(&raw[..4]) && &raw[4..5] == "-" && is_digits(&raw[5..]) => {
            let year: i32 = raw[..4].parse().ok()?;
            let month: u32 = raw[5..].parse().ok()?;
            let start = NaiveDate::from_ymd_opt(year, month, 1)?;
            let end = if month == 12 {
                NaiveDate::from_ymd_opt(year + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(year, month + 1, 1)?
            };
            return Some((midnight(start), midnight(end)));
        }
        10 => {
            let start = midnight(parse_day(raw)?);
            return Some((start, start + Duration::days(1)));
        }
        _ => {}
    }
    let (date_part, time_part) = raw.split_once('T')?;
    let day = parse_day(date_part)?;
    let (clock, offset) = split_zone(time_part)?;
    let (time, precision) = parse_clock(clock)?;
    let start = offset
        .from_local_datetime(&day.and_time(time))
        .single()?
        .with_timezone(&Utc);
    Some((start, start + precision))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn partial_dates_cover_their_year_month_or_day() {
        assert_eq!(
            parse_range("2020").unwrap(),
            (at("2020-01-01T00:00:00Z"), at("2021-01-01T00:00:00Z"))
        );
        assert_eq!(
            parse_range("2020-12").unwrap(),
            (at("2020-12-01T00:00:00Z"), at("2021-01-01T00:00:00Z"))
        );
        assert_eq!(
            parse_range("2026-11").unwrap(),
            (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"))
        );
        assert_eq!(
            parse_range("2020-02-29").unwrap(),
            (at("2020-02-29T00:00:00Z"), at("2020-03-01T00:00:00Z"))
        );
        assert_eq!(
            parse_range("2026-02-28").unwrap().1,
            at("2026-03-01T00:00:00Z")
        );
        assert_eq!(parse_range(" 1999 ").unwrap().0, at("1999-01-01T00:00:00Z"));
    }

    #[test]
    fn date_times_cover_their_precision_in_their_zone() {
        assert_eq!(
            parse_range("2013-04-02T09:30:10+01:00").unwrap(),
            (at("2013-04-02T08:30:10Z"), at("2013-04-02T08:30:11Z"))
        );
        assert_eq!(
            parse_range("2015-02-07T13:28:17.239Z").unwrap(),
            (
                at("2015-02-07T13:28:17.239Z"),
                at("2015-02-07T13:28:17.240Z")
            )
        );
        assert_eq!(
            parse_range("2026-11-30T10:00:00.25Z").unwrap(),
            (at("2026-11-30T10:00:00.25Z"), at("2026-11-30T10:00:00.26Z"))
        );
        assert_eq!(
            parse_range("2015-02-07T13:28-05:00").unwrap(),
            (at("2015-02-07T18:28:00Z"), at("2015-02-07T18:29:00Z"))
        );
        assert_eq!(
            parse_range("2013-04-02T09:30:10 01:00"),
            parse_range("2013-04-02T09:30:10+01:00")
        );
        // No zone: UTC.
        assert_eq!(
            parse_range("2026-11-30T10:00:00").unwrap().0,
            at("2026-11-30T10:00:00Z")
        );
    }

    #[test]
    fn fractions_beyond_nanoseconds_are_valid_r4() {
        let (s, e) = parse_range("2026-11-30T10:00:00.123456789Z").unwrap();
        assert_eq!(s, at("2026-11-30T10:00:00.123456789Z"));
        assert_eq!(e - s, Duration::nanoseconds(1));
        let (s, e) = parse_range("2026-11-30T10:00:00.1234567891234Z").unwrap();
        assert_eq!(s, at("2026-11-30T10:00:00.123456789Z"));
        assert_eq!(e - s, Duration::nanoseconds(1));
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "",
            "26",
            "20-1",
            "+202",
            "-202",
            "2026-1",
            "2026-13",
            "2021-02-29",
            "2026-11-31",
            "2026-1-050",
            "+026-11-30",
            "yesterday",
            "2026-11-30T25:00Z",
            "2026-11-30T10Z",
            "2026-11-30T10:00:00+1",
            "2026-11-30T10:00:00+01:0",
            "2026-11-30T10:00:00+1:00",
            "2026-1-30T10:00:00Z",
            "+2026-11",
            "2026-11-30T10:00:00.Z",
            "2026-11-30T10:00:00.1aZ",
            "2026-11-30T10:00:00.+01:00",
            "2026-11-30T10:00:00-",
            "20é-1",
            "2026-11-30T10:00:00.12é",
        ] {
            assert!(parse_range(bad).is_none(), "{bad}");
        }
    }
}
