//! `GET /fhir/Consent/{id}/_history`: every version of a consent, newest first.

use actix_web::{web, HttpResponse};
use custodian_access::{Caller, Decision, Interaction, Touched};
use custodian_auth::Role;
use custodian_fhir::FHIR_JSON;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{existing, known, record, refuse, row_version};
use crate::{
    domain::{
        access::{self, CONSENT},
        resource::{format_instant, named_in, now_millis, shown},
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
    params(("id" = String, Path, description = "The consent's id")),
    responses(
        (status = 200, description = "A history Bundle, newest version first", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 404, description = "Not known, or no version of it is the caller's to see", body = Object, content_type = "application/fhir+json"),
    ),
    security(("bearer" = []))
)]
pub async fn history(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsentError> {
    let caller = known(&state, caller);
    let interaction = Interaction::Read;
    let (id, current, patient) = existing(&state, &caller, interaction, &path).await?;
    let consent = format!("Consent/{id}");
    let mut conn = state.pool.get().await?;
    let all = store::history(&mut conn, id).await?;
    drop(conn);
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
    // Newest first; what the caller may see of it.
    let newest_seen = versions
        .first()
        .map_or(current.last_updated, |v| v.last_updated);
    let base = &state.public_url;
    let view = access::view(&caller);
    let mut entries = Vec::with_capacity(versions.len());
    for row in &versions {
        let version = row_version(row.version_id)?;
        let (method, url, status) = if row.deleted {
            ("DELETE", format!("Consent/{id}"), "200 OK")
        } else if version.get() == 1 {
            ("POST", "Consent".to_string(), "201 Created")
        } else {
            ("PUT", format!("Consent/{id}"), "200 OK")
        };
        let mut entry = json!({
            "fullUrl": format!("{base}/fhir/Consent/{id}/_history/{version}"),
            "request": {"method": method, "url": url},
            "response": {"status": status, "etag": version.etag(), "lastModified": format_instant(row.last_updated)},
        });
        if !row.deleted {
            entry["resource"] = shown(&view, &row.resource);
        }
        entries.push(entry);
    }
    let returned = u32::try_from(entries.len()).unwrap_or(u32::MAX);
    let touched = Touched::new(CONSENT, Some(&patient)).count(returned);
    record(&state, &[decision.event(&caller, interaction, touched)]).await?;
    let bundle: Value = json!({
        "resourceType": "Bundle",
        "id": Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": format_instant(now_millis())},
        "type": "history",
        "total": entries.len(),
        "link": [{"relation": "self", "url": format!("{base}/fhir/Consent/{id}/_history")}],
        "entry": entries,
    });
    Ok(HttpResponse::Ok()
        .content_type(FHIR_JSON)
        .insert_header((
            actix_web::http::header::LAST_MODIFIED,
            custodian_fhir::http::http_date(newest_seen),
        ))
        .body(bundle.to_string()))
}
