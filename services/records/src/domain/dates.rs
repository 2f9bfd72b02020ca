//! FHIR dates as half-open time ranges: `2020` is [2020-01-01, 2021-01-01), `2020-03-04` the
//! whole day, `2020-03-04T10:00:00Z` that second. Dates without a time zone are taken as UTC.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};

/// [start, end).
pub type Range = (DateTime<Utc>, DateTime<Utc>);

fn utc(naive: NaiveDateTime) -> DateTime<Utc> {
    Utc.from_utc_datetime(&naive)
}

fn next_month(year: i32, month: u32) -> Option<NaiveDate> {
    if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
}

/// Parses a FHIR `date`, `dateTime` or `instant` (and the search forms without seconds).
pub fn parse_range(raw: &str) -> Option<Range> {
    // An unencoded `+` in a query string arrives as a space (`...T10:00:00 01:00`).
    let fixed = raw.trim().replace(' ', "+");
    let raw = fixed.as_str();
    if raw.len() == 4 {
        let year: i32 = raw.parse().ok()?;
        let start = NaiveDate::from_ymd_opt(year, 1, 1)?;
        let end = NaiveDate::from_ymd_opt(year + 1, 1, 1)?;
        return Some((
            utc(start.and_time(NaiveTime::MIN)),
            utc(end.and_time(NaiveTime::MIN)),
        ));
    }
    if raw.len() == 7 {
        let year: i32 = raw.get(0..4)?.parse().ok()?;
        let month: u32 = raw.get(5..7)?.parse().ok()?;
        if raw.as_bytes()[4] != b'-' {
            return None;
        }
        let start = NaiveDate::from_ymd_opt(year, month, 1)?;
        let end = next_month(year, month)?;
        return Some((
            utc(start.and_time(NaiveTime::MIN)),
            utc(end.and_time(NaiveTime::MIN)),
        ));
    }
    if raw.len() == 10 {
        let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
        let start = utc(day.and_time(NaiveTime::MIN));
        return Some((start, start + Duration::days(1)));
    }
    let (date_part, time_part) = raw.split_once('T')?;
    let day = NaiveDate::parse_from_str(date_part, "%Y-%m-%d").ok()?;
    // Split off the zone.
    let (clock, zone) = if let Some(stripped) = time_part.strip_suffix('Z') {
        (stripped, Some(FixedOffset::east_opt(0)?))
    } else if let Some(pos) = time_part.rfind(['+', '-']) {
        let (c, z) = time_part.split_at(pos);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (h, m) = z[1..].split_once(':')?;
        let secs = sign * (h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60);
        (c, Some(FixedOffset::east_opt(secs)?))
    } else {
        (time_part, None)
    };
    let (time, precision) = match clock.len() {
        5 => (
            NaiveTime::parse_from_str(clock, "%H:%M").ok()?,
            Duration::minutes(1),
        ),
        8 => (
            NaiveTime::parse_from_str(clock, "%H:%M:%S").ok()?,
            Duration::seconds(1),
        ),
        n if n > 9 && clock.as_bytes()[8] == b'.' => {
            let digits = (n - 9) as u32;
            let t = NaiveTime::parse_from_str(clock, "%H:%M:%S%.f").ok()?;
            let step = Duration::nanoseconds(10_i64.pow(9u32.saturating_sub(digits.min(9))));
            (t, step)
        }
        _ => return None,
    };
    let naive = day.and_time(time);
    let start = match zone {
        Some(offset) => offset
            .from_local_datetime(&naive)
            .single()?
            .with_timezone(&Utc),
        None => utc(naive),
    };
    Some((start, start + precision))
}

/// The year of a range's start (for tests and logs).
pub fn year_of(range: &Range) -> i32 {
    range.0.year()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn partial_dates() {
        assert_eq!(
            parse_range("2020").unwrap(),
            (at("2020-01-01T00:00:00Z"), at("2021-01-01T00:00:00Z"))
        );
        assert_eq!(
            parse_range("2020-12").unwrap(),
            (at("2020-12-01T00:00:00Z"), at("2021-01-01T00:00:00Z"))
        );
        assert_eq!(
            parse_range("2020-02-29").unwrap(),
            (at("2020-02-29T00:00:00Z"), at("2020-03-01T00:00:00Z"))
        );
        assert!(parse_range("2021-02-29").is_none());
        assert!(parse_range("20-1").is_none());
        assert!(parse_range("yesterday").is_none());
    }

    #[test]
    fn date_times_with_zones() {
        let (s, e) = parse_range("2013-04-02T09:30:10+01:00").unwrap();
        assert_eq!(s, at("2013-04-02T08:30:10Z"));
        assert_eq!(e, at("2013-04-02T08:30:11Z"));
        let (s, e) = parse_range("2015-02-07T13:28:17.239Z").unwrap();
        assert_eq!(s, at("2015-02-07T13:28:17.239Z"));
        assert_eq!(e, at("2015-02-07T13:28:17.240Z"));
        assert_eq!(
            parse_range("2013-04-02T09:30:10 01:00"),
            parse_range("2013-04-02T09:30:10+01:00")
        );
        let (s, _) = parse_range("2015-02-07T13:28-05:00").unwrap();
        assert_eq!(s, at("2015-02-07T18:28:00Z"));
        assert_eq!(year_of(&parse_range("1999").unwrap()), 1999);
    }
}
