//! The parameters of a history interaction (instance, type or system): `_since`, `_at`,
//! `_count` and the keyset `_cursor` of `next` links, the same at every service that keeps
//! versions (records, consent).

use actix_web::HttpRequest;
use chrono::{DateTime, Utc};

use crate::{
    bundle::{page_size, DEFAULT_COUNT},
    dates,
    http::{Handling, Prefer},
    FhirError,
};

/// A position in a history, newest first: pages continue after (older than) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCursor {
    pub last_updated: DateTime<Utc>,
    pub resource_type: String,
    pub resource_id: String,
    pub version: i64,
}

impl HistoryCursor {
    /// The value of `_cursor`.
    pub fn token(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.last_updated.timestamp_micros(),
            self.resource_type,
            self.resource_id,
            self.version
        )
    }

    fn parse(raw: &str) -> Result<Self, FhirError> {
        let invalid = || bad(format!("_cursor {raw:?} is not a cursor this server made"));
        let mut parts = raw.splitn(4, '_');
        let (Some(t), Some(ty), Some(id), Some(v)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        Ok(Self {
            last_updated: t
                .parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_micros)
                .ok_or_else(invalid)?,
            resource_type: ty.to_string(),
            resource_id: id.to_string(),
            version: v.parse().map_err(|_| invalid())?,
        })
    }
}

/// What a history request asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryParams {
    pub count: usize,
    /// `_since`: versions written at or after it.
    pub since: Option<DateTime<Utc>>,
    /// `_at`: versions current at some point in (`current_after`, `written_before`): written
    /// before `written_before`, and not replaced by a version written at or before
    /// `current_after`.
    pub current_after: Option<DateTime<Utc>>,
    pub written_before: Option<DateTime<Utc>>,
    pub cursor: Option<HistoryCursor>,
    /// For the links (without the cursor).
    pub link: Vec<(String, String)>,
}

fn bad(msg: impl Into<String>) -> FhirError {
    FhirError::BadRequest(msg.into())
}

impl HistoryParams {
    /// The parameters of the request's query string; unknown ones are ignored, or a 400 under
    /// `Prefer: handling=strict`.
    pub fn of(req: &HttpRequest) -> Result<Self, FhirError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
        Self::parse(&pairs, Prefer::of(req).handling == Handling::Strict)
    }

    pub fn parse(pairs: &[(String, String)], strict: bool) -> Result<Self, FhirError> {
        let mut p = Self {
            count: DEFAULT_COUNT,
            ..Self::default()
        };
        for (name, raw) in pairs {
            match name.as_str() {
                "_count" => p.count = page_size(raw)?,
                "_since" => {
                    let (start, _) = dates::parse_range(raw)
                        .ok_or_else(|| bad(format!("_since {raw:?} is not an instant")))?;
                    p.since = Some(p.since.map_or(start, |s| s.max(start)));
                }
                "_at" => {
                    let (prefix, value) = match (raw.get(..2), raw.get(2..)) {
                        (Some(prefix), Some(rest))
                            if prefix.bytes().all(|b| b.is_ascii_lowercase()) =>
                        {
                            (prefix, rest)
                        }
                        _ => ("eq", raw.as_str()),
                    };
                    let (start, end) = dates::parse_range(value)
                        .ok_or_else(|| bad(format!("_at {raw:?} is not a date")))?;
                    // Current at some point in [after, before).
                    let (after, before) = match prefix {
                        "eq" => (Some(start), Some(end)),
                        "ge" => (Some(start), None),
                        "gt" => (Some(end), None),
                        "le" => (None, Some(end)),
                        "lt" => (None, Some(start)),
                        other => {
                            return Err(bad(format!(
                                "_at takes the prefixes eq, ge, gt, le and lt, not {other}"
                            )))
                        }
                    };
                    if let Some(a) = after {
                        p.current_after = Some(p.current_after.map_or(a, |x| x.max(a)));
                    }
                    if let Some(b) = before {
                        p.written_before = Some(p.written_before.map_or(b, |x| x.min(b)));
                    }
                }
                "_cursor" => {
                    p.cursor = Some(HistoryCursor::parse(raw)?);
                    continue;
                }
                "_format" | "_pretty" => continue,
                other if strict => {
                    return Err(bad(format!(
                        "the history parameter {other} is not supported (Prefer: handling=strict)"
                    )))
                }
                _ => continue,
            }
            p.link.push((name.clone(), raw.clone()));
        }
        Ok(p)
    }

    /// This history's URL (`url`: the history's own, without a query), from `cursor` on
    /// when given.
    pub fn link(&self, url: &str, cursor: Option<&HistoryCursor>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.link {
            query.append_pair(k, v);
        }
        if let Some(c) = cursor {
            query.append_pair("_cursor", &c.token());
        }
        let query = query.finish();
        if query.is_empty() {
            url.to_string()
        } else {
            format!("{url}?{query}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &[(&str, &str)], strict: bool) -> Result<HistoryParams, FhirError> {
        let pairs: Vec<(String, String)> = q
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        HistoryParams::parse(&pairs, strict)
    }

    #[test]
    fn reads_since_at_count_and_cursors() {
        let p = params(
            &[("_since", "2024-01-01T00:00:00Z"), ("_count", "5000")],
            true,
        )
        .unwrap();
        assert_eq!(p.count, crate::bundle::MAX_COUNT);
        assert!(p.since.is_some());
        let p = params(&[("_at", "2024")], false).unwrap();
        assert!(p.current_after.is_some() && p.written_before.is_some());
        let p = params(&[("_at", "le2024-03")], false).unwrap();
        assert!(p.current_after.is_none() && p.written_before.is_some());
        assert!(params(&[("_at", "sa2024")], false).is_err());
        assert!(params(&[("_since", "soon")], false).is_err());
        assert!(params(&[("colour", "blue")], true).is_err());
        assert!(params(&[("colour", "blue")], false)
            .unwrap()
            .link
            .is_empty());
        let cursor = HistoryCursor {
            last_updated: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            resource_type: "Consent".into(),
            resource_id: "a-b.c".into(),
            version: 3,
        };
        let p = params(&[("_cursor", &cursor.token())], true).unwrap();
        assert_eq!(p.cursor, Some(cursor));
        assert!(params(&[("_cursor", "x")], false).is_err());
    }
}
