//! `GET /fhir/Consent/{id}/_history`: every version of a consent, newest first.

use actix_web::{web, HttpRequest, HttpResponse};
use custodian_auth::Authenticated;
use custodian_events::{AccessAction, AccessOutcome};
use custodian_fhir::FHIR_JSON;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{http_date, parse_id, record, refuse, row_patient, row_version};
use crate::{
    domain::{
        audit::RequestContext,
        resource::{format_instant, now_millis},
        Caller,
    },
    error::ConsentError,
    routes::AppState,
    store,
};

/// The consent's versions as a `history` Bundle: what was consented to, when, and each
/// revocation or deletion.
#[utoipa::path(
    get,
    path = "/fhir/Consent/{id}/_history",
    tag = "Consent",
    params(("id" = String, Path, description = "The consent's id")),
    responses(
        (status = 200, description = "A history Bundle, newest version first", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 403, description = "Another patient's consent", body = Object, content_type = "application/fhir+json"),
        (status = 404, description = "Not known", body = Object, content_type = "application/fhir+json"),
    ),
    security(("bearer" = []))
)]
pub async fn history(
    req: HttpRequest,
    auth: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsentError> {
    let Authenticated(claims) = auth;
    let ctx = RequestContext::from_request(&req)?;
    let id = parse_id(&path)?;
    let mut conn = state.pool.get().await?;
    let current = store::find(&mut conn, id)
        .await?
        .ok_or_else(|| ConsentError::not_found(&path))?;
    let patient = row_patient(&current)?;
    if let Err(e) = Caller::new(&claims).may_read(&patient) {
        drop(conn);
        return Err(refuse(&state, &ctx, &claims, Some(&patient), AccessAction::Read, e).await);
    }
    let versions = store::history(&mut conn, id).await?;
    drop(conn);
    let base = &state.public_url;
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
            entry["resource"] = row.resource.clone();
        }
        entries.push(entry);
    }
    let returned = u32::try_from(entries.len()).unwrap_or(u32::MAX);
    record(
        &state,
        &ctx.event(
            &claims,
            Some(&patient),
            AccessAction::Read,
            returned,
            AccessOutcome::Permit,
        ),
    )
    .await?;
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
            http_date(current.last_updated),
        ))
        .body(bundle.to_string()))
}
