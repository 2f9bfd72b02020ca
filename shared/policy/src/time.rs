//! FHIR `date` / `dateTime` values as the first and last instant they cover.
//!
//! `2026`, `2026-11` and `2026-11-23` are the whole year, month or day (in UTC: a date carries
//! no zone); a date-time must carry its zone (`Z` or `±hh:mm`) and covers the second (or the
//! fraction) it names.

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// The first and last instant a FHIR `dateTime` covers, or `None` when it is not one.
pub fn instant_range(raw: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let bytes = raw.as_bytes();
    if !raw.is_ascii() {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match bytes.len() {
        4 if digits(raw) => {
            let year: i32 = raw.parse().ok()?;
            let first = NaiveDate::from_ymd_opt(year, 1, 1)?;
            let next = NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?;
            Some(day_span(first, next))
        }
        7 if bytes[4] == b'-' && digits(&raw[..4]) && digits(&raw[5..]) => {
            let year: i32 = raw[..4].parse().ok()?;
            let month: u32 = raw[5..].parse().ok()?;
            let first = NaiveDate::from_ymd_opt(year, month, 1)?;
            let next = if month == 12 {
                NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(year, month + 1, 1)?
            };
            Some(day_span(first, next))
        }
        10 => {
            if !(bytes[4] == b'-'
                && bytes[7] == b'-'
                && digits(&raw[..4])
                && digits(&raw[5..7])
                && digits(&raw[8..]))
            {
                return None;
            }
            let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
            Some(day_span(date, date.succ_opt()?))
        }
        n if n > 10 => {
            // A time needs `T` and a zone; chrono's RFC 3339 parser also takes a space or a
            // lowercase `t`, which FHIR does not.
            if bytes[10] != b'T' || raw.contains(['t', ' ', 'z']) {
                return None;
            }
            if !(raw.ends_with('Z') || raw[19.min(n)..].contains(['+', '-'])) {
                return None;
            }
            let at = DateTime::parse_from_rfc3339(raw).ok()?.with_timezone(&Utc);
            // Without a fraction the value names a whole second.
            let fraction = raw.len() > 19 && bytes[19] == b'.';
            let last = if fraction {
                at
            } else {
                at + Duration::nanoseconds(999_999_999)
            };
            Some((at, last))
        }
        _ => None,
    }
}

fn day_span(first: NaiveDate, next: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = first.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let end = next
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc() - Duration::nanoseconds(1));
    match (start, end) {
        (Some(s), Some(e)) => (s, e),
        // Midnight always exists; never reached.
        _ => (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn partial_dates_cover_their_whole_span() {
        let table = [
            (
                "2026",
                "2026-01-01T00:00:00Z",
                "2026-12-31T23:59:59.999999999Z",
            ),
            (
                "2026-02",
                "2026-02-01T00:00:00Z",
                "2026-02-28T23:59:59.999999999Z",
            ),
            (
                "2024-02",
                "2024-02-01T00:00:00Z",
                "2024-02-29T23:59:59.999999999Z",
            ),
            (
                "2026-12",
                "2026-12-01T00:00:00Z",
                "2026-12-31T23:59:59.999999999Z",
            ),
            (
                "2026-11-23",
                "2026-11-23T00:00:00Z",
                "2026-11-23T23:59:59.999999999Z",
            ),
            (
                "2016-06-23T17:02:33+10:00",
                "2016-06-23T07:02:33Z",
                "2016-06-23T07:02:33.999999999Z",
            ),
            (
                "2016-06-23T17:02:33.5Z",
                "2016-06-23T17:02:33.5Z",
                "2016-06-23T17:02:33.5Z",
            ),
        ];
        for (raw, first, last) in table {
            assert_eq!(instant_range(raw), Some((at(first), at(last))), "{raw}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_fhir_date_time() {
        for raw in [
            "",
            "soon",
            "20261",
            "2026-13",
            "2026-02-30",
            "2026-1-01",
            "2026-11-23T10:00:00",
            "2026-11-23 10:00:00Z",
            "2026-11-23t10:00:00Z",
            "2026-11-23T25:00:00Z",
            "+2026",
            "2026-11-23T10:00Z",
            "é026",
        ] {
            assert_eq!(instant_range(raw), None, "{raw:?}");
        }
    }
}
