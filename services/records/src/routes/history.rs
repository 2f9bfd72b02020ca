//! History (Bundle type `history`, newest first): `GET /fhir/{type}/{id}/_history`,
//! `GET /fhir/{type}/_history` and `GET /fhir/_history`, with `_since`, `_at` and `_count`
//! (default 50, at most 1000), paged by a keyset cursor on (lastUpdated, type, id, version)
//! in the `next` link, never an offset. `total` is given only when everything fits in one page
//! (counting every visible version would cost a decision for each).
//!
//! Each version is decided on its own compartment and facts, as a vread decides it: an id
//! re-used for another patient's data never shows the earlier patient's versions to the later
//! one's readers. A type history is first restricted in the query to the compartments the
//! kernel says the caller may see (as a search is); a system history is decided version by
//! version, in bounded batches, so a page can hold fewer than `_count` entries and still have
//! a `next` link. Events as for a search: one per (type, patient) of the page, with what it
//! returned (the instance history records reads, the others searches).
//!
//! An instance history with nothing visible is the 404 of an unknown id. Unknown parameters are
//! ignored, or a 400 with `Prefer: handling=strict`.

use std::collections::BTreeMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use custodian_access::{
    absent_event, Caller, Decision, Interaction, PatientRef, Touched, Visibility,
};
use custodian_fhir::{dates, FhirError};

use super::{
    bundle::{raw, Bundle, Entry, Link, Request, Response},
    http,
    read::version_subject,
};
use crate::{
    access::{hidden, most_restrictive, not_known, refused},
    domain::resource::format_instant,
    error::RecordsError,
    search::{DEFAULT_COUNT, MAX_COUNT},
    state::AppState,
    store::{self, HistoryCursor, HistoryFilter, HistoryScope},
};

/// Versions read per batch, and batches per page at most (a page scans at most
/// `BATCHES * max(count, BATCH)` versions).
const BATCH: usize = 100;
const BATCHES: usize = 10;

/// The history of one resource.
#[utoipa::path(
    get,
    path = "/fhir/{type}/{id}/_history",
    tag = "fhir",
    params(("type" = String, Path), ("id" = String, Path),
        ("_since" = Option<String>, Query, description = "Versions written at or after this instant"),
        ("_at" = Option<String>, Query, description = "Versions current at some point in this time (prefix eq, ge, gt, le, lt)"),
        ("_count" = Option<usize>, Query, description = "Entries per page (default 50, at most 1000)")),
    responses(
        (status = 200, description = "Bundle of type history: the versions the caller may see"),
        (status = 400, description = "A malformed parameter"),
        (status = 404, description = "Unknown resource, or none of its versions visible")
    ),
    security(("bearer" = []))
)]
pub async fn history(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_type, raw_id) = path.into_inner();
    let result = instance(&req, &raw_type, &raw_id, &caller, &state).await;
    super::observe(&state, "history", &raw_type, &result);
    result
}

/// The history of every resource of one type.
#[utoipa::path(
    get,
    path = "/fhir/{type}/_history",
    tag = "fhir",
    params(("type" = String, Path),
        ("_since" = Option<String>, Query), ("_at" = Option<String>, Query), ("_count" = Option<usize>, Query)),
    responses(
        (status = 200, description = "Bundle of type history, newest first, with a next link"),
        (status = 400, description = "A malformed parameter"),
        (status = 403, description = "The caller may not search this type")
    ),
    security(("bearer" = []))
)]
pub async fn type_history(
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let result = of_type(&req, &path, &caller, &state).await;
    super::observe(&state, "history-type", &path, &result);
    result
}

/// The history of every resource.
#[utoipa::path(
    get,
    path = "/fhir/_history",
    tag = "fhir",
    params(("_since" = Option<String>, Query), ("_at" = Option<String>, Query), ("_count" = Option<usize>, Query)),
    responses(
        (status = 200, description = "Bundle of type history, newest first, with a next link"),
        (status = 400, description = "A malformed parameter")
    ),
    security(("bearer" = []))
)]
pub async fn system_history(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let result = system(&req, &caller, &state).await;
    super::observe(&state, "history-system", "Bundle", &result);
    result
}

