//! The search parameters of `GET /fhir/AuditEvent`, parsed once into typed filters.
//!
//! Supported, after the R4 `AuditEvent` SearchParameters: `patient` (reference), `agent`
//! (reference to the user: `Practitioner/<id>`, `User/<id>` or the bare user id), `date`
//! (`AuditEvent.recorded`, with the eq ne lt gt le ge sa eb prefixes and the value's precision:
//! `2026-11` is the whole month), `action` and `outcome` (tokens), plus `_count`, `_sort`
//! (`date`, `-date`) and `_cursor` (the keyset of the next page). A comma inside a value is an
//! OR; repeating a parameter is an AND. Unknown parameters are refused under
//! `Prefer: handling=strict` and otherwise ignored and reported, as HAPI FHIR does.

use chrono::{DateTime, Utc};
use custodian_access::{PatientRef, PractitionerRef};
use custodian_events::{AccessAction, AccessOutcome};
use custodian_fhir::{
    bundle::{page_size, Ignored},
    dates::parse_range,
    FhirError,
};

use super::audit_event::{FhirAction, FhirOutcome};

/// The FHIR REST core's default page size.
const DEFAULT_COUNT: i64 = custodian_fhir::bundle::DEFAULT_COUNT as i64;

const ACTION_SYSTEM: &str = "http://hl7.org/fhir/audit-event-action";
const OUTCOME_SYSTEM: &str = "http://hl7.org/fhir/audit-event-outcome";
/// Accepted and without effect (answers are always JSON, totals are not counted).
const IGNORED: &[&str] = &["_format", "_pretty", "_total"];

pub use custodian_fhir::http::Handling;

/// Whom `agent` names: a user by id (the token's `sub`) or by their practitioner reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentRef {
    User(String),
    Practitioner(PractitionerRef),
}

impl AgentRef {
    pub fn parse(raw: &str) -> Result<Self, FhirError> {
        let bad = || {
            FhirError::BadRequest(format!(
                "agent {:?} is not Practitioner/<id>, User/<id> or a user id",
                raw.chars().take(80).collect::<String>()
            ))
        };
        if raw.starts_with("Practitioner/") {
            return PractitionerRef::parse(raw)
                .map(Self::Practitioner)
                .map_err(|_| bad());
        }
        let id = raw.strip_prefix("User/").unwrap_or(raw);
        if id.is_empty() || id.len() > 256 || id.contains(['/', '|']) || id.trim() != id {
            return Err(bad());
        }
        Ok(Self::User(id.to_string()))
    }
}

/// Which times a `date` parameter keeps: `from <= t < before`, or its complement (`ne`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFilter {
    Within {
        from: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    },
    Outside {
        from: DateTime<Utc>,
        before: DateTime<Utc>,
    },
}

/// The order of the results; every order pages by keyset on the leaf index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Newest appended first (the default).
    IndexDescending,
    /// `_sort=-date`: newest `recorded` first, ties by leaf index.
    DateDescending,
    /// `_sort=date`.
    DateAscending,
}

/// Where the next page starts: strictly after this leaf in the search's order. Date orders
/// carry the leaf's time in the cursor itself, so a cursor never makes the server look up a
/// leaf the caller may not see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    Index(i64),
    Date { time: DateTime<Utc>, index: i64 },
}

impl Cursor {
    /// The cursor after a leaf, for `sort`.
    pub fn after(sort: Sort, index: i64, time: DateTime<Utc>) -> Self {
        match sort {
            Sort::IndexDescending => Self::Index(index),
            Sort::DateDescending | Sort::DateAscending => Self::Date { time, index },
        }
    }

    /// `<index>`, or `<microseconds since 1970>_<index>` for date orders.
    pub fn encode(&self) -> String {
        match self {
            Self::Index(index) => index.to_string(),
            Self::Date { time, index } => format!("{}_{index}", time.timestamp_micros()),
        }
    }

