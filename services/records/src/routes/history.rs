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
use custodian_access::{
    absent_event, Caller, Decision, Interaction, PatientRef, Touched, Visibility,
};
use custodian_fhir::history::{HistoryCursor, HistoryParams};

use super::{
    bundle::{raw, Bundle, Entry, Link, Request, Response},
    http,
    read::version_subject,
};
use crate::{
    access::{hidden, most_restrictive, not_known, refused},
    domain::resource::format_instant,
    error::RecordsError,
    state::AppState,
    store::{self, HistoryFilter, HistoryScope},
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
    security(("smart" = []))
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
    security(("smart" = []))
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
    security(("smart" = []))
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
    params: &HistoryParams,
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
            let subject = version_subject(state, conn, rt, id, &row.current, v, None).await?;
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

fn respond(base: &str, params: &HistoryParams, page: Page) -> Result<HttpResponse, RecordsError> {
    let mut links = vec![Link {
        relation: "self",
        url: params.link(base, params.cursor.as_ref()),
    }];
    if let Some(next) = &page.next {
        links.push(Link {
            relation: "next",
            url: params.link(base, Some(next)),
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
    let params = HistoryParams::of(req)?;
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
    let params = HistoryParams::of(req)?;
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
    let params = HistoryParams::of(req)?;
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