/// The parameters of a history request.
#[derive(Debug, Clone, Default, PartialEq)]
struct Params {
    count: usize,
    since: Option<DateTime<Utc>>,
    current_after: Option<DateTime<Utc>>,
    written_before: Option<DateTime<Utc>>,
    cursor: Option<HistoryCursor>,
    /// For the links (without the cursor).
    link: Vec<(String, String)>,
}

fn bad(msg: impl Into<String>) -> FhirError {
    FhirError::BadRequest(msg.into())
}

/// `Prefer: handling=strict`.
fn strict(req: &HttpRequest) -> bool {
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|p| p.trim().eq_ignore_ascii_case("handling=strict"))
}

fn encode_cursor(c: &HistoryCursor) -> String {
    format!(
        "{}_{}_{}_{}",
        c.last_updated.timestamp_micros(),
        c.resource_type,
        c.resource_id,
        c.version
    )
}

fn decode_cursor(raw: &str) -> Result<HistoryCursor, FhirError> {
    let invalid = || bad(format!("_cursor {raw:?} is not a cursor this server made"));
    let mut parts = raw.splitn(4, '_');
    let (Some(t), Some(ty), Some(id), Some(v)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    Ok(HistoryCursor {
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

fn parse_params(pairs: &[(String, String)], strict: bool) -> Result<Params, FhirError> {
    let mut p = Params {
        count: DEFAULT_COUNT,
        ..Params::default()
    };
    for (name, raw) in pairs {
        match name.as_str() {
            "_count" => {
                p.count = raw
                    .parse::<usize>()
                    .map_err(|_| bad("_count must be a non-negative integer"))?
                    .min(MAX_COUNT);
            }
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
                p.cursor = Some(decode_cursor(raw)?);
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

fn params_of(req: &HttpRequest) -> Result<Params, FhirError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    parse_params(&pairs, strict(req))
}

fn link(base: &str, params: &[(String, String)], cursor: Option<&HistoryCursor>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    if let Some(c) = cursor {
        s.append_pair("_cursor", &encode_cursor(c));
    }
    let query = s.finish();
    if query.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{query}")
    }
}

/// Per (type, patient) of a page: the decision, what was returned, the most restrictive label.
type Tally = BTreeMap<(String, Option<PatientRef>), (Decision, u32, Option<String>)>;

/// One page of history.
struct Page {
    entries: Vec<Entry>,
    tally: Tally,
    last_denial: Option<Decision>,
    /// Where the next page starts, when there may be more.
    next: Option<HistoryCursor>,
}

/// Reads versions matching `filter` from `params.cursor` on, deciding each, until `count` are
/// visible or the scan budget is spent.
async fn page(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    interaction: Interaction,
    mut filter: HistoryFilter,
    params: &Params,
) -> Result<Page, RecordsError> {
    let mut page = Page {
        entries: Vec::new(),
        tally: Tally::new(),
        last_denial: None,
        next: None,
    };
    if params.count == 0 {
        return Ok(page);
    }
    filter.since = params.since;
    filter.current_after = params.current_after;
    filter.written_before = params.written_before;
    filter.cursor = params.cursor.clone();
    let batch = params.count.max(BATCH) + 1;
    for _ in 0..BATCHES {
        let rows = store::history_page(conn, &state.cipher, &filter, batch).await?;
        let exhausted = rows.len() < batch;
        for row in rows {
            let position = HistoryCursor {
                last_updated: row.version.last_updated,
                resource_type: row.resource_type.clone(),
                resource_id: row.resource_id.clone(),
                version: row.version.version,
            };
            if page.entries.len() == params.count {
                // A further version exists: the next page starts after the last one decided.
                page.next = filter.cursor.clone();
                return Ok(page);
            }
            let (rt, id, v) = (&row.resource_type, &row.resource_id, &row.version);
            let subject = version_subject(state, conn, rt, id, &row.current, v).await?;
            let decision = state
                .kernel
                .decide(caller, interaction, &subject.target())?;
            let slot = page
                .tally
                .entry((rt.clone(), subject.patient.clone()))
                .or_insert_with(|| (decision.clone(), 0, None));
            filter.cursor = Some(position);
            if !decision.permitted() {
                // Left out; the compartment's denial is what the ledger records for it.
                if slot.0.permitted() {
                    slot.0 = decision.clone();
                }
                page.last_denial = Some(decision);
                continue;
            }
            if slot.0.permitted() {
                slot.1 += u32::from(v.json.is_some());
                slot.2 = most_restrictive(slot.2.take(), subject.confidentiality.as_deref());
            }
            let (method, status, url) = match (&v.json, v.version) {
                (None, _) => ("DELETE", "204", format!("{rt}/{id}")),
                (Some(_), 1) => ("POST", "201", rt.to_string()),
                (Some(_), _) => ("PUT", "200", format!("{rt}/{id}")),
            };
            page.entries.push(Entry {
                full_url: state.full_url(rt, id),
                resource: v.json.clone().and_then(raw),
                search: None,
                request: Some(Request { method, url }),
                response: Some(Response {
                    status: status.to_string(),
                    etag: http::etag(v.version),
                    last_modified: format_instant(v.last_updated),
                }),
            });
        }
        if exhausted {
            return Ok(page);
        }
    }
    // The scan budget is spent: the client goes on from here.
    page.next = filter.cursor.clone();
    Ok(page)
}

fn events(
    caller: &Caller,
    interaction: Interaction,
    tally: &Tally,
) -> Vec<custodian_events::AccessEvent> {
    tally
        .iter()
        .map(|((rt, patient), (decision, count, confidentiality))| {
            decision.event(
                caller,
                interaction,
                Touched::new(rt, patient.as_ref())
                    .count(*count)
                    .confidentiality(confidentiality.as_deref()),
            )
        })
        .collect()
}

fn respond(base: &str, params: &Params, page: Page) -> Result<HttpResponse, RecordsError> {
    let mut links = vec![Link {
        relation: "self",
        url: link(base, &params.link, params.cursor.as_ref()),
    }];
    if let Some(next) = &page.next {
        links.push(Link {
            relation: "next",
            url: link(base, &params.link, Some(next)),
        });
    }
    // The total is known (and given) when everything fits in this one page.
    let bundle = if page.next.is_none() && params.cursor.is_none() && params.count > 0 {
        Bundle::new("history", page.entries.len(), links, page.entries)
    } else {
        Bundle::new("history", 0, links, page.entries).without_total()
    };
    let body = serde_json::to_string(&bundle).map_err(|e| RecordsError::Internal(e.to_string()))?;
    Ok(http::fhir(StatusCode::OK).body(body))
}

async fn instance(
    req: &HttpRequest,
    raw_type: &str,
    raw_id: &str,
    caller: &Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let id = http::parse_id(raw_id)?;
    let params = params_of(req)?;
    let (rt, id) = (resource_type.as_str(), id.as_str());
    let mut conn = state.connection().await?;
    if store::current(&mut conn, rt, id, false).await?.is_none() {
        state
            .record(&mut conn, &[absent_event(caller, Interaction::Read, rt)])
            .await?;
        return Err(not_known(rt, id).into());
    }
    let filter = HistoryFilter {
        resource_type: Some(rt.to_string()),
        resource_id: Some(id.to_string()),
        ..HistoryFilter::default()
    };
    let page = page(state, &mut conn, caller, Interaction::Read, filter, &params).await?;
    state
        .record(&mut conn, &events(caller, Interaction::Read, &page.tally))
        .await?;
    let unfiltered = params.cursor.is_none()
        && params.since.is_none()
        && params.current_after.is_none()
        && params.written_before.is_none()
        && params.count > 0;
    if page.entries.is_empty() && unfiltered {
        return Err(match page.last_denial {
            Some(decision) => hidden(state, &decision, rt, id),
            None => not_known(rt, id),
        }
        .into());
    }
    respond(
        &format!("{}/_history", state.full_url(rt, id)),
        &params,
        page,
    )
}

async fn of_type(
    req: &HttpRequest,
    raw_type: &str,
    caller: &Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let rt = resource_type.as_str();
    let params = params_of(req)?;
    let mut conn = state.connection().await?;
    let (scope, decision) = match state.kernel.visibility(caller, rt)? {
        Visibility::Denied(decision) => {
            let event = decision.event(caller, Interaction::Search, Touched::new(rt, None));
            state.record(&mut conn, &[event]).await?;
            return Err(refused(state, &decision).into());
        }
        Visibility::Visible { scope, decision } => (scope, decision),
    };
    let filter = HistoryFilter {
        resource_type: Some(rt.to_string()),
        scope: Some(HistoryScope {
            unowned: scope.unowned,
            // Conditional compartments are listed and then decided version by version.
            included: scope
                .included
                .iter()
                .chain(scope.conditional.iter().map(|c| &c.patient))
                .map(|p| p.as_str().to_string())
                .collect(),
            custodian: scope.custodian.as_ref().map(|c| c.as_str().to_string()),
            excluded: scope
                .excluded
                .iter()
                .map(|p| p.as_str().to_string())
                .collect(),
        }),
        ..HistoryFilter::default()
    };
    let page = page(
        state,
        &mut conn,
        caller,
        Interaction::Search,
        filter,
        &params,
    )
    .await?;
    let mut recorded = events(caller, Interaction::Search, &page.tally);
    if !page.tally.values().any(|(d, n, _)| d.permitted() && *n > 0) {
        recorded.push(decision.event(caller, Interaction::Search, Touched::new(rt, None)));
    }
    state.record(&mut conn, &recorded).await?;
    respond(
        &format!("{}/fhir/{rt}/_history", state.public_url),
        &params,
        page,
    )
}

async fn system(
    req: &HttpRequest,
    caller: &Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let params = params_of(req)?;
    let mut conn = state.connection().await?;
    let page = page(
        state,
        &mut conn,
        caller,
        Interaction::Search,
        HistoryFilter::default(),
        &params,
    )
    .await?;
    let mut recorded = events(caller, Interaction::Search, &page.tally);
    if recorded.is_empty() {
        // Nothing was there to decide: the access is recorded all the same.
        recorded.push(absent_event(caller, Interaction::Search, "Resource"));
    }
    state.record(&mut conn, &recorded).await?;
    respond(
        &format!("{}/fhir/_history", state.public_url),
        &params,
        page,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &[(&str, &str)], strict: bool) -> Result<Params, FhirError> {
        let pairs: Vec<(String, String)> = q
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_params(&pairs, strict)
    }

    #[test]
    fn parses_history_parameters() {
        let p = params(
            &[("_count", "5000"), ("_since", "2024-01-02T03:04:05Z")],
            false,
        )
        .unwrap();
        assert_eq!(p.count, MAX_COUNT);
        assert_eq!(
            p.since.map(|s| s.to_rfc3339()),
            Some("2024-01-02T03:04:05+00:00".into())
        );
        let p = params(&[("_at", "2024")], false).unwrap();
        assert!(p.current_after.is_some() && p.written_before.is_some());
        let p = params(&[("_at", "le2024-03")], false).unwrap();
        assert!(p.current_after.is_none() && p.written_before.is_some());
        assert!(params(&[("_at", "sa2024")], false).is_err());
        assert!(params(&[("_since", "yesterday")], false).is_err());
        assert!(params(&[("_count", "-1")], false).is_err());
        assert!(params(&[("_list", "x")], false).is_ok());
        assert!(params(&[("_list", "x")], true).is_err());
        assert!(params(&[("_cursor", "x")], false).is_err());
    }

    #[test]
    fn cursors_round_trip() {
        let c = HistoryCursor {
            last_updated: DateTime::from_timestamp_micros(1_700_000_000_123_000).unwrap(),
            resource_type: "Observation".into(),
            resource_id: "a-b.c".into(),
            version: 3,
        };
        assert_eq!(decode_cursor(&encode_cursor(&c)).unwrap(), c);
    }
}