    fn decode(raw: &str, sort: Sort) -> Option<Self> {
        let index = |s: &str| s.parse::<i64>().ok().filter(|n| *n >= 0);
        match (sort, raw.split_once('_')) {
            (Sort::IndexDescending, None) => index(raw).map(Self::Index),
            (Sort::DateDescending | Sort::DateAscending, Some((micros, idx))) => Some(Self::Date {
                time: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
                index: index(idx)?,
            }),
            _ => None,
        }
    }
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSearch {
    /// Each inner list is one parameter occurrence (OR); all must hold (AND).
    pub patients: Vec<Vec<PatientRef>>,
    pub agents: Vec<Vec<AgentRef>>,
    pub times: Vec<TimeFilter>,
    /// Logged actions per occurrence (a code may stand for none, e.g. outcome 12).
    pub actions: Vec<Vec<AccessAction>>,
    pub outcomes: Vec<Vec<AccessOutcome>>,
    pub count: i64,
    pub sort: Sort,
    /// Only entries after the previous page's last.
    pub cursor: Option<Cursor>,
    /// The parameters used, as received, for the self and next links (no `_cursor`).
    pub link_params: Vec<(String, String)>,
    /// Unknown parameters ignored under lenient handling.
    pub ignored: Vec<Ignored>,
}

fn bad(message: impl Into<String>) -> FhirError {
    FhirError::BadRequest(message.into())
}

/// `[system|]code`, checked against the value set's system.
fn token<'a>(name: &str, raw: &'a str, system: &str) -> Result<&'a str, FhirError> {
    match raw.split_once('|') {
        None => Ok(raw),
        Some(("", code)) => Ok(code),
        Some((s, code)) if s == system => Ok(code),
        Some((s, _)) => Err(bad(format!(
            "{name} codes are from {system}, not {:?}",
            s.chars().take(80).collect::<String>()
        ))),
    }
}

impl AuditSearch {
    /// Parses the query's `(name, value)` pairs.
    pub fn parse(
        pairs: impl IntoIterator<Item = (String, String)>,
        handling: Handling,
    ) -> Result<Self, FhirError> {
        let mut search = AuditSearch {
            patients: Vec::new(),
            agents: Vec::new(),
            times: Vec::new(),
            actions: Vec::new(),
            outcomes: Vec::new(),
            count: DEFAULT_COUNT,
            sort: Sort::IndexDescending,
            cursor: None,
            link_params: Vec::new(),
            ignored: Vec::new(),
        };
        let mut cursor = None;
        for (name, value) in pairs {
            let (code, modifier) = match name.split_once(':') {
                Some((c, m)) => (c, Some(m)),
                None => (name.as_str(), None),
            };
            let known = matches!(
                code,
                "patient"
                    | "agent"
                    | "date"
                    | "action"
                    | "outcome"
                    | "_count"
                    | "_sort"
                    | "_cursor"
            ) || IGNORED.contains(&code);
            if !known {
                match handling {
                    Handling::Strict => {
                        return Err(bad(format!(
                            "the search parameter {:?} is not supported on AuditEvent",
                            name.chars().take(80).collect::<String>()
                        )))
                    }
                    Handling::Lenient => {
                        search.ignored.push(Ignored {
                            name: name.chars().take(80).collect(),
                            reason: "not a search parameter of AuditEvent here".into(),
                        });
                        continue;
                    }
                }
            }
            if let Some(m) = modifier {
                return Err(bad(format!("the modifier :{m} is not supported on {code}")));
            }
            // An empty value says nothing: ignored, as servers commonly do.
            if value.is_empty() || IGNORED.contains(&code) {
                continue;
            }
            let values = || value.split(',').map(str::trim);
            match code {
                "patient" => search.patients.push(
                    values()
                        .map(|v| PatientRef::parse_lenient(v).map_err(|e| bad(e.to_string())))
                        .collect::<Result<_, _>>()?,
                ),
                "agent" => search
                    .agents
                    .push(values().map(AgentRef::parse).collect::<Result<_, _>>()?),
                "date" => {
                    if value.contains(',') {
                        return Err(bad("date takes one value per parameter"));
                    }
                    search.times.push(parse_date_filter(&value)?);
                }
                "action" => {
                    let mut actions = Vec::new();
                    for v in values() {
                        let code = token("action", v, ACTION_SYSTEM)?;
                        let fhir = FhirAction::parse(code).ok_or_else(|| {
                            bad(format!("action must be C, R, U, D or E, not {code:?}"))
                        })?;
                        actions.extend(fhir.actions());
                    }
                    search.actions.push(actions);
                }
                "outcome" => {
                    let mut outcomes = Vec::new();
                    for v in values() {
                        let code = token("outcome", v, OUTCOME_SYSTEM)?;
                        let fhir = FhirOutcome::parse(code).ok_or_else(|| {
                            bad(format!("outcome must be 0, 4, 8 or 12, not {code:?}"))
                        })?;
                        outcomes.extend(fhir.outcomes());
                    }
                    search.outcomes.push(outcomes);
                }
                "_count" => {
                    search.count = i64::try_from(page_size(&value)?).unwrap_or(DEFAULT_COUNT);
                }
                "_sort" => {
                    search.sort = match value.as_str() {
                        "date" => Sort::DateAscending,
                        "-date" => Sort::DateDescending,
                        other => {
                            return Err(bad(format!(
                                "AuditEvent sorts by date or -date only, not {:?}",
                                other.chars().take(80).collect::<String>()
                            )))
                        }
                    };
                }
                "_cursor" => {
                    // Decoded once the order is known (`_sort` may come after it).
                    cursor = Some(value);
                    continue;
                }
                _ => {}
            }
            search.link_params.push((name, value));
        }
        if let Some(raw) = cursor {
            search.cursor = Some(
                Cursor::decode(&raw, search.sort)
                    .ok_or_else(|| bad("_cursor is not one this server gave for this order"))?,
            );
        }
        Ok(search)
    }
}

