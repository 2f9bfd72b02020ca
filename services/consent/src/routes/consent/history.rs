//! `GET /fhir/Consent/{id}/_history`: every version of a consent, newest first.

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use custodian_access::{Caller, Decision, Interaction, Touched};
use custodian_auth::Role;
use custodian_fhir::{
    history::{HistoryCursor, HistoryParams},
    FHIR_JSON,
};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{existing, known, record, refuse, row_version};
use crate::{
    domain::{
        access::{self, CONSENT},
        resource::{format_instant, named_in, now_millis, shown},
        PatientRef,
    },
    error::ConsentError,
    routes::AppState,
    store,
};

/// The consent's versions as a `history` Bundle: what was consented to, when, and each
/// revocation or deletion. The patient sees every version; an actor, the versions that name it.
#[utoipa::path(
    get,
    path = "/fhir/Consent/{id}/_history",
    tag = "Consent",
    params(("id" = String, Path, description = "The consent's id"),
        ("_since" = Option<String>, Query, description = "Versions written at or after this instant"),
        ("_at" = Option<String>, Query, description = "Versions current at some point in this time (prefix eq, ge, gt, le, lt)"),
        ("_count" = Option<usize>, Query, description = "Entries per page (default 50, at most 1000)")),
    responses(
        (status = 200, description = "A history Bundle, newest version first", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 404, description = "Not known, or no version of it is the caller's to see", body = Object, content_type = "application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn history(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsentError> {
    let caller = known(&state, caller);
    let interaction = Interaction::Read;
    let (id, current, patient) = existing(&state, &caller, interaction, &path).await?;
    let consent = format!("Consent/{id}");
    let params = HistoryParams::of(&req)?;
    let mut conn = state.pool.get().await?;
    let all = store::history(&mut conn, id).await?;
    drop(conn);
    // (version, written) of every version, newest first: when each was replaced.
    let all_times: Vec<(i64, DateTime<Utc>)> =
        all.iter().map(|r| (r.version_id, r.last_updated)).collect();
    // Each version is shown to those it names (the patient sees them all).
    let mut decision: Option<Decision> = None;
    let mut versions = Vec::with_capacity(all.len());
    for row in all {
        let named = if caller.role() == Role::Patient {
            Vec::new()
        } else {
            named_in(&row.resource)
        };
        let seen = access::see(&caller, interaction, &consent, &patient, &named);
        if seen.permitted() {
            versions.push(row);
            decision.get_or_insert(seen);
        }
    }
    let Some(decision) = decision else {
        let refused = access::see(&caller, interaction, &consent, &patient, &current.actors);
        let error = ConsentError::not_found(&path);
        return Err(refuse(
            &state,
            &caller,
            interaction,
            &refused,
            Some(&patient),
            error,
        )
        .await);
    };
    // The window asked for, over what the caller may see (newest first).
    let successor: HashMap<i64, DateTime<Utc>> = {
        let mut newer: Option<DateTime<Utc>> = None;
        let mut map = HashMap::new();
        for row in &all_times {
            if let Some(t) = newer {
                map.insert(row.0, t);
            }
            newer = Some(row.1);
        }
        map
    };
    let in_window = |row: &store::HistoryRow| {
        params.since.is_none_or(|s| row.last_updated >= s)
            && params.written_before.is_none_or(|b| row.last_updated < b)
            && params
                .current_after
                .is_none_or(|a| successor.get(&row.version_id).is_none_or(|next| *next > a))
            && params
                .cursor
                .as_ref()
                .is_none_or(|c| row.version_id < c.version)
    };
    let newest_seen = versions
        .first()
        .map_or(current.last_updated, |v| v.last_updated);
    let mut listed: Vec<store::HistoryRow> = versions.into_iter().filter(in_window).collect();
    let next = (listed.len() > params.count).then(|| {
        listed.truncate(params.count);
        listed
            .last()
            .map(|row| cursor_of(row.id, row.version_id, row.last_updated))
    });
    let base = &state.public_url;
    let view = access::view(&caller);
    let mut entries = Vec::with_capacity(listed.len());
    for row in &listed {
        entries.push(entry(
            base,
            row.id,
            row.version_id,
            row.deleted,
            row.last_updated,
            &row.resource,
            &view,
        )?);
    }
    let returned = u32::try_from(entries.len()).unwrap_or(u32::MAX);
    let touched = Touched::new(CONSENT, Some(&patient)).count(returned);
    record(&state, &[decision.event(&caller, interaction, touched)]).await?;
    let url = format!("{base}/fhir/Consent/{id}/_history");
    let body = bundle(&url, &params, entries, next.flatten())?;
    Ok(HttpResponse::Ok()
        .content_type(FHIR_JSON)
        .insert_header((
            actix_web::http::header::LAST_MODIFIED,
            custodian_fhir::http::http_date(newest_seen),
        ))
        .body(body))
}

/// The `_cursor` after a version.
fn cursor_of(id: Uuid, version: i64, last_updated: DateTime<Utc>) -> HistoryCursor {
    HistoryCursor {
        last_updated,
        resource_type: CONSENT.into(),
        resource_id: id.to_string(),
        version,
    }
}

/// A history entry: the version as the caller may see it, or its deletion.
fn entry(
    base: &str,
    id: Uuid,
    version_id: i64,
    deleted: bool,
    last_updated: DateTime<Utc>,
    resource: &Value,
    view: &access::ConsentView,
) -> Result<Value, ConsentError> {
    let version = row_version(version_id)?;
    let (method, url, status) = if deleted {
        ("DELETE", format!("Consent/{id}"), "200 OK")
    } else if version.get() == 1 {
        ("POST", "Consent".to_string(), "201 Created")
    } else {
        ("PUT", format!("Consent/{id}"), "200 OK")
    };
    let mut entry = json!({
        "fullUrl": format!("{base}/fhir/Consent/{id}/_history/{version}"),
        "request": {"method": method, "url": url},
        "response": {"status": status, "etag": version.etag(), "lastModified": format_instant(last_updated)},
    });
    if !deleted {
        entry["resource"] = shown(view, resource);
    }
    Ok(entry)
}

/// The `history` Bundle of a page at `url`: `self` and `next` links; the total only when the
/// whole history fits in this first page.
fn bundle(
    url: &str,
    params: &HistoryParams,
    entries: Vec<Value>,
    next: Option<HistoryCursor>,
) -> Result<String, ConsentError> {
    let mut link =
        vec![json!({"relation": "self", "url": params.link(url, params.cursor.as_ref())})];
    if let Some(next) = &next {
        link.push(json!({"relation": "next", "url": params.link(url, Some(next))}));
    }
    let mut bundle: Value = json!({
        "resourceType": "Bundle",
        "id": Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": format_instant(now_millis())},
        "type": "history",
        "link": link,
        "entry": entries,
    });
    if next.is_none() && params.cursor.is_none() {
        bundle["total"] = json!(bundle["entry"].as_array().map_or(0, Vec::len));
    }
    serde_json::to_string(&bundle).map_err(|e| ConsentError::Unexpected(e.to_string()))
}

/// Versions read per batch, and batches per page at most: a page of a type history ends early
/// (with a `next` link) rather than scan without bound for versions the caller may see.
const BATCH: i64 = 100;
const BATCHES: usize = 10;

/// The history of every consent the caller may see: her own, or the versions that name the
/// caller, newest first, paged by cursor.
#[utoipa::path(
    get,
    path = "/fhir/Consent/_history",
    tag = "Consent",
    params(
        ("_since" = Option<String>, Query, description = "Versions written at or after this instant"),
        ("_at" = Option<String>, Query, description = "Versions current at some point in this time (prefix eq, ge, gt, le, lt)"),
        ("_count" = Option<usize>, Query, description = "Entries per page (default 50, at most 1000)")),
    responses(
        (status = 200, description = "A history Bundle, newest version first, with a next link", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "A malformed parameter", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn type_history(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsentError> {
    let caller = known(&state, caller);
    let interaction = Interaction::Search;
    let params = HistoryParams::of(&req)?;
    let (visible, decision) = match access::search(&caller, None) {
        Ok(found) => found,
        Err(refused) => {
            let error = ConsentError::forbidden(refused.explanation.clone());
            return Err(refuse(&state, &caller, interaction, &refused, None, error).await);
        }
    };
    let mut window = store::HistoryWindow {
        since: params.since,
        current_after: params.current_after,
        written_before: params.written_before,
        after: match &params.cursor {
            Some(c) => Some((
                c.last_updated,
                Uuid::parse_str(&c.resource_id).map_err(|_| {
                    ConsentError::bad_request("_cursor is not a cursor this server made")
                })?,
                c.version,
            )),
            None => None,
        },
    };
    let base = &state.public_url;
    let view = access::view(&caller);
    let mut entries = Vec::new();
    // Per patient: the consents returned (for the events).
    let mut returned: BTreeMap<String, (Decision, Vec<String>)> = BTreeMap::new();
    let mut next = None;
    let mut conn = state.pool.get().await?;
    'pages: for _ in 0..BATCHES {
        if params.count == 0 {
            break;
        }
        let batch = store::history_page(&mut conn, &visible, &window, BATCH).await?;
        let exhausted = batch.len() < usize::try_from(BATCH).unwrap_or(usize::MAX);
        for row in batch {
            if entries.len() == params.count {
                next = window.after.map(|(at, id, v)| cursor_of(id, v, at));
                break 'pages;
            }
            window.after = Some((row.last_updated, row.id, row.version_id));
            let consent = format!("Consent/{}", row.id);
            let Ok(patient) = PatientRef::parse(&row.patient) else {
                continue;
            };
            let named = if caller.role() == Role::Patient {
                Vec::new()
            } else {
                named_in(&row.resource)
            };
            let seen = access::see(&caller, interaction, &consent, &patient, &named);
            if !seen.permitted() {
                continue;
            }
            entries.push(entry(
                base,
                row.id,
                row.version_id,
                row.deleted,
                row.last_updated,
                &row.resource,
                &view,
            )?);
            let slot = returned
                .entry(row.patient.clone())
                .or_insert_with(|| (seen, Vec::new()));
            if !slot.1.contains(&consent) {
                slot.1.push(consent);
            }
        }
        if exhausted {
            break;
        }
        if entries.len() < params.count {
            // The scan budget ends here: the next page goes on from the last version read.
            next = window.after.map(|(at, id, v)| cursor_of(id, v, at));
        }
    }
    drop(conn);
    let mut events = Vec::new();
    for (patient, (decided, consents)) in returned {
        let Ok(reference) = PatientRef::parse(&patient) else {
            continue;
        };
        let count = u32::try_from(consents.len()).unwrap_or(u32::MAX);
        let mut decided = decided;
        decided.consents = consents;
        events.push(decided.event(
            &caller,
            interaction,
            Touched::new(CONSENT, Some(&reference)).count(count),
        ));
    }
    if events.is_empty() {
        events.push(decision.event(&caller, interaction, Touched::new(CONSENT, None)));
    }
    record(&state, &events).await?;
    let url = format!("{base}/fhir/Consent/_history");
    let body = bundle(&url, &params, entries, next)?;
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(body))
}