/// A `date` value with its prefix.
fn parse_date_filter(raw: &str) -> Result<TimeFilter, FhirError> {
    let (prefix, date) = match raw.get(..2) {
        Some(p) if p.bytes().all(|b| b.is_ascii_lowercase()) => (p, &raw[2..]),
        _ => ("eq", raw),
    };
    let (from, before) = parse_range(date).ok_or_else(|| {
        bad(format!(
            "date {:?} is not a FHIR date, dateTime or instant",
            date.chars().take(80).collect::<String>()
        ))
    })?;
    // `recorded` is an instant: a point. sa/eb compare the point with the range's ends
    // exactly as gt/lt do.
    let within = |from, before| TimeFilter::Within { from, before };
    Ok(match prefix {
        "eq" => within(Some(from), Some(before)),
        "ne" => TimeFilter::Outside { from, before },
        "lt" | "eb" => within(None, Some(from)),
        "le" => within(None, Some(before)),
        "gt" | "sa" => within(Some(before), None),
        "ge" => within(Some(from), None),
        "ap" => return Err(bad("the date prefix ap is not supported")),
        other => return Err(bad(format!("{other:?} is not a date prefix"))),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn parse(query: &[(&str, &str)]) -> Result<AuditSearch, FhirError> {
        AuditSearch::parse(
            query.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            Handling::Lenient,
        )
    }

    #[test]
    fn prefixes_compare_the_point_with_the_range() {
        let (from, before) = (t("2026-11-01T00:00:00Z"), t("2026-12-01T00:00:00Z"));
        let cases = [
            (
                "2026-11",
                TimeFilter::Within {
                    from: Some(from),
                    before: Some(before),
                },
            ),
            (
                "eq2026-11",
                TimeFilter::Within {
                    from: Some(from),
                    before: Some(before),
                },
            ),
            ("ne2026-11", TimeFilter::Outside { from, before }),
            (
                "lt2026-11",
                TimeFilter::Within {
                    from: None,
                    before: Some(from),
                },
            ),
            (
                "eb2026-11",
                TimeFilter::Within {
                    from: None,
                    before: Some(from),
                },
            ),
            (
                "le2026-11",
                TimeFilter::Within {
                    from: None,
                    before: Some(before),
                },
            ),
            (
                "gt2026-11",
                TimeFilter::Within {
                    from: Some(before),
                    before: None,
                },
            ),
            (
                "sa2026-11",
                TimeFilter::Within {
                    from: Some(before),
                    before: None,
                },
            ),
            (
                "ge2026-11",
                TimeFilter::Within {
                    from: Some(from),
                    before: None,
                },
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_date_filter(raw).unwrap(), want, "{raw}");
        }
        for bad in ["ap2026-11", "xx2026-11", "gt", "gtyesterday"] {
            assert!(parse_date_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parameters_become_typed_filters() {
        let s = parse(&[
            ("patient", "alice,Patient/bob"),
            ("agent", "Practitioner/p1,u1"),
            ("agent", "User/u2"),
            ("action", "R,http://hl7.org/fhir/audit-event-action|C"),
            ("outcome", "4"),
            ("outcome", "12"),
            ("date", "ge2026-11"),
            ("_count", "10"),
            ("_sort", "-date"),
            ("_cursor", "1764583200123456_17"),
            ("_format", "json"),
        ])
        .unwrap();
        assert_eq!(
            s.patients,
            vec![vec![
                PatientRef::parse("Patient/alice").unwrap(),
                PatientRef::parse("Patient/bob").unwrap()
            ]]
        );
        assert_eq!(
            s.agents,
            vec![
                vec![
                    AgentRef::Practitioner(PractitionerRef::parse("Practitioner/p1").unwrap()),
                    AgentRef::User("u1".into())
                ],
                vec![AgentRef::User("u2".into())]
            ]
        );
        assert_eq!(
            s.actions,
            vec![vec![AccessAction::Read, AccessAction::Create]]
        );
        assert_eq!(s.outcomes, vec![vec![AccessOutcome::Deny], vec![]]);
        assert_eq!(
            (s.count, s.sort, s.cursor),
            (
                10,
                Sort::DateDescending,
                Some(Cursor::Date {
                    time: t("2025-12-01T10:00:00.123456Z"),
                    index: 17
                })
            )
        );
        assert_eq!(s.link_params.len(), 9, "{:?}", s.link_params);
        assert!(s.ignored.is_empty());
    }

    #[test]
    fn bad_input_is_refused() {
        for query in [
            [("patient", "Practitioner/x")],
            [("patient", "a b")],
            [("agent", "Organization/x")],
            [("action", "X")],
            [("action", "r")],
            [("action", "http://other|R")],
            [("outcome", "1")],
            [("date", "2026-13")],
            [("date", "ge2026-11,le2026-12")],
            [("_count", "-1")],
            [("_count", "ten")],
            [("_sort", "_id")],
            [("_cursor", "-1")],
            [("_cursor", "1764583200123456_17")],
            [("_cursor", "x_17")],
            [("patient:missing", "true")],
        ] {
            assert!(
                matches!(parse(&query), Err(FhirError::BadRequest(_))),
                "{query:?}"
            );
        }
    }

    #[test]
    fn cursors_round_trip_in_their_order() {
        let time = t("2026-11-30T10:00:00.123456Z");
        for sort in [
            Sort::IndexDescending,
            Sort::DateAscending,
            Sort::DateDescending,
        ] {
            let cursor = Cursor::after(sort, 42, time);
            assert_eq!(Cursor::decode(&cursor.encode(), sort), Some(cursor));
        }
        assert_eq!(Cursor::decode("42", Sort::DateAscending), None);
        assert_eq!(Cursor::decode("1_42", Sort::IndexDescending), None);
    }

    #[test]
    fn unknown_parameters_follow_the_handling() {
        let pairs = || vec![("entity-type".to_string(), "2".to_string())];
        let lenient = AuditSearch::parse(pairs(), Handling::Lenient).unwrap();
        assert_eq!(lenient.ignored[0].name, "entity-type");
        assert!(lenient.link_params.is_empty());
        assert!(AuditSearch::parse(pairs(), Handling::Strict).is_err());
    }
}
